//! Robustness: whatever bytes reach the parser and the checker, they answer
//! with diagnostics or with success, never with a panic.
//!
//! * arbitrary strings (any `char`, lossy UTF-8 from random bytes, and
//!   "token soup" built from the grammar's own tokens);
//! * every file under `mappings/`, mutated at random (byte ranges deleted,
//!   lines duplicated / swapped / deleted, grammar tokens inserted,
//!   truncation, identifiers replaced, bytes flipped), checked both alone
//!   and inside its project;
//! * determinism: the same input renders the same diagnostics and lowers
//!   to the same IR;
//! * explicit edge cases: empty input, comments only, a 1 MB line, 10,000
//!   nested parentheses, NUL bytes, CRLF line endings, a BOM.
//!
//! For every input the invariants of [`examine`] hold: every diagnostic has
//! a label inside its file's text and on char boundaries, all three
//! renderings work, `lower` succeeds exactly when there is no error, and a
//! lowered program survives a JSON round trip.
//!
//! Runs are reproducible: the seed is fixed unless `PROPTEST_RNG_SEED` is
//! set, and `PROPTEST_CASES` overrides the number of cases per property.
//! The deep-nesting tests re-run themselves in a child process (see
//! [`isolated`]) so that a stack overflow fails that test only instead of
//! aborting the whole file. Coverage-guided fuzzing of the same invariants
//! lives in `fuzz/` (cargo-fuzz, nightly).

use crate::common;

use l3map::check::{check, Checked};
use l3map::compile::lower;
use l3map::diagnostics::{render_github, render_human, to_json, DiagKind};
use l3map::ir::Program;
use l3map::syntax::{parse_file, SourceMap};
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::Path;
use std::sync::OnceLock;

// ------------------------------------------------------------------ config

/// The default seed of every property (override with `PROPTEST_RNG_SEED`).
const SEED: u64 = 0x13_5eed;

/// Cases per property ([`common::proptest_config`]); the seed is `SEED`
/// plus `salt`, so that blocks sharing a strategy do not all draw the same
/// inputs.
fn config(cases: u32, salt: u64) -> ProptestConfig {
    common::proptest_config(cases, SEED.wrapping_add(salt))
}

// ------------------------------------------------------------------ the invariants

/// Everything observable about one check, rendered: used for determinism.
#[derive(Debug, PartialEq)]
struct Report {
    human: String,
    json: String,
    github: String,
    program: Option<String>,
}

fn sources_of(files: &[(String, String)]) -> SourceMap {
    let mut sources = SourceMap::new();
    for (path, text) in files {
        sources.add(path.clone(), text.as_str());
    }
    sources
}

/// A span `[start, end)` is usable on `text`: in bounds, on char boundaries.
fn assert_span_ok(what: &str, text: &str, start: usize, end: usize) {
    assert!(
        start <= end && end <= text.len(),
        "{what}: span {start}..{end} outside the text (len {})",
        text.len()
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{what}: span {start}..{end} not on char boundaries"
    );
}

/// Parses and checks `files` as one project and asserts every robustness
/// invariant. Returns the rendered outcome.
fn examine(files: &[(String, String)]) -> Report {
    let sources = sources_of(files);

    // The parser alone; its spans are asserted after the renderings ran.
    let parsed: Vec<_> = sources
        .files()
        .map(|(id, f)| (id, parse_file(id, &f.text).1))
        .collect();
    let syntax_errors: Vec<usize> = parsed.iter().map(|(_, e)| e.len()).collect();

    // The checker.
    let checked = check(&sources);
    let report = examine_checked(&checked, &sources, &syntax_errors);

    for (id, errs) in &parsed {
        let text = &sources.get(*id).text;
        for e in errs {
            let s = e.span();
            assert_eq!(s.file, *id, "syntax error in the wrong file: {e:?}");
            assert_span_ok(
                &format!("syntax error {e:?}"),
                text,
                s.start as usize,
                s.end as usize,
            );
            assert!(!e.to_string().is_empty());
        }
    }
    report
}

