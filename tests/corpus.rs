//! The benchmark's generated corpus, smaller, as a regression test: a large
//! valid project with many orgs, desks and SKU tables must check clean (it
//! caught objects credited to the wrong Salesforce org), and a few planted
//! mistakes must each be caught.

use crate::bench_corpus as corpus;

use l3map::check::check;
use l3map::syntax::SourceMap;

fn project(seed: u64) -> corpus::Project {
    corpus::generate(corpus::Params {
        seed,
        desks: 12,
        crms: 3,
        sku_tables: 2,
        regexes_per_table: 6,
    })
}

fn sources(files: &corpus::Project) -> SourceMap {
    let mut s = SourceMap::new();
    for (path, text) in files {
        s.add(path.clone(), text.as_str());
    }
    s
}

#[test]
fn generated_projects_check_clean() {
    for seed in [1, 2, 3] {
        let files = project(seed);
        let checked = check(&sources(&files));
        let shown: Vec<String> = checked
            .diagnostics
            .iter()
            .take(10)
            .map(|d| format!("{}: {}", d.code(), d.message()))
            .collect();
        assert!(checked.diagnostics.is_empty(), "seed {seed}: {shown:#?}");
    }
}

#[test]
fn planted_mistakes_are_caught() {
    let files = project(7);
    let plant = |needle: &str, replacement: &str, code: &str| {
        let mut f = files.clone();
        let hit = f
            .iter_mut()
            .find(|(_, t)| t.contains(needle))
            .unwrap_or_else(|| panic!("no file contains {needle:?}"));
        hit.1 = hit.1.replacen(needle, replacement, 1);
        let checked = check(&sources(&f));
        assert!(
            checked.diagnostics.iter().any(|d| d.code() == code),
            "planting {replacement:?} did not give {code}"
        );
    };
    plant("scopes", "scopes full, ", "l3map::scope::unknown");
    // Without `write` and `tickets:write` nothing may update a ticket.
    plant(
        "read, write, tickets:write",
        "read, tickets:read",
        "l3map::scope::missing",
    );
    plant(" -> ", " -> nowhere_at_all, ", "l3map::unknown_name");
    plant(
        "test \"",
        "test \"zzz-not-a-product\" => SOMETHING-ELSE\n  test \"",
        "l3map::sku::test",
    );
}

#[test]
fn large_projects_parse_in_parallel_with_the_same_result() {
    // Large enough to take the parallel path (see check::PARALLEL_PARSE_BYTES).
    let mut files = corpus::generate(corpus::Params {
        seed: 11,
        desks: 40,
        crms: 4,
        sku_tables: 2,
        regexes_per_table: 4,
    });
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    assert!(
        bytes > 600 * 1024,
        "corpus too small to parse in parallel: {bytes}"
    );
    assert!(check(&sources(&files)).diagnostics.is_empty());
    // A syntax error in one late file is reported once, in that file.
    let last = files.len() - 2;
    files[last].1.push_str("\nstatuses {\n");
    let s = sources(&files);
    let first = check(&s);
    let syntax: Vec<_> = first
        .diagnostics
        .iter()
        .filter(|d| d.code() == "l3map::syntax")
        .collect();
    assert_eq!(syntax.len(), 1);
    assert_eq!(s.get(syntax[0].file).path, files[last].0);
    let again = check(&s);
    assert_eq!(
        first.diagnostics, again.diagnostics,
        "parallel parsing must be deterministic"
    );
}
