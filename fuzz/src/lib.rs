//! The invariants the fuzz targets assert; the same as `tests/robustness.rs`.

use l3map::check::check;
use l3map::diagnostics::{render_github, render_human, to_json};
use l3map::ir::{lower, Program};
use l3map::syntax::{parse_file, FileId, SourceMap};

/// The real projects, compiled in: a fuzzed file is also checked next to
/// one of them so that name resolution has something to resolve against.
pub const PROJECTS: &[&[(&str, &str)]] = &[
    &[
        (
            "mappings/fintech/connections.l3map",
            include_str!("../../mappings/fintech/connections.l3map"),
        ),
        (
            "mappings/fintech/escalations.l3map",
            include_str!("../../mappings/fintech/escalations.l3map"),
        ),
        (
            "mappings/fintech/fields.l3map",
            include_str!("../../mappings/fintech/fields.l3map"),
        ),
        (
            "mappings/fintech/kyc.l3map",
            include_str!("../../mappings/fintech/kyc.l3map"),
        ),
        (
            "mappings/fintech/statuses.l3map",
            include_str!("../../mappings/fintech/statuses.l3map"),
        ),
    ],
    &[
        (
            "mappings/saas/connections.l3map",
            include_str!("../../mappings/saas/connections.l3map"),
        ),
        (
            "mappings/saas/escalations.l3map",
            include_str!("../../mappings/saas/escalations.l3map"),
        ),
        (
            "mappings/saas/fields.l3map",
            include_str!("../../mappings/saas/fields.l3map"),
        ),
        (
            "mappings/saas/statuses.l3map",
            include_str!("../../mappings/saas/statuses.l3map"),
        ),
    ],
    &[
        (
            "mappings/shop/shop.l3map",
            include_str!("../../mappings/shop/shop.l3map"),
        ),
        (
            "mappings/shop/tickets.l3map",
            include_str!("../../mappings/shop/tickets.l3map"),
        ),
    ],
];

fn span_ok(text: &str, start: usize, end: usize) -> bool {
    start <= end && end <= text.len() && text.is_char_boundary(start) && text.is_char_boundary(end)
}

/// Parses `text` alone: no panic, every error span inside the text.
pub fn parse_one(text: &str) {
    let (_ast, errors) = parse_file(FileId(0), text);
    for e in &errors {
        let s = e.span();
        assert!(
            span_ok(text, s.start as usize, s.end as usize),
            "bad span: {e:?}"
        );
        let _ = e.to_string();
    }
}

/// Checks `files` as one project and asserts every robustness invariant.
pub fn check_project(files: &[(&str, &str)]) {
    let mut sources = SourceMap::new();
    for (path, text) in files {
        sources.add(*path, *text);
    }
    let checked = check(&sources);
    let _ = render_human(&checked.diagnostics, &sources, false);
    let github = render_github(&checked.diagnostics, &sources);
    assert_eq!(github.lines().count(), checked.diagnostics.len());
    for d in &checked.diagnostics {
        let _ = serde_json::to_string(&to_json(d, &sources)).expect("diagnostic serialises");
        let text = &sources.get(d.file).text;
        let labels = d.labels();
        assert!(!labels.is_empty(), "diagnostic without a label: {d:?}");
        for l in labels {
            assert!(
                span_ok(text, l.offset(), l.offset() + l.len()),
                "bad label: {d:?}"
            );
        }
    }
    let program = lower(&checked, &sources);
    assert_eq!(program.is_some(), !checked.has_errors());
    if let Some(p) = program {
        let s = serde_json::to_string(&p).expect("IR serialises");
        let back: Program = serde_json::from_str(&s).expect("IR deserialises");
        assert_eq!(back, p);
    }
}

/// The check target: the input alone, then next to one real project chosen
/// by the input's length.
pub fn check_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_project(&[("fuzz.l3map", &text)]);
    let mut files: Vec<(&str, &str)> = PROJECTS[data.len() % PROJECTS.len()].to_vec();
    files.push(("fuzz.l3map", &text));
    check_project(&files);
}
