//! The shape of `src/` (docs/design.md, "The moving parts"): layers without import
//! cycles, pure decisions without IO, files of one idea (≤ 500 lines), and the agent
//! binary's dependency tree without the test harness.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            src_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    src_files(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&root)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).expect("a source file");
            (rel, text)
        })
        .collect()
}

/// The top-level module a file belongs to: `agent/acquire.rs` → `agent`.
fn layer(rel: &str) -> Option<&str> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then_some(name)
}

/// The code of a file without its unit tests (tests may use anything).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Top-level modules each file's non-test code names through `crate::`.
fn layer_edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in all_sources() {
        let Some(from) = layer(&rel) else { continue };
        let entry = edges.entry(from.to_string()).or_default();
        for part in without_tests(&text).split("crate::").skip(1) {
            let to: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !to.is_empty() && to != from {
                entry.insert(to);
            }
        }
    }
    edges
}

fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_layers_of_src_import_each_other_without_cycles() {
    let edges = layer_edges();
    for layer in [
        "domain", "config", "cluster", "cloud", "agent", "admin", "cli", "process",
    ] {
        assert!(
            edges.contains_key(layer),
            "src/{layer}/ is missing: {edges:?}"
        );
    }
    assert_eq!(find_cycle(&edges), None, "import graph: {edges:#?}");
    // The pure decisions depend on nothing else of the agent.
    assert_eq!(
        edges.get("domain").cloned().unwrap_or_default(),
        BTreeSet::new(),
        "domain/ must not import other layers"
    );
    // Only the command line dispatches to the harness (behind its cargo feature).
    for (layer, to) in &edges {
        assert!(
            layer == "cli" || !to.contains("simulate"),
            "src/{layer}/ imports the simulate harness: {edges:#?}"
        );
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn the_pure_decisions_do_no_io() {
    const IO: [&str; 9] = [
        "kube::",
        "tokio",
        "reqwest",
        "axum",
        "std::fs",
        "std::io",
        "std::net::Tcp",
        "std::process",
        "std::env",
    ];
    for (rel, text) in all_sources() {
        if !rel.starts_with("domain/") {
            continue;
        }
        for token in IO {
            assert!(
                !without_tests(&text).contains(token),
                "src/{rel} uses {token}: decisions in domain/ must be pure"
            );
        }
    }
}

#[test]
fn no_file_of_src_is_over_500_lines() {
    for (rel, text) in all_sources() {
        let lines = text.lines().count();
        assert!(lines <= 500, "src/{rel} has {lines} lines");
    }
}

#[test]
fn main_only_wires() {
    let main = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs"))
        .expect("src/main.rs");
    assert!(
        main.lines().count() <= 20,
        "src/main.rs decides nothing:\n{main}"
    );
}

/// What the image builds (`--no-default-features`, docs/design.md "The harness"): the
/// agent's dependency tree holds no simulator, no fake cloud and no XML parser.
#[test]
fn the_image_build_links_no_test_harness() {
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "pinip",
            "-e",
            "normal",
            "--no-default-features",
            "--prefix",
            "none",
            "-f",
            "{p} {f}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    for banned in ["pinip-sim ", "quick-xml ", "proptest "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "the image build links {banned}:\n{tree}"
        );
    }
    let providers = tree
        .lines()
        .find(|l| l.starts_with("pinip-providers "))
        .expect("the agent links its providers");
    assert!(
        !providers.contains("fake"),
        "the fake cloud is compiled into the image: {providers}"
    );
    assert!(
        tree.lines().any(|l| l.starts_with("aws-sdk-ec2 ")),
        "{tree}"
    );
}
