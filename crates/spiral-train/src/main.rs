//! `spiral-train`: the SPIRAL training orchestrator (issue 7; not built yet).

fn main() {
    eprintln!("spiral-train is not built yet: see issue 7");
    std::process::exit(2);
}
