//! What the integration tests share: the binary, temp projects, waiting
//! with a deadline, HTTP answers as JSON, one proptest configuration, and
//! the two ways to stand the runtime beside the emulators ([`stack`]: the
//! real processes, as a user runs them; [`rig`]: in process, when a test
//! reads the engine or the emulators' state directly).
//!
//! The three test binaries (`tests/language.rs`, `vendors.rs`, `e2e.rs`)
//! each hold this folder as `crate::common`, and none uses every helper:
//! unused ones are not dead code, only unused there.
#![allow(dead_code)]

pub mod logs;
pub mod proxy;
pub mod rig;
pub mod stack;

use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use serde_json::Value;
use std::fmt::Display;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The fintech desk's refund hand-off: an agent turn asking for $250 back
/// on premium ticket 4211, whose Case is named.
pub const REFUND_TURN: &str = r#"{"id":"evt-refund-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
  "ticket":{"id":4211,"status":"in_progress","custom_fields":{"360001234":"premium"}},
  "turn":{"intent":"refund","summary":"Wants a refund for order 1182",
          "attempts":["looked up order 1182","offered store credit"],"sentiment":"negative",
          "refund_amount":{"amount":"250.00","currency":"USD"}},
  "records":{"Case":{"Id":"5003k00001AbCdE"}}}"#;

/// The checkout: examples, docs and fixtures are read from here.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `l3map` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_l3map");

/// `l3map` as a command, run from the checkout (relative paths such as
/// `mappings/fintech` then read as ops type them).
pub fn l3map() -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(root());
    c
}

// ------------------------------------------------------------------ temp dirs

/// A fresh directory, removed when dropped; `name` is part of its path so
/// a kept one (see [`keep_on_panic`]) says which test made it.
pub fn temp_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("l3map-{name}-"))
        .tempdir()
        .expect("a temp dir")
}

/// Keeps `dir` on disk when the test is panicking, so its logs and state
/// can be read after a failure; removes it otherwise.
pub fn keep_on_panic(dir: TempDir) {
    if std::thread::panicking() {
        let kept = dir.keep();
        eprintln!("kept {} for inspection", kept.display());
    }
}

/// A project of the given files (name, text) in a fresh directory.
pub fn project(name: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = temp_dir(name);
    for (file, text) in files {
        std::fs::write(dir.path().join(file), text).expect("write project file");
    }
    dir
}

/// Copies the `.l3map` files of `from` into `to` (created if needed),
/// each through `edit` (the identity when nothing needs changing).
pub fn copy_mappings(from: &Path, to: &Path, edit: impl Fn(&str) -> String) {
    std::fs::create_dir_all(to).expect("project dir");
    for entry in std::fs::read_dir(from).expect("the mappings to copy") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "l3map") {
            let text = std::fs::read_to_string(&path).expect("read");
            std::fs::write(to.join(path.file_name().expect("name")), edit(&text)).expect("write");
        }
    }
}

/// `mappings/NAME` of the checkout.
pub fn example(name: &str) -> PathBuf {
    root().join("mappings").join(name)
}

// ------------------------------------------------------------------ waiting

/// How often a wait looks again: often enough that a test never waits
/// long past its condition, seldom enough not to load the thing it reads.
pub const TICK: Duration = Duration::from_millis(50);

/// Waits until `ok` holds, looking every [`TICK`]; fails naming `what`
/// after `within`.
pub async fn until(what: impl Display, within: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "waited {within:?} for {what}");
        tokio::time::sleep(TICK).await;
    }
}

/// Waits until `probe` gives a value, looking every [`TICK`]; fails after
/// `within` with `what` and the last thing `probe` saw.
pub async fn eventually<T, F, Fut>(what: impl Display, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => assert!(
                started.elapsed() < within,
                "waited {within:?} for {what}: {last}"
            ),
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Waits until the async `check` holds, looking every [`TICK`]; fails
/// naming `what` after `within`. How long it took.
pub async fn wait_for<F, Fut>(what: impl Display, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(TICK).await;
    }
    started.elapsed()
}

/// [`until`] for tests without an async runtime.
pub fn until_blocking(what: impl Display, within: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "waited {within:?} for {what}");
        std::thread::sleep(TICK);
    }
}

// ------------------------------------------------------------------ processes

/// The rest of a child's stdout, line by line.
pub type Lines = std::io::Lines<BufReader<ChildStdout>>;

/// The Zendesk and Salesforce base URLs a spawned `l3map emulate` prints
/// first (its stdout piped), and the lines after them: a caller that keeps
/// the emulator running drains them ([`drain`]) so it never blocks on a
/// full pipe.
pub fn emulator_urls(child: &mut Child) -> (String, String, Lines) {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    let mut url = || {
        let line = lines.next().expect("a line").expect("utf-8");
        line.split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .expect("a local URL")
            .to_string()
    };
    let (zendesk, salesforce) = (url(), url());
    (zendesk, salesforce, lines)
}

/// [`emulator_urls`] and the Salesforce Pub/Sub (gRPC) endpoint, which
/// `l3map emulate` prints on the line after the Salesforce one.
pub fn emulator_endpoints(child: &mut Child) -> (String, String, String, Lines) {
    let (zendesk, salesforce, mut lines) = emulator_urls(child);
    let line = lines.next().expect("a line").expect("utf-8");
    assert!(line.starts_with("Salesforce Pub/Sub"), "{line}");
    let pubsub = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("a local URL")
        .to_string();
    (zendesk, salesforce, pubsub, lines)
}

/// Reads `lines` to their end on a thread of their own.
pub fn drain(lines: Lines) {
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
}

// ------------------------------------------------------------------ HTTP

/// A port nobody listens on right now.
///
/// Drawn below Linux's ephemeral range (32768-60999 by default): a port the
/// kernel handed out for `:0` can be taken by any test's outgoing
/// connection while a runtime restarts on it ("Address already in use",
/// seen with four tests at a time); these are never handed out that way.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = fastrand::u16(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999")
}

/// Sends `req`; its status and body, failing unless the body is JSON.
pub async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("a body");
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{status}: the answer is not JSON: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )
    });
    (status, v)
}

/// A complete HTTP/1.1 response read off a raw socket, with a
/// content-length: its status and JSON body (`None` until all of it came).
pub fn parse_response(raw: &[u8]) -> Option<(u16, Value)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let len: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    })?;
    let body = raw.get(end + 4..end + 4 + len)?;
    Some((status, serde_json::from_slice(body).ok()?))
}

// ------------------------------------------------------------------ proptest

/// The one proptest configuration: `cases` per property (each suite's
/// share of CI time) unless `PROPTEST_CASES` says otherwise; the fixed
/// `seed` unless `PROPTEST_RNG_SEED` says otherwise, so a CI failure
/// replays; no regression files; shrinking bounded (a slow input shrinks
/// for long) unless `PROPTEST_MAX_SHRINK_ITERS` says otherwise.
pub fn proptest_config(cases: u32, seed: u64) -> ProptestConfig {
    // `default()` reads the PROPTEST_* variables.
    let base = ProptestConfig::default();
    let set = |var: &str| std::env::var_os(var).is_some();
    ProptestConfig {
        cases: if set("PROPTEST_CASES") {
            base.cases
        } else {
            cases
        },
        rng_seed: match base.rng_seed {
            RngSeed::Random => RngSeed::Fixed(seed),
            fixed => fixed,
        },
        failure_persistence: None,
        max_shrink_iters: if set("PROPTEST_MAX_SHRINK_ITERS") {
            base.max_shrink_iters
        } else {
            512
        },
        ..base
    }
}
