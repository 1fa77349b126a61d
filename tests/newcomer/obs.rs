//! Issue 14, items 9 and 10: what an operator sees of `l3map run` from the
//! outside. The real binaries (`l3map emulate` + `l3map run --config`) on
//! 127.0.0.1:
//!
//! - logs redirected to a file carry no ANSI escapes, and JSON logs are
//!   flat objects whose lists are JSON arrays and numbers JSON numbers;
//! - `/metrics` is valid OpenMetrics (a strict parser below), follows
//!   Prometheus' naming conventions, says which build runs, has every
//!   series of the documented metrics at start, matches the table in
//!   docs/RUNTIME.md both ways, counts refused requests, and times the
//!   runtime's own API by route template.

use crate::common::stack;

use serde_json::{json, Value};
use stack::{Stack, StackEnv, AGENT_TOKEN};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- logs

/// `l3map run --config CONFIG` with the stack's secrets, stderr to `log`,
/// and `NO_COLOR` removed, so only the terminal rule keeps colour out.
struct Runtime(Child);

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_with_log(stack: &Stack, config: &Path, log: &Path) -> Runtime {
    let child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["run", "--config"])
        .arg(config)
        .stack_env()
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("l3map run starts");
    let mut rt = Runtime(child);
    // Up, and far enough that the Salesforce poller announced itself.
    wait_for(log, &mut rt, |text| {
        text.contains("polling Salesforce by SystemModstamp")
    })
    .await;
    let health = stack
        .http
        .get(format!("{}/healthz", stack.runtime))
        .send()
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    rt
}

