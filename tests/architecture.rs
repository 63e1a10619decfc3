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
    ("history", 9),
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
            // A folder's `tests.rs` is its `#[cfg(test)] mod tests`, outside the layers.
            if parts.last().is_some_and(|l| l == "tests") {
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

/// Every `word::a::b::C` path (`word` is `crate`, `super` or a child module's name), with
/// `word::a::{b::C, d}` groups expanded; the paths start after `word::`.
fn word_paths(src: &str, word: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let needle = format!("{word}::");
    let mut i = 0;
    while let Some(k) = src[i..].find(&needle) {
        let start = i + k;
        let before = start.checked_sub(1).map(|j| b[j] as char);
        i = start + needle.len();
        // `foo_crate::`, `$crate::`, and `x::word::` (a path through another module) are not
        // paths from `word`.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        expand(src, &mut i, Vec::new(), &mut out);
    }
    out
}

/// Every `crate::a::b::C` path, with `crate::a::{b::C, d}` groups expanded.
fn crate_paths(src: &str) -> Vec<Vec<String>> {
    word_paths(src, "crate")
}

/// The absolute paths a module names: `crate::…`, `super::…` (and `super::super::…`) resolved
/// from the module's place, and paths through its own child modules (`engine::Scanner` in
/// `load`, `use crash::*` in `run`).
fn module_paths(m: &Module, children: &[&str]) -> Vec<Vec<String>> {
    let src = code(&m.src);
    let mut out = crate_paths(&src);
    let own: Vec<String> = m.path.split("::").map(String::from).collect();
    for mut p in word_paths(&src, "super") {
        let mut base = own[..own.len() - 1].to_vec();
        while p.first().is_some_and(|s| s == "super") {
            p.remove(0);
            base.pop();
        }
        base.extend(p);
        out.push(base);
    }
    for c in children {
        for p in word_paths(&src, c) {
            let mut full = own.clone();
            full.push(c.to_string());
            full.extend(p);
            out.push(full);
        }
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
        let prefix = format!("{}::", m.path);
        let children: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .filter(|c| !c.contains("::"))
            .collect();
        let e = edges.entry(m.path.clone()).or_default();
        for p in module_paths(m, &children) {
            // A front door's uses of its children are edges too: a child that imports its
            // parent back is a parent↔child loop, found with the others.
            if let Some(t) = target(&p, &names)
                && t != m.path
            {
                e.insert(t);
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
    let all = long_fns(&g.mods, 0);
    let (n, f) = all.first().cloned().unwrap_or_default();
    println!("largest function: {f} ({n} lines)");
    let over = |k: usize| all.iter().filter(|(n, _)| *n > k).count();
    println!(
        "functions: {}, over 100 lines: {}, over 200 lines: {}",
        all.len(),
        over(100),
        over(200)
    );
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
    let new: Vec<&Vec<String>> = c
        .iter()
        .filter(|c| !LOOPS_LEFT.contains(&c[0].as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "modules that import each other (a child that imports its front door back: import \
         the file that owns the item, or move the item to a file of its own): {new:?}"
    );
    let gone: Vec<&&str> = LOOPS_LEFT
        .iter()
        .filter(|f| !c.iter().any(|c| c[0] == **f))
        .collect();
    assert!(
        gone.is_empty(),
        "{gone:?} have no loop now: take them off LOOPS_LEFT"
    );
}

/// Front doors whose children still import them back (the loop named by the front door, the
/// first member of its cycle): the list only shrinks.
const LOOPS_LEFT: &[&str] = &[];

#[test]
fn the_import_parser_reads_groups_and_renames() {
    let p = crate_paths(
        "use crate::a::{b::{C, d}, E as F};\nlet x = crate::g::h(1); foo_crate::z; $crate::q;",
    );
    let s: Vec<String> = p.iter().map(|v| v.join("::")).collect();
    assert_eq!(s, ["a::b::C", "a::b::d", "a::E", "g::h"]);
}

#[test]
fn the_import_parser_resolves_super_and_child_paths() {
    let m = Module {
        path: "run::crash".into(),
        in_folder: true,
        src: "use super::{ctx::Ctx, RunError};\nuse super::super::boot::x;\n\
              fn f() { body::read(); other::body::no(); }"
            .into(),
    };
    let s: Vec<String> = module_paths(&m, &["body"])
        .iter()
        .map(|v| v.join("::"))
        .collect();
    assert_eq!(
        s,
        [
            "run::ctx::Ctx",
            "run::RunError",
            "boot::x",
            "run::crash::body::read"
        ]
    );
}

/// Every function over `limit` lines: `(lines, module::name)`.
fn long_fns(mods: &[Module], limit: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for m in mods {
        let lines: Vec<&str> = m.src.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            let t = t
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
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
                && j + 2 > limit
            {
                out.push((j + 2, format!("{}::{name}", m.path)));
            }
        }
    }
    out.sort();
    out.reverse();
    out
}

#[test]
fn no_file_over_1000_lines_and_no_glob_import_of_a_parent() {
    let g = graph();
    let big: Vec<String> = g
        .mods
        .iter()
        .filter(|m| m.src.lines().count() > 1000)
        .map(|m| format!("  {} ({} lines)", m.path, m.src.lines().count()))
        .collect();
    assert!(
        big.is_empty(),
        "files over 1,000 lines (cut along their steps; tests may go to a tests.rs beside them):\n{}",
        big.join("\n")
    );
    let globs: Vec<&str> = g
        .mods
        .iter()
        .filter(|m| code(&m.src).lines().any(|l| l.trim() == "use super::*;"))
        .map(|m| m.path.as_str())
        .collect();
    assert!(
        globs.is_empty(),
        "`use super::*` outside tests (name what is used, from the file that owns it): {globs:?}"
    );
}

/// No function over 200 lines: a long one is cut along the steps its own comments name (a
/// writer with a method per step, a helper per section).
#[test]
fn no_function_over_200_lines() {
    let g = graph();
    let long: Vec<(usize, String)> = long_fns(&g.mods, 200);
    assert!(
        long.is_empty(),
        "functions over 200 lines (cut them along the steps their comments name): {long:?}"
    );
}
