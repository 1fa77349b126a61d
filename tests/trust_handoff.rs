//! A hand-off happens once per (escalation, record) across revisions,
//! unless the escalation itself changes in meaning (docs/RUNTIME.md, "What
//! re-arms a hand-off"). Its idempotency key used to hash the revision, so
//! any edit anywhere (even `l3map fmt`) wrote a second private note and
//! moved the ticket back to the hand-off group, undoing a person's
//! reassignment.
//!
//! A property test edits the fintech project in ways that keep every
//! escalation's meaning and checks no hand-off key moves; one that changes
//! an escalation's meaning checks its keys (and only its) move; and the
//! real binary, edited while serving, never hands a ticket off twice.

use crate::common;

use common::stack;
use common::wait_for;
use common::REFUND_TURN as REFUND;

use l3map::eval::decide::decide;
use l3map::eval::Event;
use l3map::ir::Program;
use l3map::syntax::SourceMap;
use proptest::prelude::*;
use reqwest::Method;
use stack::Stack;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

type Files = Vec<(String, String)>;

fn fintech() -> Files {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    let mut files: Files = std::fs::read_dir(&dir)
        .expect("mappings/fintech")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "l3map"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

fn compile(files: &Files) -> Program {
    let mut sources = SourceMap::new();
    for (name, text) in files {
        sources.add(format!("mappings/fintech/{name}"), text.clone());
    }
    let checked = l3map::compile::check(&sources, None);
    assert!(
        !checked.has_errors(),
        "the edit broke the project: {}",
        l3map::diagnostics::render_human(&checked.diagnostics, &sources, false)
    );
    l3map::compile::lower(&checked, &sources).expect("compiles")
}

const FRAUD: &str = r#"{"id":"evt-fraud-1","kind":"ticket_updated","at":"2026-11-11T10:00:00Z",
  "ticket":{"id":4300,"status":"open","custom_fields":{"360001238":"fraud_claim"}}}"#;

/// Every hand-off key of the project: each escalation's id, and the keys
/// `decide` gives two events that trigger two of them.
fn keys(p: &Program) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = p
        .escalations
        .iter()
        .map(|e| (e.name.clone(), vec![e.handoff_id(&p.templates).to_string()]))
        .collect();
    for json in [REFUND, FRAUD] {
        let ev = Event::from_json(json).expect("event");
        let d = decide(p, &ev);
        assert!(!d.actions.is_empty(), "{json} hands off");
        for a in &d.actions {
            let name = a.rule.to_string();
            out.entry(name).or_default().push(a.idempotency_key.clone());
        }
    }
    out
}

/// Splits a file into its top-level declarations (each starts with a
/// keyword at column 0); the text before the first one stays first.
fn items(text: &str) -> (String, Vec<String>) {
    const STARTS: [&str; 8] = [
        "connection ",
        "statuses ",
        "fields ",
        "map ",
        "sku ",
        "template ",
        "escalation ",
        "test ",
    ];
    let (mut head, mut items) = (String::new(), Vec::<String>::new());
    for line in text.split_inclusive('\n') {
        if STARTS.iter().any(|s| line.starts_with(s)) {
            items.push(String::new());
        }
        match items.last_mut() {
            Some(item) => item.push_str(line),
            None => head.push_str(line),
        }
    }
    (head, items)
}

/// An edit that keeps every escalation's meaning.
#[derive(Debug, Clone)]
enum Keep {
    /// A comment line before a declaration.
    Comment { file: usize, item: usize },
    /// Blank lines before a declaration.
    Blank {
        file: usize,
        item: usize,
        lines: usize,
    },
    /// More space between an escalation's words (outside strings).
    Spaces { times: usize },
    /// The declarations of a file in another order.
    Reorder { file: usize, seed: u64 },
    /// A declaration moved to a new file.
    Move { file: usize, item: usize },
    /// Another rule edited: a test renamed, a field mapping's arm changed.
    OtherRule { which: usize },
    /// `l3map fmt` on every file.
    Format,
}

