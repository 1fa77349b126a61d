//! `l3map fmt`: the canonical layout (snapshots), idempotence on every
//! mapping file and on generated projects, the same IR before and after,
//! no comment ever lost, and the command's exit statuses.

use crate::bench_corpus as corpus;
use crate::common;

use l3map::compile::{check, lower};
use l3map::fmt::{format, FmtError};
use l3map::syntax::SourceMap;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.l3map` file under `mappings/`, by project directory.
fn mapping_projects() -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("mappings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "l3map"))
            .collect();
        files.sort();
        out.push(
            files
                .iter()
                .map(|f| {
                    let rel = f.strip_prefix(root()).unwrap().display().to_string();
                    (rel, std::fs::read_to_string(f).unwrap())
                })
                .collect(),
        );
    }
    out
}

fn generated_projects() -> Vec<Vec<(String, String)>> {
    [3, 4]
        .into_iter()
        .map(|seed| {
            corpus::generate(corpus::Params {
                seed,
                desks: 4,
                crms: 2,
                sku_tables: 2,
                regexes_per_table: 4,
            })
        })
        .collect()
}

/// The project's IR as JSON, without what formatting may move: source
/// locations, the revision (a hash of the text), and the white space inside
/// a transition's `condition` (the source text of its `when`, for display).
fn ir_without_places(files: &[(String, String)]) -> serde_json::Value {
    let mut sources = SourceMap::new();
    for (path, text) in files {
        sources.add(path.clone(), text.as_str());
    }
    let checked = check(&sources, None);
    let program = lower(&checked, &sources).expect("the project compiles");
    let mut v = serde_json::to_value(&program).unwrap();
    strip_places(&mut v);
    v
}

fn strip_places(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("revision");
            if let Some(serde_json::Value::String(c)) = m.get_mut("condition") {
                c.retain(|ch| !ch.is_whitespace());
            }
            let is_loc = ["file", "line", "col", "start", "end"]
                .iter()
                .all(|k| m.contains_key(*k));
            if is_loc {
                m.clear();
            }
            for x in m.values_mut() {
                strip_places(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_places),
        _ => {}
    }
}

fn formatted(files: &[(String, String)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| {
            let f = format(t).unwrap_or_else(|e| panic!("{p}: {e}"));
            (p.clone(), f)
        })
        .collect()
}

#[test]
fn formatting_twice_changes_nothing_and_the_ir_stays_the_same() {
    let projects: Vec<_> = mapping_projects()
        .into_iter()
        .chain(generated_projects())
        .collect();
    assert!(projects.len() >= 5);
    for files in projects {
        let once = formatted(&files);
        for ((path, a), (_, b)) in once.iter().zip(formatted(&once)) {
            assert_eq!(*a, b, "{path}: formatting is not idempotent");
        }
        assert_eq!(
            ir_without_places(&files),
            ir_without_places(&once),
            "{}: formatting changed the IR",
            files[0].0
        );
    }
}

#[test]
fn mappings_are_formatted() {
    for files in mapping_projects() {
        for (path, text) in files {
            let f = format(&text).unwrap();
            assert!(
                f == text,
                "{path} is not formatted: run `l3map fmt mappings/`\n{}",
                similar::TextDiff::from_lines(&text, &f).unified_diff()
            );
        }
    }
}

const MESSY: &str = r#"// A desk.
connection   desk :zendesk{subdomain "acme"   token env ( "ZD_TOKEN" ) // never a literal
scopes read,write ,   tickets:write
  plan enterprise}
statuses desk { new new "New" initial
  open open "Open"   // the usual
      solved solved "Solved"   closed solved "Closed" terminal


  new->open
  open, new -> solved when ticket.priority != urgent and (ticket.tags has "vip"
  or ticket.tags has "x")
  // reopen
  solved->open when comment.author==end_user
  solved -> closed }
fields desk { tier #360001234 enum( gold,silver ) "Tier"
  note #360001235 string }
template t """
  keep   this   exactly
"""
escalation e { when turn.intent=="refund" and turn.refund_amount > $200
reason "why"
 comment desk t   set desk note = "x"
   status desk solved }
"#;

#[test]
fn a_messy_file_in_the_canonical_layout() {
    let out = format(MESSY).unwrap();
    insta::assert_snapshot!(out);
    assert_eq!(format(&out).unwrap(), out);
}

#[test]
fn translations_sku_tables_and_tests_in_the_canonical_layout() {
    let src = r#"
connection crm: salesforce { instance "https://x.my.salesforce.com" client_id env("A") client_secret env("B") refresh_token env("C") scopes api, refresh_token objects Account }
connection desk: zendesk { subdomain "a" token env("T") scopes read, write }
fields crm { Account.Tier__c enum("Ent", "Std") }
fields desk { tier #1 enum(enterprise, standard) }
map crm -> desk { Account.Tier__c -> tier { "Ent" => enterprise _ => standard // the rest
} }
sku products {
  normalize nfkc, upper,
    strip " -"
  products A-1, B-2,
    C-3
  "a1" | "alpha one"
  | "アルファ" => A-1
  /^B2$/ => B-2
  "c" => C-3
  test "alpha one" => A-1
  test "nothing here" => none  // no product
  apply turn.product -> desk tier
}
test mapping_works { event """ {"kind": "record_changed", "ticket": {"id": 1, "status": "open"}} """ expect nothing }
"#;
    let out = format(src).unwrap();
    insta::assert_snapshot!(out);
    assert_eq!(format(&out).unwrap(), out);
}

#[test]
fn a_file_that_does_not_parse_is_not_formatted() {
    let err = format("statuses desk {\n  open open\n  open -> \n}\n").unwrap_err();
    assert!(
        matches!(err, FmtError::Syntax { line: 4, .. }),
        "got {err:?}"
    );
}

fn l3map(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_checks_rewrites_and_leaves_broken_files_alone() {
    let tmp = common::temp_dir("fmt");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let messy = "template   t  \"x\"\n";
    let broken = "statuses desk {\n  open -> \n";
    std::fs::write(dir.join("p/a.l3map"), messy).unwrap();
    std::fs::write(dir.join("p/b.l3map"), "template u \"y\"\n").unwrap();

    let (code, stdout, _) = l3map(&["fmt", "--check", "p"], dir);
    assert_eq!(code, 1);
    assert_eq!(stdout.trim(), "p/a.l3map");
    assert_eq!(
        std::fs::read_to_string(dir.join("p/a.l3map")).unwrap(),
        messy
    );

    let (code, _, stderr) = l3map(&["fmt", "p"], dir);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("p/a.l3map")).unwrap(),
        "template t \"x\"\n"
    );
    let (code, _, _) = l3map(&["fmt", "--check", "p"], dir);
    assert_eq!(code, 0);

    std::fs::write(dir.join("p/c.l3map"), broken).unwrap();
    let (code, _, stderr) = l3map(&["fmt", "p"], dir);
    assert_eq!(code, 1);
    let reason: Vec<&str> = stderr.lines().filter(|l| l.contains("c.l3map")).collect();
    assert_eq!(reason.len(), 1, "one line per broken file: {stderr}");
    assert!(reason[0].contains("unexpected end of file"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("p/c.l3map")).unwrap(),
        broken
    );
}

// ------------------------------------------------------------------ comments

/// A file's tokens, each a whole unit (a string is one token), from which
/// messy files are made by joining them with random white space and
/// comments.
const TOKENS: &[&str] = &[
    "connection",
    "desk",
    ":",
    "zendesk",
    "{",
    "subdomain",
    "\"acme\"",
    "token",
    "env",
    "(",
    "\"T\"",
    ")",
    "scopes",
    "read",
    ",",
    "write",
    ",",
    "tickets:write",
    "}",
    "statuses",
    "desk",
    "{",
    "new",
    "new",
    "\"New\"",
    "open",
    "open",
    "\"Open\"",
    "solved",
    "solved",
    "\"Solved\"",
    "terminal",
    "new",
    "->",
    "open",
    "open",
    "->",
    "solved",
    "when",
    "not",
    "(",
    "ticket.tags",
    "has",
    "\"x\"",
    "or",
    "ticket.priority",
    "in",
    "[",
    "high",
    ",",
    "urgent",
    "]",
    ")",
    "}",
    "fields",
    "desk",
    "{",
    "tier",
    "#360001234",
    "enum",
    "(",
    "gold",
    ",",
    "silver",
    ")",
    "\"Tier\"",
    "}",
    "template",
    "t",
    "\"\"\"\n  {{ turn.summary }}  \n\"\"\"",
    "escalation",
    "e",
    "{",
    "when",
    "turn.refund_amount",
    ">",
    "$200",
    "reason",
    "\"r\"",
    "comment",
    "desk",
    "t",
    "set",
    "desk",
    "tier",
    "=",
    "gold",
    "status",
    "desk",
    "solved",
    "}",
];

fn separators() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..8, TOKENS.len() - 1)
}

/// Joins the tokens: 0-3 white space of several kinds, 4-7 a comment
/// (trailing or on its own line, with blank lines around it or not).
fn messy(seps: &[u8]) -> (String, Vec<String>) {
    let mut text = String::from(TOKENS[0]);
    let mut comments = Vec::new();
    for (i, tok) in TOKENS[1..].iter().enumerate() {
        let sep = match seps[i] {
            0 => " ".to_string(),
            1 => "\n".to_string(),
            2 => "\n\n\n".to_string(),
            3 => "\t  ".to_string(),
            k => {
                let c = format!("// c{i} é");
                let s = match k {
                    4 => format!("  {c}\n"),
                    5 => format!("\n{c}\n"),
                    6 => format!("\n\n  {c}   \n\n"),
                    _ => format!(" {c}\n  "),
                };
                comments.push(c);
                s
            }
        };
        text.push_str(&sep);
        text.push_str(tok);
    }
    text.push('\n');
    (text, comments)
}

proptest! {
    #![proptest_config(common::proptest_config(200, 0xf0_4a7))]

    #[test]
    fn comments_are_never_lost_and_the_layout_is_stable(seps in separators()) {
        let (text, comments) = messy(&seps);
        let once = format(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let twice = format(&once).map_err(|e| TestCaseError::fail(format!("{e}\n{once}")))?;
        prop_assert_eq!(&once, &twice, "not idempotent:\n{}", text);
        // Every comment, in order, exactly once.
        let mut at = 0;
        for c in &comments {
            let found = once[at..].find(c.as_str());
            prop_assert!(found.is_some(), "lost {:?}:\n{}\n---\n{}", c, text, once);
            at += found.unwrap_or(0) + c.len();
            prop_assert_eq!(once.matches(c.as_str()).count(), 1);
        }
        let files = |t: &str| vec![("a.l3map".to_string(), t.to_string())];
        prop_assert_eq!(ir_without_places(&files(&text)), ir_without_places(&files(&once)));
        prop_assert!(once.lines().all(|l| l == l.trim_end() || l.contains("{{")));
    }
}
