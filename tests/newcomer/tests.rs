//! `l3map test` and the docs, as a first-time user meets them (issue 14,
//! items 2 and 8, and the docs-drift guard), through the real binary:
//! a test event with a key nothing reads fails with the key pointed at;
//! a failing `expect` says which documented rule explains it; an indented
//! expected comment means its text, not its indentation; whitespace-only
//! differences are visible; every `l3map` example in the docs checks clean.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn l3map(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(args)
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the l3map binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A one-file project in a fresh directory.
fn project(source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("desk.l3map"), source).expect("write the project");
    dir
}

const DESK: &str = r#"connection desk: zendesk {
  subdomain "acme"
  token     env("ZENDESK_OAUTH_TOKEN")
  scopes    read, write, tickets:write
}

fields desk {
  sla_tier       #360001234  enum(enterprise, standard)
  refund_reason  #360001299  string
}

statuses desk {
  new      new      "New"
  open     open     "Open"
  pending  pending  "Waiting on the customer"
  solved   solved   "Solved"

  new -> open
  open -> pending, solved
  pending, solved -> open  when comment.author == end_user
}

template handoff """
AI hand-off: {{ escalation.reason }}
Customer asked: {{ turn.summary }}
Please call back.
"""

escalation enterprise_first {
  when    ticket.sla_tier == enterprise
  reason  "Enterprise customer"
  comment desk handoff
}
"#;

/// The (line, column) of the first occurrence of `needle` in `source`,
/// counted as editors count (1-based, in characters).
fn place(source: &str, needle: &str) -> (u64, u64) {
    let at = source.find(needle).expect("the needle is in the source");
    let before = &source[..at];
    let line = before.matches('\n').count() as u64 + 1;
    let col = before[before.rfind('\n').map_or(0, |n| n + 1)..]
        .chars()
        .count() as u64
        + 1;
    (line, col)
}

fn diagnostics(o: &Output) -> Vec<Value> {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("JSON ({e}):\n{}", text(o)))
}

/// The test below passed on the old binary without ever reading the field:
/// the mistyped id left `sla_tier` unset, so `expect no comment` held.
#[test]
fn a_mistyped_custom_field_id_fails_pointed_at_the_key() {
    let source = format!(
        r#"{DESK}
test a_standard_customer_waits_in_line {{
  event """
  {{"kind": "agent_turn",
   "ticket": {{"id": 7, "status": "open", "custom_fields": {{"360001243": "enterprise"}}}},
   "turn": {{"summary": "Login fails"}}}}
  """
  expect no comment
}}
"#
    );
    let dir = project(&source);
    let run = l3map(&["test"], dir.path());
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("l3map::test::unknown_key"), "{}", text(&run));
    assert!(!String::from_utf8_lossy(&run.stdout).contains("  ok "));

    let check = l3map(&["check", "--format", "json"], dir.path());
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let diags = diagnostics(&check);
    let d = diags
        .iter()
        .find(|d| d["code"] == "l3map::test::unknown_key")
        .unwrap_or_else(|| panic!("no unknown_key: {diags:#?}"));
    let (line, col) = place(&source, "\"360001243\"");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(line), Some(col)),
        "{d:#}"
    );
    assert_eq!(
        d["end_column"].as_u64(),
        Some(col + "\"360001243\"".len() as u64)
    );
    let help = d["help"].as_str().unwrap_or_default();
    assert!(
        help.contains("did you mean \"360001234\" (`sla_tier`)"),
        "{d:#}"
    );
}