async fn wait_for(log: &Path, rt: &mut Runtime, done: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if done(&text) {
            return;
        }
        if let Ok(Some(status)) = rt.0.try_wait() {
            panic!("l3map run exited with {status}:\n{text}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not in the log after 30 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stop(mut rt: Runtime) {
    let _ = Command::new("kill")
        .args(["-TERM", &rt.0.id().to_string()])
        .status();
    let _ = rt.0.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_a_file_have_no_colour_and_json_logs_are_flat_and_typed() {
    let mut stack = Stack::start("obs-logs", "").await;
    stack.kill_runtime();
    let config = stack.dir.join("l3map.toml");

    // Human lines into a file, NO_COLOR unset: still no escape codes.
    let human = stack.dir.join("human.log");
    let rt = run_with_log(&stack, &config, &human).await;
    stop(rt);
    let bytes = std::fs::read(&human).expect("human log");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !bytes.contains(&0x1b),
        "ANSI escapes in a log written to a file:\n{text:?}"
    );
    assert!(text.contains(" INFO "), "{text}");
    let emulate = std::fs::read(stack.dir.join("emulate.log")).unwrap_or_default();
    assert!(!emulate.contains(&0x1b), "{emulate:?}");

    // The same runtime with `[log] format = "json"`.
    let json_config = stack.dir.join("l3map-json.toml");
    let mut toml = std::fs::read_to_string(&config).expect("config");
    toml.push_str("\n[log]\nformat = \"json\"\n");
    std::fs::write(&json_config, toml).expect("json config");
    let json_log = stack.dir.join("json.log");
    let rt = run_with_log(&stack, &json_config, &json_log).await;
    stop(rt);
    let bytes = std::fs::read(&json_log).expect("json log");
    assert!(!bytes.contains(&0x1b));
    let text = String::from_utf8(bytes).expect("utf-8");
    let mut polling = None;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        let o = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(o.get(key).is_some_and(Value::is_string), "{key}: {line}");
        }
        for nested in ["fields", "span", "spans"] {
            assert!(!o.contains_key(nested), "nested {nested}: {line}");
        }
        // Ours first, in a fixed order, then the event's own fields.
        let at = |key: &str| line.find(&format!("\"{key}\":")).unwrap();
        assert!(line.starts_with("{\"timestamp\":"), "{line}");
        assert!(
            at("level") < at("target") && at("target") < at("message"),
            "{line}"
        );
        if o["message"] == "polling Salesforce by SystemModstamp" {
            assert!(at("message") < at("connection"), "{line}");
            polling = Some(v.clone());
        }
    }
    let p = polling.unwrap_or_else(|| panic!("no polling line in:\n{text}"));
    assert_eq!(p["connection"], "crm", "{p}");
    assert_eq!(p["level"], "INFO", "{p}");
    // The target is part of the line's contract (RUST_LOG filters, alerts
    // on it; docs/RUNTIME.md shows this one): moving code between files
    // must not rename it. Every poller line keeps the poller's target.
    assert_eq!(p["target"], "l3map::runtime::poll", "{p}");
    for line in text.lines().filter(|l| l.contains("poll")) {
        let v: Value = serde_json::from_str(line).expect("json");
        if v["message"].as_str().is_some_and(|m| m.contains("polling")) {
            assert_eq!(v["target"], "l3map::runtime::poll", "{line}");
        }
    }
    // A list is a JSON array of strings, a number a JSON number.
    let objects = p["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("objects is not a JSON array: {p}"));
    assert!(
        objects.contains(&json!("Case")) && objects.iter().all(Value::is_string),
        "{p}"
    );
    assert!(p["interval_ms"].is_u64(), "{p}");
}

// ------------------------------------------------------------- metrics

#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// A strict reading of the OpenMetrics text format
/// (<https://github.com/OpenObservability/OpenMetrics/blob/main/specification/OpenMetrics.md>),
/// panicking at the first line that breaks it, plus Prometheus' naming
/// conventions (<https://prometheus.io/docs/practices/naming/>).
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    assert!(text.ends_with("# EOF\n"), "no final # EOF:\n{text}");
    let body = &text[..text.len() - "# EOF\n".len()];
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut help: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series: BTreeSet<String> = BTreeSet::new();
    for (n, line) in body.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (what, name, rest) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            assert!(is_name(name, true), "bad family name, {}", at());
            if current.as_deref() != Some(name) {
                assert!(
                    !families.contains_key(name),
                    "family {name} split in two, {}",
                    at()
                );
                current = Some(name.to_owned());
            }
            match what {
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "info"].contains(&rest),
                        "type {rest}, {}",
                        at()
                    );
                    families.insert(
                        name.to_owned(),
                        Family {
                            kind: rest.to_owned(),
                            samples: vec![],
                        },
                    );
                }
                "HELP" => {
                    assert!(rest.len() > 10, "thin help, {}", at());
                    help.insert(name.to_owned());
                }
                "UNIT" => assert!(
                    name.ends_with(&format!("_{rest}")) && !rest.is_empty(),
                    "unit not the name's suffix, {}",
                    at()
                ),
                _ => panic!("unknown # line, {}", at()),
            }
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{}", at());
        let family_name = current
            .clone()
            .unwrap_or_else(|| panic!("sample before # TYPE, {}", at()));
        let family = families
            .get_mut(&family_name)
            .unwrap_or_else(|| panic!("sample before # TYPE, {}", at()));
        // name{labels} value
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{}", at()));
        let name = &line[..name_end];
        let suffixes: &[&str] = match family.kind.as_str() {
            "counter" => &["_total", "_created"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            _ => &["_info"],
        };
        assert!(
            suffixes
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family_name.as_str())),
            "sample {name} does not belong to {} {family_name}, {}",
            family.kind,
            at()
        );
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut s = inner;
            loop {
                if let Some(after) = s.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let eq = s.find('=').unwrap_or_else(|| panic!("{}", at()));
                let key = &s[..eq];
                assert!(is_name(key, false), "label name {key:?}, {}", at());
                let mut chars = s[eq + 1..].char_indices();
                assert_eq!(chars.next().map(|c| c.1), Some('"'), "{}", at());
                let mut value = String::new();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = Some(eq + 1 + i + 1);
                            break;
                        }
                        '\\' => match chars.next().map(|c| c.1) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?}, {}", at()),
                        },
                        '\n' => panic!("raw newline in a label, {}", at()),
                        c => value.push(c),
                    }
                }
                let end = end.unwrap_or_else(|| panic!("unclosed label value, {}", at()));
                assert!(
                    labels.insert(key.to_owned(), value).is_none(),
                    "label {key} twice, {}",
                    at()
                );
                s = &s[end..];
                if let Some(after) = s.strip_prefix(',') {
                    s = after;
                    assert!(!s.starts_with('}'), "trailing comma, {}", at());
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value, {}", at()));
        assert!(
            !value.contains(' '),
            "exemplars or timestamps unexpected, {}",
            at()
        );
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value, {}", at())),
        };
        let key = format!("{name}{labels:?}");
        assert!(series.insert(key), "the same series twice, {}", at());
        match family.kind.as_str() {
            "counter" => assert!(value.is_finite() && value >= 0.0, "{}", at()),
            "info" => assert_eq!(value, 1.0, "{}", at()),
            _ => {}
        }
        family.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for (name, f) in &families {
        assert!(help.contains(name), "{name} has no # HELP");
        assert!(name.starts_with("l3map_"), "{name} is not l3map_-prefixed");
        // Prometheus: `_total` only on counters' samples, not in the
        // family name; a duration in seconds says so.
        assert!(!name.ends_with("_total"), "{name}");
        if name.contains("latency") || name.contains("duration") || name.contains("_age") {
            assert!(name.ends_with("_seconds"), "{name} is not in seconds");
        }
        if f.kind == "histogram" {
            check_histogram(name, f);
        }
    }
    families
}

