//! The `--device` flag: which burn backend runs the model. `cpu` is burn's pure-Rust Flex
//! backend; `cuda[:N]` needs a build with the `cuda` feature (issue 9).

/// The CPU backend every build has.
pub type Cpu = burn::backend::Flex;

/// Parses `--device`: `cpu` today. `cuda` is named in the error so users know what to build.
pub fn parse_device(value: &str) -> Result<String, String> {
    match value {
        "cpu" => Ok(value.to_string()),
        v if v == "cuda" || v.starts_with("cuda:") => Err(format!(
            "`{v}` needs a build with CUDA support (`--features cuda`), which this binary does not have"
        )),
        other => Err(format!("unknown device `{other}`: expected `cpu` or `cuda[:N]`")),
    }
}