fn examine_checked(checked: &Checked, sources: &SourceMap, syntax_errors: &[usize]) -> Report {
    // Every rendering, first: a panic there is the worst outcome.
    let human = render_human(&checked.diagnostics, sources, false);
    let _colored = render_human(&checked.diagnostics, sources, true);
    let mut json = String::new();
    for d in &checked.diagnostics {
        let j = to_json(d, sources);
        assert!(
            j.line >= 1 && j.column >= 1,
            "json position: {}:{}",
            j.line,
            j.column
        );
        assert!(
            (j.end_line, j.end_column) >= (j.line, j.column),
            "json end before start: {}:{} .. {}:{}",
            j.line,
            j.column,
            j.end_line,
            j.end_column
        );
        json.push_str(&serde_json::to_string(&j).expect("diagnostic serialises"));
        json.push('\n');
    }
    let github = render_github(&checked.diagnostics, sources);
    assert_eq!(
        github.lines().count(),
        checked.diagnostics.len(),
        "one GitHub annotation per line and per diagnostic:\n{github}"
    );
    for line in github.lines() {
        assert!(
            line.starts_with("::error ") || line.starts_with("::warning "),
            "not a workflow command: {line:?}"
        );
    }

    let mut syntax_seen = vec![0usize; sources.len()];
    for d in &checked.diagnostics {
        assert!(
            (d.file.0 as usize) < sources.len(),
            "diagnostic in a file that does not exist: {d:?}"
        );
        let text = &sources.get(d.file).text;
        if let DiagKind::Syntax(_) = d.kind {
            syntax_seen[d.file.0 as usize] += 1;
        }
        assert!(
            !d.message().is_empty(),
            "diagnostic without a message: {d:?}"
        );
        assert!(!d.code().is_empty(), "diagnostic without a code: {d:?}");
        let labels = d.labels();
        assert!(!labels.is_empty(), "diagnostic without a label: {d:?}");
        for (i, l) in labels.iter().enumerate() {
            let what = if i == 0 {
                "primary label"
            } else {
                "secondary label"
            };
            assert_span_ok(
                &format!("{what} of {d:?}"),
                text,
                l.offset(),
                l.offset() + l.len(),
            );
        }
    }
    assert_eq!(
        syntax_seen, syntax_errors,
        "check() must report exactly the syntax errors of parse_file()"
    );
    if syntax_errors.iter().any(|n| *n > 0) {
        assert!(
            checked.has_errors(),
            "a syntax error must make the project fail"
        );
    }

    // Lowering: exactly when there is no error, and the IR round-trips.
    let program = lower(checked, sources).ok();
    assert_eq!(
        program.is_some(),
        !checked.has_errors(),
        "lower() must succeed exactly when check() found no error"
    );
    let program = program.map(|p| {
        let s = serde_json::to_string(&p).expect("IR serialises");
        let back: Program = serde_json::from_str(&s)
            .unwrap_or_else(|e| panic!("IR does not deserialise: {e}\n{s}"));
        assert_eq!(back, p, "IR changed through JSON");
        s
    });

    Report {
        human,
        json,
        github,
        program,
    }
}

fn one(text: &str) -> Vec<(String, String)> {
    vec![("input.l3map".to_string(), text.to_string())]
}

/// Examines `files` twice from scratch and once more with a second check of
/// the same `SourceMap`: all three must agree.
fn examine_deterministic(files: &[(String, String)]) -> Report {
    let a = examine(files);
    let b = examine(files);
    assert_eq!(a, b, "two checks of the same input differ");
    let sources = sources_of(files);
    let syntax: Vec<usize> = sources
        .files()
        .map(|(id, f)| parse_file(id, &f.text).1.len())
        .collect();
    let c1 = check(&sources);
    let c2 = check(&sources);
    assert_eq!(c1.diagnostics, c2.diagnostics);
    assert_eq!(examine_checked(&c2, &sources, &syntax), a);
    a
}

