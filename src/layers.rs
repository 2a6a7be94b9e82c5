//! Keeps the layers in [`crate::LAYERS`] honest: a module under `src/<layer>/` may name by `crate::`
//! path only its own layer and those below it; the generator crate is for the wiring only.

use std::path::{Path, PathBuf};

use crate::LAYERS;

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn ident(s: &str) -> &str {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(s, |end| &s[..end])
}

/// The top-level modules a line of code names through `crate::` (comments are not code).
fn named(line: &str) -> Vec<&str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        // `camwatch_crate::` or `my_crate::` are not this crate.
        if code[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or_default();
                out.extend(group.split(',').map(|s| ident(s.trim())).filter(|s| !s.is_empty()));
            }
            None => out.push(ident(rest)),
        }
    }
    out
}

/// Every upward reference in one file of `layer`, as `file:line: names crate::X (layer above)`.
fn violations(layer: &str, file: &str, text: &str) -> Vec<String> {
    let Some(own) = rank(layer) else {
        return vec![format!("{file}: src/{layer} is not in LAYERS (lib.rs)")];
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for name in named(line) {
            match rank(name) {
                Some(r) if r <= own => {}
                Some(_) => {
                    out.push(format!("{file}:{}: {layer} names crate::{name}, a layer above it", n + 1))
                }
                // `crate::LAYERS` and other items of lib.rs itself.
                None if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {}
                None => out.push(format!("{file}:{}: crate::{name} is not a layer", n + 1)),
            }
        }
        let code = line.trim_start();
        if !code.starts_with("//") && code.contains("camwatch_synth") && layer != "runtime" {
            out.push(format!("{file}:{}: only the wiring (runtime) uses the generator crate", n + 1));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !path.is_dir() {
            assert!(
                matches!(name.as_str(), "lib.rs" | "main.rs" | "layers.rs"),
                "src/{name}: every module lives in a layer's folder"
            );
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let shown = f.strip_prefix(&src).unwrap_or(&f).display().to_string();
            found.extend(violations(&name, &shown, &text));
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} files read: is src/ laid out in folders?");
    assert!(found.is_empty(), "imports against the layer order:\n{}", found.join("\n"));
}

#[test]
fn every_layer_has_its_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for layer in LAYERS.iter().filter(|l| **l != "proto") {
        assert!(
            src.join(layer).join("mod.rs").is_file(),
            "LAYERS names {layer}, which has no src/{layer}/mod.rs"
        );
    }
}

#[test]
fn the_check_sees_upward_names_and_ignores_comments() {
    let text = "use crate::model::event::Event;\n\
                use crate::{decode, runtime::pipeline};\n\
                // see crate::runtime for the wiring\n\
                let x = crate::alert::Alert::default();\n\
                use camwatch_synth::generate;\n";
    let found = violations("flow", "flow/x.rs", text);
    assert_eq!(
        found,
        [
            "flow/x.rs:2: flow names crate::runtime, a layer above it",
            "flow/x.rs:4: flow names crate::alert, a layer above it",
            "flow/x.rs:5: only the wiring (runtime) uses the generator crate",
        ],
    );
    assert!(violations("runtime", "runtime/x.rs", text).is_empty());
    assert_eq!(violations("utils", "utils/x.rs", "").len(), 1, "an unlisted folder is reported");
    assert_eq!(named("my_crate::flow::x; crate::LAYERS"), ["LAYERS"]);
}
