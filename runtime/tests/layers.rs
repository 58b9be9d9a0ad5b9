//! The runtime's modules are layered: no module uses, directly or through others, a module
//! that uses it, and each uses only modules listed before it in the layers of `src/lib.rs`.
//!
//! The graph is read from the sources: a module is a file of `src/` or a directory of it
//! (`backend/`, `near/`), and it uses every module its code names as `crate::<module>`
//! (also inside `use crate::{a, b}` groups) or through a re-export of the crate root
//! (`crate::Context`). Comments are not code: doc links may point anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module name to the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn runtime_modules_import_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 10,
        "too few modules found in {}: {graph:?}",
        src.display()
    );
    // Shown with `--nocapture`.
    println!("the runtime's modules and the modules they use:\n{}", render(&graph));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "runtime modules import each other in a circle: {}\nthe graph:\n{}",
            cycle.join(" -> "),
            render(&graph)
        );
    }
}

#[test]
fn runtime_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let order = layers(&lib);
    let unlisted: Vec<&String> = graph.keys().filter(|module| !order.contains(module)).collect();
    assert!(
        unlisted.is_empty(),
        "modules missing from the layers of src/lib.rs: {unlisted:?}"
    );
    let position = |module: &str| order.iter().position(|listed| listed == module);
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(module, uses)| uses.iter().map(move |used| (module, used)))
        .filter(|(module, used)| position(used) >= position(module))
        .map(|(module, used)| format!("{module} -> {used}"))
        .collect();
    assert!(
        upward.is_empty(),
        "modules using modules listed after them in the layers of src/lib.rs: {upward:?}"
    );
}

#[test]
fn a_cycle_is_found() {
    let graph: Graph =
        [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
            .into_iter()
            .fold(Graph::new(), |mut graph, (from, to)| {
                graph.entry(from.to_owned()).or_default().insert(to.to_owned());
                graph
            });
    assert_eq!(find_cycle(&graph).expect("a cycle"), ["a", "b", "c", "a"]);
    let mut acyclic = graph;
    acyclic.get_mut("c").expect("c").clear();
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn references_are_read_from_code_only() {
    let names = BTreeSet::from(["plans".to_owned(), "model".to_owned(), "repo".to_owned()]);
    let exports = BTreeMap::from([("PlanSet".to_owned(), "plans".to_owned())]);
    let code = concat!(
        "use crate::{model::{Model, ModelInfo}, plans};\n",
        "/// [`crate::repo`]\n",
        "let x = crate::PlanSet::new(); // crate::repo\n",
    );
    assert_eq!(
        references(code, &names, &exports),
        BTreeSet::from(["model".to_owned(), "plans".to_owned()])
    );
}

/// The modules of `src` and the modules each uses.
fn module_graph(src: &Path) -> Graph {
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(src).expect("src/") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 name")
            .to_owned();
        if path.is_dir() {
            files.extend(rust_files(&path).into_iter().map(|file| (name.clone(), file)));
        } else if path.extension().is_some_and(|ext| ext == "rs") && name != "lib" {
            files.push((name, path));
        }
    }
    let names: BTreeSet<String> = files.iter().map(|(name, _)| name.clone()).collect();
    let exports = root_exports(&strip_comments(&lib), &names);
    let mut graph = Graph::new();
    for (module, file) in files {
        let code = fs::read_to_string(&file).expect("a source file");
        let uses = graph.entry(module.clone()).or_default();
        uses.extend(references(&code, &names, &exports));
        uses.remove(&module);
    }
    graph
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
    found
}

/// The modules the layer list of `lib.rs` names (the numbered items after `//! # Layers`),
/// bottom to top.
fn layers(lib: &str) -> Vec<String> {
    let list = lib
        .lines()
        .skip_while(|line| line.trim() != "//! # Layers")
        .take_while(|line| line.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut modules = Vec::new();
    for item in list
        .split("\n//! ")
        .filter(|item| item.starts_with(|c: char| c.is_ascii_digit()))
    {
        // The item's modules: its code spans before the first `:`.
        let names = item.split(':').next().unwrap_or_default();
        modules.extend(names.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    modules
}

/// `code` without its line comments (doc comments included).
fn strip_comments(code: &str) -> String {
    code.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string (a URL) ends the line early: only references are lost.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate root's re-exports (`pub use context::{Context, Options};`): name to module.
fn root_exports(lib: &str, names: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut exports = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = path.split("::").next().unwrap_or_default().trim();
        if !names.contains(module) {
            continue;
        }
        let items = path[module.len()..].trim_start_matches("::");
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !item.is_empty() && item != "self" {
                exports.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    exports
}

/// The modules that `code` names through `crate::`.
fn references(code: &str, names: &BTreeSet<String>, exports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let code = strip_comments(code);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `mycrate::`, or `$crate::` (a macro's own crate)
        }
        let firsts = match rest.strip_prefix('{') {
            Some(group) => group_heads(group),
            None => vec![identifier(rest)],
        };
        for first in firsts {
            if names.contains(first) {
                found.insert(first.to_owned());
            } else if let Some(module) = exports.get(first) {
                found.insert(module.clone());
            }
        }
    }
    found
}

/// The first path segment of each item of a `{a::b, c, d::{e, f}}` group (`group` starts
/// after its `{`).
fn group_heads(group: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => {
                heads.push(identifier(&group[at..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// The identifier `text` starts with.
fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// A cycle of `graph` as the modules along it (the first repeated at the end), if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    /// Depth-first search from `module`; `path` is the current chain of modules.
    fn visit<'g>(
        graph: &'g Graph,
        module: &'g str,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|on| *on == module) {
            let mut cycle: Vec<String> = path[start..].iter().map(|m| (*m).to_owned()).collect();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for used in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(graph, used, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

/// One line per module: `module: used, used`.
fn render(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(module, uses)| format!("  {module}: {}", uses.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}
