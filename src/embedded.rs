//! The default fee catalogue, province policies, settlement profiles and case fixtures, compiled
//! into the binary, so that `serve` and `demo` run from any folder.
//!
//! An embedded file is named by a path that starts with `embedded:` followed by its path in the
//! repository (`embedded:fixtures/policies/vinh-phuc.toml`). The configuration's defaults are such
//! paths; a file named by the environment (`FEERECON_POLICY=/etc/feerecon/ha-noi.toml`) is read
//! from disk and wins. Every reader of these files goes through [`read`], [`canonical`] and
//! [`list_dir`], which answer for embedded paths from the binary and for others from the disk,
//! so an embedded policy's `include = ["national.toml"]` resolves to the embedded
//! `national.toml` beside it, exactly as the same file on disk would.

use std::path::{Component, Path, PathBuf};

/// The prefix that names an embedded file.
pub const PREFIX: &str = "embedded:";

/// Every embedded file: its path in the repository and its text.
static FILES: &[(&str, &str)] = &[
    ("fixtures/catalogue.toml", include_str!("../fixtures/catalogue.toml")),
    ("fixtures/policies/national.toml", include_str!("../fixtures/policies/national.toml")),
    ("fixtures/policies/vinh-phuc.toml", include_str!("../fixtures/policies/vinh-phuc.toml")),
    ("fixtures/policies/phu-tho.toml", include_str!("../fixtures/policies/phu-tho.toml")),
    ("fixtures/policies/ha-noi.toml", include_str!("../fixtures/policies/ha-noi.toml")),
    ("fixtures/policies/thanh-hoa.toml", include_str!("../fixtures/policies/thanh-hoa.toml")),
    ("fixtures/settlement-profiles/vnpay.toml", include_str!("../fixtures/settlement-profiles/vnpay.toml")),
    ("fixtures/settlement-profiles/momo.toml", include_str!("../fixtures/settlement-profiles/momo.toml")),
    ("fixtures/settlement-profiles/zalopay.toml", include_str!("../fixtures/settlement-profiles/zalopay.toml")),
    ("fixtures/settlement-profiles/dvcqg.toml", include_str!("../fixtures/settlement-profiles/dvcqg.toml")),
    ("fixtures/cases/cases-2024-07.json", include_str!("../fixtures/cases/cases-2024-07.json")),
    ("fixtures/cases/cases-2025-07.csv", include_str!("../fixtures/cases/cases-2025-07.csv")),
];

/// The default catalogue (`FEERECON_CATALOGUE` unset).
pub const CATALOGUE: &str = "embedded:fixtures/catalogue.toml";
/// The default policy (`FEERECON_POLICY` unset).
pub const POLICY: &str = "embedded:fixtures/policies/vinh-phuc.toml";
/// The folder of the default settlement profiles (`FEERECON_SETTLEMENT_PROFILES` unset).
pub const PROFILES: &str = "embedded:fixtures/settlement-profiles";
/// The folder of the embedded policies: `national.toml` and one file per province.
pub const POLICIES: &str = "embedded:fixtures/policies";
/// The case fixtures, the demo's templates.
pub const CASES: [&str; 2] =
    ["embedded:fixtures/cases/cases-2024-07.json", "embedded:fixtures/cases/cases-2025-07.csv"];

/// The repository path an embedded path names, `..` and `.` resolved; `None` for a disk path.
fn key(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let rest = text.strip_prefix(PREFIX)?;
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(rest).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Whether `path` names an embedded file or folder (whether or not it exists).
pub fn is_embedded(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with(PREFIX))
}

/// The text of an embedded file; `None` for a disk path or a name the binary does not hold.
pub fn get(path: &Path) -> Option<&'static str> {
    let k = key(path)?;
    FILES.iter().find(|(name, _)| *name == k).map(|(_, text)| *text)
}

/// Reads a file: an embedded one from the binary, any other from the disk.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    if is_embedded(path) {
        return get(path).map(|t| t.as_bytes().to_vec()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file is embedded in this binary")
        });
    }
    std::fs::read(path)
}

/// A path that names one file whatever way it is written: an embedded path with `..` and `.`
/// resolved, or the disk's canonical path. Fails for a file that does not exist.
pub fn canonical(path: &Path) -> std::io::Result<PathBuf> {
    if is_embedded(path) {
        return match (get(path), key(path)) {
            (Some(_), Some(k)) => Ok(PathBuf::from(format!("{PREFIX}{k}"))),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file is embedded in this binary")),
        };
    }
    std::fs::canonicalize(path)
}

/// The file names directly inside an embedded folder, sorted; `None` for a disk path.
pub fn list_dir(dir: &Path) -> Option<Vec<&'static str>> {
    let k = key(dir)?;
    let prefix = format!("{k}/");
    let mut names: Vec<&'static str> = FILES
        .iter()
        .filter_map(|(name, _)| name.strip_prefix(prefix.as_str()))
        .filter(|rest| !rest.contains('/'))
        .collect();
    names.sort_unstable();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_is_embedded_as_it_is_on_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, text) in FILES {
            assert_eq!(std::fs::read_to_string(root.join(name)).unwrap(), *text, "{name}");
        }
        for dir in ["fixtures/policies", "fixtures/settlement-profiles"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = format!("{dir}/{}", e.unwrap().file_name().to_str().unwrap());
                assert!(FILES.iter().any(|(n, _)| *n == name), "{name} is not embedded");
            }
        }
    }

    #[test]
    fn embedded_paths_resolve_like_disk_paths() {
        let p = Path::new(POLICY);
        assert!(is_embedded(p) && get(p).is_some());
        let national = p.parent().unwrap().join("national.toml");
        assert_eq!(canonical(&national).unwrap(), PathBuf::from("embedded:fixtures/policies/national.toml"));
        let roundabout = Path::new("embedded:fixtures/policies/./../policies/ha-noi.toml");
        assert_eq!(canonical(roundabout).unwrap(), PathBuf::from("embedded:fixtures/policies/ha-noi.toml"));
        assert!(canonical(Path::new("embedded:fixtures/nothing.toml")).is_err());
        assert!(canonical(Path::new("embedded:../../etc/passwd")).is_err());
        assert!(read(Path::new("embedded:fixtures/policies/nope.toml")).is_err());
        assert_eq!(
            list_dir(Path::new(PROFILES)).unwrap(),
            vec!["dvcqg.toml", "momo.toml", "vnpay.toml", "zalopay.toml"]
        );
        assert_eq!(list_dir(Path::new(POLICIES)).unwrap().len(), 5);
        assert!(list_dir(Path::new("fixtures/policies")).is_none(), "a disk folder is not listed here");
        assert!(!is_embedded(Path::new("fixtures/catalogue.toml")));
    }
}