// ------------------------------------------------------------------ corpus

/// A project: its directory and its files as (path, text).
type Project = (String, Vec<(String, String)>);

/// The projects under `mappings/`, sorted.
fn projects() -> &'static [Project] {
    static P: OnceLock<Vec<Project>> = OnceLock::new();
    P.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mut dirs: Vec<_> = std::fs::read_dir(&root)
            .expect("mappings/ exists")
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let mut out = Vec::new();
        for dir in dirs {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .expect("readable project")
                .map(|e| e.expect("readable entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "l3map"))
                .collect();
            files.sort();
            let files: Vec<(String, String)> = files
                .iter()
                .map(|p| {
                    let rel = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p);
                    (
                        rel.display().to_string(),
                        std::fs::read_to_string(p).expect("readable mapping"),
                    )
                })
                .collect();
            if !files.is_empty() {
                out.push((dir.display().to_string(), files));
            }
        }
        assert!(!out.is_empty(), "no projects under {}", root.display());
        out
    })
}

/// Tokens of the grammar, keywords and words that mean something to the
/// checker: inserted by mutations and used for token soup.
const VOCAB: &[&str] = &[
    "{",
    "}",
    "->",
    "=>",
    "|",
    "\"",
    "\"\"\"",
    "/",
    ",",
    "*",
    "when",
    "and",
    "or",
    "not",
    "in",
    "not in",
    "has",
    "$",
    "#",
    "(",
    ")",
    "[",
    "]",
    ":",
    ".",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "_",
    "-",
    "\\",
    "//",
    "\n",
    " ",
    "\t",
    "{{",
    "}}",
    "connection",
    "statuses",
    "fields",
    "map",
    "sku",
    "template",
    "escalation",
    "true",
    "false",
    "none",
    "terminal",
    "initial",
    "test",
    "reason",
    "comment",
    "set",
    "assign",
    "status",
    "normalize",
    "products",
    "env",
    "file",
    "zendesk",
    "salesforce",
    "scopes",
    "objects",
    "token",
    "rate_limit",
    "rpm",
    "enum",
    "money",
    "string",
    "number",
    "bool",
    "date",
    "USD",
    "EUR",
    "new",
    "open",
    "pending",
    "hold",
    "solved",
    "nfkc",
    "upper",
    "lower",
    "strip",
    "ticket.status",
    "turn.intent",
    "turn.summary",
    "Account.SLA_Tier__c",
    "Case.Priority",
    "#360001234",
    "$200",
    "200 USD",
    "1.5",
    "-3",
    "99999999999999999999999",
    "\"x\"",
    "\"\"\"t {{ turn.summary }}\"\"\"",
    "/^A(B)?$/",
    "/(/",
    "\"\\q\"",
    "\"\\u{110000}\"",
    "\"\\u{\"",
    "env(\"X\")",
    "tickets:write",
    "hc:*",
    "desk",
    "crm",
    "é",
    "\u{FEFF}",
    "\r\n",
    "\0",
    "ｱ",
];

// ------------------------------------------------------------------ mutations

#[derive(Debug, Clone)]
enum Mutation {
    /// Delete up to `len` bytes from `at` (snapped to char boundaries).
    DeleteRange(Index, usize),
    DuplicateLine(Index),
    DeleteLine(Index),
    SwapLines(Index, Index),
    InsertToken(Index, Index),
    InsertChar(Index, char),
    Truncate(Index),
    /// Replace the n-th identifier-like word with a vocabulary word or
    /// another word of the same file.
    ReplaceIdent(Index, Index, bool),
    /// Overwrite one byte; the text is then read as lossy UTF-8.
    FlipByte(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1usize..64).prop_map(|(a, n)| Mutation::DeleteRange(a, n)),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, t)| Mutation::InsertToken(a, t)),
        1 => (any::<Index>(), any::<char>()).prop_map(|(a, c)| Mutation::InsertChar(a, c)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), any::<Index>(), any::<bool>())
            .prop_map(|(a, b, v)| Mutation::ReplaceIdent(a, b, v)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
    ]
}

