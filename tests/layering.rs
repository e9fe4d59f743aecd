//! The layering of `src/`: no import circle between top-level modules.
//!
//! Each top-level module (`api`, `console`, `domain`, `db`, …) may use the
//! ones below it, never one that uses it back, so that a reader can learn
//! the code bottom-up (README, "Layout"). The files of one module may refer
//! to each other. This reads the sources themselves: every `crate::name`
//! path outside comments is an edge from the file's top-level module to
//! `name`; a cycle in that graph fails with the files that make it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The source without `//` comments (doc comments name other modules
/// freely). A `//` right after `:` is a URL inside a string, not a comment.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let bytes = line.as_bytes();
        let mut end = line.len();
        let mut i = 0;
        while i + 1 < bytes.len() {
            if bytes[i] == b'/' && bytes[i + 1] == b'/' && (i == 0 || bytes[i - 1] != b':') {
                end = i;
                break;
            }
            i += 1;
        }
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The names right after `crate::`, and inside `use crate::{a, b::c}`.
fn referenced_modules(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(at) = source[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        if start > 0 && is_ident(bytes[start - 1]) {
            continue;
        }
        if bytes.get(from) == Some(&b'{') {
            // A group: the first name of each comma-separated path.
            let Some(close) = source[from..].find('}') else {
                continue;
            };
            for part in source[from + 1..from + close].split(',') {
                let name: String = part
                    .trim()
                    .bytes()
                    .take_while(|b| is_ident(*b))
                    .map(char::from)
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
            continue;
        }
        let name: String = source[from..]
            .bytes()
            .take_while(|b| is_ident(*b))
            .map(char::from)
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
    }
    names
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty(), "no sources under {}", src.display());

    let top_level = |path: &Path| -> Option<String> {
        let first = path.strip_prefix(&src).ok()?.components().next()?;
        let name = first.as_os_str().to_str()?;
        let name = name.strip_suffix(".rs").unwrap_or(name);
        (name != "lib" && name != "main").then(|| name.to_string())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_level(f)).collect();

    // edges[a][b]: the files of `a` that use `b`.
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_level(file) else {
            continue;
        };
        let source = fs::read_to_string(file).expect("a source file is readable");
        for to in referenced_modules(&without_comments(&source)) {
            if to != from && modules.contains(&to) {
                let shown = file
                    .strip_prefix(&src)
                    .unwrap_or(file)
                    .display()
                    .to_string();
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(shown);
            }
        }
    }

    // A module is in a circle when it can reach itself.
    let reaches = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(m) = stack.pop() {
            for next in edges.get(&m).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let mut circles = Vec::new();
    for module in &modules {
        let reach = reaches(module);
        if !reach.contains(module) {
            continue;
        }
        for (to, files) in edges.get(module).into_iter().flatten() {
            if reaches(to).contains(module) {
                circles.push(format!(
                    "{module} -> {to} (in {}), and {to} leads back to {module}",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles between top-level modules of src/:\n  {}",
        circles.join("\n  ")
    );
}

#[test]
fn the_reader_sees_through_comments_and_groups() {
    let source = "use crate::{db::Database, state::AppState};\n\
                  // crate::api in a comment\n\
                  let url = \"http://x\"; crate::mail::send();\n\
                  /// doc naming crate::console\n";
    let names = referenced_modules(&without_comments(source));
    let expected: BTreeSet<String> = ["db", "state", "mail"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected);
}
