//! The core's modules form layers: each uses only modules below it, so there is no circle and
//! each can be read (and tested) knowing only what is under it. docs/architecture.md draws
//! the same order; this test fails when a `crate::` path reaches up or sideways past it.

use std::fs;
use std::path::Path;

/// Bottom first. A module may use any module before it in this list, never one after.
const LAYERS: &[&str] = &[
    "error",
    "config",
    "kernels",
    "sampler",
    "tokenizer",
    "shard",
    "checkpoint",
    "link",
    "inspect",
    "model",
    "generate",
    "export",
    "conformance",
    "native",
    "fuzzing",
    "wasm",
];

/// The module a source file belongs to: `src/model.rs` is `model`, `src/checkpoint/load.rs`
/// is `checkpoint`; `lib.rs` and the binaries stand above every layer.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix("src").ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "bin").then(|| name.to_string())
}

/// Every `crate::name` a file mentions (in `use` lines and inline paths alike).
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            found.push(name);
        }
        // `use crate::{a, b}` names several.
        if rest.starts_with('{') {
            let list = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for item in list.split(',') {
                let name: String =
                    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        }
    }
    found
}

/// A file's code without its comments and its unit tests (which may use any layer: a test
/// of the model builds its checkpoint with `export`).
fn code(text: &str) -> String {
    let end = ["#[cfg(test)]", "#[cfg(all(test"].iter().filter_map(|m| text.find(m)).min();
    text[..end.unwrap_or(text.len())]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let rank = |name: &str| LAYERS.iter().position(|&l| l == name);
    let mut sources = Vec::new();
    files(Path::new("src"), &mut sources);
    let mut wrong = Vec::new();
    for path in &sources {
        let Some(module) = module_of(path) else { continue };
        let mine = rank(&module)
            .unwrap_or_else(|| panic!("{}: module `{module}` is not in LAYERS", path.display()));
        let text = code(&fs::read_to_string(path).unwrap());
        for used in uses(&text) {
            // Re-exports from lib.rs (`crate::Checkpoint`) are named by type, not module.
            let Some(theirs) = rank(&used) else {
                if used.chars().next().is_some_and(char::is_lowercase) {
                    wrong.push(format!("{}: `crate::{used}` is not in LAYERS", path.display()));
                }
                continue;
            };
            if theirs > mine {
                wrong.push(format!(
                    "{}: `{module}` uses `{used}`, a layer above it",
                    path.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "modules reaching up:\n{}", wrong.join("\n"));
}
