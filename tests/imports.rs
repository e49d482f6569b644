//! No import circle in `src/`: between files, or between the top-level
//! modules (roles). A circle means two parts cannot be understood, tested or
//! changed apart; a setting's check must not need the role that uses it.
//! Read from the source text: every `crate::…` and `super::…` path (and
//! `use super::{a, b}` groups) is an edge to the deepest file it names.
//! Test code (`tests.rs`, `*_tests.rs`, `#[cfg(test)] mod tests { … }`) is
//! left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modules(root, &path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().into()).collect();
        let last = parts.last().cloned().unwrap_or_default();
        if last == "tests" || last.ends_with("_tests") || last == "bench" {
            continue;
        }
        if matches!(last.as_str(), "mod" | "main" | "lib") {
            parts.pop();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        out.insert(parts, text);
    }
}

/// The text without comments and without an inline test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths `text` names, as absolute module paths (`super` resolved).
fn paths(module: &Module, text: &str) -> Vec<Module> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("::") {
        // The word before `::` must be `crate` or `super` (a path's start).
        let before = &text[..at];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        if at < 5 || start != at - 5 {
            continue; // not a path's first `::` after `crate` or `super`
        }
        let mut base: Module = match &text[start..at] {
            "crate" => Vec::new(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            _ => continue,
        };
        let mut rest = &text[at + 2..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() && name != "self" {
                    found.push([base.clone(), vec![name.to_string()]].concat());
                }
            }
            continue;
        }
        let mut path = base;
        loop {
            let name = ident(rest);
            if name.is_empty() {
                break;
            }
            path.push(name.to_string());
            match rest[name.len()..].strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        found.push(path);
    }
    found
}

/// The deepest module file `path` is in.
fn resolve(files: &BTreeMap<Module, String>, path: &[String]) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

/// Every strongly connected component of more than one node (Tarjan).
fn circles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct T<'a, N: Ord> {
        g: &'a BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on: BTreeSet<N>,
        out: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(t: &mut T<'_, N>, v: &N) {
        let i = t.index.len();
        t.index.insert(v.clone(), i);
        t.low.insert(v.clone(), i);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        for w in t.g.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v.clone(), l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.index[w]);
                t.low.insert(v.clone(), l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn graphs() -> (
    BTreeMap<Module, BTreeSet<Module>>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    modules(&root, &root, &mut files);
    let mut by_file: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut by_role: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let edges = by_file.entry(module.clone()).or_default();
        for p in paths(module, &code(text)) {
            let Some(target) = resolve(&files, &p) else {
                continue;
            };
            if &target == module || target.is_empty() {
                continue;
            }
            if let (Some(a), Some(b)) = (module.first(), target.first())
                && a != b
            {
                by_role.entry(a.clone()).or_default().insert(b.clone());
            }
            edges.insert(target);
        }
    }
    (by_file, by_role)
}

#[test]
fn no_import_circle_between_files_or_roles() {
    let (by_file, by_role) = graphs();
    assert!(
        by_file.len() > 60 && by_role.len() > 10,
        "the source was not read: {} files, {} roles",
        by_file.len(),
        by_role.len()
    );
    // The reader sees real edges (else an empty graph would pass).
    assert!(by_role["http"].contains("camera"), "{:?}", by_role["http"]);
    let files: Vec<Vec<String>> = circles(&by_file)
        .into_iter()
        .map(|c| c.iter().map(|m| m.join("/")).collect())
        .collect();
    let roles = circles(&by_role);
    assert!(
        files.is_empty() && roles.is_empty(),
        "import circles among files: {files:?}; among top-level modules: {roles:?}\n{by_role:#?}"
    );
}

#[test]
fn the_reader_finds_a_circle_it_is_shown() {
    let m = |s: &str| -> Module { s.split('/').map(String::from).collect() };
    let a = paths(
        &m("http/view"),
        "use super::{auth::Via, server};\nx(crate::hub::Hub::new());",
    );
    assert_eq!(a, vec![m("http/auth"), m("http/server"), m("hub/Hub/new")]);
    let g: BTreeMap<&str, BTreeSet<&str>> = [
        ("a", BTreeSet::from(["b"])),
        ("b", BTreeSet::from(["c"])),
        ("c", BTreeSet::from(["a"])),
        ("d", BTreeSet::from(["a"])),
    ]
    .into();
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
}
