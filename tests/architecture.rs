//! The walls of docs/ARCHITECTURE.md, checked on every run.
//!
//! Issue 15 moved them; nothing but this test keeps them where they are.
//! Each check reads `src/` as text (no build step, no crate): a file's
//! size, who names `crate::check`, which `static`s hold state, and which
//! files of one folder name each other. The rules and their few exceptions
//! are written here, each with its reason, so a new exception is a reviewed
//! line in this file rather than a quiet drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file's non-test lines at most: past this a file holds more than
/// one concern. Test modules at the end of a file do not count.
const MAX_LINES: usize = 600;

/// Who may use the checker: the commands, and the one compile entry point
/// every other stage goes through. `schema/` validates a schema lock against
/// the checker's environment and `diagnostics` renders the checker's errors,
/// so both are part of the checking stage.
const MAY_USE_CHECK: &[&str] = &[
    "src/check/",
    "src/cli/",
    "src/lsp/",
    "src/compile.rs",
    // Lowering is the stage right after checking: it reads the checked AST
    // and the checker's environment, and nothing else does.
    "src/ir/lower",
    "src/schema/",
    "src/diagnostics.rs",
    "src/diagnostics/",
];

/// `static`s that hold state shared by everything in a process. Allowed:
/// the global allocator, and immutable tables built once.
const STATIC_ALLOWED: &[(&str, &str)] = &[
    ("src/main.rs", "GLOBAL"),
    // The operator table pest's Pratt parser needs: built once, never
    // changed, identical for every caller.
    ("src/syntax/build.rs", "PRATT"),
    ("src/syntax/expr.rs", "PRATT"),
    ("src/syntax/build/expr.rs", "PRATT"),
    // Not shared state: a flag one log line's formatting sets and reads on
    // the same thread, because tracing hands a field to the formatter only
    // as `dyn Debug` and this says "that text is JSON" (logs.rs says more).
    ("src/runtime/logs.rs", "thread_local"),
    ("src/runtime/logs.rs", "WROTE_JSON"),
    // Test and benchmark support, never used by the runtime: one throwaway
    // PostgreSQL per test process, shared by its tests, each of which gets
    // a database of its own (numbered here).
    ("src/runtime/store/postgres/cluster.rs", "CLUSTER"),
    ("src/runtime/store/postgres/cluster.rs", "NEXT"),
];

fn src_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src"), &mut out);
    out.into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

fn read(rel: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(rel)).unwrap()
}

fn rel_str(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// A file that is a test module of its parent (`foo/tests.rs`).
fn is_test_file(rel: &str) -> bool {
    rel.ends_with("/tests.rs") || rel.contains("/tests/")
}

/// The text before the file's first top-level `#[cfg(test)]`.
fn non_test(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("#[cfg(test)]") {
            return &text[..at];
        }
        at += line.len();
    }
    text
}