/// An alias where Zendesk's id belongs, and misspelt keys elsewhere in the
/// event: each is an error at its key, with a did-you-mean.
#[test]
fn unknown_keys_anywhere_are_errors_with_a_did_you_mean() {
    let source = format!(
        r#"{DESK}
test enterprise_goes_first {{
  event """
  {{"kind": "agent_turn",
   "ticket": {{"id": 7, "prority": "high", "custom_fields": {{"sla_tier": "enterprise"}}}},
   "turn": {{"summary": "Login fails", "refund_amout": {{"amount": "10.00", "currency": "USD"}}}},
   "coment": {{"body": "hi"}}}}
  """
  expect comment desk contains "Enterprise customer"
}}
"#
    );
    let dir = project(&source);
    let check = l3map(&["check", "--format", "json"], dir.path());
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let diags = diagnostics(&check);
    let at = |key: &str| {
        let (line, col) = place(&source, &format!("\"{key}\""));
        diags
            .iter()
            .find(|d| {
                d["code"] == "l3map::test::unknown_key"
                    && d["line"].as_u64() == Some(line)
                    && d["column"].as_u64() == Some(col)
            })
            .and_then(|d| d["help"].as_str())
            .unwrap_or_else(|| panic!("no error at `{key}` ({line}:{col}): {diags:#?}"))
            .to_string()
    };
    assert_eq!(
        at("sla_tier"),
        "`sla_tier` is the alias of field id 360001234; write \"360001234\""
    );
    assert_eq!(at("prority"), "did you mean `priority`?");
    assert_eq!(at("refund_amout"), "did you mean `refund_amount`?");
    assert_eq!(at("coment"), "did you mean `comment`?");
    assert_eq!(diags.len(), 4, "exactly the four stray keys: {diags:#?}");

    // Written correctly, the same test runs and passes.
    let fixed = source
        .replace("\"prority\"", "\"priority\"")
        .replace(
            "\"sla_tier\": \"enterprise\"",
            "\"360001234\": \"enterprise\"",
        )
        .replace("refund_amout", "refund_amount")
        .replace("\"coment\"", "\"comment\"");
    let dir = project(&fixed);
    let run = l3map(&["test"], dir.path());
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
}

/// A transition permits a change, it does not make it; a value the event
/// does not carry never makes a comparison true. Each failure says which
/// documented rule explains it.
#[test]
fn a_failing_expectation_says_which_documented_rule_explains_it() {
    let source = format!(
        r#"{DESK}
test a_reply_reopens_the_ticket {{
  event """
  {{"kind": "comment_added", "ticket": {{"id": 7, "status": "pending"}},
   "comment": {{"body": "Still broken", "author": "end_user"}}}}
  """
  expect status desk open
}}

test an_enterprise_customer_goes_first {{
  event """
  {{"kind": "agent_turn", "ticket": {{"id": 8, "status": "open"}},
   "turn": {{"summary": "Login fails"}}}}
  """
  expect comment desk contains "Enterprise customer"
}}
"#
    );
    let dir = project(&source);
    let run = l3map(&["test"], dir.path());
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        out.contains("why:      transitions permit, they do not trigger: `pending -> open when comment.author == end_user`"),
        "{}",
        text(&run)
    );
    assert!(out.contains("turn.requested_status"), "{}", text(&run));
    assert!(
        out.contains("why:      escalation `enterprise_first`")
            && out
                .contains("its condition reads `ticket.sla_tier`, which this event does not carry"),
        "{}",
        text(&run)
    );

    let json = l3map(&["test", "--format", "json"], dir.path());
    let report: Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
    let why = report["tests"][0]["failures"][0]["why"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.starts_with("transitions permit, they do not trigger"),
        "{report:#}"
    );
}

/// The expected comment sits indented inside the test; the comment the
/// template writes does not. The common indentation is layout.
#[test]
fn an_indented_expected_comment_is_compared_without_its_indentation() {
    let source = format!(
        r#"{DESK}
test the_hand_off_reads_well {{
  event """
  {{"kind": "agent_turn", "ticket": {{"id": 7, "custom_fields": {{"360001234": "enterprise"}}}},
   "turn": {{"summary": "Login fails"}}}}
  """
  expect comment desk """
    AI hand-off: Enterprise customer
    Customer asked: Login fails
    Please call back.
  """
  expect comment desk contains """
      Customer asked: Login fails
      Please call
  """
}}
"#
    );
    let dir = project(&source);
    let run = l3map(&["test"], dir.path());
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("ok    the_hand_off_reads_well"),
        "{}",
        text(&run)
    );
}

