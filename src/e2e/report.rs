//! What `l3map e2e` found: one serialisable report, printed as a table or
//! as JSON. Every step says whether it passed and, when not, why in words
//! a support-ops engineer can act on.

use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub run_id: String,
    pub mappings: String,
    pub revision: String,
    pub passed: bool,
    pub steps: Vec<Step>,
    pub scenarios: Vec<Scenario>,
    /// Test blocks that cannot run live, and why (`l3map test` still runs
    /// them offline).
    pub skipped: Vec<Skipped>,
    pub coverage: Vec<Coverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    pub cleanup: Cleanup,
    pub seconds: f64,
}

/// One line of the sequence: the webhook, the actions, the load, cleanup.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A `test` block run live: its turn sent to the agent API on a ticket
/// created for it, its decision checked against the block's `expect`
/// lines, and every action read back from the API.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub test: String,
    /// `file:line`.
    pub at: String,
    pub ticket: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    pub turn_ms: u64,
    pub actions: Vec<Verified>,
    /// `expect` lines that did not hold for the live decision.
    pub failures: Vec<String>,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub test: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub connection: String,
    pub record: String,
    pub kind: String,
    pub rule: String,
    /// Applied, then seen on the target when read back.
    pub visible: bool,
    /// The outbox state at the end: done, dead, pending.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An action type the mappings can write, and whether a live scenario
/// wrote and read it back.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub connection: String,
    pub kind: String,
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// Zendesk requests per minute the runtime was asked to make.
    pub requests_per_minute: u32,
    /// Zendesk requests per (emulator) minute it made, over the load and
    /// the drain after it.
    pub made_per_minute: f64,
    /// The Zendesk token's limit, requests per minute.
    pub limit_per_minute: u32,
    /// Emulator time runs this many times faster (1 = real minutes).
    pub time_scale: u32,
    pub seconds: f64,
    pub turns: u64,
    pub turns_refused: u64,
    pub actions: u64,
    pub applied: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub api_calls: u64,
    /// Errors other than 429s, over calls.
    pub api_errors: u64,
    pub error_rate: f64,
    pub rate_limited: u64,
    pub retries: u64,
    pub turn_ms_p50: u64,
    pub turn_ms_p95: u64,
    pub turn_ms_p99: u64,
    /// From the last turn to the outbox empty: how long the backlog took.
    pub drain_seconds: f64,
    /// Latency the emulators added to every answer (0 on a live target:
    /// the API's own).
    pub api_latency_ms: u64,
    /// Zendesk requests the runtime's token made from the first turn of
    /// the load to the outbox empty: counted at the emulator, or on a live
    /// target by the runtime's own metrics.
    pub zendesk_requests: u64,
    /// Zendesk actions the load applied.
    pub zendesk_actions: u64,
    /// `zendesk_requests / zendesk_actions` (target ≤ 1.1).
    pub requests_per_action: f64,
    /// The most requests of the runtime's token in any sliding window of
    /// the limit's length, over the whole run, measured at the emulator;
    /// `None` on a live target (Zendesk does not report it).
    pub max_per_window: Option<u32>,
    /// Requests that arrived when the window ending there already held
    /// the limit (target 0).
    pub windows_over: Option<u64>,
    /// The load and the drain after it in slices of equal length (at most
    /// [`super::timeline::MAX_SLICES`]): what the HTML report charts.
    pub timeline: Vec<Slice>,
}

/// One slice of the load (or of the drain after it).
#[derive(Debug, Clone, Serialize)]
pub struct Slice {
    /// Seconds since the load's first turn.
    pub from_s: f64,
    pub to_s: f64,
    /// Turns sent in this slice, and their latency percentiles (none in
    /// the drain).
    pub turns: u64,
    pub turn_ms_p50: Option<u64>,
    pub turn_ms_p95: Option<u64>,
    pub turn_ms_p99: Option<u64>,
    /// Zendesk requests of the runtime's token in this slice.
    pub requests: u64,
    /// The token's limit over this slice (its emulator minutes × the
    /// limit per minute).
    pub limit: f64,
    /// `limit - requests`: the budget left in the slice (negative: over).
    pub remaining: f64,
    /// HTTP 429 answers in this slice.
    pub rate_limited: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleanup {
    pub kept: bool,
    pub tickets_deleted: u64,
    pub records_deleted: u64,
    pub failed: Vec<String>,
}

impl Load {
    /// What was asked: "250 Zendesk requests/min against a 200/min token
    /// for 121 s" (the text and the HTML report say it the same way).
    pub fn headline(&self) -> String {
        format!(
            "{} Zendesk requests/min against a {}/min token for {:.0} s{}",
            self.requests_per_minute,
            self.limit_per_minute,
            self.seconds,
            if self.time_scale > 1 {
                format!(" (emulator time ×{})", self.time_scale)
            } else {
                String::new()
            }
        )
    }