fn apply(files: &mut Files, edit: &Keep, moved: &mut usize) {
    let pick = |n: usize, len: usize| n % len.max(1);
    match edit {
        Keep::Comment { file, item } | Keep::Blank { file, item, .. } => {
            let f = pick(*file, files.len());
            let (head, mut its) = items(&files[f].1);
            if its.is_empty() {
                return;
            }
            let i = pick(*item, its.len());
            let insert = match edit {
                Keep::Blank { lines, .. } => "\n".repeat(1 + lines % 3),
                _ => "// reviewed by ops, nothing changes here\n".into(),
            };
            its[i].insert_str(0, &insert);
            files[f].1 = head + &its.concat();
        }
        Keep::Spaces { times } => {
            let f = files
                .iter()
                .position(|(n, _)| n == "escalations.l3map")
                .expect("escalations.l3map");
            let wide = " ".repeat(1 + times % 4);
            files[f].1 = files[f]
                .1
                .replace(
                    "comment desk handoff",
                    &format!("comment{wide}desk handoff"),
                )
                .replace("assign  desk", &format!("assign{wide} desk"))
                .replace(" or ", &format!("{wide}or{wide}"));
        }
        Keep::Reorder { file, seed } => {
            let f = pick(*file, files.len());
            let (head, mut its) = items(&files[f].1);
            // Each declaration ends with a newline once the last one has.
            for it in &mut its {
                if !it.ends_with('\n') {
                    it.push('\n');
                }
            }
            let mut s = *seed;
            for i in (1..its.len()).rev() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                its.swap(i, (s >> 33) as usize % (i + 1));
            }
            files[f].1 = head + &its.concat();
        }
        Keep::Move { file, item } => {
            let f = pick(*file, files.len());
            let (head, mut its) = items(&files[f].1);
            if its.is_empty() {
                return;
            }
            let it = its.remove(pick(*item, its.len()));
            files[f].1 = head + &its.concat();
            *moved += 1;
            files.push((format!("moved_{moved}.l3map"), it));
        }
        Keep::OtherRule { which } => {
            let (from, to) = match which % 3 {
                0 => (
                    "test suspected_fraud_goes_to_the_risk_team",
                    "test suspected_fraud_goes_to_the_risk_team_again",
                ),
                1 => ("=> premium", "=> enterprise"),
                _ => (
                    "test agent_picks_up_a_new_ticket",
                    "test an_agent_picks_up_a_new_ticket",
                ),
            };
            // Wherever an earlier edit moved it (gone when edited before).
            if let Some((_, text)) = files.iter_mut().find(|(_, t)| t.contains(from)) {
                *text = text.replacen(from, to, 1);
            }
        }
        Keep::Format => {
            for (name, text) in files.iter_mut() {
                *text = l3map::fmt::format(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

fn keep() -> impl Strategy<Value = Keep> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(file, item)| Keep::Comment { file, item }),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(file, item, lines)| Keep::Blank { file, item, lines }),
        any::<usize>().prop_map(|times| Keep::Spaces { times }),
        (any::<usize>(), any::<u64>()).prop_map(|(file, seed)| Keep::Reorder { file, seed }),
        (any::<usize>(), any::<usize>()).prop_map(|(file, item)| Keep::Move { file, item }),
        any::<usize>().prop_map(|which| Keep::OtherRule { which }),
        Just(Keep::Format),
    ]
}

proptest! {
    // 48 cases: each compiles the fintech project twice.
    #![proptest_config(common::proptest_config(48, 0x4a_0ff5))]

    #[test]
    fn meaning_preserving_edits_never_move_a_handoff_key(edits in prop::collection::vec(keep(), 1..6)) {
        let base = fintech();
        let before = keys(&compile(&base));
        let mut files = base.clone();
        let mut moved = 0;
        for e in &edits {
            apply(&mut files, e, &mut moved);
        }
        let edited = compile(&files);
        prop_assert_eq!(&before, &keys(&edited), "after {:?}", edits);
    }
}

/// Each change of one escalation's meaning re-arms that escalation alone;
/// a change of the template it renders re-arms each escalation that
/// renders it.
#[test]
fn meaning_changes_rearm_only_the_escalation_changed() {
    let base = fintech();
    let before = compile(&base);
    let ids = |p: &Program| -> BTreeMap<String, String> {
        p.escalations
            .iter()
            .map(|e| (e.name.clone(), e.handoff_id(&p.templates).to_string()))
            .collect()
    };
    let old = ids(&before);
    let cases: [(&str, &str, &str, &[&str]); 6] = [
        // The condition.
        (
            "escalations.l3map",
            "> $200 or",
            "> $300 or",
            &["refund_over_threshold"],
        ),
        // The reason.
        (
            "escalations.l3map",
            "Customer reports an unauthorised transaction",
            "Customer reports an unknown transaction",
            &["suspected_fraud"],
        ),
        // An action.
        (
            "escalations.l3map",
            "\"Fraud Operations\"",
            "\"Payments Tier 2\"",
            &["suspected_fraud"],
        ),
        // The name.
        (
            "escalations.l3map",
            "escalation angry_enterprise_customer",
            "escalation upset_enterprise_customer",
            &["angry_enterprise_customer", "upset_enterprise_customer"],
        ),
        // The template two escalations render... and the third.
        (
            "escalations.l3map",
            "AI hand-off: {{ escalation.reason }}",
            "AI hand-off to a person: {{ escalation.reason }}",
            &[
                "refund_over_threshold",
                "suspected_fraud",
                "angry_enterprise_customer",
            ],
        ),
        // Another file's escalation.
        (
            "kyc.l3map",
            "assign  desk \"Compliance\"",
            "assign  desk \"Fraud Operations\"",
            &["kyc_verification_failed"],
        ),
    ];
    for (file, from, to, moved) in cases {
        let mut files = base.clone();
        let f = files.iter_mut().find(|(n, _)| n == file).expect("file");
        assert!(f.1.contains(from), "{file} has no {from}");
        f.1 = f.1.replacen(from, to, 1);
        let new = ids(&compile(&files));
        for name in old.keys().chain(new.keys()) {
            let same = old.get(name) == new.get(name);
            assert_eq!(
                same,
                !moved.contains(&name.as_str()),
                "{from} -> {to}: {name} {}",
                if same { "kept its key" } else { "was re-armed" }
            );
        }
    }
}

