//! The policy loader on arbitrary TOML, against the default catalogue: never panics, and a
//! refusal names the file. The text is written to a per-process file because the loader reads
//! paths (a policy may include others).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use feerecon::fees::{Catalogue, Policy};
use libfuzzer_sys::fuzz_target;

fn catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(|| Catalogue::load(Path::new(feerecon::embedded::CATALOGUE)).unwrap_or_else(|e| panic!("{e}")))
}

fn file() -> &'static PathBuf {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("feerecon-fuzz-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir.join("policy.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = Policy::load(path, catalogue()) {
        assert!(!e.to_string().is_empty());
    }
});