/// Code without comments and string literals, so a path in a doc comment or
/// a message does not count as a use.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r' && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) && {
            let prev = if i == 0 { b' ' } else { b[i - 1] };
            !(prev.is_ascii_alphanumeric() || prev == b'_')
        } {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '"') or a lifetime ('a).
            if b.get(i + 2) == Some(&b'\'') {
                i += 3;
                out.push_str("' '");
            } else if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn no_source_file_is_over_600_lines_of_non_test_code() {
    let mut over = Vec::new();
    for f in src_files() {
        let rel = rel_str(&f);
        if is_test_file(&rel) {
            continue;
        }
        let text = read(&f);
        let n = non_test(&text).lines().count();
        if n > MAX_LINES {
            over.push(format!("{rel}: {n} lines"));
        }
    }
    assert!(
        over.is_empty(),
        "split these by concern (at most {MAX_LINES} non-test lines each):\n{}",
        over.join("\n")
    );
}

#[test]
fn only_the_commands_and_the_compile_entry_point_use_the_checker() {
    let mut bad = Vec::new();
    for f in src_files() {
        let rel = rel_str(&f);
        if MAY_USE_CHECK.iter().any(|p| rel.starts_with(p)) {
            continue;
        }
        let code = code_only(&read(&f));
        for (n, line) in code.lines().enumerate() {
            if line.contains("crate::check") {
                bad.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "below the checker, go through `crate::compile` or the IR's vocabulary:\n{}",
        bad.join("\n")
    );
}

#[test]
fn library_code_keeps_no_state_in_statics() {
    let stateful = [
        "OnceLock",
        "LazyLock",
        "Mutex",
        "RwLock",
        "HashMap",
        "BTreeMap",
        "Atomic",
        "Cell",
        "lazy_static",
    ];
    let mut bad = Vec::new();
    for f in src_files() {
        let rel = rel_str(&f);
        let text = read(&f);
        let code = code_only(non_test(&text));
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            let t = t.strip_prefix("pub ").unwrap_or(t);
            let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
            let decl = t.starts_with("static ") || t.starts_with("thread_local!");
            if !decl {
                continue;
            }
            let name = t
                .trim_start_matches("static ")
                .trim_start_matches("mut ")
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            if STATIC_ALLOWED.iter().any(|(p, s)| *p == rel && *s == name) {
                continue;
            }
            // The declaration and its type may span lines: look at the
            // statement up to its `=` or `{`.
            let rest: String = code.lines().skip(n).take(4).collect::<Vec<_>>().join(" ");
            let head = rest.split(['=', '{']).next().unwrap_or("");
            if t.starts_with("thread_local!") || stateful.iter().any(|s| head.contains(s)) {
                bad.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "state lives in values passed in, not in statics:\n{}",
        bad.join("\n")
    );
}

/// The sibling modules of every folder: `a.rs` and `b/` in `src/x/` are
/// `a` and `b` of `x`. `mod.rs` is the folder itself, not a sibling.
fn siblings() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in src_files() {
        let rel = rel_str(&f);
        let (folder, name) = module_of(&rel);
        if let Some(name) = name {
            out.entry(folder).or_default().insert(name);
        }
    }
    out
}

/// The folder a file's module sits in and its name there: `src/x/a.rs` is
/// `a` in `src/x`, `src/x/b/mod.rs` is `b` in `src/x`, and the file
/// `src/x/b/c.rs` is `c` in `src/x/b`. `src/lib.rs` and `src/main.rs`
/// are no one's sibling.
fn module_of(rel: &str) -> (String, Option<String>) {
    let p = Path::new(rel);
    let folder = p.parent().unwrap();
    let stem = p.file_stem().unwrap().to_string_lossy().to_string();
    if stem == "mod" {
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        (rel_str(folder.parent().unwrap()), Some(name))
    } else if rel == "src/lib.rs" || rel == "src/main.rs" {
        ("src".into(), None)
    } else {
        (rel_str(folder), Some(stem))
    }
}

/// The crate path (`crate::runtime`) of a folder (`src/runtime`).
fn crate_path(folder: &str) -> String {
    let rest = folder.strip_prefix("src").unwrap().trim_start_matches('/');
    if rest.is_empty() {
        "crate".into()
    } else {
        format!("crate::{}", rest.replace('/', "::"))
    }
}

/// The identifiers named right after `prefix::` in `code`, including each
/// first-level name of a `prefix::{a, b::c}` group.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let pat = format!("{prefix}::");
    let mut from = 0;
    while let Some(i) = code[from..].find(&pat) {
        let at = from + i;
        from = at + pat.len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut word = String::new();
            let mut first = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if first && !word.is_empty() {
                            out.insert(std::mem::take(&mut word));
                        }
                        first = true;
                        word.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && first {
                    if c.is_alphanumeric() || c == '_' {
                        word.push(c);
                    } else if !word.is_empty() {
                        out.insert(std::mem::take(&mut word));
                        first = false;
                    }
                }
            }
            if first && !word.is_empty() {
                out.insert(word);
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                out.insert(word);
            }
        }
    }
    out
}

#[test]
fn no_two_files_of_a_folder_use_each_other() {
    let siblings = siblings();
    // folder -> (module -> modules of the same folder it names)
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in src_files() {
        let rel = rel_str(&f);
        let (folder, Some(me)) = module_of(&rel) else {
            continue;
        };
        if is_test_file(&rel) {
            continue;
        }
        let Some(mates) = siblings.get(&folder) else {
            continue;
        };
        let code = code_only(non_test(&read(&f)));
        let mut named = names_after(&code, &crate_path(&folder));
        // `super::` from a plain file is its folder; from a `mod.rs`, the
        // folder above, which is where its siblings are too.
        named.extend(names_after(&code, "super"));
        let edges: BTreeSet<String> = named
            .into_iter()
            .filter(|n| *n != me && mates.contains(n))
            .collect();
        graph
            .entry(folder)
            .or_default()
            .entry(me)
            .or_default()
            .extend(edges);
    }
    let mut cycles = Vec::new();
    for (folder, g) in &graph {
        for (a, outs) in g {
            for b in outs {
                if a < b && g.get(b).is_some_and(|o| o.contains(a)) {
                    cycles.push(format!("{folder}: {a} <-> {b}"));
                }
            }
        }
        // Longer cycles: a depth-first search from every node.
        for start in g.keys() {
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            while let Some((node, path)) = stack.pop() {
                for next in g.get(&node).into_iter().flatten() {
                    if next == start && path.len() > 2 && path.iter().min() == Some(start) {
                        cycles.push(format!("{folder}: {} -> {start}", path.join(" -> ")));
                    } else if !path.contains(next) && path.len() < 6 {
                        let mut p = path.clone();
                        p.push(next.clone());
                        stack.push((next.clone(), p));
                    }
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    assert!(
        cycles.is_empty(),
        "files of one folder that use each other (move what both need into a third file, or \
         let one own it):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_path_scanner_sees_groups_and_skips_comments() {
    let code = code_only(
        "use crate::runtime::{store::Store, worker, engine::{a, b}};\n\
         // crate::runtime::ghost\n\
         let s = \"crate::runtime::text\";\n\
         super::poll::run();\n",
    );
    let names = names_after(&code, "crate::runtime");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["engine", "store", "worker"]
    );
    assert_eq!(
        names_after(&code, "super").into_iter().collect::<Vec<_>>(),
        ["poll"]
    );
    assert_eq!(
        module_of("src/runtime/store/mod.rs").1.as_deref(),
        Some("store")
    );
    assert_eq!(module_of("src/runtime/store/mod.rs").0, "src/runtime");
    assert_eq!(non_test("a\n#[cfg(test)]\nmod tests {}\n"), "a\n");
}