/// A char boundary at or before the position `ix` picks in `0..=len`.
fn boundary(text: &str, ix: &Index) -> usize {
    let mut at = ix.index(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Byte ranges of the lines of `text`, each including its `\n`.
fn line_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Byte ranges of identifier-like words.
fn words(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut t = text.to_string();
    match m {
        Mutation::DeleteRange(at, len) => {
            let s = boundary(&t, at);
            let mut e = (s + len).min(t.len());
            while !t.is_char_boundary(e) {
                e += 1;
            }
            t.replace_range(s..e, "");
        }
        Mutation::DuplicateLine(ix) => {
            let lines = line_ranges(&t);
            if !lines.is_empty() {
                let (s, e) = lines[ix.index(lines.len())];
                let mut line = t[s..e].to_string();
                if !line.ends_with('\n') {
                    line.insert(0, '\n');
                }
                t.insert_str(e, &line);
            }
        }
        Mutation::DeleteLine(ix) => {
            let lines = line_ranges(&t);
            if !lines.is_empty() {
                let (s, e) = lines[ix.index(lines.len())];
                t.replace_range(s..e, "");
            }
        }
        Mutation::SwapLines(a, b) => {
            let lines = line_ranges(&t);
            if lines.len() >= 2 {
                let (i, j) = (a.index(lines.len()), b.index(lines.len()));
                let (i, j) = (i.min(j), i.max(j));
                if i != j {
                    let strip = |r: (usize, usize)| {
                        let s = &t[r.0..r.1];
                        s.strip_suffix('\n').unwrap_or(s).to_string()
                    };
                    let (li, lj) = (strip(lines[i]), strip(lines[j]));
                    let mut out = String::new();
                    for (k, r) in lines.iter().enumerate() {
                        let body = if k == i {
                            lj.clone()
                        } else if k == j {
                            li.clone()
                        } else {
                            strip(*r)
                        };
                        out.push_str(&body);
                        if t[r.0..r.1].ends_with('\n') {
                            out.push('\n');
                        }
                    }
                    t = out;
                }
            }
        }
        Mutation::InsertToken(at, tok) => {
            let s = boundary(&t, at);
            let tok = VOCAB[tok.index(VOCAB.len())];
            t.insert_str(s, &format!(" {tok} "));
        }
        Mutation::InsertChar(at, c) => {
            let s = boundary(&t, at);
            t.insert(s, *c);
        }
        Mutation::Truncate(at) => {
            let s = boundary(&t, at);
            t.truncate(s);
        }
        Mutation::ReplaceIdent(which, with, from_file) => {
            let ws = words(&t);
            if !ws.is_empty() {
                let (s, e) = ws[which.index(ws.len())];
                let replacement = if *from_file {
                    let (rs, re) = ws[with.index(ws.len())];
                    t[rs..re].to_string()
                } else {
                    VOCAB[with.index(VOCAB.len())].to_string()
                };
                t.replace_range(s..e, &replacement);
            }
        }
        Mutation::FlipByte(at, byte) => {
            let mut bytes = t.into_bytes();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            t = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    t
}

/// A project from `mappings/` with one file mutated.
#[derive(Clone)]
struct Mutated {
    file: usize,
    mutations: Vec<Mutation>,
    files: Vec<(String, String)>,
}

/// Shows what to paste into a regression test: the mutated file only.
impl std::fmt::Debug for Mutated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, text) = &self.files[self.file];
        let others: Vec<&str> = self.files.iter().map(|(p, _)| p.as_str()).collect();
        write!(
            f,
            "project {others:?}, {path} mutated by {:?} into:\n{text:?}",
            self.mutations
        )
    }
}

fn mutated_project() -> impl Strategy<Value = Mutated> {
    (
        any::<Index>(),
        any::<Index>(),
        proptest::collection::vec(mutation(), 1..6),
    )
        .prop_map(|(p, f, mutations)| {
            let projects = projects();
            let mut files = projects[p.index(projects.len())].1.clone();
            let file = f.index(files.len());
            for m in &mutations {
                files[file].1 = apply(&files[file].1, m);
            }
            Mutated {
                file,
                mutations,
                files,
            }
        })
}

/// Text from random grammar tokens and random separators.
fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            any::<Index>(),
            prop_oneof![Just(" "), Just(""), Just("\n"), Just("  ")],
        ),
        0..80,
    )
    .prop_map(|toks| {
        toks.iter()
            .map(|(ix, sep)| format!("{}{sep}", VOCAB[ix.index(VOCAB.len())]))
            .collect()
    })
}

