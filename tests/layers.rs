//! The crate's layers, checked on its sources: vocabulary at the bottom,
//! the engine (`src/engine/`) above it, the API above that, extensions in
//! folders of their own. Imports point down only, feature gates stand only
//! on module lines in `lib.rs` and inside extension folders, and only the
//! engine touches a node's state.
//!
//! Rust's visibility already keeps the node state to the engine
//! (`pub(in crate::engine)`); these checks keep the rest from drifting.

use std::fs;
use std::path::{Path, PathBuf};

/// The vocabulary: words every layer may use.
const VOCABULARY: &[&str] = &[
    "callback", "error", "graph", "key", "limit", "retry", "spawn", "tokenize",
];
/// The API layer, above the engine.
const API: &[&str] = &[
    "access",
    "args",
    "builder",
    "collect",
    "combinators",
    "completed",
    "compute",
    "delayed",
    "flatten",
    "into_delayed",
    "join",
    "ops",
    "options",
    "unzip",
];
/// Extensions, each in a folder of its own.
const EXTENSIONS: &[&str] = &[
    "cache",
    "cluster",
    "dashboard",
    "keyed",
    "metrics",
    "observe",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's code without its unit tests: what follows a `#[cfg(test)]`
/// line at the top level is left out. Files that are unit tests whole
/// (`*_tests.rs`) are empty.
fn code(path: &Path) -> String {
    if path.to_string_lossy().ends_with("_tests.rs") {
        return String::new();
    }
    let text = fs::read_to_string(path).unwrap();
    match text.find("\n#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn module_of(name: &str) -> String {
    format!("crate::{name}")
}

/// The lines of `path` that use one of `modules` (`crate::x::...`,
/// `crate::{x, ..}` or `use crate::x;`).
fn uses(path: &Path, modules: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for line in code(path).lines() {
        let line = line.trim();
        if line.starts_with("//") {
            continue;
        }
        for module in modules {
            let path = module_of(module);
            let direct = line.contains(&format!("{path}::")) || line.contains(&format!("{path};"));
            let grouped = line.starts_with("use crate::{")
                && line
                    .trim_start_matches("use crate::{")
                    .split([',', '}', ' '])
                    .any(|item| item == *module);
            if direct || grouped {
                found.push(format!("{line}  (uses `{module}`)"));
            }
        }
    }
    found
}

/// The crate-root names the API layer exports, which the engine must not use.
const API_NAMES: &[&str] = &["Delayed", "Options", "Compute", "IntoDelayed", "Join"];

fn uses_api_names(path: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for line in code(path).lines() {
        let line = line.trim();
        if line.starts_with("//") {
            continue;
        }
        for name in API_NAMES {
            let root = format!("crate::{name}");
            let grouped = line.starts_with("use crate::{")
                && line
                    .trim_start_matches("use crate::{")
                    .split([',', '}', ' '])
                    .any(|item| item == *name);
            let direct = line.match_indices(&root).any(|(at, _)| {
                !line[at + root.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if grouped || direct {
                found.push(format!("{line}  (uses `{name}`)"));
            }
        }
    }
    found
}

fn rel(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn report(problems: Vec<String>, rule: &str) {
    assert!(problems.is_empty(), "{rule}:\n  {}", problems.join("\n  "));
}

#[test]
fn the_engine_imports_nothing_above_it() {
    let mut problems = Vec::new();
    let above: Vec<&str> = API.iter().chain(EXTENSIONS).copied().collect();
    for path in files(&src().join("engine")) {
        for line in uses(&path, &above).into_iter().chain(uses_api_names(&path)) {
            problems.push(format!("{}: {line}", rel(&path)));
        }
    }
    report(problems, "engine files use the layers above the engine");
}

#[test]
fn the_engine_names_no_extension() {
    let mut problems = Vec::new();
    for path in files(&src().join("engine")) {
        for (n, line) in code(&path).lines().enumerate() {
            let lower = line.to_lowercase();
            for word in ["cluster", "keyed", "nats", "jetstream", "worker process"] {
                if lower.contains(word) {
                    problems.push(format!("{}:{}: {}", rel(&path), n + 1, line.trim()));
                }
            }
        }
    }
    report(problems, "engine files name an extension");
}

#[test]
fn the_vocabulary_imports_only_the_vocabulary() {
    let mut problems = Vec::new();
    let above: Vec<&str> = ["engine"]
        .iter()
        .chain(API)
        .chain(EXTENSIONS)
        .copied()
        .collect();
    for name in VOCABULARY {
        let path = src().join(format!("{name}.rs"));
        for line in uses(&path, &above).into_iter().chain(uses_api_names(&path)) {
            problems.push(format!("{}: {line}", rel(&path)));
        }
    }
    report(problems, "vocabulary files use the layers above them");
}

#[test]
fn feature_gates_stand_only_on_module_lines_and_in_extension_folders() {
    let mut problems = Vec::new();
    for path in files(&src()) {
        let name = rel(&path);
        let in_extension = EXTENSIONS
            .iter()
            .any(|ext| name.starts_with(&format!("{ext}/")));
        if in_extension {
            continue;
        }
        let text = code(&path);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (n, line) in lines.iter().enumerate() {
            if !line.contains("feature =") || line.starts_with("//") {
                continue;
            }
            // In lib.rs, a gate may stand on a `mod` line (with its docs
            // attribute between them).
            let gated_mod = name == "lib.rs"
                && lines[n + 1..]
                    .iter()
                    .find(|next| !next.starts_with("#["))
                    .is_some_and(|next| next.starts_with("mod ") || next.starts_with("pub mod "));
            if !gated_mod {
                problems.push(format!("{name}:{}: {line}", n + 1));
            }
        }
    }
    report(
        problems,
        "feature gates outside module lines and extension folders",
    );
}

#[test]
fn only_the_engine_touches_node_state() {
    let mut problems = Vec::new();
    for path in files(&src()) {
        let name = rel(&path);
        if name.starts_with("engine/") {
            continue;
        }
        for (n, line) in code(&path).lines().enumerate() {
            for needle in [
                "Phase::",
                "core().lock()",
                "state_mut()",
                ".waiters",
                "engine::state::State",
            ] {
                if line.contains(needle) {
                    problems.push(format!("{name}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    report(problems, "files outside the engine touch node state");
}

#[test]
fn extensions_live_in_folders_of_their_own() {
    for ext in EXTENSIONS {
        assert!(
            src().join(ext).join("mod.rs").is_file(),
            "extension `{ext}` should be `src/{ext}/mod.rs`"
        );
        assert!(
            !src().join(format!("{ext}.rs")).exists(),
            "extension `{ext}` has a file outside its folder"
        );
    }
}
