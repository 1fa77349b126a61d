//! The IR of every example project, pinned. A change here is a change to
//! what the runtime executes: review it like code.

use l3map::compile::{check, lower};
use l3map::ir::{Program, IR_VERSION};
use l3map::project::load;
use std::path::PathBuf;

fn examples() -> Vec<(String, Program)> {
    // Relative, as ops type it, so the spans in the snapshots are
    // `mappings/...`: cargo runs the tests from the crate root (changing
    // directory here would move every other test of the binary too).
    let projects = load(&[PathBuf::from("mappings")]).expect("mappings/ loads");
    projects
        .into_iter()
        .map(|p| {
            let checked = check(&p.sources, None);
            assert!(
                checked.diagnostics.is_empty(),
                "{} is not clean: {:?}",
                p.name(),
                checked
                    .diagnostics
                    .iter()
                    .map(|d| d.message())
                    .collect::<Vec<_>>()
            );
            let program = lower(&checked, &p.sources).expect("clean projects lower");
            (p.name(), program)
        })
        .collect()
}

#[test]
fn ir_of_each_example() {
    let all = examples();
    assert!(
        all.len() >= 3,
        "expected the fintech, shop and saas examples"
    );
    for (name, program) in all {
        assert_eq!(program.ir_version, IR_VERSION);
        let snap = name.replace(['/', '\\'], "__");
        insta::assert_json_snapshot!(snap, program);
    }
}

#[test]
fn ir_round_trips_through_json() {
    for (_, program) in examples() {
        let text = serde_json::to_string(&program).unwrap();
        let back: Program = serde_json::from_str(&text).unwrap();
        assert_eq!(back, program);
    }
}

#[test]
fn revision_changes_with_content_only() {
    use l3map::syntax::SourceMap;
    let mut a = SourceMap::new();
    a.add("x.l3map", "template t \"a\"");
    let mut b = SourceMap::new();
    b.add("x.l3map", "template t \"a\"");
    let mut c = SourceMap::new();
    c.add("x.l3map", "template t \"b\"");
    let r = l3map::ir::lower_revision(&a);
    assert_eq!(r, l3map::ir::lower_revision(&b));
    assert_ne!(r, l3map::ir::lower_revision(&c));
    assert_eq!(r.len(), 16);
}