/// A trailing space and a tab cannot be seen in a plain diff; the failure
/// marks them and says the comments differ only in whitespace.
#[test]
fn a_whitespace_only_difference_is_shown_visibly() {
    let source = format!(
        r#"{DESK}
test a_trailing_space {{
  event """
  {{"kind": "agent_turn", "ticket": {{"id": 7, "custom_fields": {{"360001234": "enterprise"}}}},
   "turn": {{"summary": "Login fails "}}}}
  """
  expect comment desk """
    AI hand-off: Enterprise customer
    Customer asked: Login fails
    Please call back.
  """
}}

test a_tab {{
  event """
  {{"kind": "agent_turn", "ticket": {{"id": 8, "custom_fields": {{"360001234": "enterprise"}}}},
   "turn": {{"summary": "Login\tfails"}}}}
  """
  expect comment desk """
    AI hand-off: Enterprise customer
    Customer asked: Login fails
    Please call back.
  """
}}

test a_double_space {{
  event """
  {{"kind": "agent_turn", "ticket": {{"id": 9, "custom_fields": {{"360001234": "enterprise"}}}},
   "turn": {{"summary": "Login  fails"}}}}
  """
  expect comment desk contains "Login fails"
}}
"#
    );
    let dir = project(&source);
    let run = l3map(&["test"], dir.path());
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        out.contains("has the text but for whitespace")
            && out.contains("Customer␠asked:␠Login␠␠fails"),
        "{}",
        text(&run)
    );
    assert!(
        out.contains("- Customer␠asked:␠Login␠fails\n")
            && out.contains("+ Customer␠asked:␠Login␠fails␠\n"),
        "{}",
        text(&run)
    );
    assert!(
        out.contains("+ Customer␠asked:␠Login→fails\n"),
        "{}",
        text(&run)
    );
    assert_eq!(
        out.matches("(the comments differ only in whitespace)")
            .count(),
        2,
        "{}",
        text(&run)
    );
    assert!(out.contains("␠ is a space, → a tab"), "{}", text(&run));
    // The lines that are the same stay as written.
    assert!(
        out.contains("  AI hand-off: Enterprise customer\n"),
        "{}",
        text(&run)
    );
}

/// One ```l3map block of a doc: where it starts and whether it is marked
/// as an example of a mistake (```l3map,fails).
struct Block {
    doc: String,
    line: usize,
    fails: bool,
    body: String,
}

fn doc_blocks() -> Vec<Block> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    // docs/ and its sub-folders.
    let mut dirs = vec![root.join("docs")];
    let mut more: Vec<PathBuf> = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a docs folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "md") {
                more.push(path);
            }
        }
    }
    more.sort();
    docs.extend(more);
    let mut out = Vec::new();
    for path in docs {
        let doc = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let source = std::fs::read_to_string(&path).expect("a doc");
        let mut open: Option<Block> = None;
        for (i, line) in source.lines().enumerate() {
            let fence = line.trim_start();
            match &mut open {
                None => {
                    let Some(info) = fence.strip_prefix("```l3map") else {
                        continue;
                    };
                    let tags: Vec<&str> = info.split(',').map(str::trim).collect();
                    assert!(
                        tags.iter().all(|t| t.is_empty() || *t == "fails"),
                        "{doc}:{}: unknown mark in `{fence}`: an l3map block is checked unless marked `l3map,fails`",
                        i + 1
                    );
                    open = Some(Block {
                        doc: doc.clone(),
                        line: i + 1,
                        fails: tags.contains(&"fails"),
                        body: String::new(),
                    });
                }
                Some(_) if fence == "```" => out.extend(open.take()),
                Some(b) => {
                    b.body.push_str(line);
                    b.body.push('\n');
                }
            }
        }
        assert!(open.is_none(), "{doc}: an l3map block is never closed");
    }
    out
}

