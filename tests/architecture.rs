//! The layers of `harness/`: a folder uses the floors below it, never the ones above, and no
//! two folders (or two files) import each other in a cycle. Imports are read from the source
//! (`crate::…` paths, `use crate::{…}` groups included; `#[cfg(test)]` modules left out).
//!
//! The figures of the closing note come from here:
//! `cargo test --release --test architecture -- --nocapture` prints files per folder, the
//! largest file and function, the import cycles and the upward imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Ground floor first; the same table is in `harness/lib.rs`.
const FLOORS: &[(&str, u32)] = &[
    ("util", 1),
    ("stats", 1),
    ("metrics", 2),
    ("matrix", 2),
    ("server", 2),
    ("scenario", 3),
    ("boot", 3),
    ("meter", 2),
    ("dataset", 4),
    ("profile", 4),
    ("load", 5),
    ("result", 6),
    ("analysis", 7),
    ("report", 8),
    ("run", 9),
    ("cli", 10),
];

fn floor(folder: &str) -> u32 {
    FLOORS
        .iter()
        .find(|(f, _)| *f == folder)
        .unwrap_or_else(|| {
            panic!("harness/{folder} has no floor in tests/architecture.rs and harness/lib.rs")
        })
        .1
}

struct Module {
    /// `load::engine`, `boot` (a folder's mod.rs), `matrix`.
    path: String,
    /// Whether the file lies in a folder (`harness/boot/mod.rs` does, `harness/matrix.rs` not).
    in_folder: bool,
    src: String,
}