    /// The load's measures, each with its target: (what, how it went).
    pub fn measures(&self) -> [(&'static str, String); 8] {
        let l = self;
        [
            (
                "requests",
                format!(
                    "the runtime made {:.0} Zendesk requests/min (asked for {})",
                    l.made_per_minute, l.requests_per_minute
                ),
            ),
            ("turns", format!("{} ({} refused)", l.turns, l.turns_refused)),
            (
                "actions",
                format!(
                    "{} decided, {} applied, {} lost, {} duplicated",
                    l.actions, l.applied, l.lost, l.duplicated
                ),
            ),
            (
                "API",
                format!(
                    "{} calls, {} errors besides 429 ({:.2} %, target < 0.5 %), {} × 429, {} retries",
                    l.api_calls,
                    l.api_errors,
                    l.error_rate * 100.0,
                    l.rate_limited,
                    l.retries
                ),
            ),
            (
                "turn latency",
                format!(
                    "p50 {} ms, p95 {} ms, p99 {} ms (target < {} ms){}",
                    l.turn_ms_p50,
                    l.turn_ms_p95,
                    l.turn_ms_p99,
                    super::MAX_TURN_MS,
                    if l.api_latency_ms > 0 {
                        format!(", with {} ms API latency", l.api_latency_ms)
                    } else {
                        String::new()
                    }
                ),
            ),
            (
                "rate windows",
                match (l.max_per_window, l.windows_over) {
                    (Some(max), Some(over)) => format!(
                        "at most {max} requests in any sliding window against {}; {over} windows over the limit (target 0)",
                        l.limit_per_minute
                    ),
                    _ => "not measured (only the emulator sees every request)".into(),
                },
            ),
            (
                "per action",
                format!(
                    "{:.2} Zendesk requests per applied Zendesk action ({} requests, {} actions; target ≤ {})",
                    l.requests_per_action,
                    l.zendesk_requests,
                    l.zendesk_actions,
                    super::MAX_REQUESTS_PER_ACTION
                ),
            ),
            (
                "backlog",
                format!("drained {:.1} s after the last turn", l.drain_seconds),
            ),
        ]
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok  "
    } else {
        "FAIL"
    }
}

impl Report {
    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "l3map e2e against {} — run {} — {} (revision {})",
            self.target, self.run_id, self.mappings, self.revision
        );
        let _ = writeln!(o);
        for s in &self.steps {
            let _ = writeln!(o, "  {} {:<10} {}", mark(s.passed), s.name, s.detail);
        }
        if !self.scenarios.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(o, "  scenarios (test blocks run live):");
            for sc in &self.scenarios {
                let _ = writeln!(
                    o,
                    "    {} {:<52} ticket {:<6} {:>5} ms  {}",
                    mark(sc.passed),
                    sc.test,
                    sc.ticket,
                    sc.turn_ms,
                    sc.at
                );
                for a in &sc.actions {
                    let seen = if a.visible { "read back" } else { "NOT SEEN" };
                    let _ = writeln!(
                        o,
                        "           {:<6} {:<22} {:<13} {:<9} {}{}",
                        a.connection,
                        a.record,
                        a.kind,
                        seen,
                        a.state,
                        a.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    );
                }
                for f in &sc.failures {
                    let _ = writeln!(o, "           expectation failed: {f}");
                }
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(o, "  not runnable live (l3map test runs them offline):");
            for sk in &self.skipped {
                let _ = writeln!(o, "    -    {:<52} {}", sk.test, sk.why);
            }
        }
        if !self.coverage.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(o, "  action types the mappings write:");
            for c in &self.coverage {
                let _ = writeln!(
                    o,
                    "    {} {} {}{}",
                    mark(c.verified),
                    c.connection,
                    c.kind,
                    if c.verified {
                        ""
                    } else {
                        "  (no test block exercises it live: add one)"
                    }
                );
            }
        }
        if let Some(l) = &self.load {
            let _ = writeln!(o);
            let _ = writeln!(o, "  load: {}", l.headline());
            for (k, v) in l.measures() {
                let _ = writeln!(o, "    {k:<13} {v}");
            }
        }
        let _ = writeln!(o);
        let c = &self.cleanup;
        let _ = writeln!(
            o,
            "  cleanup: {}",
            if c.kept {
                "kept everything (--keep)".to_string()
            } else {
                format!(
                    "{} tickets and {} Salesforce records deleted{}",
                    c.tickets_deleted,
                    c.records_deleted,
                    if c.failed.is_empty() {
                        String::new()
                    } else {
                        format!("; could not delete: {}", c.failed.join(", "))
                    }
                )
            }
        );
        let _ = writeln!(
            o,
            "\n{} in {:.1} s",
            if self.passed { "PASSED" } else { "FAILED" },
            self.seconds
        );
        o
    }
}