// ------------------------------------------------------------------ properties
//
// Case counts keep the whole file under ~30 s in debug mode on 2 cores:
// checking the shop project costs ~60 ms in debug (its SKU analysis), the
// others ~5 ms, garbage alone well under 1 ms. Raise them locally with
// `PROPTEST_CASES=5000 cargo test --release --test language robustness::`.

proptest! {
    #![proptest_config(config(512, 1))]

    #[test]
    fn arbitrary_chars_never_panic(s in proptest::collection::vec(any::<char>(), 0..300)) {
        let s: String = s.into_iter().collect();
        examine(&one(&s));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        examine(&one(&String::from_utf8_lossy(&b)));
    }

    #[test]
    fn printable_strings_never_panic(s in "\\PC{0,300}") {
        examine(&one(&s));
    }

    #[test]
    fn token_soup_never_panics(s in token_soup()) {
        examine(&one(&s));
    }
}

proptest! {
    #![proptest_config(config(384, 2))]

    /// The mutated file checked alone.
    #[test]
    fn mutated_files_alone_never_panic(m in mutated_project()) {
        examine(&[m.files[m.file].clone()]);
    }
}

proptest! {
    #![proptest_config(config(256, 3))]

    /// One file of a real project mutated, checked inside its project.
    #[test]
    fn mutated_projects_never_panic(m in mutated_project()) {
        examine(&m.files);
    }
}

proptest! {
    #![proptest_config(config(128, 4))]

    /// Token soup next to a real project, so the checker sees real
    /// declarations next to the garbage.
    #[test]
    fn token_soup_after_a_real_project_never_panics(s in token_soup(), p in any::<Index>()) {
        let projects = projects();
        let mut files = projects[p.index(projects.len())].1.clone();
        files.push(("soup.l3map".into(), s));
        examine(&files);
    }

    #[test]
    fn soup_diagnostics_are_deterministic(s in token_soup()) {
        examine_deterministic(&one(&s));
    }
}

proptest! {
    #![proptest_config(config(48, 5))]

    #[test]
    fn diagnostics_are_deterministic(m in mutated_project()) {
        examine_deterministic(&m.files);
    }
}

// ------------------------------------------------------------------ the corpus itself

#[test]
fn every_real_project_passes_the_invariants() {
    for (dir, files) in projects() {
        let r = examine_deterministic(files);
        assert!(
            r.program.is_some(),
            "{dir} should check without errors:\n{}",
            r.human
        );
        for f in files {
            examine(std::slice::from_ref(f));
        }
    }
}

// ------------------------------------------------------------------ edge cases

/// The saas project with `extra` appended to its escalations.
fn saas_with(extra: &str) -> Vec<(String, String)> {
    let (_, files) = projects()
        .iter()
        .find(|(d, _)| d.ends_with("saas"))
        .expect("mappings/saas");
    let mut files = files.clone();
    files.push(("extra.l3map".into(), extra.to_string()));
    files
}

#[test]
fn empty_input() {
    let r = examine_deterministic(&one(""));
    assert!(
        r.program.is_some(),
        "an empty file is a valid (empty) project"
    );
    assert!(r.human.is_empty());
    let r = examine(&[]);
    assert!(r.program.is_some());
}

