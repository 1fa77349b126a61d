//! Sample events for the three example projects in `mappings/`.
//!
//! ```text
//! cargo run --example gen_events                    # all projects, default seed and count
//! cargo run --example gen_events -- --project shop --count 5000 --seed 7 --out /tmp/events
//! cargo run --example gen_events -- --scenarios     # the scenario table (Markdown)
//! ```
//!
//! Writes `tests/data/events/{fintech,saas,shop}.jsonl`: one normalised event
//! (docs/EVENTS.md) per line, [`DEFAULT_COUNT`] lines per project unless told
//! otherwise. `tests/sample_events.rs` regenerates the files in memory and
//! fails when the checked-in ones differ, then checks that the sample fires
//! every rule of `mappings/`.
//!
//! What the events cover, per project: a weighted table of scenarios (see
//! `fintech::SCENARIOS`, `saas::SCENARIOS`, `shop::SCENARIOS`), each a small
//! function building the one to three events of a situation the way the sources send them:
//! Zendesk webhooks and polls, Salesforce change events and REST reads,
//! AI-agent turns. Between them they exercise every status transition
//! (allowed and refused), every field mapping (with unknown picklist values),
//! every escalation (refund amounts on both sides of $200, exactly 200.00
//! included), every SKU rule (products spelled in English, Bahasa Indonesia,
//! Thai, Japanese, full-width and half-width) and plenty of quiet events that
//! must do nothing. On top of the scenarios:
//!
//! - one line in every [`BROKEN_EVERY`] is deliberately unreadable (truncated
//!   JSON, a missing `kind`, `"ticket":{"id":"abc"}`, an amount `"2,50"`,
//!   ...) so `l3map plan` and `diff` exercise their error paths;
//! - a webhook or change event is delivered twice, byte for byte, with a
//!   [`REDELIVERY_PERCENT`] chance: the redelivery keeps its `id` and `at`;
//! - time starts at 2026-11-11T00:00:00Z and every event is at least one
//!   second after the previous one, so `at` never decreases down a file.
//!
//! Deterministic: no clock, no environment, one `ChaCha8Rng` per project
//! (seed, then stream = the project's index), and only `next_u64` is used —
//! rand's range and choice helpers may change their output between releases,
//! ChaCha8's stream may not. Same seed and count, byte-identical files.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The seed the checked-in files were generated with.
pub const DEFAULT_SEED: u64 = 1111;
/// Lines per project file, broken lines and redeliveries included.
pub const DEFAULT_COUNT: usize = 1200;
/// One line in every `BROKEN_EVERY` is unreadable on purpose.
pub const BROKEN_EVERY: usize = 100;
/// Chance (percent) that Zendesk or Salesforce delivers an event twice.
pub const REDELIVERY_PERCENT: usize = 2;

// ------------------------------------------------------------- projects

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Project {
    Fintech,
    Saas,
    Shop,
}

impl Project {
    pub const ALL: [Project; 3] = [Project::Fintech, Project::Saas, Project::Shop];

    pub fn name(self) -> &'static str {
        match self {
            Project::Fintech => "fintech",
            Project::Saas => "saas",
            Project::Shop => "shop",
        }
    }

    pub fn from_name(name: &str) -> Option<Project> {
        Project::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn scenarios(self) -> &'static [Scenario] {
        match self {
            Project::Fintech => fintech::SCENARIOS,
            Project::Saas => saas::SCENARIOS,
            Project::Shop => shop::SCENARIOS,
        }
    }

    /// Ticket ids start where a desk of that age would be.
    fn first_ticket(self) -> u64 {
        match self {
            Project::Fintech => 218_400,
            Project::Saas => 91_020,
            Project::Shop => 530_118,
        }
    }
}

/// One kind of situation, and how often it comes up relative to the others.
pub struct Scenario {
    pub name: &'static str,
    pub weight: usize,
    pub what: &'static str,
    build: fn(&mut Gen) -> Vec<Event>,
}

/// The whole file for `project`: `count` lines, each ending in a newline.
pub fn generate(project: Project, count: usize, seed: u64) -> String {
    let mut g = Gen::new(project, seed);
    let scenarios = project.scenarios();
    let total: usize = scenarios.iter().map(|s| s.weight).sum();
    let mut lines: Vec<String> = Vec::with_capacity(count + 4);
    let mut block = 0;
    let mut next_broken = g.below(BROKEN_EVERY);
    let mut breakage = g.below(broken::KINDS.len());
    while lines.len() < count {
        // The broken line goes in at the first scenario boundary at or after
        // its slot, so every block of BROKEN_EVERY lines holds about one.
        if lines.len() >= next_broken {
            lines.push(broken::line(&mut g, project, breakage));
            breakage += 1;
            block += BROKEN_EVERY;
            next_broken = block + g.below(BROKEN_EVERY);
            continue;
        }
        let mut pick = g.below(total);
        let scenario = scenarios
            .iter()
            .find(|s| {
                let hit = pick < s.weight;
                pick = pick.saturating_sub(s.weight);
                hit
            })
            .expect("bug: the pick is below the total weight");
        for ev in (scenario.build)(&mut g) {
            let line = ev.to_line();
            let again = ev.redeliverable && g.chance(REDELIVERY_PERCENT);
            lines.push(line.clone());
            if again {
                lines.push(line);
            }
        }
    }
    lines.truncate(count);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The scenario tables as Markdown, for tests/data/README.md.
pub fn scenario_table() -> String {
    let mut s =
        String::from("| project | scenario | weight | what it sends |\n|---|---|---:|---|\n");
    for p in Project::ALL {
        for sc in p.scenarios() {
            s.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                p.name(),
                sc.name,
                sc.weight,
                sc.what
            ));
        }
    }
    s
}

// ------------------------------------------------------------------ CLI

/// Writes sample event files for the example projects in mappings/.
#[derive(clap::Parser)]
struct Args {
    /// fintech, saas, shop or all.
    #[arg(long, default_value = "all")]
    project: String,
    /// Lines per file, broken lines and redeliveries included.
    #[arg(long, default_value_t = DEFAULT_COUNT)]
    count: usize,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Directory for the .jsonl files [default: tests/data/events].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the scenario table as Markdown and write nothing.
    #[arg(long)]
    scenarios: bool,
}

fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    let args = Args::parse();
    if args.scenarios {
        print!("{}", scenario_table());
        return std::process::ExitCode::SUCCESS;
    }
    let projects: Vec<Project> = match args.project.as_str() {
        "all" => Project::ALL.to_vec(),
        name => match Project::from_name(name) {
            Some(p) => vec![p],
            None => {
                eprintln!("--project: expected fintech, saas, shop or all, found {name:?}");
                return std::process::ExitCode::from(2);
            }
        },
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/events"));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("{}: {e}", out.display());
        return std::process::ExitCode::FAILURE;
    }
    for p in projects {
        let path = out.join(format!("{}.jsonl", p.name()));
        if let Err(e) = std::fs::write(&path, generate(p, args.count, args.seed)) {
            eprintln!("{}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
        println!("wrote {} ({} lines)", path.display(), args.count);
    }
    std::process::ExitCode::SUCCESS
}

// ------------------------------------------------------------ the event

pub const TICKET_CREATED: &str = "ticket_created";
pub const TICKET_UPDATED: &str = "ticket_updated";
pub const COMMENT_ADDED: &str = "comment_added";
pub const RECORD_CHANGED: &str = "record_changed";
pub const AGENT_TURN: &str = "agent_turn";

/// The normalised event. Structs rather than `json!` so the key order on
/// the line is the documented one whatever serde_json features are on.
#[derive(Serialize, Clone, Debug)]
pub struct Event {
    id: String,
    kind: &'static str,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<Ticket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<Comment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn: Option<Turn>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    records: BTreeMap<&'static str, Record>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changed: Vec<String>,
    /// Webhooks and change events are retried by their source; agent turns
    /// come from our own process and are not.
    #[serde(skip)]
    redeliverable: bool,
}

impl Event {
    fn to_line(&self) -> String {
        serde_json::to_string(self).expect("bug: an event always serialises")
    }
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct Ticket {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requester_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requester_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    custom_fields: BTreeMap<String, Json>,
}

impl Ticket {
    /// Only the id: what a Salesforce record linked to the ticket gives.
    fn linked(id: u64) -> Ticket {
        Ticket {
            id,
            ..Ticket::default()
        }
    }

    fn field(mut self, id: u64, value: Json) -> Ticket {
        self.custom_fields.insert(id.to_string(), value);
        self
    }

    fn tag(mut self, tag: &str) -> Ticket {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.into());
        }
        self
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct Comment {
    body: String,
    author: &'static str,
    public: bool,
}

#[derive(Serialize, Clone, Debug)]
pub struct Money {
    amount: String,
    currency: String,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct Turn {
    #[serde(skip_serializing_if = "Option::is_none")]
    intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attempts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sentiment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_amount: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product: Option<String>,
}

/// A Salesforce record, `Id` first, fields in the order Salesforce lists them.
#[derive(Clone, Debug, Default)]
pub struct Record(Vec<(&'static str, Json)>);

impl Record {
    fn new(id: String) -> Record {
        Record(vec![("Id", Json::String(id))])
    }

    fn with(mut self, field: &'static str, value: impl Into<Json>) -> Record {
        self.0.push((field, value.into()));
        self
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn text(s: &str) -> Option<String> {
    Some(s.to_string())
}

// ------------------------------------------------------------ generator

/// Randomness, the clock and the id counters of one project's file.
pub struct Gen {
    rng: ChaCha8Rng,
    /// Milliseconds since the Unix epoch.
    now_ms: i64,
    next_ticket: u64,
    /// How many status requests so far: they take the project's table of
    /// moves in turn, so every transition shows up whatever the seed.
    moves: usize,
}

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Gen {
    fn new(project: Project, seed: u64) -> Gen {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // A stream per project: generating one project alone gives the same
        // file as generating all three.
        rng.set_stream(project as u64);
        Gen {
            rng,
            now_ms: START.as_millisecond(),
            next_ticket: project.first_ticket(),
            moves: 0,
        }
    }

    /// Uniform in `0..n` (multiply-shift; the bias is far below anything
    /// a sample file could show).
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "bug: below(0)");
        ((u128::from(self.rng.next_u64()) * n as u128) >> 64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// Inclusive range.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Up to `max` distinct items, in the list's order.
    fn some_of(&mut self, items: &[&str], max: usize) -> Vec<String> {
        let n = self.below(max + 1);
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < n.min(items.len()) {
            let i = self.below(items.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        chosen.into_iter().map(|i| items[i].to_string()).collect()
    }

    /// Advances the clock (at least a second, so `at` never goes back
    /// even where Zendesk drops the milliseconds) and returns it.
    fn tick(&mut self) -> i64 {
        self.now_ms += self.between(1_000, 75_000);
        self.now_ms
    }

    /// The next of `moves` status requests, in turn.
    fn next_move<'a>(&mut self, moves: &'a [Move]) -> &'a Move {
        self.moves += 1;
        &moves[self.moves % moves.len()]
    }

    fn ticket_id(&mut self) -> u64 {
        self.next_ticket += 1 + self.below(6) as u64;
        self.next_ticket
    }

    /// A Salesforce Id: key prefix, pod, padding and a base-62 tail; 15
    /// characters, or 18 with the case-safe suffix as the API returns it.
    fn sf_id(&mut self, prefix: &str) -> String {
        let pod = self.pick(&["3k", "5e", "8d", "Dn"]);
        let mut id = format!("{prefix}{pod}0000");
        while id.len() < 15 {
            id.push(BASE62[self.below(BASE62.len())] as char);
        }
        if self.chance(50) {
            let suffix = sf_suffix(&id);
            id.push_str(&suffix);
        }
        id
    }

    /// A ULID for time `ms`, as Zendesk gives webhook deliveries.
    fn ulid(&mut self, ms: i64) -> String {
        let mut s = String::with_capacity(26);
        for i in (0..10).rev() {
            s.push(CROCKFORD[((ms >> (i * 5)) & 31) as usize] as char);
        }
        for _ in 0..16 {
            s.push(CROCKFORD[self.below(32)] as char);
        }
        s
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    /// A Salesforce change event's transactionKey (UUID-shaped).
    fn transaction_key(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }

    /// A Zendesk webhook delivery; Zendesk keeps its id on a retry.
    fn webhook(&mut self, kind: &'static str, ticket: Ticket) -> Event {
        let ms = self.tick();
        Event {
            id: self.ulid(ms),
            kind,
            at: stamp(ms, false),
            ticket: Some(ticket),
            comment: None,
            turn: None,
            records: BTreeMap::new(),
            changed: vec![],
            redeliverable: true,
        }
    }

    /// A ticket read by the poller: its id is the ticket and its update time.
    fn poll(&mut self, kind: &'static str, ticket: Ticket) -> Event {
        let at = stamp(self.tick(), false);
        Event {
            id: format!("zendesk:ticket:{}:{at}", ticket.id),
            kind,
            at,
            ticket: Some(ticket),
            comment: None,
            turn: None,
            records: BTreeMap::new(),
            changed: vec![],
            redeliverable: false,
        }
    }

    fn comment(&mut self, ticket: Ticket, author: &'static str, body: &str) -> Event {
        let public = author == "end_user" || self.chance(70);
        let mut ev = self.webhook(COMMENT_ADDED, ticket);
        ev.comment = Some(Comment {
            body: body.into(),
            author,
            public,
        });
        ev
    }

    /// An AI-agent turn: conversation id and turn number.
    fn turn(&mut self, ticket: Ticket, turn: Turn) -> Event {
        let ms = self.tick();
        let conversation = self.ulid(ms - 600_000);
        let n = 1 + self.below(6);
        Event {
            id: format!("agent:{conversation}:turn:{n}"),
            kind: AGENT_TURN,
            at: stamp(ms, false),
            ticket: Some(ticket),
            comment: None,
            turn: Some(turn),
            records: BTreeMap::new(),
            changed: vec![],
            redeliverable: false,
        }
    }

    /// A Salesforce change: mostly Change Data Capture (an UPDATE lists its
    /// changed fields), sometimes a REST read (nothing listed: every field
    /// present counts).
    fn change(
        &mut self,
        ticket: Option<Ticket>,
        object: &'static str,
        record: Record,
        changed: &[&str],
    ) -> Event {
        let ms = self.tick();
        let at = stamp(ms, true);
        let record_id = match record.0.first() {
            Some((_, Json::String(id))) => id.clone(),
            _ => panic!("bug: a record is built with its Id first"),
        };
        let cdc = !changed.is_empty() || self.chance(50);
        let id = if cdc {
            let key = self.transaction_key();
            let seq = 1 + self.below(4);
            format!("salesforce:cdc:{key}:{seq}:{record_id}")
        } else {
            format!("salesforce:{object}:{record_id}:{at}")
        };
        Event {
            id,
            kind: RECORD_CHANGED,
            at,
            ticket,
            comment: None,
            turn: None,
            records: BTreeMap::from([(object, record)]),
            changed: changed.iter().map(|c| format!("{object}.{c}")).collect(),
            redeliverable: cdc,
        }
    }
}

/// The three characters Salesforce appends to make a 15-character Id
/// case-insensitive: one per five characters, a bit per upper-case letter.
fn sf_suffix(id15: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0, |acc, (i, _)| acc | (1 << i));
            ALPHABET[bits] as char
        })
        .collect()
}

/// The first event's time: fixed, so the files never depend on the clock.
const START: jiff::Timestamp = jiff::Timestamp::constant(1_794_355_200, 0); // 2026-11-11T00:00:00Z

/// RFC 3339 in UTC; Zendesk stamps whole seconds, Salesforce milliseconds.
fn stamp(ms: i64, millis: bool) -> String {
    let ts = jiff::Timestamp::from_second(ms.div_euclid(1000)).expect("times stay near 2026");
    let hms = ts.strftime("%Y-%m-%dT%H:%M:%S");
    if millis {
        format!("{hms}.{:03}Z", ms.rem_euclid(1000))
    } else {
        format!("{hms}Z")
    }
}

// ------------------------------------------------------ shared content

/// A refund amount as the agent extracts it, clustered around $200 with the
/// edge cases (exactly 200.00, one cent either side, no decimals) frequent.
fn refund_amount(g: &mut Gen, over_threshold: bool) -> String {
    let edge = if over_threshold {
        ["200.01", "200.10", "201", "250.00", "4800.00"]
    } else {
        ["200.00", "200", "199.99", "200.0", "20.00"]
    };
    if g.chance(40) {
        return g.pick(&edge).to_string();
    }
    let cents = if over_threshold {
        g.between(20_001, 95_000)
    } else {
        g.between(500, 20_000)
    };
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn money(amount: String, currency: &str) -> Option<Money> {
    Some(Money {
        amount,
        currency: currency.into(),
    })
}

/// A person: display name and an address at a reserved example domain.
fn person(g: &mut Gen, people: &[(&str, &str)]) -> (String, String) {
    let (name, local) = g.pick(people);
    let domain = g.pick(&["example.com", "example.org", "example.net"]);
    (name.to_string(), format!("{local}@{domain}"))
}

/// Most turns are confident; the saas low-confidence rule cares below 0.6.
fn confidence(g: &mut Gen) -> Option<f64> {
    let pct = g.between(60, 99);
    Some(pct as f64 / 100.0)
}

// ------------------------------------------------------ status requests

/// One status change the agent asks for, and what the ticket must look
/// like for the table to allow it (or, for the refused ones, not).
struct Move {
    from: &'static str,
    to: &'static str,
    tags: &'static [&'static str],
    /// Custom field id and value as JSON text.
    fields: &'static [(u64, &'static str)],
    /// Who wrote the comment that prompted the turn, if anyone.
    comment_by: Option<&'static str>,
    /// The turn's intent, when the transition's condition reads it.
    intent: Option<&'static str>,
    /// Fields of the Salesforce Case besides `Id` and `Status` (field name
    /// and string value), for the tables that govern the Case.
    case: &'static [(&'static str, &'static str)],
}

const fn mv(from: &'static str, to: &'static str) -> Move {
    Move {
        from,
        to,
        tags: &[],
        fields: &[],
        comment_by: None,
        intent: None,
        case: &[],
    }
}

impl Move {
    const fn tags(mut self, tags: &'static [&'static str]) -> Move {
        self.tags = tags;
        self
    }

    const fn fields(mut self, fields: &'static [(u64, &'static str)]) -> Move {
        self.fields = fields;
        self
    }

    const fn after(mut self, author: &'static str) -> Move {
        self.comment_by = Some(author);
        self
    }

    const fn intent(mut self, intent: &'static str) -> Move {
        self.intent = Some(intent);
        self
    }

    const fn case(mut self, fields: &'static [(&'static str, &'static str)]) -> Move {
        self.case = fields;
        self
    }

    /// The turn asking for `to`: the move's intent if it has one, and the
    /// comment that prompted it.
    fn request(&self, g: &mut Gen, ticket: Ticket, turn: Turn, reply: &str) -> Event {
        let intent = self.intent.map(str::to_string).or(turn.intent.clone());
        let mut ev = g.turn(
            ticket,
            Turn {
                intent,
                requested_status: text(self.to),
                ..turn
            },
        );
        if let Some(author) = self.comment_by {
            ev.comment = Some(Comment {
                body: reply.into(),
                author,
                public: author == "end_user",
            });
        }
        ev
    }

    /// The agent turn asking for the move on a Zendesk ticket (its
    /// `status` already `from`).
    fn event(&self, g: &mut Gen, mut ticket: Ticket, turn: Turn, reply: &str) -> Event {
        ticket.status = text(self.from);
        for t in self.tags {
            ticket = ticket.tag(t);
        }
        for (id, value) in self.fields {
            let v = serde_json::from_str(value).expect("bug: a Move field is JSON text");
            ticket = ticket.field(*id, v);
        }
        self.request(g, ticket, turn, reply)
    }
}

