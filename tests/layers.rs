//! The lab reads in one direction: every `crate::lab::` path in `src/lab` points to a module of a
//! lower layer (`backdoor_lab::lab::LAYERS`), and nothing in the lab names the page or the CLI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use backdoor_lab::lab::LAYERS;

/// Imports that break the order on purpose, each with its reason: (from, to, why). Keep it short.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// The lab modules a source text names through `crate::lab::`, comments left out: plain paths
/// (`crate::lab::data::ImageSet`) and each first segment of a group (`crate::lab::{data::X, eval::Y}`).
fn named_modules(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::lab::") {
        let rest = &code[at + "crate::lab::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let (mut depth, mut item) = (0usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Items re-exported at `crate::lab::` itself, with the module that owns each.
const ROOT_ITEMS: &[(&str, &str)] = &[("LabError", "error"), ("Result", "error"), ("ExperimentSpec", "spec")];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every violation in `files` (module, file name, source): "file: module (layer) uses other (layer)".
fn violations(files: &[(String, String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (module, file, source) in files {
        let Some(own) = layer_of(module) else {
            out.push(format!("{file}: module '{module}' is in no layer of lab::LAYERS: place it there"));
            continue;
        };
        if source.contains("crate::web") || source.contains("crate::cli") {
            out.push(format!("{file}: the lab names the page or the CLI"));
        }
        for named in named_modules(source) {
            let target = ROOT_ITEMS.iter().find(|(item, _)| *item == named).map_or(named.as_str(), |(_, m)| m);
            if target == module {
                continue;
            }
            let Some(theirs) = layer_of(target) else {
                out.push(format!("{file}: uses crate::lab::{named}, which is in no layer"));
                continue;
            };
            let allowed = ALLOWED.iter().any(|(from, to, _)| from == module && *to == target);
            if theirs >= own && !allowed {
                let how = if theirs == own { "beside it" } else { "above it" };
                out.push(format!("{file}: {module} (layer {own}) uses {target} (layer {theirs}, {how})"));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/lab is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (module, file, source) of every file of the lab but its `mod.rs`.
fn lab_files() -> Vec<(String, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lab");
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p != &root.join("mod.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
            let source = std::fs::read_to_string(&p).expect("source is UTF-8");
            (module, format!("src/lab/{rel}"), source)
        })
        .collect()
}

#[test]
fn the_lab_imports_only_downward() {
    let files = lab_files();
    assert!(files.len() > 40, "found only {} lab files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "imports against lab::LAYERS:\n{}", found.join("\n"));
}

#[test]
fn every_lab_module_has_one_layer_and_the_allow_list_is_used() {
    let modules: BTreeSet<String> = lab_files().into_iter().map(|(m, _, _)| m).collect();
    let placed: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    let unique: BTreeSet<&str> = placed.iter().copied().collect();
    assert_eq!(unique.len(), placed.len(), "a module is in two layers");
    let declared: BTreeSet<String> = unique.iter().map(|s| s.to_string()).collect();
    assert_eq!(declared, modules, "lab::LAYERS and src/lab's modules differ");
    for (from, to, why) in ALLOWED {
        assert!(!why.is_empty(), "{from} -> {to} needs its reason");
    }
}

/// The checker itself: it must see an upward import in each form the code writes, and pass a
/// downward one (a checker that found nothing would pass the test above on any code).
#[test]
fn the_checker_catches_imports_that_point_up() {
    let file = |module: &str, source: &str| vec![(module.to_string(), format!("{module}.rs"), source.to_string())];
    assert!(violations(&file("data", "use crate::lab::error::Result;\nuse crate::lab::rng::LabRng;")).is_empty());
    for wrong in [
        "use crate::lab::spec::ExperimentSpec;",
        "use crate::lab::{error::Result, spec::DataSpec};",
        "use crate::lab::{\n    rng::LabRng,\n    train::{TrainSpec, OptimizerKind},\n};",
        "fn f() -> crate::lab::run::Outcome { todo!() }",
        "use crate::lab::ExperimentSpec;",
        "use crate::lab::model::Model;",
    ] {
        let found = violations(&file("data", wrong));
        assert_eq!(found.len(), 1, "{wrong}: {found:?}");
    }
    // Beside: two modules of one layer.
    assert_eq!(violations(&file("augment", "use crate::lab::model::Model;")).len(), 1);
    // Comments do not count; the page does.
    assert!(violations(&file("data", "// see crate::lab::spec::ExperimentSpec")).is_empty());
    assert_eq!(violations(&file("data", "use crate::web::app;")).len(), 1);
    assert_eq!(violations(&file("nowhere", "")).len(), 1);
}