#[test]
fn only_whitespace_and_comments() {
    for t in [
        " \n\t\r\n",
        "// just a comment",
        "// one\n// two\n\n   // three\n",
        "//",
        "// no newline at the end, and a } { \" inside",
        "\u{FEFF}// bom then comment\n",
    ] {
        let r = examine_deterministic(&one(t));
        assert!(r.program.is_some(), "{t:?}: {}", r.human);
    }
}

#[test]
fn lone_delimiters_and_keywords() {
    for t in [
        "{",
        "}",
        "\"",
        "\"\"\"",
        "/",
        "(",
        ")",
        "[",
        "]",
        "->",
        "=>",
        "#",
        "$",
        "\\",
        "{{",
        "}}",
        "connection",
        "statuses",
        "fields",
        "map",
        "sku",
        "template",
        "escalation",
        "connection ",
        "template t",
        "template t \"",
        "template t \"\"\"",
        "sku s {",
        "escalation e { when",
        "escalation e { when (",
        "map a -> b { x -> y {",
        "statuses s { a -> ",
        "fields f { x #",
        "connection a: zendesk { token env(",
        "template t \"{{\"",
        "template t \"{{ }}\"",
        "template t \"{{ turn. }}\"",
        "template t \"{{ turn.summary | }}\"",
        "template t \"\"\"{{{{{{\"\"\"",
        "sku s { /",
        "sku s { // \n /a/ => X }",
        "sku s { /(/ => X }",
    ] {
        examine_deterministic(&one(t));
        examine(&saas_with(t));
    }
}

#[test]
fn a_one_megabyte_line() {
    let big = "a".repeat(1 << 20);
    // A valid template with a 1 MB string.
    examine(&one(&format!("template t \"{big}\"\n")));
    // The same string, never closed.
    examine(&one(&format!("template t \"{big}")));
    // 1 MB of one identifier, and of garbage.
    examine(&one(&big));
    examine(&one(&"}".repeat(1 << 20)));
    examine(&one(&"é".repeat(1 << 19)));
    // 1 MB raw string inside a real project, used by an escalation.
    examine(&saas_with(&format!(
        "escalation big {{\n  when turn.confidence < 0.1\n  reason \"r\"\n  comment desk \"\"\"{big}\"\"\"\n  assign desk \"T\"\n}}\n"
    )));
}

/// Runs `body` in a child process running only the test `name`: a stack
/// overflow aborts the whole process, and would otherwise hide the result
/// of every other test in this file. The child runs the test on libtest's
/// ordinary thread (2 MiB of stack unless `RUST_MIN_STACK` says otherwise),
/// like a library caller on a worker thread would.
fn isolated(name: &str, body: impl FnOnce()) {
    const CHILD: &str = "L3MAP_ROBUSTNESS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    // libtest names a test by its path below the crate: `robustness::name`.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let path = format!("{module}::{name}");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([path.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("1 passed"),
        "{name} did not pass in its own process ({}); a stack overflow shows as SIGABRT:\n{}\n{}",
        out.status,
        tail(&stdout),
        tail(&stderr)
    );
}