/// Buckets per series: increasing bounds, cumulative counts, `+Inf` last
/// and equal to `_count`.
fn check_histogram(name: &str, f: &Family) {
    let mut by_series: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in &f.samples {
        let mut labels = s.labels.clone();
        labels.remove("le");
        by_series.entry(format!("{labels:?}")).or_default().push(s);
    }
    for (labels, samples) in by_series {
        let buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .map(|s| {
                let le = &s.labels["le"];
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                };
                (bound, s.value)
            })
            .collect();
        assert!(!buckets.is_empty(), "{name}{labels}: no buckets");
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{name}{labels}: buckets not increasing and cumulative: {buckets:?}"
        );
        let last = buckets.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{name}{labels}: no +Inf bucket");
        let count = samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .unwrap_or_else(|| panic!("{name}{labels}: no _count"));
        assert_eq!(last.1, count.value, "{name}{labels}: +Inf != _count");
        assert!(samples.iter().any(|s| s.name.ends_with("_sum")));
    }
}

/// One row of the table: name, type, and each label with its values.
type Documented = (String, String, Vec<(String, Vec<String>)>);

/// The metric table of docs/RUNTIME.md: exposition name, type, and per
/// label the values listed as present from start.
fn documented() -> Vec<Documented> {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/RUNTIME.md"))
            .expect("docs/RUNTIME.md");
    let section = docs
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a Metrics section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut out = vec![];
    for row in section.lines().filter(|l| l.starts_with("| `l3map_")) {
        let cols: Vec<&str> = row
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        assert_eq!(cols.len(), 4, "{row}");
        let name = cols[0].trim_matches('`').to_owned();
        let labels = cols[2]
            .split("; ")
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (label, values) = l.split_once(": ").unwrap_or((l, ""));
                let values = values
                    .split(", ")
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect();
                (label.trim().trim_matches('`').to_owned(), values)
            })
            .collect();
        out.push((name, cols[1].to_owned(), labels));
    }
    assert!(out.len() > 15, "the table was not found: {out:?}");
    out
}

/// The name docs use for a family: what its samples are called.
fn doc_name(family: &str, kind: &str) -> String {
    match kind {
        "counter" => format!("{family}_total"),
        "info" => format!("{family}_info"),
        _ => family.to_owned(),
    }
}

fn value(f: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    f.values()
        .flat_map(|f| &f.samples)
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
}

async fn scrape(stack: &Stack) -> (String, BTreeMap<String, Family>) {
    let resp = stack
        .http
        .get(format!("{}/metrics", stack.runtime))
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    let text = resp.text().await.expect("text");
    let families = parse_exposition(&text);
    (text, families)
}

