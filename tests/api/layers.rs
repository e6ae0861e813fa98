//! The layering of `src/lib.rs` holds: every module imports only modules of lower layers
//! (services may also use each other; a unit-test file, `tests.rs` or `*_tests.rs`, may read a
//! module of its own layer, such as the case-file reader for fixtures, never a higher one), and
//! the store imports nothing but `domain`.

use std::collections::BTreeMap;
use std::path::Path;

const SERVICES: u32 = 4;

/// The layer table of `src/lib.rs`: module → layer.
fn layers() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let cells: Vec<&str> = line.trim_start_matches("//!").split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let (Ok(layer), Some(module)) =
            (cells[1].parse::<u32>(), cells[2].strip_prefix("[`").and_then(|m| m.strip_suffix("`]")))
        else {
            continue;
        };
        out.insert(module.to_owned(), layer);
    }
    out
}

/// The Rust files of a module: `src/<m>.rs` or everything under `src/<m>/`.
fn files(module: &str) -> Vec<std::path::PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        return vec![single];
    }
    let mut out = vec![];
    let mut stack = vec![src.join(module)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// The crate modules a source text names: `crate::x`, `crate::{x, y::z}` and `$crate::x`.
fn imports(text: &str, known: &BTreeMap<String, u32>) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push(name);
            }
        } else {
            out.push(after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
        rest = after;
    }
    out.retain(|m| known.contains_key(m));
    out
}

#[test]
fn no_module_imports_a_higher_layer() {
    let layers = layers();
    for must in ["domain", "store", "payments", "http", "cli", "config", "telemetry", "settlement", "recon"] {
        assert!(layers.contains_key(must), "lib.rs's table lacks {must}: {layers:?}");
    }
    let mut bad = vec![];
    for (module, layer) in &layers {
        for f in files(module) {
            let text = std::fs::read_to_string(&f).unwrap();
            for used in imports(&text, &layers) {
                if &used == module {
                    continue;
                }
                let theirs = layers[&used];
                let test_file = f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("tests.rs"));
                let ok = theirs < *layer || (theirs == *layer && (*layer == SERVICES || test_file));
                if !ok {
                    bad.push(format!("{} (layer {layer}) uses {used} (layer {theirs})", f.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layering of src/lib.rs:\n{}", bad.join("\n"));
}

#[test]
fn every_module_of_the_crate_is_in_the_table() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let layers = layers();
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("pub mod ").and_then(|l| l.strip_suffix(';')) {
            assert!(layers.contains_key(m), "module {m} has no layer in lib.rs's table");
        }
    }
}

#[test]
fn the_store_imports_only_the_domain() {
    let layers = layers();
    for f in files("store") {
        let text = std::fs::read_to_string(&f).unwrap();
        let used: Vec<String> = imports(&text, &layers).into_iter().filter(|m| m != "store" && m != "domain").collect();
        assert!(used.is_empty(), "{} uses {used:?}", f.display());
    }
}

#[test]
fn the_import_reader_sees_every_form() {
    let known: BTreeMap<String, u32> =
        [("a", 0), ("b", 0), ("c", 0)].into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let got = imports("use crate::a::X;\nuse crate::{b::Y, c};\n$crate::a::z();\ncrate::unknown::q", &known);
    assert_eq!(got, vec!["a", "b", "c", "a"]);
}
