//! Hot reload, driven from the outside against the real `l3map run`: an
//! edit compiles once and then the runtime is idle (the watcher used to
//! react to its own reads and recompile many times a second, forever); a
//! broken save is refused once; SIGHUP compiles once; and an editor that
//! truncates a file, pauses, then writes it never has the empty file
//! decide anything; a save that pauses with more than half the file
//! written and the file still open never goes live (Linux); and a
//! Kubernetes ConfigMap-style symlink swap reloads.

use crate::common;

use common::stack;
use common::wait_for;

use stack::{Stack, AGENT_TOKEN};
use std::time::{Duration, Instant};

/// A sample's value in the metrics text (`None`: no such series).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn compiles(s: &Stack) -> f64 {
    let m = s.metrics().await;
    sample(&m, "l3map_reload_compiles_total")
        .unwrap_or_else(|| panic!("no l3map_reload_compiles_total in:\n{m}"))
}

async fn revision(s: &Stack) -> String {
    s.health().await["revision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// CPU time (user + system) the process used so far, in clock ticks.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15: 12 and 13 after the state.
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// Over `window` the compile counter stays at `expected` and, on Linux,
/// the runtime uses under a fifth of one core (the spin kept one busy).
async fn stays_idle(s: &Stack, expected: f64, window: Duration) {
    #[cfg(target_os = "linux")]
    let before = cpu_ticks(s.runtime_pid().expect("running"));
    let started = Instant::now();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(compiles(s).await, expected, "compiled again while idle");
    }
    #[cfg(target_os = "linux")]
    {
        // Ticks are 1/100 s on Linux (USER_HZ).
        let used = (cpu_ticks(s.runtime_pid().expect("running")) - before) as f64 / 100.0;
        let wall = started.elapsed().as_secs_f64();
        assert!(
            used < wall * 0.2,
            "the runtime used {used:.2} s of CPU in {wall:.1} s of idling"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_edit_compiles_once_then_the_runtime_is_idle() {
    let s = Stack::start("trust-reload-edit", "").await;
    let first = revision(&s).await;
    assert_eq!(compiles(&s).await, 0.0, "nothing compiled by reload yet");
    let file = s.mappings().join("escalations.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    let edited = text.replace(
        "Customer reports an unauthorised transaction",
        "Customer reports a card payment they did not make",
    );
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).expect("edit");
    wait_for("the new revision", Duration::from_secs(15), || async {
        revision(&s).await != first
    })
    .await;
    assert_eq!(compiles(&s).await, 1.0, "one edit, one compile");
    stays_idle(&s, 1.0, Duration::from_secs(4)).await;

    // Saving the same bytes again (an editor's ":w" with no change) is a
    // file event but compiles nothing.
    std::fs::write(&file, &edited).expect("same bytes");
    stays_idle(&s, 1.0, Duration::from_secs(2)).await;

    // Reading the files (an indexer, a backup, `l3map check`) is no change.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
        .arg("check")
        .arg(s.mappings())
        .output()
        .expect("check runs");
    assert!(check.status.success());
    stays_idle(&s, 1.0, Duration::from_secs(2)).await;
    let m = s.metrics().await;
    assert_eq!(sample(&m, r#"l3map_reloads_total{result="ok"}"#), Some(1.0));
    assert_eq!(
        s.log().matches("mappings reloaded").count(),
        1,
        "{}",
        s.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_save_is_refused_once_not_in_a_stream() {
    let s = Stack::start("trust-reload-broken", "").await;
    let first = revision(&s).await;
    let file = s.mappings().join("escalations.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    let broken = text.replace(
        "status  desk pending_risk_review",
        "status  desk no_such_status",
    );
    assert_ne!(broken, text);
    std::fs::write(&file, &broken).expect("break");
    wait_for("the refusal", Duration::from_secs(15), || async {
        s.log().contains("do not compile")
    })
    .await;
    stays_idle(&s, 1.0, Duration::from_secs(4)).await;
    let log = s.log();
    assert_eq!(log.matches("do not compile").count(), 1, "{log}");
    assert_eq!(revision(&s).await, first, "the old revision keeps serving");
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, r#"l3map_reloads_total{result="failed"}"#),
        Some(1.0)
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_compiles_once() {
    // Sent as soon as /healthz answers (Stack::start waits for that), a
    // moment before the watcher starts: `run` listens for SIGHUP from
    // before its port opens, so this one is a reload too.
    let s = Stack::start("trust-reload-hup", "").await;
    let pid = s.runtime_pid().expect("running");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let first = revision(&s).await;
    wait_for(
        "the compile SIGHUP asked for",
        Duration::from_secs(15),
        || async { compiles(&s).await >= 1.0 },
    )
    .await;
    stays_idle(&s, 1.0, Duration::from_secs(4)).await;
    assert_eq!(revision(&s).await, first, "same files, same revision");
}

/// An editor that truncates the file, pauses (longer than the old 50 ms
/// debounce) and then writes: the empty `escalations.l3map` compiles (to
/// "hand nothing off") but must never become the live revision. Agent
/// turns sent during the save are all decided with the escalations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_then_write_save_never_serves_the_empty_file() {
    save_in_two_steps("trust-reload-truncate", |_| String::new()).await;
}

/// The same with a first chunk that compiles on its own: the template and
/// the first escalation (cut at a declaration's end), without the fraud
/// escalation the turns need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_written_in_chunks_never_serves_the_first_chunk() {
    save_in_two_steps("trust-reload-chunks", |edited| {
        let cut = edited
            .find("escalation suspected_fraud")
            .expect("the fraud escalation");
        edited[..cut].to_string()
    })
    .await;
}

/// Saves escalations.l3map as `first(final text)`, a pause with agent
/// turns, then the final text; no turn may be decided by the first step.
async fn save_in_two_steps(name: &str, first_step: impl Fn(&str) -> String) {
    let s = Stack::start(name, "").await;
    let first = revision(&s).await;
    let ticket = s
        .create_ticket("Charge I do not know", "standard", None)
        .await;
    let file = s.mappings().join("escalations.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    let edited = text.replace(
        "Customer reports an unauthorised transaction",
        "Customer reports a card payment they did not make",
    );
    assert_ne!(edited, text);

    let turn = |n: usize| {
        let http = s.http.clone();
        let url = format!("{}/v1/turns", s.runtime);
        async move {
            let r = http
                .post(url)
                .bearer_auth(AGENT_TOKEN)
                .json(&serde_json::json!({
                    "turn_id": format!("during-save-{n}"),
                    "ticket": ticket,
                    "intent": "fraud_report",
                    "summary": "A charge I did not make",
                }))
                .send()
                .await
                .expect("turn");
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.expect("json")
        }
    };

    // The save: truncate (and write the first chunk), pause while turns
    // arrive, write the rest.
    std::fs::write(&file, first_step(&edited)).expect("first step");
    let mut answers = Vec::new();
    let paused = Instant::now();
    let mut n = 0;
    while paused.elapsed() < Duration::from_millis(800) {
        answers.push(turn(n).await);
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&file, &edited).expect("write");
    // And turns until the new revision serves.
    let written = Instant::now();
    loop {
        n += 1;
        let a = turn(n).await;
        let moved = a["revision"] != first.as_str();
        answers.push(a);
        if moved {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(15),
            "the edited revision never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for a in &answers {
        assert!(
            a["handoff_comment"].is_string(),
            "a turn during the save was decided without the escalations: {a}"
        );
    }
    let last = answers.last().expect("answers");
    assert!(
        last["handoff_comment"]
            .as_str()
            .unwrap_or_default()
            .contains("a card payment they did not make"),
        "{last}"
    );
    let revisions: std::collections::BTreeSet<&str> = answers
        .iter()
        .filter_map(|a| a["revision"].as_str())
        .collect();
    assert_eq!(
        revisions.len(),
        2,
        "only the old and the new: {revisions:?}"
    );
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, r#"l3map_reloads_total{result="ok"}"#),
        Some(1.0),
        "one swap, to the finished file"
    );
    assert_eq!(
        s.log().matches("mappings reloaded").count(),
        1,
        "{}",
        s.log()
    );
}

/// The part of escalations.l3map from `from` up to the next declaration
/// (or the tests).
fn block(text: &str, from: &str) -> String {
    let start = text.find(from).expect("the block");
    let rest = &text[start + from.len()..];
    let end = ["\nescalation ", "\n// ----"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .expect("the block's end");
    text[start..start + from.len() + end + 1].to_string()
}

/// Red team F3: a save that writes more than half the file, pauses with
/// the file still open, then writes the rest. The first part compiles on
/// its own (without the fraud escalation); while the file is open no
/// revision may go live (the old code swapped after 150 ms of quiet and
/// lost the fraud hand-offs of the pause). After the close: one swap.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_save_with_the_file_open_never_goes_live_half_written() {
    use std::io::Write;
    let s = Stack::start("trust-reload-open", "").await;
    let first = revision(&s).await;
    let ticket = s
        .create_ticket("Charge I do not know", "standard", None)
        .await;
    let file = s.mappings().join("escalations.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    // The new file: the template, two escalations, a comment, and the
    // fraud escalation (with a new reason) last.
    let head = text[..text.find("// Amounts compare").expect("refund")].to_string()
        + &block(&text, "escalation refund_over_threshold")
        + "\n"
        + &block(&text, "escalation angry_enterprise_customer")
        + "\n"
        + &"// Fraud goes to the risk team; its wording was reviewed.\n".repeat(30)
        + "\n";
    let fraud = block(&text, "escalation suspected_fraud").replace(
        "Customer reports an unauthorised transaction",
        "Customer reports a card payment they did not make",
    );
    let edited = head.clone() + &fraud;
    // More than half of the live file and of the new one: no "cut" hold.
    assert!(head.len() * 2 > text.len() && head.len() * 2 > edited.len());
    // The first part alone compiles: the old code made it live.
    let probe = tempdir_with(&s, &head);
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
        .arg("check")
        .arg(&probe)
        .output()
        .expect("check runs");
    assert!(
        check.status.success(),
        "the first part must compile on its own: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let turn = |n: usize| {
        let http = s.http.clone();
        let url = format!("{}/v1/turns", s.runtime);
        async move {
            let r = http
                .post(url)
                .bearer_auth(AGENT_TOKEN)
                .json(&serde_json::json!({
                    "turn_id": format!("open-save-{n}"),
                    "ticket": ticket,
                    "intent": "fraud_report",
                    "summary": "A charge I did not make",
                }))
                .send()
                .await
                .expect("turn");
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.expect("json")
        }
    };

    let mut f = std::fs::File::create(&file).expect("open for writing");
    f.write_all(head.as_bytes()).expect("first part");
    f.flush().expect("flush");
    // The pause, well over the 150 ms quiet rule; the file stays open.
    let paused = Instant::now();
    let mut n = 0;
    while paused.elapsed() < Duration::from_millis(2500) {
        let a = turn(n).await;
        n += 1;
        assert!(
            a["handoff_comment"].is_string(),
            "a turn during the open save was decided without the fraud escalation: {a}"
        );
        assert_eq!(a["revision"], first.as_str(), "{a}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(compiles(&s).await, 0.0, "compiled a file still open");
    assert_eq!(revision(&s).await, first, "swapped while the file was open");
    assert!(
        s.log().contains("not yet closed"),
        "the wait is logged:\n{}",
        s.log()
    );

    f.write_all(fraud.as_bytes()).expect("the rest");
    drop(f);
    wait_for(
        "the finished file to go live",
        Duration::from_secs(20),
        || async { revision(&s).await != first },
    )
    .await;
    let a = turn(n + 1).await;
    assert!(
        a["handoff_comment"]
            .as_str()
            .unwrap_or_default()
            .contains("a card payment they did not make"),
        "{a}"
    );
    stays_idle(&s, 1.0, Duration::from_secs(2)).await;
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, r#"l3map_reloads_total{result="ok"}"#),
        Some(1.0),
        "exactly one swap, to the finished file"
    );
}

/// A copy of the stack's project with `escalations` as escalations.l3map.
fn tempdir_with(s: &Stack, escalations: &str) -> std::path::PathBuf {
    let probe = s.dir.join("probe");
    std::fs::create_dir_all(&probe).expect("probe dir");
    for entry in std::fs::read_dir(s.mappings()).expect("mappings") {
        let p = entry.expect("entry").path();
        if p.is_file() {
            std::fs::copy(&p, probe.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::write(probe.join("escalations.l3map"), escalations).expect("write");
    probe
}

/// Red team F4: the Kubernetes ConfigMap layout. kyc.l3map is a link to
/// `..data/kyc.l3map`, `..data` a link to `..v1`; an update writes `..v2`
/// and renames a new link over `..data`. No `.l3map` path is named by
/// that rename; the old code compiled nothing until SIGHUP.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_symlink_swap_reloads() {
    use std::os::unix::fs::symlink;
    let s = Stack::start("trust-reload-configmap", "").await;
    let first = revision(&s).await;
    let dir = s.mappings();
    let text = std::fs::read_to_string(dir.join("kyc.l3map")).expect("read");

    // Lay the project out as the kubelet does; same bytes as before.
    std::fs::create_dir(dir.join("..v1")).expect("..v1");
    std::fs::write(dir.join("..v1/kyc.l3map"), &text).expect("v1");
    symlink("..v1", dir.join("..data")).expect("..data");
    std::fs::remove_file(dir.join("kyc.l3map")).expect("rm");
    symlink("..data/kyc.l3map", dir.join("kyc.l3map")).expect("link");
    // Identical bytes through the links compile nothing.
    stays_idle(&s, 0.0, Duration::from_secs(3)).await;
    assert_eq!(revision(&s).await, first);

    // The update: the new version in its own folder first...
    let edited = text.replace(
        "only Compliance may unlock the account or raise limits",
        "Compliance alone may unlock the account or raise limits",
    );
    assert_ne!(edited, text);
    std::fs::create_dir(dir.join("..v2")).expect("..v2");
    std::fs::write(dir.join("..v2/kyc.l3map"), &edited).expect("v2");
    // (the live file does not change by that)
    stays_idle(&s, 0.0, Duration::from_secs(2)).await;
    // ...then `ln -s ..v2 ..data_tmp && mv -T ..data_tmp ..data`.
    symlink("..v2", dir.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("mv -T");
    wait_for(
        "the swapped ConfigMap to go live",
        Duration::from_secs(20),
        || async { revision(&s).await != first },
    )
    .await;
    stays_idle(&s, 1.0, Duration::from_secs(2)).await;
    let m = s.metrics().await;
    assert_eq!(sample(&m, r#"l3map_reloads_total{result="ok"}"#), Some(1.0));
    // The kubelet then removes the old version: nothing to compile.
    std::fs::remove_dir_all(dir.join("..v1")).expect("rm ..v1");
    stays_idle(&s, 1.0, Duration::from_secs(2)).await;
}