// ------------------------------------------------------------ fintech

mod fintech {
    use super::*;

    #[rustfmt::skip]
    pub const SCENARIOS: &[Scenario] = &[
        Scenario { name: "quiet_ticket_update", weight: 12, what: "ticket_updated webhook or poll touching nothing a rule reads (tags, priority, group)", build: quiet_ticket_update },
        Scenario { name: "comment", weight: 10, what: "comment_added from the customer or an agent, no agent turn", build: comment },
        Scenario { name: "routine_answer", weight: 6, what: "agent_turn answering a question; no status, no hand-off", build: routine_answer },
        Scenario { name: "refund_within_threshold", weight: 8, what: "refund up to $200 (exactly 200.00, 199.99, \"200\") stays with the agent", build: refund_within_threshold },
        Scenario { name: "refund_over_threshold", weight: 9, what: "refund above $200 (200.01 up): escalation refund_over_threshold, sometimes without a Case", build: refund_over_threshold },
        Scenario { name: "refund_in_other_currency", weight: 2, what: "refund in EUR or GBP above 200: held against the threshold in its own currency (185 EUR, 160 GBP), so it hands off", build: refund_in_other_currency },
        Scenario { name: "fraud_report", weight: 5, what: "intent fraud_report, or a fraud_claim dispute on the ticket: escalation suspected_fraud", build: fraud_report },
        Scenario { name: "angry_enterprise", weight: 5, what: "angry enterprise-tier customer: escalation angry_enterprise_customer", build: angry_enterprise },
        Scenario { name: "kyc_check", weight: 5, what: "account unlock or limit increase; KYC Failed (escalation kyc_verification_failed), Passed or Pending", build: kyc_check },
        Scenario { name: "status_request", weight: 20, what: "agent asks for a status: every transition of the table, and forbidden ones (terminal, category new, unmet condition, no such transition, unknown status)", build: status_request },
        Scenario { name: "sla_tier_changed", weight: 8, what: "Account.SLA_Tier__c change (Ent, Prem, Std, Legacy, and an unmapped Platinum)", build: sla_tier_changed },
        Scenario { name: "contract_changed", weight: 5, what: "Account contract value or renewal date change; sometimes the ticket already agrees", build: contract_changed },
        Scenario { name: "risk_decision_recorded", weight: 6, what: "risk team sets the risk decision on the ticket; the Case follows", build: risk_decision_recorded },
        Scenario { name: "unrelated_salesforce_change", weight: 3, what: "Case or Contact change of a field no rule maps", build: unrelated_salesforce_change },
    ];

    const PEOPLE: &[(&str, &str)] = &[
        ("Ana Souza", "ana.souza"),
        ("Tomás Ferreira", "tomas.f"),
        ("Priya Raman", "priya.raman"),
        ("Jonas Becker", "j.becker"),
        ("Chloé Martin", "chloe.martin"),
        ("Marek Nowak", "marek.nowak"),
        ("Sofia Russo", "sofia.r"),
        ("Daniel Okafor", "daniel.okafor"),
        ("Emma Lindqvist", "emma.lindqvist"),
        ("Kwame Mensah", "kwame.m"),
    ];

    const SUBJECTS: &[&str] = &[
        "Card payment declined at checkout",
        "Transfer to my landlord has not arrived",
        "Charged twice for the same purchase",
        "Cannot log in after updating the app",
        "Question about my monthly statement",
        "Unknown transaction on my account",
        "Please raise my daily transfer limit",
        "Refund still not on my card",
        "Verification keeps failing",
        "Exchange rate looks wrong on my FX transfer",
    ];

    const TIERS: &[&str] = &["enterprise", "premium", "standard"];

    /// An ordinary ticket: nothing on it makes a rule fire by itself.
    fn ticket(g: &mut Gen, status: &str) -> Ticket {
        let (name, email) = person(g, PEOPLE);
        let mut t = Ticket {
            id: g.ticket_id(),
            subject: text(g.pick(SUBJECTS)),
            status: text(status),
            priority: text(g.pick(&["low", "normal", "normal", "high", "urgent"])),
            kind: text(g.pick(&["question", "incident", "problem", "task"])),
            tags: g.some_of(&["billing", "card", "transfer", "mobile_app", "vip"], 2),
            group: text(g.pick(&["Payments", "Cards", "Onboarding"])),
            requester_name: Some(name),
            requester_email: Some(email),
            channel: text(g.pick(&["web", "email", "chat", "mobile"])),
            custom_fields: BTreeMap::new(),
        };
        if g.chance(60) {
            let tier = g.pick(TIERS);
            t = t.field(360001234, tier.into());
        }
        if g.chance(30) {
            let score = g.between(5, 60);
            t = t.field(360001236, score.into());
        }
        t
    }

    fn case(g: &mut Gen) -> Record {
        let id = g.sf_id("500");
        let status = g.pick(&["New", "Working", "Working", "Escalated"]);
        Record::new(id).with("Status", status)
    }

    fn account(g: &mut Gen) -> Record {
        let id = g.sf_id("001");
        let name = g.pick(&[
            "Northwind Traders",
            "Blue Harbour Logistics",
            "Kestrel Dental Group",
            "Fennel & Co",
            "Atlas Property Partners",
        ]);
        Record::new(id).with("Name", name)
    }

    fn attempts(g: &mut Gen, tried: &[&str]) -> Vec<String> {
        g.some_of(tried, 3)
    }

    fn quiet_ticket_update(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress", "pending_customer", "new"]);
        let t = ticket(g, status).tag(g.pick(&["billing", "card", "statement"]));
        let ev = if g.chance(70) {
            g.webhook(TICKET_UPDATED, t)
        } else {
            g.poll(TICKET_UPDATED, t)
        };
        vec![ev]
    }

    fn comment(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress", "pending_customer", "solved"]);
        let t = ticket(g, status);
        let (author, body) = if g.chance(65) {
            (
                "end_user",
                g.pick(&[
                    "Here is the screenshot of the declined payment.",
                    "It has been five days and the money is still not there.",
                    "Thanks, that worked!",
                    "I attached my bank statement as you asked.",
                    "Why was my card blocked while I was abroad?",
                ]),
            )
        } else {
            (
                "agent",
                g.pick(&[
                    "Checked with the partner bank: the transfer is in their queue.",
                    "Customer called in, verified by phone.",
                    "Refund approved in the back office, reference RF-20261111-0412.",
                ]),
            )
        };
        vec![g.comment(t, author, body)]
    }