async fn turn(stack: &Stack, body: &Value) -> (u16, Value) {
    let resp = stack
        .http
        .post(format!("{}/v1/turns", stack.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(body)
        .send()
        .await
        .expect("turn");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_documented_present_from_start_and_count_what_they_say() {
    let stack = Stack::start("obs-metrics", "").await;

    // Right after start.
    let (text, families) = scrape(&stack).await;

    // Which build.
    let build = &families
        .get("l3map_build")
        .expect("l3map_build_info")
        .samples;
    assert_eq!(build.len(), 1, "{text}");
    assert_eq!(build[0].labels["version"], env!("CARGO_PKG_VERSION"));
    let revision = &build[0].labels["revision"];
    assert!(!revision.is_empty(), "{text}");
    let given = std::env::var("L3MAP_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let head = given.or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    });
    if let Some(head) = head {
        assert_eq!(revision, &head, "built from another commit?");
    }

    // The table in docs/RUNTIME.md and /metrics, both ways.
    let docs = documented();
    let documented_names: BTreeSet<(String, String)> = docs
        .iter()
        .map(|(n, k, _)| (n.clone(), k.clone()))
        .collect();
    let exposed: BTreeSet<(String, String)> = families
        .iter()
        .map(|(name, f)| (doc_name(name, &f.kind), f.kind.clone()))
        .collect();
    assert_eq!(
        documented_names.difference(&exposed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented, not in /metrics (or another type)"
    );
    assert_eq!(
        exposed.difference(&documented_names).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in /metrics, not documented (or another type)"
    );
    // Every documented label value has its series from the start; a
    // `connection` label has both of the mappings' connections.
    for (name, kind, labels) in &docs {
        let family = families
            .iter()
            .find(|(f, fam)| &doc_name(f, &fam.kind) == name && &fam.kind == kind)
            .map(|(_, f)| f)
            .unwrap();
        for (label, values) in labels {
            let values: Vec<&str> = if label == "connection" {
                vec!["desk", "crm"]
            } else {
                values.iter().map(String::as_str).collect()
            };
            if values.is_empty() {
                assert!(
                    family.samples.iter().any(|s| s.labels.contains_key(label)),
                    "{name}: no series with {label}"
                );
            }
            for v in values {
                assert!(
                    family
                        .samples
                        .iter()
                        .any(|s| s.labels.get(label).map(String::as_str) == Some(v)),
                    "{name}: no series with {label}=\"{v}\" at start:\n{text}"
                );
            }
        }
    }
    // At zero, not merely present.
    for (kind, result) in [("set_status", "refused"), ("comment", "parked")] {
        assert_eq!(
            value(
                &families,
                "l3map_actions_total",
                &[("kind", kind), ("result", result)]
            ),
            Some(0.0),
            "{text}"
        );
    }
    assert_eq!(
        value(
            &families,
            "l3map_events_rejected_total",
            &[("source", "agent"), ("reason", "unauthorized")]
        ),
        Some(0.0)
    );

    // A refused request is counted, once.
    let ticket = stack.create_ticket("Close it now", "standard", None).await;
    let body = json!({"turn_id": "obs-close-1", "ticket": ticket, "intent": "question",
                      "requested_status": "closed"});
    let (status, v) = turn(&stack, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["refused"][0]["what"], "status new -> closed", "{v}");
    let refused = [("kind", "set_status"), ("result", "refused")];
    let (_, f) = scrape(&stack).await;
    assert_eq!(value(&f, "l3map_actions_total", &refused), Some(1.0));
    // The agent retries the same turn: a duplicate refuses nothing new.
    let (status, v) = turn(&stack, &body).await;
    assert_eq!((status, &v["duplicate"]), (200, &json!(true)), "{v}");
    // One unauthenticated call, one context read, one scanner.
    let anonymous = stack
        .http
        .post(format!("{}/v1/turns", stack.runtime))
        .json(&body)
        .send()
        .await
        .expect("turn");
    assert_eq!(anonymous.status(), 401);
    let context = stack
        .http
        .get(format!("{}/v1/context/{ticket}", stack.runtime))
        .bearer_auth(AGENT_TOKEN)
        .send()
        .await
        .expect("context");
    assert_eq!(context.status(), 200);
    let scanner = stack
        .http
        .get(format!("{}/wp-admin/{ticket}.php", stack.runtime))
        .send()
        .await
        .expect("scanner");
    assert_eq!(scanner.status(), 404);

    let (text, f) = scrape(&stack).await;
    assert_eq!(value(&f, "l3map_actions_total", &refused), Some(1.0));
    let count = |route: &str, method: &str, status: &str| {
        value(
            &f,
            "l3map_http_request_duration_seconds_count",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(count("/v1/turns", "POST", "2xx"), Some(2.0), "{text}");
    assert_eq!(count("/v1/turns", "POST", "4xx"), Some(1.0), "{text}");
    assert_eq!(
        count("/v1/context/{ticket}", "GET", "2xx"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(count("other", "GET", "4xx"), Some(1.0), "{text}");
    // Route templates, never paths: no ticket id, no scanner's path.
    assert!(!text.contains(&format!("/v1/context/{ticket}")), "{text}");
    assert!(!text.contains("wp-admin"), "{text}");
    assert!(
        f["l3map_http_request_duration_seconds"]
            .samples
            .iter()
            .all(|s| s.labels["route"].starts_with('/') || s.labels["route"] == "other"),
        "{text}"
    );
}
