//! Where a run config's table comes from before it is typed: a TOML file and the files it
//! `extends` (each relative to the one that names it, merged section by section), and the
//! `--set section.key=value` overrides on top. Unknown keys are left for serde to refuse by name.

use std::path::{Path, PathBuf};

/// The key by which a config file starts from another.
const EXTENDS: &str = "extends";

/// The table of a config given as text (named `origin` in errors), which cannot extend another:
/// `extends` names a file relative to the config's own.
pub(crate) fn read_text(text: &str, origin: &str) -> anyhow::Result<toml::Table> {
    let table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    anyhow::ensure!(
        !table.contains_key(EXTENDS),
        "{origin}: `{EXTENDS}` names a file relative to this config, so it needs a config read \
         from a file"
    );
    Ok(table)
}

/// The table of the config file at `path` with the files it extends merged under it; `chain`
/// holds the files already being read, to refuse a cycle.
pub(crate) fn read_extended(path: &Path, chain: &mut Vec<PathBuf>) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some(base) = table.remove(EXTENDS) else { return Ok(table) };
    let base = base.as_str().ok_or_else(|| {
        anyhow::anyhow!("{}: `{EXTENDS}` must be a file name, not {base}", path.display())
    })?;
    let base = path.parent().unwrap_or(Path::new("")).join(base);
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    anyhow::ensure!(
        !chain.contains(&canonical),
        "{}: `{EXTENDS}` leads back to this file",
        path.display()
    );
    chain.push(canonical);
    let mut merged = read_extended(&base, chain)
        .map_err(|e| anyhow::anyhow!("{e}\n  (extended by {})", path.display()))?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Writes `over` onto `base`: sections merge key by key, every other value replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(over)) => merge(base, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets `path = value` in a TOML table; the path must name an existing key so a typo fails here.
pub(crate) fn apply_override(table: &mut toml::Table, item: &str) -> anyhow::Result<()> {
    let (path, raw) = item
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--set {item:?}: expected section.key=value"))?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let (last, parents) = keys.split_last().expect("split yields at least one key");
    let mut current = table;
    for key in parents {
        // A section the file leaves out (at its defaults) is created; a misspelt one is then
        // refused by name when the config is deserialised.
        current = current
            .entry((*key).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| anyhow::anyhow!("--set {path}: `{key}` is a value, not a section"))?;
    }
    // Keys the file leaves at their default may still be set: serde rejects unknown ones.
    current.insert((*last).to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{DEFAULT_CONFIG, RunConfig};

    #[test]
    fn extends_merges_sections_and_still_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("base.toml", "extends = \"configs/default.toml\"\n[algorithm]\nn1 = 12\n");
        std::fs::create_dir(dir.path().join("configs")).unwrap();
        write("configs/default.toml", DEFAULT_CONFIG);
        write("run.toml", "extends = \"base.toml\"\n[run]\nname = \"mine\"\n");
        let config =
            RunConfig::from_file(&dir.path().join("run.toml"), &["train.steps=7".into()]).unwrap();
        let expected = RunConfig::default_with(&[
            "run.name=mine".into(),
            "algorithm.n1=12".into(),
            "train.steps=7".into(),
        ])
        .unwrap();
        assert_eq!(config, expected, "the chain and the override all apply, section by section");

        write("typo.toml", "extends = \"base.toml\"\n[algorithm]\nnn = 3\n");
        let err = RunConfig::from_file(&dir.path().join("typo.toml"), &[]).unwrap_err();
        assert!(err.to_string().contains("nn"), "{err}");
        write("loop.toml", "extends = \"loop.toml\"\n");
        let err = RunConfig::from_file(&dir.path().join("loop.toml"), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("leads back"), "{err:#}");
        write("missing.toml", "extends = \"nowhere.toml\"\n");
        let err = RunConfig::from_file(&dir.path().join("missing.toml"), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("nowhere.toml"), "{err:#}");
        let err = RunConfig::from_toml("extends = \"x.toml\"", "text", &[]).unwrap_err();
        assert!(err.to_string().contains("extends"), "{err}");
    }
}
