//! Diagnostic snapshots: one small broken project per file in
//! `tests/fixtures/check/err/`, each rendered the way `l3map check` prints it
//! (without colour), plus valid projects in `tests/fixtures/check/ok/` that
//! must check clean.
//!
//! Every error fixture starts with a comment header:
//!
//! ```text
//! // tests: what the fixture is about
//! // expect: l3map::some::code
//! ```
//!
//! The codes named by `// expect:` lines must be among the codes the checker
//! reports for the file, so the suite fails on a lost diagnostic even if the
//! snapshots are updated carelessly. `every_code_has_a_fixture` keeps the
//! fixtures in step with the error enums.
//!
//! Update the snapshots with `INSTA_UPDATE=always cargo test --test language diagnostics::`
//! (or `cargo insta review`), then read every changed `.snap`.

use l3map::check::check;
use l3map::diagnostics::render_human;
use l3map::syntax::SourceMap;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The leading comment block of a fixture.
fn header(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("//") || l.is_empty())
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_start_matches('/').trim())
        .collect()
}

/// Codes named by `// expect:` lines (several per line allowed, comma separated).
fn expected_codes(text: &str) -> Vec<String> {
    header(text)
        .into_iter()
        .filter_map(|l| l.strip_prefix("expect:"))
        .flat_map(|rest| {
            rest.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `// tests:` description (and its continuation lines).
fn description(text: &str) -> String {
    header(text)
        .into_iter()
        .filter(|l| !l.starts_with("expect:"))
        .map(|l| l.strip_prefix("tests:").map(str::trim).unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "l3map"))
        .collect();
    files.sort();
    files
}

/// Loads one fixture as a one-file project under a portable name.
fn load(path: &Path, dir: &str) -> (String, String, SourceMap) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = format!(
        "{dir}/{}",
        path.file_name().unwrap().to_str().expect("UTF-8 file name")
    );
    let mut sources = SourceMap::new();
    sources.add(name.clone(), text.clone());
    (name, text, sources)
}

#[test]
fn err_fixtures() {
    let manifest = root();
    let manifest = manifest.to_str().unwrap();
    insta::glob!("fixtures/check/err/*.l3map", |path| {
        let (name, text, sources) = load(path, "fixtures/check/err");
        // `NAME.lock.json` beside a fixture is its schema lockfile.
        let lock_path = path.with_extension("lock.json");
        let lock = lock_path.exists().then(|| {
            let text = std::fs::read_to_string(&lock_path).unwrap();
            l3map::schema::Lockfile::parse(&name, &text).expect("a valid fixture lockfile")
        });
        let checked = l3map::check::check_against(&sources, lock.as_ref());
        let rendered = render_human(&checked.diagnostics, &sources, false);
        let codes: BTreeSet<String> = checked.diagnostics.iter().map(|d| d.code()).collect();

        assert!(
            !checked.diagnostics.is_empty(),
            "{name}: expected at least one diagnostic, got none"
        );
        let expected = expected_codes(&text);
        assert!(
            !expected.is_empty(),
            "{name}: no `// expect: l3map::...` line in the header"
        );
        assert!(
            !description(&text).is_empty(),
            "{name}: no `// tests: ...` line in the header"
        );
        for code in &expected {
            assert!(
                codes.contains(code),
                "{name}: expected `{code}` among the diagnostics, got {codes:?}\n{rendered}"
            );
        }
        assert!(
            !rendered.contains(manifest) && !rendered.contains("/tmp/"),
            "{name}: rendered output contains an absolute path\n{rendered}"
        );

        insta::with_settings!({
            description => description(&text),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(rendered);
        });
    });
}

#[test]
fn ok_fixtures_check_clean() {
    let files = fixtures("tests/fixtures/check/ok");
    assert!(files.len() >= 3, "expected at least 3 valid fixtures");
    for path in files {
        let (name, _, sources) = load(&path, "fixtures/check/ok");
        let checked = check(&sources);
        assert!(
            checked.diagnostics.is_empty(),
            "{name} should check clean, but got:\n{}",
            render_human(&checked.diagnostics, &sources, false)
        );
    }
}

/// Every `code(l3map::...)` in an error enum's source.
fn codes_in(file: &str) -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join(file)).unwrap();
    let mut out = BTreeSet::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find("code(") {
        rest = &rest[i + "code(".len()..];
        let end = rest.find([')', ',']).unwrap_or(rest.len());
        let code = rest[..end].trim();
        if code.starts_with("l3map::") {
            out.insert(code.to_string());
        }
    }
    out
}

#[test]
fn every_code_has_a_fixture() {
    let mut check_codes = codes_in("src/check/error/kind.rs");
    check_codes.extend(codes_in("src/check/error/link.rs"));
    check_codes.extend(codes_in("src/check/error/form.rs"));
    let syntax_codes = codes_in("src/syntax/error.rs");
    // Sanity: the scan found the enums (45 checker and 5 syntax variants when
    // this was written; only ever more).
    assert!(check_codes.len() >= 40, "{check_codes:?}");
    assert!(syntax_codes.len() >= 4, "{syntax_codes:?}");

    let mut covered = BTreeSet::new();
    let files = fixtures("tests/fixtures/check/err");
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        covered.extend(expected_codes(&text));
    }
    assert!(files.len() >= 45, "only {} error fixtures", files.len());

    let missing: Vec<&String> = check_codes
        .iter()
        .chain(&syntax_codes)
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "no fixture in tests/fixtures/check/err expects these codes: {missing:?}"
    );

    let unknown: Vec<&String> = covered
        .iter()
        .filter(|c| !check_codes.contains(*c) && !syntax_codes.contains(*c))
        .collect();
    assert!(
        unknown.is_empty(),
        "fixtures expect codes no error enum defines: {unknown:?}"
    );
}

#[test]
fn header_parsing() {
    let text = "// tests: a thing\n// and more\n// expect: l3map::a, l3map::b\n// expect: l3map::c\n\nconnection x";
    assert_eq!(expected_codes(text), ["l3map::a", "l3map::b", "l3map::c"]);
    assert_eq!(description(text), "a thing and more");
    // Comments after the header are not part of it.
    assert!(expected_codes("connection x {}\n// expect: l3map::a").is_empty());
}
