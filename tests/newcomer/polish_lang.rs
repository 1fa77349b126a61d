//! Issue 14, the newcomer's stumbles in the language and the CLI, from the
//! outside: a first-time user set up a new org's project with only the docs
//! and the binary. Each test drives the real binary on a temp project.
//!
//! * a misspelt status in a test's event is a `check` error at the value;
//! * `schema::not_in_instance` names the locked field the id most likely meant;
//! * a block whose `}` is missing is reported at its `{`, once;
//! * every section reference in docs/LANGUAGE.md resolves;
//! * `l3map fmt` names the files it rewrites; no help repeats a default.
//! * a custom field value its declared type cannot hold fails `check` at
//!   the value (the tag a `map` writes for a Salesforce value);
//! * a field written by its id or as `ticket.ALIAS` where its alias belongs
//!   gets the alias to write.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

/// A project folder of its own, with the files given.
struct Project(TempDir);

impl Project {
    fn new(name: &str, files: &[(&str, &str)]) -> Project {
        Project(crate::common::project(
            &format!("newcomer-polish-{name}"),
            files,
        ))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn l3map(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(args)
        .output()
        .expect("l3map runs")
}

/// `l3map check --format json DIR`: the exit code and the diagnostics.
fn check(dir: &Path) -> (i32, Vec<Value>) {
    let out = l3map(&[
        "check",
        "--format",
        "json",
        dir.to_str().expect("utf-8 path"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let diags: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("check --format json: {e}\n{text}"));
    (out.status.code().unwrap_or(-1), diags)
}

fn summary(diags: &[Value]) -> String {
    diags
        .iter()
        .map(|d| format!("{} {} | {}", d["code"], d["message"], d["help"]))
        .collect::<Vec<_>>()
        .join("\n")
}

const DESK: &str = r#"connection desk: zendesk {
  subdomain  "acme"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     read, write
}

statuses desk {
  new              new      "New"
  open             open     "Open"
  waiting_on_guest pending  "Waiting on the guest"
  solved           solved   "Solved"

  new -> open
  open -> waiting_on_guest, solved
  waiting_on_guest, solved -> open  when comment.author == end_user
}
"#;

fn test_block(name: &str, event: &str, expect: &str) -> String {
    format!("\ntest {name} {{\n  event \"\"\"\n  {event}\n  \"\"\"\n  {expect}\n}}\n")
}

// ---------------------------------------------------------------- item 1

/// `"status": "opne"` used to pass `check` and fail `l3map test` with a
/// confusing actual. Now `check` points at the value, with a did-you-mean;
/// a requested status no table declares is flagged the same way.
#[test]
fn a_misspelt_status_in_a_test_event_fails_check_at_the_value() {
    let text = format!(
        "{DESK}{}{}",
        test_block(
            "agent_solves",
            r#"{"kind": "agent_turn", "ticket": {"id": 1, "status": "opne"}, "turn": {"requested_status": "solved"}}"#,
            "expect status desk solved",
        ),
        test_block(
            "agent_waits",
            r#"{"kind": "agent_turn", "ticket": {"id": 2, "status": "open"}, "turn": {"requested_status": "waiting_on_gest"}}"#,
            "expect status desk waiting_on_guest",
        ),
    );
    let p = Project::new("status-typo", &[("desk.l3map", &text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 1, "{}", summary(&diags));
    let bad: Vec<&Value> = diags
        .iter()
        .filter(|d| d["code"] == "l3map::test::unknown_status")
        .collect();
    assert_eq!(bad.len(), 2, "{}", summary(&diags));
    // Pointed at the value, quotes included, on its line.
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .expect("the line")
    };
    let col_of = |needle: &str| {
        let l = text.lines().find(|l| l.contains(needle)).expect("the line");
        l[..l.find(needle).expect("on the line")].chars().count() as u64 + 1
    };
    assert_eq!(bad[0]["line"], line_of("\"opne\""));
    assert_eq!(bad[0]["column"], col_of("\"opne\""));
    assert_eq!(bad[0]["end_column"], col_of("\"opne\"") + 6);
    assert!(
        bad[0]["message"].as_str().unwrap().contains("`opne`"),
        "{}",
        summary(&diags)
    );
    assert_eq!(bad[0]["help"], "did you mean `open`?");
    assert_eq!(bad[1]["line"], line_of("\"waiting_on_gest\""));
    assert_eq!(bad[1]["help"], "did you mean `waiting_on_guest`?");
}

/// The domain is what a real event can carry: the table's statuses and
/// Zendesk's own (a ticket in a category the table does not name arrives
/// as the category), and a test of a refused request may ask for anything.
#[test]
fn statuses_a_real_event_can_carry_pass_check() {
    let text = format!(
        "{DESK}{}{}",
        test_block(
            "a_closed_ticket_is_not_reopened",
            r#"{"kind": "agent_turn", "ticket": {"id": 3, "status": "closed"}, "turn": {"requested_status": "open"}}"#,
            "expect no status\n  expect refused \"closed\"",
        ),
        test_block(
            "the_agent_cannot_invent_a_status",
            r#"{"kind": "agent_turn", "ticket": {"id": 4, "status": "waiting_on_guest"}, "turn": {"requested_status": "vanished"}}"#,
            "expect no status\n  expect refused \"not a status\"",
        ),
    );
    let p = Project::new("status-ok", &[("desk.l3map", &text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 0, "{}", summary(&diags));
    let out = l3map(&["test", p.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- item 2

/// Declared `#360007040`, locked `360007004` titled `nights`: the help
/// names the locked field, by its title and by the near id.
#[test]
fn a_field_id_not_in_the_instance_names_the_likely_one() {
    let fields = |alias: &str| {
        format!("{DESK}\nfields desk {{\n  {alias}  #360007040  number\n}}\n\nescalation long_stay {{\n  when    ticket.{alias} > 14\n  reason  \"A long stay\"\n  comment desk \"Long stay: {{{{ turn.summary }}}}\"\n}}\n")
    };
    let lock = r#"{
  "lock_version": 1,
  "zendesk": {
    "desk": {
      "ticket_fields": [
        {"id": 360007004, "title": "nights", "type": "integer"},
        {"id": 360009999, "title": "Room type", "type": "tagger", "options": ["single", "double"]}
      ]
    }
  }
}"#;
    // The alias is the field's title.
    let p = Project::new(
        "lock-title",
        &[("desk.l3map", &fields("nights")), ("l3map.lock.json", lock)],
    );
    let (_, diags) = check(p.path());
    let d = diags
        .iter()
        .find(|d| d["code"] == "l3map::schema::not_in_instance")
        .unwrap_or_else(|| panic!("no not_in_instance:\n{}", summary(&diags)));
    let help = d["help"].as_str().unwrap_or_default();
    assert!(
        help.contains("\"nights\" as #360007004"),
        "the help names the locked field: {help}"
    );
    // Another alias: the id one transposition away is named.
    let p = Project::new(
        "lock-near",
        &[
            ("desk.l3map", &fields("stay_length")),
            ("l3map.lock.json", lock),
        ],
    );
    let (_, diags) = check(p.path());
    let d = diags
        .iter()
        .find(|d| d["code"] == "l3map::schema::not_in_instance")
        .unwrap_or_else(|| panic!("no not_in_instance:\n{}", summary(&diags)));
    let help = d["help"].as_str().unwrap_or_default();
    assert!(
        help.contains("did you mean #360007004 (\"nights\")"),
        "the help names the near id: {help}"
    );
    assert!(!help.contains("360009999"), "{help}");
}

// ---------------------------------------------------------------- item 3

/// `connection desk: zendesk {` without `}`: one error at its `{`, naming
/// the block and the next one, and no "unknown connection desk" after it.
#[test]
fn a_block_never_closed_is_reported_at_its_brace_once() {
    let text = DESK.replacen(
        "  scopes     read, write\n}\n",
        "  scopes     read, write\n",
        1,
    );
    let p = Project::new("unclosed", &[("desk.l3map", &text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 1, "{}", summary(&diags));
    assert_eq!(
        diags.len(),
        1,
        "only the missing brace:\n{}",
        summary(&diags)
    );
    let d = &diags[0];
    assert_eq!(d["code"], "l3map::syntax::unclosed", "{}", summary(&diags));
    assert_eq!(
        d["message"],
        "`connection desk: zendesk {` is never closed",
        "{}",
        summary(&diags)
    );
    // The primary span is the `{` on line 1.
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(1), Some(26))
    );
    let statuses_line = text
        .lines()
        .position(|l| l.starts_with("statuses"))
        .expect("statuses line") as u64
        + 1;
    assert!(
        d["help"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("before `statuses` on line {statuses_line}")),
        "{}",
        summary(&diags)
    );
    let labels = d["labels"].as_array().expect("labels");
    assert!(
        labels
            .iter()
            .any(|l| l["line"].as_u64() == Some(statuses_line) && l["column"] == 1),
        "a label on the next block: {labels:?}"
    );

    // The human output says the same, once.
    let out = l3map(&["check", p.path().to_str().unwrap()]);
    let human = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(human.contains("this block is never closed"), "{human}");
    assert!(!human.contains("unknown connection"), "{human}");
    assert!(human.contains("1 error"), "{human}");
}

/// An unclosed table followed by a test that reads it: the table is read
/// as if closed, so the test's `expect status` finds it (no `no_table`,
/// no unknown status), and the test block itself is not lost.
#[test]
fn a_table_never_closed_still_declares_its_statuses() {
    let text = format!(
        "{}{}",
        DESK.trim_end().trim_end_matches('}'),
        test_block(
            "agent_solves",
            r#"{"kind": "agent_turn", "ticket": {"id": 1, "status": "open"}, "turn": {"requested_status": "solved"}}"#,
            "expect status desk solved",
        )
    );
    let p = Project::new("unclosed-table", &[("desk.l3map", &text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{}", summary(&diags));
    assert_eq!(diags[0]["code"], "l3map::syntax::unclosed");
    assert_eq!(diags[0]["message"], "`statuses desk {` is never closed");
    let table_line = text
        .lines()
        .position(|l| l.starts_with("statuses"))
        .expect("table") as u64
        + 1;
    assert_eq!(diags[0]["line"].as_u64(), Some(table_line));
}

/// An SKU table's `test "input" => PRODUCT` written at column 0 is not a
/// block of its own: a mistake after it is not blamed on a missing `}`.
#[test]
fn an_sku_test_line_at_column_0_is_no_unclosed_block() {
    let text = "sku phones {\n  \"iphone 15 pro max\" => IPH15PM\ntest \"iphone 15 pro max\" => IPH15PM\n  \"pixel\" = > PIX8\n}\n";
    let p = Project::new("sku-col0", &[("phones.l3map", text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 1);
    assert!(
        diags.iter().all(|d| d["code"] != "l3map::syntax::unclosed"),
        "{}",
        summary(&diags)
    );
}

// ---------------------------------------------------------------- item 4

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every "see N.N", "section N.N", "(N.N)" and `(#anchor)` in
/// docs/LANGUAGE.md names a heading that exists ("see 11.4" pointed at
/// nothing: paths are 12.4).
#[test]
fn every_section_reference_in_language_md_resolves() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/LANGUAGE.md");
    let text = std::fs::read_to_string(path).expect("LANGUAGE.md");
    let mut numbers = std::collections::BTreeSet::new();
    let mut anchors = std::collections::BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        anchors.insert(slug(title));
        let num = title.split_whitespace().next().unwrap_or_default();
        let num = num.trim_end_matches('.');
        if !num.is_empty() && num.split('.').all(|p| p.parse::<u32>().is_ok()) {
            numbers.insert(num.to_string());
        }
    }
    assert!(
        numbers.contains("12.4") && numbers.contains("11"),
        "{numbers:?}"
    );

    let is_num = |s: &str| !s.is_empty() && s.split('.').all(|p| p.parse::<u32>().is_ok());
    let mut bad = Vec::new();
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || line.starts_with('#') {
            continue;
        }
        // "see 12.4", "section 12", "sections 5.3 and 5.4".
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            let lead = w[0].trim_start_matches(['(', '[']).to_lowercase();
            if ["see", "section", "sections"].contains(&lead.as_str()) {
                let n = w[1].trim_end_matches([')', ']', ',', '.', ';', ':']);
                if is_num(n) && !numbers.contains(n) {
                    bad.push(format!("line {}: `{} {n}`", i + 1, w[0]));
                }
            }
        }
        // "(12.6)".
        for part in line.split('(').skip(1) {
            let n = part.split(')').next().unwrap_or_default();
            if n.contains('.') && is_num(n) && !numbers.contains(n) {
                bad.push(format!("line {}: `({n})`", i + 1));
            }
        }
        // "[section 12.2](#122-operators)".
        for part in line.split("](#").skip(1) {
            let a = part.split(')').next().unwrap_or_default();
            if !anchors.contains(a) {
                bad.push(format!("line {}: `(#{a})`", i + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "references to no heading:\n{}",
        bad.join("\n")
    );
}

// ---------------------------------------------------------------- item 5

/// LANGUAGE.md said every status of a shared category "needs its id"; the
/// checker (rightly) warns only on a second id-less status of a category.
/// The docs now say what the binary does: one id-less status per category
/// checks clean with --deny warnings, a second one is warned about.
#[test]
fn indistinct_is_documented_as_the_checker_decides() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/LANGUAGE.md");
    let text = std::fs::read_to_string(path).expect("LANGUAGE.md");
    assert!(!text.contains("each of them needs its id"));
    assert!(!text.contains("not all of them have a custom status id"));
    let row = text
        .lines()
        .find(|l| l.starts_with("| `l3map::status::indistinct`"))
        .expect("the 13.4 row");
    assert!(row.contains("two or more"), "{row}");

    let table = |extra: &str| {
        format!(
            "connection desk: zendesk {{\n  subdomain \"acme\"\n  token env(\"ZENDESK_OAUTH_TOKEN\")\n  scopes read, write\n}}\n\nstatuses desk {{\n  new new \"New\"\n  open open \"Open\"\n  callback open \"Callback\" #19400011\n{extra}  solved solved \"Solved\"\n\n  new -> open\n  open, callback -> solved\n  open -> callback\n  solved -> open when comment.author == end_user\n}}\n"
        )
    };
    let one = Project::new("indistinct-one", &[("desk.l3map", &table(""))]);
    let out = l3map(&["check", "--deny", "warnings", one.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let two = Project::new(
        "indistinct-two",
        &[("desk.l3map", &table("  triage open \"Triage\"\n"))],
    );
    let (_, diags) = check(two.path());
    let warned: Vec<&Value> = diags
        .iter()
        .filter(|d| d["code"] == "l3map::status::indistinct")
        .collect();
    assert_eq!(warned.len(), 1, "{}", summary(&diags));
}

// ---------------------------------------------------------------- item 6

/// `l3map fmt` used to say "reformatted 1 of 2 files" and no more: it names
/// each file it rewrites (stdout), as `--check` names each it would.
#[test]
fn fmt_names_each_file_it_rewrites() {
    let messy = "connection desk: zendesk {\nsubdomain \"acme\"\n    token env(\"ZENDESK_OAUTH_TOKEN\")\nscopes read, write\n}\n";
    let p = Project::new("fmt", &[("a.l3map", messy), ("b.l3map", "")]);
    let dir = p.path().to_str().unwrap();
    let out = l3map(&["fmt", "--check", dir]);
    assert_eq!(out.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.trim_end().ends_with("a.l3map"), "{listed}");

    let out = l3map(&["fmt", dir]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(stdout, listed, "the rewritten file is named: {stdout}");
    assert!(stderr.contains("reformatted 1 of 2 files"), "{stderr}");
    assert_ne!(
        std::fs::read_to_string(p.path().join("a.l3map")).unwrap(),
        messy
    );
    // Nothing left to do: nothing named.
    let out = l3map(&["fmt", dir]);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `outbox list --help` showed `(default: .l3map/state.db) [default:
/// .l3map/state.db]`. No option of any command says its default twice.
#[test]
fn no_help_repeats_a_default() {
    fn commands(help: &str) -> Vec<String> {
        help.split("Commands:")
            .nth(1)
            .unwrap_or_default()
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(str::to_string)
            .collect()
    }
    let top = String::from_utf8_lossy(&l3map(&["--help"]).stdout).to_string();
    let mut todo: Vec<Vec<String>> = commands(&top).into_iter().map(|c| vec![c]).collect();
    assert!(todo.len() > 5, "{top}");
    let mut seen = 0;
    let mut bad = Vec::new();
    while let Some(cmd) = todo.pop() {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let help = String::from_utf8_lossy(&l3map(&args).stdout).to_string();
        seen += 1;
        for sub in commands(&help) {
            let mut c = cmd.clone();
            c.push(sub);
            todo.push(c);
        }
        // One option's text runs from its flag to the next flag.
        let mut block = String::new();
        for line in help.lines().chain(["  --end"]) {
            let t = line.trim_start();
            if t.starts_with('-') || t.starts_with('<') || t.starts_with('[') {
                if block.contains("[default:") && block.contains("(default") {
                    bad.push(format!("l3map {}:\n{block}", cmd.join(" ")));
                }
                block.clear();
            }
            block.push_str(line);
            block.push('\n');
        }
    }
    assert!(seen > 8, "only {seen} commands");
    assert!(bad.is_empty(), "defaults said twice:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------- item 7

/// A device-tracking org: a Zendesk drop-down fed by a Salesforce picklist.
const DEVICES: &str = r#"connection desk: zendesk {
  subdomain  "acme"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     read, write
}

connection crm: salesforce {
  instance       "https://acme.my.salesforce.com"
  client_id      env("SF_CLIENT_ID")
  client_secret  env("SF_CLIENT_SECRET")
  refresh_token  env("SF_REFRESH_TOKEN")
  scopes         api, refresh_token, offline_access
  objects        Asset
}

fields desk {
  device_class  #24100001  enum(imaging, infusion, monitoring)
  risk_score    #24100002  number
  contract      #24100003  money(USD)
}

fields crm {
  Asset.Device_Class__c  enum("Imaging System", "Infusion Pump", "Patient Monitor")
}

map crm -> desk {
  Asset.Device_Class__c -> device_class {
    "Imaging System"   => imaging
    "Infusion Pump"    => infusion
    "Patient Monitor"  => monitoring
  }
}

escalation pump_at_risk {
  when    ticket.device_class == infusion and ticket.risk_score > 7 and ticket.contract > $1000
  reason  "An infusion pump at risk gets a person"
  assign  desk "Clinical"
}
"#;

/// `"custom_fields": {"24100001": "Infusion Pump"}` for an
/// `enum(imaging, infusion, ...)` field used to pass `check`, and the test
/// then failed with an obscure actual. Now `check` points at the value:
/// the picklist label gets the tag the `map` writes, a misspelt tag a
/// did-you-mean, text in a number or money field says what to write.
/// Values a real ticket carries (the tag, a number, decimal text) pass.
#[test]
fn a_custom_field_value_outside_its_type_fails_check_at_the_value() {
    let text = format!(
        "{DEVICES}{}{}",
        test_block(
            "label_not_tag",
            r#"{"kind": "agent_turn", "ticket": {"id": 1, "custom_fields": {"24100001": "Infusion Pump", "24100002": "high", "24100003": "lots"}}}"#,
            "expect group desk \"Clinical\"",
        ),
        test_block(
            "misspelt_tag",
            r#"{"kind": "agent_turn", "ticket": {"id": 2, "custom_fields": {"24100001": "infusoin", "24100002": 8, "24100003": "1500.00"}}}"#,
            "expect group desk \"Clinical\"",
        ),
    );
    let p = Project::new("field-value", &[("desk.l3map", &text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 1, "{}", summary(&diags));
    let bad: Vec<&Value> = diags
        .iter()
        .filter(|d| d["code"] == "l3map::test::field_value")
        .collect();
    assert_eq!(bad.len(), 4, "{}", summary(&diags));
    assert_eq!(diags.len(), 4, "nothing else: {}", summary(&diags));
    // In the events, not in the `map` above them.
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains("custom_fields") && l.contains(needle))
            .map(|i| i as u64 + 1)
            .expect("the line")
    };
    let col_of = |needle: &str| {
        let l = text
            .lines()
            .find(|l| l.contains("custom_fields") && l.contains(needle))
            .expect("the line");
        l[..l.find(needle).expect("on the line")].chars().count() as u64 + 1
    };
    let at = |needle: &str| {
        bad.iter()
            .find(|d| {
                d["line"].as_u64() == Some(line_of(needle))
                    && d["column"].as_u64() == Some(col_of(needle))
            })
            .unwrap_or_else(|| panic!("no diagnostic at {needle}: {}", summary(&diags)))
    };
    let label = at("\"Infusion Pump\"");
    assert_eq!(label["end_column"], col_of("\"Infusion Pump\"") + 15);
    assert!(
        label["message"]
            .as_str()
            .unwrap()
            .contains("`Infusion Pump`"),
        "{}",
        summary(&diags)
    );
    let help = label["help"].as_str().unwrap();
    assert!(
        help.contains("`map crm -> desk` writes it to `device_class` as `infusion`")
            && help.contains("write \"infusion\""),
        "{help}"
    );
    assert_eq!(at("\"infusoin\"")["help"], "did you mean `infusion`?");
    assert!(
        at("\"high\"")["help"]
            .as_str()
            .unwrap()
            .contains("write a number"),
        "{}",
        summary(&diags)
    );
    assert!(
        at("\"lots\"")["help"]
            .as_str()
            .unwrap()
            .contains("\"64000.00\""),
        "{}",
        summary(&diags)
    );

    // Written as a real ticket carries them, the same tests check and pass.
    let fixed = text
        .replace("\"Infusion Pump\"", "\"infusion\"")
        .replace("\"infusoin\"", "\"infusion\"")
        .replace("\"high\"", "\"8.5\"")
        .replace("\"lots\"", "\"2000.00\"");
    let p = Project::new("field-value-ok", &[("desk.l3map", &fixed)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 0, "{}", summary(&diags));
    let out = l3map(&["test", p.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- item 8

/// `expect field desk 24100001 = imaging` said "unexpected 24100001;
/// expected a field name or }", `#24100001` "unexpected #", and `set desk
/// ticket.device_class = ...` talked about Salesforce fields on a Zendesk
/// connection. Each now says what to write, naming the alias even when the
/// `fields` block is in another file.
#[test]
fn a_field_written_by_id_or_path_gets_its_alias() {
    let fields =
        format!("{DESK}\nfields desk {{\n  device_class  #24100001  enum(imaging, infusion)\n}}\n");
    let rules = "escalation imaging_fault {\n  when    ticket.device_class == imaging\n  reason  \"Imaging faults\"\n  set     desk ticket.device_class = infusion\n}\n\ntest by_id {\n  event \"\"\"{\"kind\": \"agent_turn\", \"ticket\": {\"id\": 1}}\"\"\"\n  expect field desk 24100001 = imaging\n}\n\ntest by_hash_id {\n  event \"\"\"{\"kind\": \"agent_turn\", \"ticket\": {\"id\": 1}}\"\"\"\n  expect field desk #24100001 = imaging\n}\n\ntest by_unknown_id {\n  event \"\"\"{\"kind\": \"agent_turn\", \"ticket\": {\"id\": 1}}\"\"\"\n  expect field desk #777 = imaging\n}\n";
    let p = Project::new(
        "field-ref",
        &[("desk.l3map", &fields), ("rules.l3map", rules)],
    );
    let (code, diags) = check(p.path());
    assert_eq!(code, 1, "{}", summary(&diags));
    let got: Vec<(String, String)> = diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["help"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let code = "l3map::syntax::field_ref".to_string();
    assert_eq!(
        got,
        vec![
            (code.clone(), "write `device_class` without `ticket.`".into()),
            (
                code.clone(),
                "write the field's alias (`device_class`), not its id".into()
            ),
            (
                code.clone(),
                "write the field's alias (`device_class`), not its id".into()
            ),
            (
                code,
                "no `fields desk` block declares #777: declare it (`ALIAS #777 TYPE`) and write the alias here".into()
            ),
        ],
        "{}",
        summary(&diags)
    );
    // Pointed at what was written, `#` included.
    let hash = diags
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap_or_default()
                .contains("`#24100001`")
        })
        .unwrap_or_else(|| panic!("{}", summary(&diags)));
    assert_eq!(hash["column"], 21);
    assert_eq!(hash["end_column"], 30);
    assert!(diags.iter().all(|d| !d["message"]
        .as_str()
        .unwrap_or_default()
        .contains("Salesforce")));
}

/// In a `fields` block the id without an alias is a declaration missing its
/// name, not a use of the id: the help says how to declare it.
#[test]
fn a_field_declared_without_an_alias_is_told_to_name_it() {
    let text = format!("{DESK}\nfields desk {{\n  #24100009  number\n}}\n");
    let p = Project::new("field-no-alias", &[("desk.l3map", &text)]);
    let (code, diags) = check(p.path());
    assert_eq!(code, 1, "{}", summary(&diags));
    let d = diags
        .iter()
        .find(|d| d["code"] == "l3map::syntax::field_ref")
        .unwrap_or_else(|| panic!("{}", summary(&diags)));
    assert_eq!(d["message"], "the field `#24100009` has no alias");
    assert!(
        d["help"]
            .as_str()
            .unwrap_or_default()
            .contains("`ALIAS #24100009 TYPE`"),
        "{}",
        summary(&diags)
    );
}