fn tail(s: &str) -> &str {
    let mut at = s.len().saturating_sub(3000);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// An escalation of the saas project whose `when` is `cond`.
fn escalation_when(cond: &str) -> Vec<(String, String)> {
    saas_with(&format!(
        "escalation deep {{\n  when {cond}\n  reason \"r\"\n  comment desk \"c\"\n  assign desk \"T\"\n}}\n"
    ))
}

const CMP: &str = "turn.confidence < 0.5";

#[test]
fn ten_thousand_nested_parentheses() {
    isolated("ten_thousand_nested_parentheses", || {
        let n = 10_000;
        examine(&escalation_when(&format!(
            "{}{CMP}{}",
            "(".repeat(n),
            ")".repeat(n)
        )));
    });
}

#[test]
fn ten_thousand_unclosed_parentheses() {
    isolated("ten_thousand_unclosed_parentheses", || {
        examine(&one(&format!(
            "escalation e {{ when {}",
            "(".repeat(10_000)
        )));
        examine(&one(&format!(
            "escalation e {{ when {CMP}{}",
            ")".repeat(10_000)
        )));
    });
}

#[test]
fn ten_thousand_nots() {
    isolated("ten_thousand_nots", || {
        examine(&escalation_when(&format!("{}{CMP}", "not ".repeat(10_000))));
        examine(&escalation_when(&format!("{}{CMP}", "not(".repeat(10_000))));
    });
}

/// `a and a and ... and a`: no brackets at all, but a tree as deep as the
/// chain is long for every recursive pass (check, lower, serde, drop).
#[test]
fn ten_thousand_term_and_chain() {
    isolated("ten_thousand_term_and_chain", || {
        examine(&escalation_when(&format!(
            "{CMP}{}",
            format!(" and {CMP}").repeat(10_000)
        )));
    });
}

/// The same with `or`, in a status transition, with errors in every term.
#[test]
fn ten_thousand_term_or_chain() {
    isolated("ten_thousand_term_or_chain", || {
        examine(&saas_with(&format!(
            "statuses s {{ a -> b when x.y == 1{} }}",
            " or x.y == 1".repeat(10_000)
        )));
    });
}

/// Nesting right at what the depth limit of the syntax layer lets through
/// still checks, lowers and round-trips.
#[test]
fn nesting_just_below_the_depth_limit() {
    isolated("nesting_just_below_the_depth_limit", || {
        for n in [32, 60, 64] {
            examine(&escalation_when(&format!(
                "{}{CMP}{}",
                "(".repeat(n),
                ")".repeat(n)
            )));
            examine(&escalation_when(&format!(
                "{}{CMP}{}",
                "not (".repeat(n),
                ")".repeat(n)
            )));
            examine(&escalation_when(&format!(
                "{}{CMP}{}",
                format!("{CMP} and (").repeat(n),
                ")".repeat(n)
            )));
        }
    });
}

#[test]
fn deeply_nested_brackets() {
    isolated("deeply_nested_brackets", deeply_nested_brackets_body);
}

fn deeply_nested_brackets_body() {
    for depth in [10, 1_000, 10_000] {
        let b = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        examine(&one(&b));
        examine(&saas_with(&format!(
            "escalation e {{\n  when turn.intent in {b}\n  reason \"r\"\n}}\n"
        )));
        examine(&saas_with(&format!("template t {b}\n")));
        examine(&one(&format!("connection c: zendesk {{ scopes {b} }}")));
        // Braces too: every block and translation table uses them.
        examine(&one(&format!(
            "map a -> b {{ x -> y {}{} }}",
            "{".repeat(depth),
            "}".repeat(depth)
        )));
    }
}

#[test]
fn nul_bytes() {
    examine_deterministic(&one("\0"));
    examine_deterministic(&one(&"\0".repeat(1000)));
    examine(&saas_with("template t \"a\0b\"\n"));
    examine(&saas_with("template t \"\"\"a\0b\"\"\"\n"));
    examine(&saas_with("escalation e\0 { }\n"));
    examine(&saas_with("// comment \0 with nul\n"));
    // A NUL after every line of every real file.
    for (_, files) in projects() {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.clone(), t.replace('\n', "\n\0")))
            .collect();
        examine(&files);
    }
}

#[test]
fn crlf_line_endings_check_like_lf() {
    for (dir, files) in projects() {
        let crlf: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.clone(), t.replace('\n', "\r\n")))
            .collect();
        let r = examine_deterministic(&crlf);
        assert!(
            r.program.is_some(),
            "{dir} with CRLF line endings should check like with LF:\n{}",
            r.human
        );
        // A lone CR, the old Mac ending, must at least not crash.
        let cr: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.clone(), t.replace('\n', "\r")))
            .collect();
        examine(&cr);
    }
}

