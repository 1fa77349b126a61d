//! Every `l3map` code block in the docs compiles: examples that do not
//! work are worse than none.

use l3map::compile::{check, lower, lower_tests};
use l3map::syntax::SourceMap;

fn blocks(doc: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```l3map" => current = Some((i + 1, String::new())),
            Some(_) if line.trim_start() == "```" => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn language_reference_examples_have_no_errors() {
    let all = blocks("docs/LANGUAGE.md");
    assert!(
        all.len() >= 10,
        "expected the reference to be full of examples"
    );
    for (line, body) in all {
        let mut sources = SourceMap::new();
        sources.add(format!("docs/LANGUAGE.md:{line}"), body.as_str());
        let checked = check(&sources, None);
        let errors: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}: {}", d.code(), d.message()))
            .collect();
        assert!(
            errors.is_empty(),
            "example at docs/LANGUAGE.md:{line} has errors: {errors:#?}\n{body}"
        );
        // The tests an example shows must pass, too.
        let program = lower(&checked, &sources).expect("compiles");
        for t in lower_tests(&checked, &sources).expect("compiles") {
            let out = l3map::eval::testing::run(&program, &t);
            assert!(
                out.passed,
                "test {} in the example at docs/LANGUAGE.md:{line} fails: {:#?}",
                t.name, out.failures
            );
        }
    }
}

#[test]
fn readme_example_parses() {
    for (line, body) in blocks("README.md") {
        let (_, errors) =
            l3map::syntax::parse_file(l3map::syntax::FileId(0), &body.replace("  ...\n", ""));
        assert!(errors.is_empty(), "README.md:{line}: {errors:?}");
    }
}

#[test]
fn every_diagnostic_code_is_documented() {
    let doc = std::fs::read_to_string(format!("{}/docs/LANGUAGE.md", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    for src in [
        "src/check/error/kind.rs",
        "src/check/error/link.rs",
        "src/check/error/form.rs",
        "src/syntax/error.rs",
    ] {
        let text =
            std::fs::read_to_string(format!("{}/{src}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        for (at, _) in text.match_indices("code(l3map") {
            let code: String = text[at + 5..].chars().take_while(|c| *c != ')').collect();
            assert!(
                doc.contains(&format!("`{code}`")),
                "{code} (from {src}) is not in docs/LANGUAGE.md"
            );
        }
    }
}