fn modules() -> Vec<Module> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p: PathBuf = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().unwrap() != "bin" {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let in_folder = parts.len() > 1 || rel.ends_with("mod");
            let path = parts.join("::");
            if path == "lib" || path == "main" {
                continue;
            }
            let src = std::fs::read_to_string(&p).unwrap();
            out.push(Module {
                path,
                in_folder,
                src,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The source without its `#[cfg(test)]` module and without comments.
fn code(src: &str) -> String {
    let cut = src.find("#[cfg(test)]\nmod tests").unwrap_or(src.len());
    src[..cut]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b::C` path, with `crate::a::{b::C, d}` groups expanded.
fn crate_paths(src: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while let Some(k) = src[i..].find("crate::") {
        let start = i + k;
        let before = start.checked_sub(1).map(|j| b[j] as char);
        i = start + "crate::".len();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        expand(src, &mut i, Vec::new(), &mut out);
    }
    out
}

fn ident(src: &str, i: &mut usize) -> String {
    let s: String = src[*i..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    *i += s.len();
    s
}

fn expand(src: &str, i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        if src[*i..].starts_with('{') {
            *i += 1;
            loop {
                while src[*i..].starts_with(|c: char| c.is_whitespace() || c == ',') {
                    *i += 1;
                }
                if src[*i..].starts_with('}') {
                    *i += 1;
                    return;
                }
                expand(src, i, path.clone(), out);
            }
        }
        let id = ident(src, i);
        if id.is_empty() {
            out.push(path);
            return;
        }
        path.push(id);
        if src[*i..].starts_with("::") {
            *i += 2;
            continue;
        }
        // `as x`, `;`, `,`, `}`, `(`: the path ends here.
        if src[*i..].starts_with(" as ") {
            *i += 4;
            ident(src, i);
        }
        out.push(path);
        return;
    }
}

/// The module a path names: its longest prefix that is a module.
fn target(path: &[String], mods: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| mods.contains(m))
}

struct Graph {
    mods: Vec<Module>,
    /// module → modules it imports.
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let mods = modules();
    let names: BTreeSet<String> = mods.iter().map(|m| m.path.clone()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &mods {
        let e = edges.entry(m.path.clone()).or_default();
        for p in crate_paths(&code(&m.src)) {
            if let Some(t) = target(&p, &names) {
                // A module's own children (and itself) are not imports of another module.
                if t != m.path && !t.starts_with(&format!("{}::", m.path)) {
                    e.insert(t);
                }
            }
        }
    }
    Graph { mods, edges }
}

fn folder(m: &str) -> &str {
    m.split("::").next().unwrap()
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        e: &'a BTreeMap<String, BTreeSet<String>>,
        idx: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.idx.len();
        t.idx.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        let e = t.e;
        for w in e.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.idx.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.idx[w]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.idx[v] {
            let mut c = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        e: edges,
        idx: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.idx.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn upward(g: &Graph) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (m, ts) in &g.edges {
        for t in ts {
            if floor(folder(t)) > floor(folder(m)) {
                out.push((m.clone(), t.clone()));
            }
        }
    }
    out
}

/// The longest function: its line count and `module::name`.
fn largest_fn(mods: &[Module]) -> (usize, String) {
    let mut best = (0, String::new());
    for m in mods {
        let lines: Vec<&str> = m.src.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            let t = t
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .trim_start_matches("async ");
            let Some(rest) = t.strip_prefix("fn ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let end = format!("{indent}}}");
            if let Some(j) = lines[i + 1..].iter().position(|x| *x == end)
                && j + 2 > best.0
            {
                best = (j + 2, format!("{}::{name}", m.path));
            }
        }
    }
    best
}

#[test]
fn the_figures_of_the_layout() {
    let g = graph();
    let mut per_folder: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in &g.mods {
        let key = if m.in_folder {
            folder(&m.path)
        } else {
            "(top level)"
        };
        let e = per_folder.entry(key).or_default();
        e.0 += 1;
        e.1 += m.src.lines().count();
    }
    println!("| folder | files | lines |\n|---|---|---|");
    for (f, (n, l)) in &per_folder {
        println!("| {f} | {n} | {l} |");
    }
    let big = g.mods.iter().max_by_key(|m| m.src.lines().count()).unwrap();
    println!(
        "largest file: {} ({} lines)",
        big.path,
        big.src.lines().count()
    );
    let (n, f) = largest_fn(&g.mods);
    println!("largest function: {f} ({n} lines)");
    println!(
        "import edges between modules: {}",
        g.edges.values().map(BTreeSet::len).sum::<usize>()
    );
    println!("module cycles: {:?}", cycles(&g.edges));
    println!("upward imports: {}", upward(&g).len());
    assert!(g.mods.len() > 30, "the walk found the modules");
    assert!(
        g.edges.values().map(BTreeSet::len).sum::<usize>() > 50,
        "the parser found the imports"
    );
}

#[test]
fn no_folder_imports_a_higher_floor() {
    let g = graph();
    let up = upward(&g);
    assert!(
        up.is_empty(),
        "imports from a lower floor to a higher one (see the floors in harness/lib.rs):\n{}",
        up.iter()
            .map(|(a, b)| format!(
                "  {a} (floor {}) → {b} (floor {})",
                floor(folder(a)),
                floor(folder(b))
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_import_cycles_between_folders_or_files() {
    let g = graph();
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, ts) in &g.edges {
        let e = folders.entry(folder(m).to_string()).or_default();
        for t in ts.iter().filter(|t| folder(t) != folder(m)) {
            e.insert(folder(t).to_string());
        }
    }
    let c = cycles(&folders);
    assert!(c.is_empty(), "folders that import each other: {c:?}");
    let c = cycles(&g.edges);
    assert!(c.is_empty(), "modules that import each other: {c:?}");
}

#[test]
fn the_import_parser_reads_groups_and_renames() {
    let p = crate_paths(
        "use crate::a::{b::{C, d}, E as F};\nlet x = crate::g::h(1); foo_crate::z; $crate::q;",
    );
    let s: Vec<String> = p.iter().map(|v| v.join("::")).collect();
    assert_eq!(s, ["a::b::C", "a::b::d", "a::E", "g::h"]);
}