async fn revision(s: &Stack) -> String {
    s.health().await["revision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn group_id(s: &Stack, name: &str) -> serde_json::Value {
    let groups = s.zendesk(Method::GET, "/api/v2/groups.json", None).await;
    groups["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == name))
        .map(|g| g["id"].clone())
        .unwrap_or_else(|| panic!("no group {name}: {groups}"))
}

/// An update a person makes on the ticket, and the runtime having decided
/// it (the webhook arrived, its actions are done).
async fn update(s: &Stack, ticket: u64, body: serde_json::Value) {
    let events = |h: serde_json::Value| h["outbox"]["events"].as_u64().unwrap_or(0);
    let before = events(s.health().await);
    // Zendesk's `updated_at` has whole seconds, and an update in the same
    // second as the last one may be taken for it: a second apart, this
    // update is surely a new event the runtime decides.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.zendesk(
        Method::PUT,
        &format!("/api/v2/tickets/{ticket}.json"),
        Some(serde_json::json!({ "ticket": body })),
    )
    .await;
    wait_for("the update's webhook", Duration::from_secs(15), || async {
        events(s.health().await) > before
    })
    .await;
    s.drained(Duration::from_secs(15)).await;
}

/// Edits a mapping file while the runtime serves and waits for the new
/// revision.
async fn edit(s: &Stack, file: &str, from: &str, to: &str) {
    let path = s.mappings().join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no {from}");
    let before = revision(s).await;
    std::fs::write(&path, text.replacen(from, to, 1)).expect("edit");
    wait_for("the edited revision", Duration::from_secs(15), || async {
        revision(s).await != before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_while_serving_never_hand_a_ticket_off_twice() {
    let s = Stack::start("trust-handoff", "").await;
    let ticket = s
        .create_ticket(
            "Card charged twice in Lisbon",
            "standard",
            Some("fraud_claim"),
        )
        .await;
    wait_for("the hand-off note", Duration::from_secs(15), || async {
        !s.private_notes(ticket).await.is_empty()
    })
    .await;
    s.drained(Duration::from_secs(15)).await;
    // A person takes the ticket to another group.
    let payments = group_id(&s, "Payments Tier 2").await;
    update(&s, ticket, serde_json::json!({ "group_id": payments })).await;

    let stays = |when: &'static str| {
        let s = &s;
        let payments = payments.clone();
        async move {
            let notes = s.private_notes(ticket).await;
            assert_eq!(notes.len(), 1, "{when}: {notes:?}");
            let t = s
                .zendesk(Method::GET, &format!("/api/v2/tickets/{ticket}.json"), None)
                .await;
            assert_eq!(
                t["ticket"]["group_id"], payments,
                "{when}: the person's reassignment was undone"
            );
        }
    };
    stays("after the reassignment").await;

    // A one-word edit to another file, then the ticket is updated.
    edit(
        &s,
        "kyc.l3map",
        "Identity verification failed",
        "Identity check failed",
    )
    .await;
    update(&s, ticket, serde_json::json!({ "tags": ["vip"] })).await;
    stays("after an edit to kyc.l3map").await;

    // Spaces inside the escalations' own file.
    edit(
        &s,
        "escalations.l3map",
        "comment desk handoff\n  assign  desk \"Fraud Operations\"",
        "comment   desk    handoff\n  assign      desk \"Fraud Operations\"",
    )
    .await;
    update(&s, ticket, serde_json::json!({ "tags": ["vip", "lisbon"] })).await;
    stays("after re-spacing the escalation").await;

    // `l3map fmt` puts the layout back.
    let before = revision(&s).await;
    let fmt = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
        .arg("fmt")
        .arg(s.mappings())
        .output()
        .expect("fmt runs");
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stderr)
    );
    wait_for(
        "the formatted revision",
        Duration::from_secs(15),
        || async { revision(&s).await != before },
    )
    .await;
    update(&s, ticket, serde_json::json!({ "tags": ["vip"] })).await;
    stays("after l3map fmt").await;

    // Changing what the escalation does re-arms it: documented, and seen.
    edit(
        &s,
        "escalations.l3map",
        "Customer reports an unauthorised transaction",
        "Customer reports a card payment they did not make",
    )
    .await;
    update(&s, ticket, serde_json::json!({ "tags": ["lisbon"] })).await;
    let notes = s.private_notes(ticket).await;
    assert_eq!(
        notes.len(),
        2,
        "a changed escalation hands off again: {notes:?}"
    );
    assert!(
        notes[1].contains("a card payment they did not make"),
        "{notes:?}"
    );
}
