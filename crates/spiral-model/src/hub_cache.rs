//! Model and adapter names resolved to folders: a local path, or a Hugging Face hub id
//! (`org/name`, optionally `org/name@revision`) looked up in the local hub cache, never over the
//! network.
//!
//! The cache layout is `huggingface_hub`'s ("Understand caching",
//! <https://huggingface.co/docs/huggingface_hub/guides/manage-cache>): under the cache root,
//! `models--{org}--{name}/refs/{revision}` holds a commit hash and the files are in
//! `models--{org}--{name}/snapshots/{hash}/`. The root is `$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, as `huggingface_hub` chooses it
//! (<https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables>).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// The revision used when an id names none, as on the hub.
const DEFAULT_REVISION: &str = "main";

/// A hub repository id with an optional revision (`Qwen/Qwen3-0.6B@main`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    /// `org/name`.
    pub repo: String,
    /// A branch, tag or commit hash; `None` means `main`.
    pub revision: Option<String>,
}

impl HubId {
    /// Parses `org/name` or `org/name@revision`; `None` for anything else (absolute or dotted
    /// paths, more than one `/`, characters the hub refuses in names).
    pub fn parse(text: &str) -> Option<Self> {
        let (repo, revision) = match text.split_once('@') {
            Some((repo, revision)) if !revision.is_empty() => (repo, Some(revision.to_string())),
            Some(_) => return None,
            None => (text, None),
        };
        let (org, name) = repo.split_once('/')?;
        // The hub's rule for each part: letters, digits, `-`, `_`, `.`, not starting with `-`
        // or `.` (which also keeps `./x` and `../x` out).
        let valid = |part: &str| {
            !part.is_empty()
                && !part.starts_with(['-', '.'])
                && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        (valid(org) && valid(name)).then(|| Self { repo: repo.to_string(), revision })
    }

    /// The revision asked for (`main` by default).
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }

    /// The repository's folder name in the cache: `models--org--name`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.revision {
            Some(revision) => write!(f, "{}@{revision}", self.repo),
            None => f.write_str(&self.repo),
        }
    }
}

/// A local Hugging Face hub cache, read only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    root: PathBuf,
}