    fn routine_answer(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress"]);
        let t = ticket(g, status);
        let (intent, summary) = g.pick(&[
            ("question", "How long does a SEPA transfer take?"),
            ("question", "Where to find the IBAN in the app"),
            ("statement", "Asks why the statement shows a pending hold"),
            ("card_replacement", "Card is worn out; wants a new one"),
            (
                "transfer_delay",
                "International transfer sent on Monday has not arrived",
            ),
        ]);
        let tried = [
            "explained the cut-off times",
            "sent the help-centre article",
            "checked the transfer status",
        ];
        let turn = Turn {
            intent: text(intent),
            summary: text(summary),
            attempts: attempts(g, &tried),
            sentiment: text(g.pick(&["positive", "neutral", "negative"])),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        vec![g.turn(t, turn)]
    }

    fn refund_turn(g: &mut Gen, amount: String, currency: &str) -> Turn {
        let order = g.between(1000, 9999);
        let summary = g.pick(&[
            "Charged twice for the same card payment",
            "Wants a refund for the annual Premium fee",
            "Refund for a cancelled FX transfer",
            "Merchant never delivered; wants the money back",
        ]);
        Turn {
            intent: text("refund"),
            summary: Some(format!("{summary} (order {order})")),
            attempts: attempts(
                g,
                &[
                    "looked up the transaction",
                    "offered store credit",
                    "explained the refund timeline",
                    "checked for a pending reversal",
                ],
            ),
            sentiment: text(g.pick(&["neutral", "negative", "negative", "positive"])),
            refund_amount: money(amount, currency),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        }
    }

    fn refund_within_threshold(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress"]);
        let t = ticket(g, status);
        let amount = refund_amount(g, false);
        let turn = refund_turn(g, amount, "USD");
        vec![g.turn(t, turn)]
    }

    fn refund_over_threshold(g: &mut Gen) -> Vec<Event> {
        // Mostly a status the hand-off may leave; sometimes one it may not.
        let status = g.pick(&["open", "in_progress", "in_progress", "pending_customer"]);
        let t = ticket(g, status);
        let amount = refund_amount(g, true);
        let turn = refund_turn(g, amount, "USD");
        let with_case = g.chance(85);
        let case = case(g);
        let mut ev = g.turn(t, turn);
        if with_case {
            ev.records.insert("Case", case);
        }
        vec![ev]
    }

    fn refund_in_other_currency(g: &mut Gen) -> Vec<Event> {
        let t = ticket(g, "in_progress");
        let currency = g.pick(&["EUR", "GBP"]);
        let amount = format!("{}.00", g.between(201, 900));
        let turn = refund_turn(g, amount, currency);
        vec![g.turn(t, turn)]
    }

    fn fraud_report(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress", "in_progress", "pending_risk_review"]);
        let mut t = ticket(g, status);
        let intent = if g.chance(70) {
            "fraud_report"
        } else {
            // The dispute field alone is enough, whatever the agent heard.
            t = t.field(360001238, "fraud_claim".into());
            "question"
        };
        let turn = Turn {
            intent: text(intent),
            summary: text(g.pick(&[
                "Card used in another country while the customer was at home",
                "Three unknown contactless payments overnight",
                "Received a one-time code they did not request, then a transfer left the account",
            ])),
            attempts: attempts(
                g,
                &[
                    "froze the card",
                    "listed the recent transactions",
                    "asked for the last known good payment",
                ],
            ),
            sentiment: text(g.pick(&["negative", "angry", "neutral"])),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        vec![g.turn(t, turn)]
    }

    fn angry_enterprise(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress"]);
        let t = ticket(g, status).field(360001234, "enterprise".into());
        let turn = Turn {
            intent: text(g.pick(&["question", "transfer_delay", "statement"])),
            summary: text(g.pick(&[
                "Third time asking about the same failed payroll batch",
                "Treasury team blocked by a frozen account for two days",
                "Escalation promised yesterday never happened",
            ])),
            attempts: attempts(
                g,
                &[
                    "apologised",
                    "checked the batch status",
                    "offered a call back",
                ],
            ),
            sentiment: text("angry"),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let case = case(g);
        let mut ev = g.turn(t, turn);
        ev.records.insert("Case", case);
        vec![ev]
    }

    fn kyc_check(g: &mut Gen) -> Vec<Event> {
        let status = g.pick(&["open", "in_progress"]);
        let t = ticket(g, status).tag("kyc");
        let (name, _) = person(g, PEOPLE);
        let kyc = g.pick(&["Failed", "Failed", "Failed", "Passed", "Pending"]);
        let intent = g.pick(&["account_unlock", "limit_increase"]);
        let summary = if intent == "account_unlock" {
            g.pick(&[
                "Locked out after the ID check",
                "App says the account is restricted",
            ])
        } else {
            g.pick(&[
                "Wants a higher daily limit for a house deposit",
                "Needs the card limit raised before travelling",
            ])
        };
        let turn = Turn {
            intent: text(intent),
            summary: text(summary),
            attempts: attempts(
                g,
                &[
                    "explained the verification steps",
                    "sent the verification link again",
                ],
            ),
            sentiment: text(g.pick(&["neutral", "negative", "positive"])),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let contact = Record::new(g.sf_id("003"))
            .with("Name", name)
            .with("KYC_Status__c", kyc);
        let case = case(g);
        let mut ev = g.turn(t, turn);
        ev.records.insert("Contact", contact);
        ev.records.insert("Case", case);
        vec![ev]
    }

    // Field ids of the desk (fields.l3map).
    const RISK_SCORE: u64 = 360001236;
    const RISK_DECISION: u64 = 360001237;
    const DISPUTE: u64 = 360001238;
    const REFUND_ISSUED: u64 = 360001239;

    const MOVES: &[Move] = &[
        mv("new", "open"),
        mv("new", "in_progress"),
        mv("open", "pending_customer"),
        mv("in_progress", "pending_customer"),
        mv("open", "pending_kyc_documents").tags(&["kyc"]),
        mv("in_progress", "pending_risk_review").fields(&[(RISK_SCORE, "82")]),
        mv("open", "pending_risk_review").tags(&["risk_flag"]),
        mv("pending_risk_review", "in_progress").fields(&[(RISK_DECISION, "\"cleared\"")]),
        mv("pending_risk_review", "fraud_investigation").fields(&[(RISK_DECISION, "\"escalate\"")]),
        mv("open", "pending_chargeback").fields(&[(DISPUTE, "\"chargeback\"")]),
        mv("in_progress", "pending_chargeback").fields(&[(DISPUTE, "\"retrieval_request\"")]),
        mv("in_progress", "awaiting_regulator_response").tags(&["regulator"]),
        mv("in_progress", "awaiting_bank_partner"),
        mv("open", "escalated_tier2"),
        mv("escalated_tier2", "in_progress"),
        mv("pending_customer", "open").after("end_user"),
        mv("pending_kyc_documents", "open").after("end_user"),
        mv("awaiting_bank_partner", "in_progress"),
        mv("awaiting_regulator_response", "in_progress"),
        mv("fraud_investigation", "escalated_tier2"),
        mv("pending_risk_review", "open").after("end_user"),
        mv("solved", "open").after("end_user"),
        mv("in_progress", "solved"),
        mv("escalated_tier2", "solved"),
        mv("in_progress", "solved_refunded").fields(&[(REFUND_ISSUED, "true")]),
        mv("solved", "closed"),
        mv("solved_refunded", "closed"),
        // Refused: each for a different reason.
        mv("open", "closed"),
        mv("closed", "open").after("end_user"),
        mv("in_progress", "new"),
        mv("in_progress", "solved_refunded"),
        mv("pending_customer", "open").after("agent"),
        mv("open", "pending_kyc_documents"),
        mv("open", "awaiting_regulator_response").tags(&["regulator"]),
        mv("pending_risk_review", "in_progress").fields(&[(RISK_DECISION, "\"pending\"")]),
        mv("in_progress", "on_hold"),
    ];

    fn status_request(g: &mut Gen) -> Vec<Event> {
        let m = g.next_move(MOVES);
        let t = ticket(g, m.from);
        let turn = Turn {
            intent: text(g.pick(&["question", "follow_up", "status_update"])),
            summary: text(g.pick(&[
                "Customer sent the requested documents",
                "Waiting for the customer to confirm the payee",
                "Issue resolved after the card was reissued",
                "Partner bank confirmed the transfer",
                "Customer disputes a merchant charge",
            ])),
            sentiment: text(g.pick(&["neutral", "positive", "negative"])),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let reply = "Here are the documents you asked for.";
        vec![m.event(g, t, turn, reply)]
    }

    fn sla_tier_changed(g: &mut Gen) -> Vec<Event> {
        let tier = g.pick(&["Ent", "Prem", "Std", "Legacy", "Ent", "Prem", "Platinum"]);
        let status = g.pick(&["open", "in_progress", "pending_customer"]);
        let mut t = ticket(g, status);
        if g.chance(30) {
            // The converter's ticket: linked by id only.
            t = Ticket::linked(t.id);
        }
        let account = account(g).with("SLA_Tier__c", tier);
        vec![g.change(Some(t), "Account", account, &["SLA_Tier__c"])]
    }

    fn contract_changed(g: &mut Gen) -> Vec<Event> {
        let value = g.between(12, 480) * 1000;
        let renewal = format!(
            "2027-{:02}-{}",
            g.between(1, 12),
            g.pick(&["01", "15", "28"])
        );
        let mut t = ticket(g, "open");
        if g.chance(25) {
            // The ticket already carries the value: nothing to write.
            t = t.field(360001235, format!("{value}.00").into());
        }
        let account = account(g)
            .with("Contract_Value__c", value)
            .with("Renewal_Date__c", renewal)
            .with("SLA_Tier__c", g.pick(&["Ent", "Prem", "Std"]));
        let changed: &[&str] = g.pick(&[
            &["Contract_Value__c"][..],
            &["Renewal_Date__c"],
            &["Contract_Value__c", "Renewal_Date__c"],
        ]);
        vec![g.change(Some(t), "Account", account, changed)]
    }

    fn risk_decision_recorded(g: &mut Gen) -> Vec<Event> {
        let decision = g.pick(&["pending", "cleared", "cleared", "escalate"]);
        let t = ticket(g, "pending_risk_review")
            .field(RISK_DECISION, decision.into())
            .field(RISK_SCORE, g.between(55, 97).into());
        let current = g.pick(&["Pending", "Pending", "Cleared"]);
        let case = Record::new(g.sf_id("500")).with("Risk_Decision__c", current);
        let mut ev = g.webhook(TICKET_UPDATED, t);
        ev.records.insert("Case", case);
        vec![ev]
    }

    fn unrelated_salesforce_change(g: &mut Gen) -> Vec<Event> {
        let t = Ticket::linked(g.ticket_id());
        if g.chance(50) {
            let case = Record::new(g.sf_id("500"))
                .with("Origin", g.pick(&["Email", "Web", "Phone"]))
                .with("Zendesk_Ticket_Id__c", t.id);
            vec![g.change(Some(t), "Case", case, &["Origin"])]
        } else {
            let phone = format!("+44 20 7946 {:04}", g.between(0, 999));
            let contact = Record::new(g.sf_id("003")).with("Phone", phone);
            vec![g.change(None, "Contact", contact, &["Phone"])]
        }
    }
}

// --------------------------------------------------------------- saas

mod saas {
    use super::*;

    #[rustfmt::skip]
    pub const SCENARIOS: &[Scenario] = &[
        Scenario { name: "quiet_ticket_update", weight: 10, what: "ticket_updated touching nothing a rule reads", build: quiet_ticket_update },
        Scenario { name: "comment", weight: 8, what: "comment_added from the customer or an agent, no agent turn", build: comment },
        Scenario { name: "routine_answer", weight: 10, what: "confident agent_turn (0.60 to 0.99, 0.60 included), calm customer", build: routine_answer },
        Scenario { name: "low_confidence", weight: 8, what: "agent_turn below 0.6 confidence: escalation low_confidence", build: low_confidence },
        Scenario { name: "refund", weight: 10, what: "refund requests on both sides of $200 (exactly 200.00 included); Case Working, Waiting on Customer or already Escalated", build: refund },
        Scenario { name: "cancel_subscription", weight: 6, what: "cancellation with ARR below, at and above $50,000: escalation churn_risk", build: cancel_subscription },
        Scenario { name: "unhappy_enterprise", weight: 7, what: "negative or angry enterprise customer: escalation unhappy_enterprise_customer", build: unhappy_enterprise },
        Scenario { name: "account_changed", weight: 12, what: "Account change: SLA tier (Ent, Gold, Biz, Std, Starter, a new Diamond), ARR, renewal date", build: account_changed },
        Scenario { name: "case_changed", weight: 10, what: "Case change or creation: priority (High, Medium, Low) and case number", build: case_changed },
        Scenario { name: "case_status_request", weight: 10, what: "agent asks for a Case status (the Case's `Status` as label, e.g. \"Waiting on Customer\", or name): every transition of the Case table, conditional ones included, and forbidden ones (terminal `closed`, category new, unmet condition, no such transition, already there, unknown status, a picklist value the table lacks)", build: case_status_request },
    ];

    const PEOPLE: &[(&str, &str)] = &[
        ("Megan Hughes", "megan.hughes"),
        ("Arjun Mehta", "arjun"),
        ("Lena Vogel", "lena.vogel"),
        ("Carlos Ortega", "c.ortega"),
        ("Yuki Tanaka", "yuki.tanaka"),
        ("Fatima Zahra", "fatima.zahra"),
        ("Oliver Brandt", "oliver"),
        ("Grace Kim", "grace.kim"),
    ];

    const ACCOUNTS: &[&str] = &[
        "Orbital Freight",
        "Helios Analytics",
        "Quillstone Legal",
        "Brightwave Energy",
        "Tundra Outdoor Co",
        "Meridian Health Partners",
        "Copperline Media",
    ];

    const SUBJECTS: &[&str] = &[
        "SSO login loops back to the sign-in page",
        "Invoice shows the wrong number of seats",
        "API returns 429 since this morning",
        "How do I export audit logs?",
        "Webhook deliveries delayed by an hour",
        "Cancel our subscription at renewal",
        "Charged for seats we removed",
        "Dashboard widgets not loading",
    ];

    // Field ids of the desk (fields.l3map).
    const SLA_TIER: u64 = 360004101;
    const CONTRACT_VALUE: u64 = 360004102;
    const RENEWAL_DATE: u64 = 360004103;
    const CASE_NUMBER: u64 = 360004104;

    fn ticket(g: &mut Gen) -> Ticket {
        let (name, email) = person(g, PEOPLE);
        let mut t = Ticket {
            id: g.ticket_id(),
            subject: text(g.pick(SUBJECTS)),
            status: text(g.pick(&["new", "open", "open", "pending", "hold"])),
            priority: text(g.pick(&["low", "normal", "normal", "high"])),
            kind: text(g.pick(&["question", "incident", "problem"])),
            tags: g.some_of(&["sso", "billing", "api", "integrations", "onboarding"], 2),
            group: text(g.pick(&["Tier 1", "Billing", "Platform"])),
            requester_name: Some(name),
            requester_email: Some(email),
            channel: text(g.pick(&["email", "web", "chat"])),
            custom_fields: BTreeMap::new(),
        };
        if g.chance(50) {
            // Standard and business tiers: the enterprise ones come from
            // the scenarios that want them.
            t = t.field(SLA_TIER, g.pick(&["business", "standard"]).into());
        }
        if g.chance(40) {
            let arr = g.between(6, 45) * 1000;
            t = t.field(CONTRACT_VALUE, format!("{arr}.00").into());
        }
        t
    }

    fn account(g: &mut Gen) -> Record {
        let name = g.pick(ACCOUNTS);
        Record::new(g.sf_id("001")).with("Name", name)
    }

    /// The Case and Account the agent platform attaches to a turn.
    fn with_case_and_account(g: &mut Gen, mut ev: Event, case_status: &str) -> Event {
        let number = format!("{:08}", g.between(10_000, 99_999));
        let case = Record::new(g.sf_id("500"))
            .with("CaseNumber", number.clone())
            .with("Status", case_status);
        // A ticket synced before shows its case number already; a fresh
        // one gets it written now.
        if let (true, Some(t)) = (g.chance(85), ev.ticket.as_mut()) {
            t.custom_fields
                .insert(CASE_NUMBER.to_string(), number.into());
        }
        ev.records.insert("Case", case);
        if g.chance(80) {
            ev.records.insert("Account", account(g));
        }
        ev
    }

    fn calm(g: &mut Gen) -> String {
        g.pick(&["positive", "neutral", "neutral"]).to_string()
    }

    fn quiet_ticket_update(g: &mut Gen) -> Vec<Event> {
        let t = ticket(g).tag(g.pick(&["sso", "follow_up", "docs"]));
        vec![g.webhook(TICKET_UPDATED, t)]
    }

    fn comment(g: &mut Gen) -> Vec<Event> {
        let t = ticket(g);
        let (author, body) = if g.chance(60) {
            (
                "end_user",
                g.pick(&[
                    "Attached the HAR file from the failing login.",
                    "Any update? Our team is blocked.",
                    "Confirmed, the export works now. Thanks!",
                    "We only have 40 seats, not 55.",
                ]),
            )
        } else {
            (
                "agent",
                g.pick(&[
                    "Reproduced on staging, filing a bug.",
                    "Talked to the admin on a call; closing the loop tomorrow.",
                    "Credit note issued for the extra seats.",
                ]),
            )
        };
        vec![g.comment(t, author, body)]
    }

    fn question(g: &mut Gen) -> (String, String) {
        let (intent, summary) = g.pick(&[
            (
                "question",
                "How do I export audit logs for the last 90 days?",
            ),
            ("how_to", "Setting up SCIM provisioning with Okta"),
            ("question", "SAML with two identity providers?"),
            ("bug_report", "Dashboard widgets spin forever in Safari"),
            ("feature_request", "Wants dark mode in the admin console"),
            ("billing", "Why the invoice shows 55 seats"),
        ]);
        (intent.to_string(), summary.to_string())
    }

    fn routine_answer(g: &mut Gen) -> Vec<Event> {
        let t = ticket(g);
        let (intent, summary) = question(g);
        let confidence = if g.chance(15) {
            // The threshold itself is still confident enough.
            Some(0.6)
        } else {
            confidence(g)
        };
        let turn = Turn {
            intent: Some(intent),
            summary: Some(summary),
            attempts: g.some_of(&["searched the docs", "checked the account settings"], 2),
            sentiment: Some(calm(g)),
            confidence,
            language: text("en"),
            ..Turn::default()
        };
        let ev = g.turn(t, turn);
        vec![with_case_and_account(g, ev, "Working")]
    }

    fn low_confidence(g: &mut Gen) -> Vec<Event> {
        let t = ticket(g);
        let (intent, summary) = question(g);
        let turn = Turn {
            intent: Some(intent),
            summary: Some(summary),
            attempts: g.some_of(&["draft A", "draft B", "draft C"], 3),
            sentiment: Some(calm(g)),
            confidence: Some(g.between(18, 59) as f64 / 100.0),
            language: text("en"),
            ..Turn::default()
        };
        let ev = g.turn(t, turn);
        let status = g.pick(&["Working", "New", "Waiting on Customer"]);
        vec![with_case_and_account(g, ev, status)]
    }

    fn refund(g: &mut Gen) -> Vec<Event> {
        let over = g.chance(55);
        let amount = refund_amount(g, over);
        let turn = Turn {
            intent: text("refund"),
            summary: text(g.pick(&[
                "Charged twice for the annual plan",
                "Wants the unused seats refunded",
                "Downgraded mid-cycle; asks for the difference",
                "Paid by card and by invoice for the same month",
            ])),
            attempts: g.some_of(
                &[
                    "checked the invoices",
                    "looked at the seat history",
                    "offered a credit note",
                ],
                2,
            ),
            sentiment: text(g.pick(&["neutral", "negative", "neutral"])),
            refund_amount: money(amount, "USD"),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let t = ticket(g);
        let ev = g.turn(t, turn);
        let status = g.pick(&[
            "Working",
            "Working",
            "Waiting on Customer",
            "Escalated",
            "New",
        ]);
        vec![with_case_and_account(g, ev, status)]
    }

    fn cancel_subscription(g: &mut Gen) -> Vec<Event> {
        let arr = g.pick(&[
            "50000.00",
            "49999.99",
            "64000.00",
            "250000.00",
            "1200.00",
            "18000.00",
        ]);
        let t = ticket(g).field(CONTRACT_VALUE, arr.into());
        let turn = Turn {
            intent: text("cancel_subscription"),
            summary: text(g.pick(&[
                "Moving to a competitor at renewal",
                "Company is closing; cancel everything",
                "Budget cut, wants to cancel before the next invoice",
            ])),
            sentiment: text(g.pick(&["neutral", "negative"])),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let ev = g.turn(t, turn);
        vec![with_case_and_account(g, ev, "Working")]
    }

    fn unhappy_enterprise(g: &mut Gen) -> Vec<Event> {
        let t = ticket(g).field(SLA_TIER, "enterprise".into());
        let (intent, summary) = question(g);
        let turn = Turn {
            intent: Some(intent),
            summary: Some(format!("{summary} (third follow-up)")),
            attempts: g.some_of(
                &["apologised", "shared the status page", "offered a call"],
                2,
            ),
            sentiment: text(g.pick(&["negative", "angry"])),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let ev = g.turn(t, turn);
        let status = g.pick(&["Working", "Working", "Waiting on Engineering", "Escalated"]);
        vec![with_case_and_account(g, ev, status)]
    }

    fn account_changed(g: &mut Gen) -> Vec<Event> {
        let tier = g.pick(&["Ent", "Gold", "Biz", "Std", "Starter", "Diamond"]);
        let arr = g.between(5, 300) * 1000;
        let renewal = format!("2027-{:02}-{}", g.between(1, 12), g.pick(&["01", "30"]));
        let mut t = ticket(g);
        if g.chance(20) {
            // Zendesk already has the date: nothing to write for it.
            t = t.field(RENEWAL_DATE, renewal.clone().into());
        }
        if g.chance(30) {
            t = Ticket::linked(t.id);
        }
        let account = account(g)
            .with("SLA_Tier__c", tier)
            .with("Contract_Value__c", arr)
            .with("Renewal_Date__c", renewal);
        let changed: &[&str] = g.pick(&[
            &["SLA_Tier__c"][..],
            &["Contract_Value__c"],
            &["Renewal_Date__c"],
            &["Contract_Value__c", "Renewal_Date__c"],
            &["SLA_Tier__c", "Contract_Value__c"],
        ]);
        vec![g.change(Some(t), "Account", account, changed)]
    }

    fn case_changed(g: &mut Gen) -> Vec<Event> {
        let mut t = Ticket::linked(g.ticket_id());
        // Zendesk's current priority: a third of the time it already agrees.
        t.priority = text(g.pick(&["high", "normal", "low"]));
        let number = format!("{:08}", g.between(10_000, 99_999));
        let case = Record::new(g.sf_id("500"))
            .with("CaseNumber", number.clone())
            .with("Priority", g.pick(&["High", "Medium", "Low"]))
            .with("Zendesk_Ticket_Id__c", t.id);
        if g.chance(60) {
            let status = g.pick(&["Working", "Waiting on Customer"]);
            let case = case.with("Status", status);
            let changed: &[&str] = g.pick(&[&["Priority"][..], &["Priority", "Status"]]);
            return vec![g.change(Some(t), "Case", case, changed)];
        }
        // A new Case: CDC lists no changed fields, so every one counts.
        if g.chance(25) {
            t = t.field(CASE_NUMBER, number.into());
        }
        let case = case
            .with("Status", "New")
            .with("Type", g.pick(&["Question", "Problem", "Feature Request"]));
        vec![g.change(Some(t), "Case", case, &[])]
    }

    /// The Case statuses (statuses.l3map): name and picklist label.
    const CASE_STATUSES: &[(&str, &str)] = &[
        ("new", "New"),
        ("working", "Working"),
        ("escalated", "Escalated"),
        ("waiting_on_customer", "Waiting on Customer"),
        ("waiting_on_engineering", "Waiting on Engineering"),
        ("resolved", "Resolved"),
        ("closed", "Closed"),
    ];

    /// The Case's `Status` for status `name`, as the picklist sends it:
    /// mostly the label, sometimes the API name. A value the table does not
    /// declare is sent as it is.
    fn case_status(g: &mut Gen, name: &str) -> String {
        match CASE_STATUSES.iter().find(|(n, _)| *n == name) {
            Some((_, label)) if g.chance(70) => label.to_string(),
            _ => name.to_string(),
        }
    }

    /// Moves along the Case table (statuses.l3map): `from` is the Case's
    /// current status. The Zendesk ticket keeps its own status, which no
    /// table of this project governs.
    const MOVES: &[Move] = &[
        mv("new", "working"),
        mv("working", "waiting_on_customer"),
        mv("working", "resolved"),
        mv("working", "escalated"),
        mv("waiting_on_customer", "escalated").after("end_user"),
        mv("waiting_on_engineering", "escalated"),
        mv("waiting_on_customer", "working").after("end_user"),
        mv("working", "waiting_on_engineering").case(&[("Type", "Problem")]),
        mv("waiting_on_engineering", "working"),
        mv("escalated", "working").after("agent"),
        mv("resolved", "working").after("end_user"),
        mv("resolved", "closed")
            .after("end_user")
            .intent("confirm_resolved"),
        // Refused: each for a different reason.
        mv("new", "resolved"),
        mv("waiting_on_customer", "resolved").after("end_user"),
        mv("closed", "working").after("end_user"),
        mv("working", "new"),
        mv("working", "waiting_on_engineering").case(&[("Type", "Feature Request")]),
        mv("working", "waiting_on_engineering").case(&[("Type", "Question")]),
        mv("escalated", "working").after("end_user"),
        mv("escalated", "working"),
        mv("resolved", "working").after("agent"),
        mv("resolved", "closed").after("end_user"),
        mv("waiting_on_customer", "waiting_on_customer"),
        mv("working", "on_hold"),
        // A picklist value Salesforce admins added and the table lacks.
        mv("Pending Parts", "working"),
    ];

    fn case_status_request(g: &mut Gen) -> Vec<Event> {
        let m = g.next_move(MOVES);
        let t = ticket(g);
        let summary = match (m.from, m.to) {
            (_, "resolved") => "Customer confirmed the export works after the fix",
            (_, "closed") => "Customer confirms the fix; nothing else open",
            (_, "waiting_on_engineering") => {
                "Dashboard widgets spin forever; reproduced on staging"
            }
            (_, "waiting_on_customer") => "Asked for the HAR file of the failing login",
            (_, "escalated") => "Needs someone with access to the billing system",
            _ => g.pick(&[
                "Customer replied with the requested details",
                "Picking the case back up",
                "Follow-up on the SSO loop",
            ]),
        };
        let turn = Turn {
            intent: text(g.pick(&["question", "follow_up", "status_update", "bug_report"])),
            summary: text(summary),
            attempts: g.some_of(&["searched the docs", "checked the account settings"], 2),
            sentiment: Some(calm(g)),
            confidence: confidence(g),
            language: text("en"),
            ..Turn::default()
        };
        let reply = match m.comment_by {
            Some("agent") => g.pick(&[
                "Took this over from the queue; on it.",
                "Called the admin, the case is back with support.",
            ]),
            _ => g.pick(&[
                "Confirmed, it works now. Thanks!",
                "Still broken for us, see attached HAR.",
                "Here is the export you asked for.",
            ]),
        };
        let ev = m.request(g, t, turn, reply);
        let status = case_status(g, m.from);
        let mut ev = with_case_and_account(g, ev, &status);
        if let Some(case) = ev.records.get_mut("Case") {
            for (field, value) in m.case {
                case.0.push((field, Json::String(value.to_string())));
            }
        }
        vec![ev]
    }
}

// --------------------------------------------------------------- shop

mod shop {
    use super::*;

    #[rustfmt::skip]
    pub const SCENARIOS: &[Scenario] = &[
        Scenario { name: "product_question", weight: 20, what: "agent_turn naming a product in id/th/ja/en, Latin, Thai, full-width and half-width katakana; some match no product", build: product_question },
        Scenario { name: "marketplace_ticket_created", weight: 12, what: "ticket_created by the marketplace connector with the product field filled in; sometimes already normalised", build: marketplace_ticket_created },
        Scenario { name: "damaged_on_arrival", weight: 10, what: "device arrived damaged: escalation damaged_on_arrival, from new, open, awaiting_courier or awaiting_customer", build: damaged_on_arrival },
        Scenario { name: "unhappy_rakuten_buyer", weight: 6, what: "negative or angry Rakuten buyer: escalation unhappy_rakuten_buyer", build: unhappy_rakuten_buyer },
        Scenario { name: "unsupported_language", weight: 5, what: "customer writes Vietnamese, Tagalog, Korean, Chinese or Malay: escalation unsupported_language", build: unsupported_language },
        Scenario { name: "status_request", weight: 15, what: "agent asks for a status: every transition, and forbidden ones (category new, no transition, unknown `closed`, unmet condition)", build: status_request },
        Scenario { name: "comment", weight: 12, what: "comment_added from the customer (in their language) or an agent", build: comment },
        Scenario { name: "quiet_ticket_update", weight: 10, what: "ticket_updated touching nothing a rule reads", build: quiet_ticket_update },
        Scenario { name: "conversation", weight: 8, what: "ticket_created by the connector, the customer's comment, then the agent's turn moving it new -> open: three events on one ticket", build: conversation },
        Scenario { name: "order_status", weight: 10, what: "where-is-my-order turn without a product: nothing to do", build: order_status },
    ];

    // Field ids of the helpdesk (tickets.l3map).
    const PRODUCT: u64 = 900000101;
    const ORDER_ID: u64 = 900000102;
    const MARKETPLACE: u64 = 900000103;
    const PRODUCT_ID: u64 = 900000104;

    /// What customers write, as they write it; `None`: no product we sell.
    const PRODUCTS: &[(&str, Option<&str>)] = &[
        ("iPhone 15 Pro Max", Some("APPLE-IPHONE-15-PRO-MAX")),
        ("HP iPhone 15 Pro Max iBox", Some("APPLE-IPHONE-15-PRO-MAX")),
        ("iph 15 pm", Some("APPLE-IPHONE-15-PRO-MAX")),
        (
            "ｉＰｈｏｎｅ１５　Ｐｒｏ　Ｍａｘ",
            Some("APPLE-IPHONE-15-PRO-MAX"),
        ),
        ("ｱｲﾌｫﾝ15ﾌﾟﾛﾏｯｸｽ", Some("APPLE-IPHONE-15-PRO-MAX")),
        (
            "アイフォーン15プロマックス",
            Some("APPLE-IPHONE-15-PRO-MAX"),
        ),
        ("ไอโฟน 15 โปร แม็กซ์", Some("APPLE-IPHONE-15-PRO-MAX")),
        ("iPhone 15 Pro", Some("APPLE-IPHONE-15-PRO")),
        ("ｉＰｈｏｎｅ　１５　Ｐｒｏ", Some("APPLE-IPHONE-15-PRO")),
        ("アイフォン１５プロ", Some("APPLE-IPHONE-15-PRO")),
        ("ไอโฟน15โปร", Some("APPLE-IPHONE-15-PRO")),
        ("IPH15P", Some("APPLE-IPHONE-15-PRO")),
        ("Samsung Galaxy S24 Ultra", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        (
            "HP Samsung S24 Ultra SEIN",
            Some("SAMSUNG-GALAXY-S24-ULTRA"),
        ),
        ("galaxy s24u", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        ("SM-S928B/DS", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        ("SC-52E", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        ("scg26", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        (
            "ギャラクシー　Ｓ２４　ウルトラ",
            Some("SAMSUNG-GALAXY-S24-ULTRA"),
        ),
        ("ｷﾞｬﾗｸｼｰS24ｳﾙﾄﾗ", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        ("ซัมซุง กาแล็กซี่ S24 อัลตร้า", Some("SAMSUNG-GALAXY-S24-ULTRA")),
        (
            "Xiaomi Redmi Note 13 Pro 5G",
            Some("XIAOMI-REDMI-NOTE-13-PRO-5G"),
        ),
        (
            "hp redmi note 13 pro 5g",
            Some("XIAOMI-REDMI-NOTE-13-PRO-5G"),
        ),
        ("ﾚﾄﾞﾐﾉｰﾄ１３ﾌﾟﾛ５Ｇ", Some("XIAOMI-REDMI-NOTE-13-PRO-5G")),
        ("เรดมี่ โน้ต 13 โปร 5G", Some("XIAOMI-REDMI-NOTE-13-PRO-5G")),
        ("Redmi Note 13 Pro", Some("XIAOMI-REDMI-NOTE-13-PRO")),
        ("redmi note 13 pro 4G", Some("XIAOMI-REDMI-NOTE-13-PRO")),
        ("เรดมี โน้ต 13 โปร", Some("XIAOMI-REDMI-NOTE-13-PRO")),
        ("RN13P", Some("XIAOMI-REDMI-NOTE-13-PRO")),
        // Accessories, other phones, models we do not carry.
        ("casing iPhone 15 Pro Max", None),
        ("iPhone 15", None),
        ("Galaxy S24+", None),
        ("Redmi Note 13", None),
        ("nokia 3310", None),
        ("charger Samsung 45W", None),
        ("iPhone15 Pro ケース", None),
        ("ฟิล์มกระจก S24 Ultra", None),
    ];

    /// Language code, customer, and what they ask in their own words.
    struct Voice {
        lang: &'static str,
        people: &'static [(&'static str, &'static str)],
        damaged: &'static [&'static str],
        questions: &'static [&'static str],
        where_is: &'static [&'static str],
        replies: &'static [&'static str],
    }

    const VOICES: &[Voice] = &[
        Voice {
            lang: "id",
            people: &[
                ("Budi Santoso", "budi.santoso"),
                ("Siti Rahmawati", "siti.rahma"),
                ("Dewi Lestari", "dewi.l"),
                ("Agus Pratama", "agus.pratama"),
            ],
            damaged: &[
                "Layar retak waktu paket dibuka",
                "HP mati total saat diterima",
                "Dus penyok dan kamera belakang pecah",
            ],
            questions: &[
                "Apakah HP ini garansi resmi?",
                "Bisa COD ke Surabaya?",
                "Warna titanium masih ada stok?",
            ],
            where_is: &[
                "Paket saya belum sampai, sudah 5 hari",
                "Nomor resi J&T tidak bisa dilacak",
            ],
            replies: &[
                "Sudah saya kirim foto dan video unboxing.",
                "Terima kasih kak, sudah diterima.",
            ],
        },
        Voice {
            lang: "th",
            people: &[
                ("สมชาย ใจดี", "somchai.j"),
                ("ณัฐธิดา ศรีสุข", "nattida.s"),
                ("ปิยะพงษ์ แก้วมณี", "piyapong.k"),
            ],
            damaged: &["หน้าจอแตกตอนได้รับสินค้า", "เครื่องเปิดไม่ติดตั้งแต่แกะกล่อง"],
            questions: &["เครื่องนี้ประกันศูนย์ไทยไหมคะ", "มีผ่อน 0% ไหมครับ"],
            where_is: &["พัสดุ Kerry ยังไม่มาถึงเลยค่ะ", "สั่งไปสามวันแล้วยังไม่ได้ของ"],
            replies: &["ส่งรูปให้แล้วนะคะ", "ได้รับของแล้วครับ ขอบคุณครับ"],
        },
        Voice {
            lang: "ja",
            people: &[
                ("佐藤 花子", "hanako.sato"),
                ("鈴木 一郎", "ichiro.suzuki"),
                ("高橋 美咲", "misaki.t"),
            ],
            damaged: &[
                "届いた商品の画面が割れていました",
                "箱がつぶれていて本体に傷があります",
            ],
            questions: &["SIMフリー版でしょうか？", "ドコモのSIMは使えますか？"],
            where_is: &[
                "注文した商品がまだ届きません",
                "ヤマトの追跡番号が反映されていません",
            ],
            replies: &[
                "写真を添付しました。",
                "受け取りました。ありがとうございます。",
            ],
        },
        Voice {
            lang: "en",
            people: &[
                ("Jessica Tan", "jessica.tan"),
                ("Ryan Lim", "ryan.lim"),
                ("Mark Reyes", "mark.reyes"),
            ],
            damaged: &[
                "Phone arrived with a cracked screen",
                "Box was crushed and the phone will not turn on",
            ],
            questions: &[
                "Is this the international or the local warranty version?",
                "Does it support eSIM?",
            ],
            where_is: &[
                "Where is my order? It has been a week",
                "Tracking number shows no movement",
            ],
            replies: &["Photos attached.", "Got it, thanks!"],
        },
    ];

    fn voice(g: &mut Gen) -> &'static Voice {
        &VOICES[g.below(VOICES.len())]
    }

    /// An order number in the format of the marketplace it came from.
    fn order_id(g: &mut Gen, marketplace: &str) -> String {
        match marketplace {
            "shopee" => format!("2611{:02}{}", g.between(10, 11), g.hex(10).to_uppercase()),
            "tokopedia" => format!(
                "INV/20261111/MPL/{}",
                g.between(3_000_000_000, 3_999_999_999)
            ),
            "lazada" => format!("{}", g.between(500_000_000_000_000, 599_999_999_999_999)),
            "rakuten" => format!(
                "{}-20261111-{:010}",
                g.between(200_000, 299_999),
                g.between(0, 9_999_999_999)
            ),
            _ => format!("SS-2026-{:06}", g.between(1, 999_999)),
        }
    }

    fn marketplace_for(g: &mut Gen, lang: &str) -> &'static str {
        match lang {
            "ja" => g.pick(&["rakuten", "rakuten", "own_store"]),
            "id" => g.pick(&["tokopedia", "shopee", "own_store"]),
            "th" => g.pick(&["lazada", "shopee", "own_store"]),
            _ => g.pick(&["own_store", "shopee", "lazada"]),
        }
    }

    fn ticket(g: &mut Gen, v: &Voice, status: &str) -> Ticket {
        let (name, email) = person(g, v.people);
        let marketplace = marketplace_for(g, v.lang);
        let mut t = Ticket {
            id: g.ticket_id(),
            subject: text(g.pick(v.questions)),
            status: text(status),
            priority: text(g.pick(&["normal", "normal", "high", "low"])),
            kind: text(g.pick(&["question", "incident"])),
            tags: vec![format!("lang_{}", v.lang)],
            group: text(g.pick(&["Customer Care", "Regional Support"])),
            requester_name: Some(name),
            requester_email: Some(email),
            channel: text(g.pick(&["email", "web", "chat", "api"])),
            custom_fields: BTreeMap::new(),
        }
        .field(MARKETPLACE, marketplace.into());
        if g.chance(50) {
            let order = order_id(g, marketplace);
            t = t.field(ORDER_ID, order.into());
        }
        t
    }

    fn product(g: &mut Gen) -> (&'static str, Option<&'static str>) {
        g.pick(PRODUCTS)
    }

    fn product_question(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        let (spelling, sku) = product(g);
        let mut t = ticket(g, v, "open");
        if let (Some(sku), true) = (sku, g.chance(20)) {
            // The ticket already carries the id: no write, no request spent.
            t = t.field(PRODUCT_ID, sku.into());
        }
        let turn = Turn {
            intent: text(g.pick(&["question", "warranty", "compatibility"])),
            summary: text(g.pick(v.questions)),
            sentiment: text(g.pick(&["positive", "neutral", "neutral"])),
            confidence: confidence(g),
            language: text(v.lang),
            product: text(spelling),
            ..Turn::default()
        };
        vec![g.turn(t, turn)]
    }

    fn marketplace_ticket_created(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        let (spelling, sku) = product(g);
        let mut t = ticket(g, v, "new").field(PRODUCT, spelling.into());
        if let (Some(sku), true) = (sku, g.chance(20)) {
            t = t.field(PRODUCT_ID, sku.into());
        }
        let created = if g.chance(70) {
            g.webhook(TICKET_CREATED, t)
        } else {
            g.poll(TICKET_CREATED, t)
        };
        vec![created]
    }

    fn damaged_on_arrival(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        // From `open`, the escalation's `status helpdesk open` has nothing
        // to do (already there, no refusal): the shop's most common case,
        // kept frequent.
        let status = g.pick(&[
            "new",
            "open",
            "open",
            "awaiting_courier",
            "awaiting_customer",
        ]);
        let t = ticket(g, v, status);
        let with_product = g.chance(80);
        let (spelling, _) = product(g);
        let marketplace = match t.custom_fields.get(&MARKETPLACE.to_string()) {
            Some(Json::String(m)) => m.clone(),
            _ => "own_store".into(),
        };
        let with_order = g.chance(70);
        let order = order_id(g, &marketplace);
        let summary = g.pick(v.damaged);
        let turn = Turn {
            intent: text("damaged_on_arrival"),
            summary: text(summary),
            attempts: g.some_of(
                &[
                    "asked for unboxing photos",
                    "checked the courier's handover scan",
                    "offered a replacement",
                ],
                2,
            ),
            sentiment: text(g.pick(&["negative", "angry", "neutral"])),
            confidence: confidence(g),
            language: text(v.lang),
            order_id: with_order.then_some(order),
            product: with_product.then(|| spelling.to_string()),
            ..Turn::default()
        };
        let mut ev = g.turn(t, turn);
        if status == "awaiting_customer" {
            // The customer's reply with the photos is what reopens it.
            ev.comment = Some(Comment {
                body: g.pick(v.replies).into(),
                author: "end_user",
                public: true,
            });
        }
        vec![ev]
    }

    fn unhappy_rakuten_buyer(g: &mut Gen) -> Vec<Event> {
        let v = &VOICES[2];
        let t = ticket(g, v, "open").field(MARKETPLACE, "rakuten".into());
        let turn = Turn {
            intent: text(g.pick(&["where_is_my_order", "question", "return_request"])),
            summary: text(g.pick(&[
                "注文から一週間経っても発送されていません",
                "レビューに書く前に返品方法を知りたい",
                "問い合わせへの返信が遅すぎます",
            ])),
            attempts: g.some_of(
                &[
                    "checked the Rakuten order",
                    "shared the Yamato tracking link",
                ],
                2,
            ),
            sentiment: text(g.pick(&["negative", "angry"])),
            confidence: confidence(g),
            language: text("ja"),
            ..Turn::default()
        };
        vec![g.turn(t, turn)]
    }

    fn unsupported_language(g: &mut Gen) -> Vec<Event> {
        let (lang, summary) = g.pick(&[
            ("vi", "Điện thoại bị vỡ màn hình khi nhận hàng"),
            ("tl", "Kailan darating ang order ko?"),
            ("ko", "주문한 휴대폰이 아직 도착하지 않았어요"),
            ("zh", "手机什么时候发货？"),
            ("ms", "Bila pesanan saya akan sampai?"),
        ]);
        let v = &VOICES[3];
        let t = ticket(g, v, "open");
        let turn = Turn {
            intent: text(g.pick(&["where_is_my_order", "question"])),
            summary: text(summary),
            sentiment: text(g.pick(&["neutral", "negative"])),
            confidence: confidence(g),
            language: text(lang),
            ..Turn::default()
        };
        vec![g.turn(t, turn)]
    }

    const MOVES: &[Move] = &[
        mv("new", "open"),
        mv("open", "awaiting_customer"),
        mv("open", "awaiting_return"),
        mv("open", "awaiting_courier"),
        mv("open", "solved"),
        mv("awaiting_courier", "open"),
        mv("awaiting_customer", "open").after("end_user"),
        mv("awaiting_return", "open").after("end_user"),
        mv("solved", "open").after("end_user"),
        // Refused.
        mv("open", "new"),
        mv("new", "solved"),
        mv("awaiting_return", "solved"),
        mv("awaiting_customer", "open").after("agent"),
        mv("open", "closed"),
    ];

    fn status_request(g: &mut Gen) -> Vec<Event> {
        let m = g.next_move(MOVES);
        let v = voice(g);
        let t = ticket(g, v, m.from);
        let turn = Turn {
            intent: text(g.pick(&["where_is_my_order", "return_request", "question"])),
            summary: text(g.pick(v.where_is)),
            sentiment: text(g.pick(&["neutral", "positive", "negative"])),
            confidence: confidence(g),
            language: text(v.lang),
            ..Turn::default()
        };
        let reply = g.pick(v.replies);
        vec![m.event(g, t, turn, reply)]
    }

    fn comment(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        let status = g.pick(&["open", "awaiting_customer", "awaiting_courier", "solved"]);
        let t = ticket(g, v, status);
        let (author, body) = if g.chance(70) {
            ("end_user", g.pick(v.replies))
        } else {
            (
                "agent",
                g.pick(&[
                    "Courier confirmed pickup, ETA 2 days.",
                    "Replacement approved, booking J&T pickup.",
                    "Customer sent unboxing video; damage visible at 0:12.",
                ]),
            )
        };
        vec![g.comment(t, author, body)]
    }

    fn quiet_ticket_update(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        let status = g.pick(&["open", "awaiting_courier", "awaiting_return", "new"]);
        let t = ticket(g, v, status).tag(g.pick(&["sale_1111", "cod", "priority_shipping"]));
        vec![g.webhook(TICKET_UPDATED, t)]
    }

    /// One ticket's first minutes: the connector creates it, the customer
    /// writes, the agent picks it up. Later snapshots carry what the earlier
    /// events wrote, as Zendesk would send them.
    fn conversation(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        let (spelling, sku) = product(g);
        let mut t = ticket(g, v, "new").field(PRODUCT, spelling.into());
        let created = g.webhook(TICKET_CREATED, t.clone());
        if let Some(sku) = sku {
            t = t.field(PRODUCT_ID, sku.into());
        }
        let asked = g.pick(v.where_is);
        let commented = g.comment(t.clone(), "end_user", asked);
        let turn = Turn {
            intent: text("where_is_my_order"),
            summary: text(asked),
            attempts: g.some_of(&["looked up the tracking number"], 1),
            sentiment: text(g.pick(&["neutral", "negative"])),
            requested_status: text("open"),
            confidence: confidence(g),
            language: text(v.lang),
            product: text(spelling),
            ..Turn::default()
        };
        let answered = g.turn(t, turn);
        vec![created, commented, answered]
    }

    fn order_status(g: &mut Gen) -> Vec<Event> {
        let v = voice(g);
        let status = g.pick(&["open", "awaiting_courier"]);
        let t = ticket(g, v, status);
        let turn = Turn {
            intent: text("where_is_my_order"),
            summary: text(g.pick(v.where_is)),
            attempts: g.some_of(
                &[
                    "looked up the tracking number",
                    "checked the warehouse dispatch log",
                ],
                2,
            ),
            sentiment: text(g.pick(&["neutral", "neutral", "positive"])),
            confidence: confidence(g),
            language: text(v.lang),
            ..Turn::default()
        };
        vec![g.turn(t, turn)]
    }
}

// ---------------------------------------------------------- broken lines

mod broken {
    use super::*;

    type Breakage = fn(&mut Gen, Project, Event) -> String;

    /// The ways a line arrives unreadable: cut off, hand-edited, from a
    /// misconfigured integration, or not JSON at all. Used in turn, so every
    /// file of a hundred lines or more shows most of them.
    #[rustfmt::skip]
    pub const KINDS: &[(&str, Breakage)] = &[
        ("truncated JSON (connection dropped)", truncated),
        ("`kind` missing", missing_kind),
        ("`ticket.id` as text (`\"abc\"`, `\"ZD-4211\"`) or not a whole number", ticket_id_as_text),
        ("refund amount with a decimal comma (`\"2,50\"`)", decimal_comma),
        ("refund amount that is not a decimal (`\"1.234,00\"`, `\"€25\"`, `\"250 USD\"`)", not_a_decimal),
        ("currency that is not an ISO code (`\"usd\"`, `\"US$\"`)", bad_currency),
        ("unknown `kind` (`ticket_deleted`)", unknown_kind),
        ("`ticket.tags` as a string", tags_as_text),
        ("empty `id`", empty_id),
        ("an HTML error page from a proxy", html),
    ];

    /// The `n`th broken line of a file.
    pub fn line(g: &mut Gen, project: Project, n: usize) -> String {
        let quiet = project
            .scenarios()
            .iter()
            .find(|s| s.name == "quiet_ticket_update")
            .expect("bug: every project has a quiet_ticket_update scenario");
        let ev = (quiet.build)(g).remove(0);
        let (_, breakage) = KINDS[n % KINDS.len()];
        breakage(g, project, ev)
    }

    fn replace(line: &str, from: &str, to: &str) -> String {
        let out = line.replacen(from, to, 1);
        assert_ne!(out, line, "bug: {from:?} is not in {line}");
        out
    }

    fn ticket_id(ev: &Event) -> u64 {
        ev.ticket.as_ref().map_or(0, |t| t.id)
    }

    /// Cut mid-line, on a character boundary.
    fn truncated(g: &mut Gen, _: Project, ev: Event) -> String {
        let line = ev.to_line();
        let cut = 10 + g.below(line.len() - 20);
        let cut = (cut..line.len())
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(line.len() - 1);
        line[..cut].to_string()
    }

    fn missing_kind(_: &mut Gen, _: Project, ev: Event) -> String {
        replace(&ev.to_line(), r#""kind":"ticket_updated","#, "")
    }

    fn ticket_id_as_text(g: &mut Gen, _: Project, ev: Event) -> String {
        let id = ticket_id(&ev);
        let bad = match g.below(4) {
            0 => "\"abc\"".to_string(),
            1 => format!("\"ZD-{id}\""),
            2 => "-7".to_string(),
            _ => format!("{id}.5"),
        };
        replace(
            &ev.to_line(),
            &format!("\"ticket\":{{\"id\":{id}"),
            &format!("\"ticket\":{{\"id\":{bad}"),
        )
    }

    fn decimal_comma(g: &mut Gen, project: Project, ev: Event) -> String {
        refund(g, project, ev, "2,50", "USD")
    }

    fn not_a_decimal(g: &mut Gen, project: Project, ev: Event) -> String {
        let amount = g.pick(&["1.234,00", "€25", "250 USD", ""]);
        refund(g, project, ev, amount, "USD")
    }

    fn bad_currency(g: &mut Gen, project: Project, ev: Event) -> String {
        let currency = g.pick(&["usd", "US$", "DOLLAR"]);
        refund(g, project, ev, "250.00", currency)
    }

    fn unknown_kind(_: &mut Gen, _: Project, mut ev: Event) -> String {
        ev.kind = "ticket_deleted";
        ev.to_line()
    }

    fn tags_as_text(_: &mut Gen, _: Project, ev: Event) -> String {
        let id = ticket_id(&ev);
        replace(
            &ev.to_line(),
            &format!("\"ticket\":{{\"id\":{id},"),
            &format!("\"ticket\":{{\"id\":{id},\"tags\":\"vip\","),
        )
    }

    fn empty_id(_: &mut Gen, _: Project, mut ev: Event) -> String {
        ev.id = String::new();
        ev.to_line()
    }

    fn html(_: &mut Gen, _: Project, _: Event) -> String {
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>".into()
    }

    /// The quiet event's ticket, with an agent turn whose refund amount or
    /// currency cannot be read.
    fn refund(g: &mut Gen, project: Project, ev: Event, amount: &str, currency: &str) -> String {
        let summary = match project {
            Project::Shop => "Minta refund ongkir",
            _ => "Wants a refund for a duplicate charge",
        };
        let turn = Turn {
            intent: text("refund"),
            summary: text(summary),
            refund_amount: money(amount.into(), currency),
            ..Turn::default()
        };
        let ticket = ev.ticket.unwrap_or_default();
        g.turn(ticket, turn).to_line()
    }
}
