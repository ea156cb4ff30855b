//! The crate's top-level modules form a DAG: none imports (as `crate::<module>`) a module that
//! imports it back, directly or through others. Read from the sources, tests included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable sources").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::name` paths in `text`: the names.
fn crate_paths(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("crate::").filter_map(move |(at, _)| {
        let rest = &text[at + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// A path from `from` to `to` in `graph`, if there is one.
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(trail) = stack.pop() {
        let last = trail.last().expect("non-empty").clone();
        for next in graph.get(&last).into_iter().flatten() {
            let mut longer = trail.clone();
            longer.push(next.clone());
            if next == to {
                return Some(longer);
            }
            if seen.insert(next.clone()) {
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn top_level_modules_form_a_dag() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&src).ok())
        .filter_map(|f| f.components().next())
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|m| m != "lib")
        .collect();
    assert!(
        modules.contains("conn") && modules.contains("client"),
        "{modules:?}"
    );
    for file in &files {
        let relative = file.strip_prefix(&src).expect("below src");
        let top = relative.components().next().expect("a component");
        let top = top
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in crate_paths(&text) {
            if used != top && modules.contains(used) {
                graph
                    .entry(top.clone())
                    .or_default()
                    .insert(used.to_string());
            }
        }
    }
    for (module, uses) in &graph {
        for used in uses {
            if let Some(back) = path(&graph, used, module) {
                panic!(
                    "{module} imports {used}, which leads back: {}",
                    back.join(" -> ")
                );
            }
        }
    }
}

#[test]
fn crate_paths_are_found() {
    let found: Vec<_> =
        crate_paths("use crate::conn::slot;\n x = crate::auth::A; crate::").collect();
    assert_eq!(found, ["conn", "auth"]);
}
