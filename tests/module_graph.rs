//! The library's rooms only use rooms below them (STYLE.md, "Growing the house"): no two
//! top-level modules reach into each other, directly or around a circle. Read from the source,
//! every `crate::<module>` a module's files name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its files name.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut texts = Vec::new();
        collect(&path, &mut texts);
        let mut uses = BTreeSet::new();
        for text in texts {
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + 7..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                if end > 0 && rest[..end] != name {
                    uses.insert(rest[..end].to_owned());
                }
            }
            assert!(
                !text.contains("use crate::{"),
                "{name}: name modules one by one"
            );
        }
        graph.entry(name).or_insert_with(BTreeSet::new).extend(uses);
    }
    graph
}

fn collect(path: &Path, out: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(std::fs::read_to_string(path).unwrap());
    }
}

#[test]
fn no_module_reaches_back_up() {
    let graph = graph();
    assert!(graph.len() > 20 && graph["handler"].contains("policy"));
    // A depth-first walk from each module: reaching itself again is a circle.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = todo.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    panic!("a circle: {} → {start}", path.join(" → "));
                }
                if graph.contains_key(next) && seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    todo.push((next.clone(), longer));
                }
            }
        }
    }
}