impl HubCache {
    /// The cache at `root` (the folder holding `models--*`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache `huggingface_hub` would use in this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// The cache chosen from environment variables read through `var`: `HF_HUB_CACHE` (or its
    /// older name `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `$HOME/.cache/huggingface/hub`.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = set("HF_HUB_CACHE")
            .or_else(|| set("HUGGINGFACE_HUB_CACHE"))
            .or_else(|| set("HF_HOME").map(|home| home.join("hub")))
            .or_else(|| set("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
            .unwrap_or_else(|| {
                let home = set("HOME").or_else(|| set("USERPROFILE")).unwrap_or_default();
                home.join(".cache").join("huggingface").join("hub")
            });
        Self { root }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshot folder of `id`: `refs/<revision>` names the commit, or the revision is
    /// itself a commit with a snapshot. The error says what was searched and how to fill the
    /// cache.
    pub fn snapshot(&self, id: &HubId) -> Result<PathBuf> {
        let repo = self.root.join(id.folder_name());
        let not_found = |why: String| ModelError::NotFound {
            name: id.to_string(),
            message: format!(
                "{why}; fill the cache with `huggingface-cli download {}{}` (or set \
                 HF_HUB_CACHE or HF_HOME to a cache that has it), or pass a local folder",
                id.repo,
                id.revision.as_ref().map(|r| format!(" --revision {r}")).unwrap_or_default()
            ),
        };
        if !repo.is_dir() {
            return Err(not_found(format!("not in the Hugging Face cache at {}", repo.display())));
        }
        let revision = id.revision();
        let ref_file = repo.join("refs").join(revision);
        let commit = if ref_file.is_file() {
            let text =
                std::fs::read_to_string(&ref_file).map_err(|e| ModelError::io(&ref_file, e))?;
            text.trim().to_string()
        } else {
            revision.to_string()
        };
        let snapshot = repo.join("snapshots").join(&commit);
        if snapshot.is_dir() {
            return Ok(snapshot);
        }
        let why = if ref_file.is_file() {
            format!(
                "{} names commit {commit}, whose snapshot {} is missing",
                ref_file.display(),
                snapshot.display()
            )
        } else {
            let refs = list_names(&repo.join("refs"));
            let snapshots = list_names(&repo.join("snapshots"));
            format!(
                "revision `{revision}` is neither in {} (cached: {refs}) nor a snapshot in {} \
                 (cached: {snapshots})",
                repo.join("refs").display(),
                repo.join("snapshots").display()
            )
        };
        Err(not_found(why))
    }

    /// A model or adapter folder named by `name`: an existing local path wins, else a hub id
    /// looked up in this cache.
    pub fn resolve(&self, name: impl AsRef<Path>) -> Result<PathBuf> {
        self.resolve_relative_to(name, &[])
    }

    /// As [`HubCache::resolve`], trying a relative `name` under each of `dirs` first (an
    /// adapter's `base_model_name_or_path` is relative to the adapter folder), then as given
    /// (relative to the working directory), then as a hub id.
    pub fn resolve_relative_to(&self, name: impl AsRef<Path>, dirs: &[&Path]) -> Result<PathBuf> {
        let name = name.as_ref();
        let mut candidates: Vec<PathBuf> = Vec::new();
        if name.is_relative() {
            candidates.extend(dirs.iter().map(|dir| dir.join(name)));
        }
        candidates.push(name.to_path_buf());
        if let Some(found) = candidates.iter().find(|path| path.is_dir()) {
            return Ok(found.clone());
        }
        let text = name.to_string_lossy();
        match HubId::parse(&text) {
            Some(id) => self.snapshot(&id).map_err(|e| match e {
                ModelError::NotFound { name, message } => ModelError::NotFound {
                    name,
                    message: format!("no local folder at {}; {message}", list_paths(&candidates)),
                },
                other => other,
            }),
            None => Err(ModelError::NotFound {
                name: text.into_owned(),
                message: format!(
                    "no local folder at {}, and not a hub id (`org/name` or `org/name@revision`)",
                    list_paths(&candidates)
                ),
            }),
        }
    }
}

/// [`HubCache::resolve`] in the cache of this process's environment: what the loaders and the
/// command-line tools call for a model or adapter argument.
pub fn resolve_model(name: impl AsRef<Path>) -> Result<PathBuf> {
    HubCache::from_env().resolve(name)
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// The entries of a folder, sorted, for an error message (`none` when empty or absent).
fn list_names(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into()).collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A cache holding `org/tiny` at COMMIT, with `main` pointing at it and `config.json` a
    /// symlink into `blobs/` as `huggingface_hub` writes it.
    fn cache_with_one_repo() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("models--org--tiny");
        let snapshot = repo.join("snapshots").join(COMMIT);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
        std::fs::write(repo.join("blobs/abc"), "{}").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("../../blobs/abc", snapshot.join("config.json")).unwrap();
        #[cfg(not(unix))]
        std::fs::write(snapshot.join("config.json"), "{}").unwrap();
        root
    }

    #[test]
    fn ids_parse_with_and_without_revision() {
        let id = HubId::parse("Qwen/Qwen3-0.6B").unwrap();
        assert_eq!((id.repo.as_str(), id.revision()), ("Qwen/Qwen3-0.6B", "main"));
        assert_eq!(id.folder_name(), "models--Qwen--Qwen3-0.6B");
        let id = HubId::parse("org/name@v1.0").unwrap();
        assert_eq!((id.repo.as_str(), id.revision()), ("org/name", "v1.0"));
        assert_eq!(id.to_string(), "org/name@v1.0");
        for path in
            ["/abs/path", "./org/name", "../x", "a/b/c", "name", "org/", "org/name@", "o/n m"]
        {
            assert_eq!(HubId::parse(path), None, "{path}");
        }
    }

    #[test]
    fn ids_resolve_through_refs_and_commit_hashes() {
        let root = cache_with_one_repo();
        let cache = HubCache::at(root.path());
        let snapshot = root.path().join("models--org--tiny/snapshots").join(COMMIT);
        assert_eq!(cache.resolve("org/tiny").unwrap(), snapshot);
        assert_eq!(cache.resolve("org/tiny@main").unwrap(), snapshot);
        assert_eq!(cache.resolve(format!("org/tiny@{COMMIT}")).unwrap(), snapshot);
        // Files are read through the snapshot's symlinks.
        assert_eq!(std::fs::read_to_string(snapshot.join("config.json")).unwrap(), "{}");
    }

    #[test]
    fn a_local_path_wins_over_an_id() {
        let root = cache_with_one_repo();
        let cache = HubCache::at(root.path());
        let work = tempfile::tempdir().unwrap();
        let local = work.path().join("org/tiny");
        std::fs::create_dir_all(&local).unwrap();
        assert_eq!(cache.resolve(&local).unwrap(), local);
        // Relative names are tried under the given folders first.
        assert_eq!(cache.resolve_relative_to("org/tiny", &[work.path()]).unwrap(), local);
    }

    #[test]
    fn misses_name_the_folders_searched_and_how_to_fill_the_cache() {
        let root = cache_with_one_repo();
        let cache = HubCache::at(root.path());
        let e = cache.resolve("org/absent").unwrap_err().to_string();
        assert!(e.contains("models--org--absent"), "{e}");
        assert!(e.contains("huggingface-cli download org/absent"), "{e}");
        let e = cache.resolve("org/tiny@v2").unwrap_err().to_string();
        assert!(e.contains("`v2`") && e.contains("cached: main"), "{e}");
        assert!(e.contains("--revision v2"), "{e}");
        std::fs::write(root.path().join("models--org--tiny/refs/stale"), "f00d").unwrap();
        let e = cache.resolve("org/tiny@stale").unwrap_err().to_string();
        assert!(e.contains("commit f00d") && e.contains("missing"), "{e}");
        let e = cache.resolve("./not/here").unwrap_err().to_string();
        assert!(e.contains("not a hub id") && e.contains("./not/here"), "{e}");
    }

    #[test]
    fn the_cache_root_follows_huggingface_hub_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(*v))
            }
        };
        let root = |pairs| HubCache::from_vars(vars(pairs)).root().to_path_buf();
        assert_eq!(root(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h")]), Path::new("/c"));
        assert_eq!(root(&[("HF_HOME", "/h"), ("HOME", "/u")]), Path::new("/h/hub"));
        assert_eq!(root(&[("XDG_CACHE_HOME", "/x")]), Path::new("/x/huggingface/hub"));
        assert_eq!(root(&[("HOME", "/u")]), Path::new("/u/.cache/huggingface/hub"));
        // An empty variable counts as unset: an empty root would be the working directory.
        assert_eq!(
            root(&[("HF_HUB_CACHE", ""), ("HOME", "/u")]),
            Path::new("/u/.cache/huggingface/hub")
        );
    }
}