#[test]
fn byte_order_mark_at_start() {
    for (dir, files) in projects() {
        let bom: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.clone(), format!("\u{FEFF}{t}")))
            .collect();
        let r = examine_deterministic(&bom);
        assert!(
            r.program.is_some(),
            "{dir} with a BOM should check like without:\n{}",
            r.human
        );
    }
    examine_deterministic(&one("\u{FEFF}"));
    examine_deterministic(&one("\u{FEFF}\u{FEFF}{"));
}

#[test]
fn huge_numbers() {
    for n in [
        "9".repeat(400),
        format!("{}.{}", "9".repeat(400), "9".repeat(400)),
        "18446744073709551616".into(),
        "-0".into(),
        "0.0000000000000000000000000000001".into(),
    ] {
        examine(&saas_with(&format!(
            "escalation e {{\n  when turn.confidence < {n}\n  reason \"r\"\n  comment desk \"c\"\n  assign desk \"T\"\n}}\n"
        )));
        examine(&saas_with(&format!(
            "escalation e {{\n  when turn.refund_amount > ${n}\n  reason \"r\"\n  comment desk \"c\"\n  assign desk \"T\"\n}}\n"
        )));
        examine(&one(&format!("fields f {{ x #{n} string }}")));
        examine(&one(&format!(
            "connection c: zendesk {{ rate_limit {n} rpm }}"
        )));
    }
}

#[test]
fn unicode_everywhere() {
    for t in [
        "template t \"\u{10FFFF}\u{0}\u{200B}\u{301}\"",
        "template t \"\\u{D800}\"",
        "template t \"\\u{FFFFFFFFFF}\"",
        "template t \"\\",
        "template t \"\\\u{301}\"",
        "escalation é { }",
        "sku s { normalize nfkc, casefold \"\u{301}\" \"ﬃ\" => X }",
        "sku s { normalize nfkc products X \"\u{FDFA}\" => X test \"\u{FDFA}\" => X }",
        "sku s { /\\p{Greek}+/ => X test \"αβ\" => X }",
        "sku s { /[\u{10FFFF}-\u{0}]/ => X }",
        "sku s { /(?<n>a)/ => \"{n}\" }",
        "sku s { /a{1000}{1000}/ => X }",
    ] {
        examine_deterministic(&one(t));
        examine(&saas_with(t));
    }
}

#[test]
fn many_files() {
    let mut files = Vec::new();
    for (_, fs) in projects() {
        files.extend(fs.iter().cloned());
    }
    // Every project at once: duplicates everywhere, but no panic.
    examine_deterministic(&files);
    // The same file many times.
    let f = files[0].clone();
    examine(&vec![f; 50]);
}

// ------------------------------------------------------------------ regressions
//
// Minimal reproducers of what the properties above found.

/// A malformed interpolation whose error lands on a multi-byte character:
/// the `BadTemplate` span was `at..at + 1`, cutting `é` in half.
#[test]
fn template_error_on_a_multibyte_char() {
    examine(&one("template t \"{{ é }}\""));
    examine(&one(
        "template t \"\"\"{{ turn.summary | ｕｐｐｅｒ }}\"\"\"",
    ));
}

/// A number literal too large for f64 lowered to `inf`, which JSON writes
/// as `null`: the IR of a project that checked clean did not read back.
#[test]
fn number_literal_too_large_for_f64() {
    examine(&escalation_when(&format!(
        "turn.confidence < {}",
        "9".repeat(400)
    )));
}

/// A flat chain of 60 `and`s checks clean, but its IR nests deeper than
/// serde_json's default recursion limit (128) and does not read back.
#[test]
fn sixty_term_and_chain_round_trips() {
    examine(&escalation_when(&format!(
        "{CMP}{}",
        format!(" and {CMP}").repeat(60)
    )));
}