/// Every ```l3map block in README.md and docs/**/*.md is a project that the
/// real binary checks clean with `--deny warnings`, whose tests pass, and
/// that `l3map fmt --check` leaves as it is;
/// a block marked ```l3map,fails does fail. One process per verdict: each
/// block is its own project folder under one directory.
#[test]
fn every_l3map_example_in_the_docs_checks_clean() {
    let blocks = doc_blocks();
    assert!(blocks.len() >= 18, "found only {} blocks", blocks.len());
    let root = tempfile::tempdir().expect("a temp dir");
    let folder = |b: &Block| {
        let kind = if b.fails { "fails" } else { "clean" };
        let name = format!("{}_{}", b.doc.replace(['/', '.'], "_"), b.line);
        root.path().join(kind).join(name)
    };
    for b in &blocks {
        let dir = folder(b);
        std::fs::create_dir_all(&dir).expect("a block folder");
        std::fs::write(dir.join("example.l3map"), &b.body).expect("write a block");
    }

    let clean = root.path().join("clean");
    let check = l3map(&["check", "--deny", "warnings", "--format", "json"], &clean);
    let diags = diagnostics(&check);
    let problems: Vec<String> = diags
        .iter()
        .map(|d| {
            let file = d["file"].as_str().unwrap_or("?");
            let block = blocks
                .iter()
                .find(|b| file.contains(&*folder(b).file_name().unwrap().to_string_lossy()))
                .map_or("?".to_string(), |b| format!("{}:{}", b.doc, b.line));
            format!(
                "the example at {block} (its line {}): {} {}",
                d["line"], d["code"], d["message"]
            )
        })
        .collect();
    assert!(
        check.status.code() == Some(0) && problems.is_empty(),
        "examples in the docs that do not check clean with --deny warnings \
         (fix the example; mark a deliberate mistake ```l3map,fails):\n{}\n{}",
        problems.join("\n"),
        text(&check)
    );
    let tests = l3map(&["test"], &clean);
    assert_eq!(
        tests.status.code(),
        Some(0),
        "a test in a docs example fails:\n{}",
        text(&tests)
    );

    // In the layout `l3map fmt` writes, so a reader who copies an example
    // starts from the one layout (3.1.1) and `fmt --check` in CI passes.
    let fmt = l3map(&["fmt", "--check"], &clean);
    let unformatted: Vec<String> = String::from_utf8_lossy(&fmt.stdout)
        .lines()
        .map(|file| {
            blocks
                .iter()
                .filter(|b| !b.fails)
                .find(|b| file.contains(&*folder(b).file_name().unwrap().to_string_lossy()))
                .map_or(file.to_string(), |b| format!("{}:{}", b.doc, b.line))
        })
        .collect();
    assert!(
        fmt.status.code() == Some(0) && unformatted.is_empty(),
        "examples in the docs that `l3map fmt` would reformat (run `l3map fmt` on \
         the block and paste it back):\n{}\n{}",
        unformatted.join("\n"),
        text(&fmt)
    );

    let failing: Vec<&Block> = blocks.iter().filter(|b| b.fails).collect();
    assert!(
        !failing.is_empty(),
        "LANGUAGE.md shows a test event with an alias for an id"
    );
    let fails = root.path().join("fails");
    let check = l3map(&["check", "--format", "json"], &fails);
    let diags = diagnostics(&check);
    for b in failing {
        let name = folder(b).file_name().unwrap().to_string_lossy().to_string();
        assert!(
            diags.iter().any(|d| d["severity"] == "error"
                && d["file"].as_str().is_some_and(|f| f.contains(&name))),
            "{}:{} is marked `l3map,fails` but checks without an error:\n{}",
            b.doc,
            b.line,
            text(&check)
        );
    }
}
