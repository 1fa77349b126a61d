//! Change Data Capture throughput: events/s decoded from Avro and decided,
//! on one core, against the same events decided from JSON.
//!
//! Groups (`Throughput::Elements`, so criterion prints elements/s):
//!
//! * `cdc/avro_decide`  what `l3map run` does per change event once the
//!   bytes are off the wire: the schema from the cache by schema id, the
//!   runtime's decoder (`runtime::cdc::decode`: Avro with the writer's
//!   schema, the `changedFields`/`nulledFields`/`diffFields` bitmaps
//!   expanded, the `CrmChange` built), the own-write check, the links of
//!   the changed object, the changed record, the per-ticket
//!   `record_changed` event the fan-out builds (`fanout::event::build`)
//!   and `eval::decide` on `mappings/saas`
//! * `cdc/avro_decode`  the decoder alone (the Avro side of the work)
//! * `cdc/json_decide`  baseline: the same per-ticket event, written as
//!   l3map's event JSON, read with `Event::from_json` and decided: what an
//!   event that arrives as JSON costs
//! * `cdc/decide`       `decide` alone on the events built beforehand
//!
//! The payloads are encoded once, before timing, by the Salesforce
//! emulator's encoder (`emulator::salesforce::pubsub::avro::EventSchema`)
//! with the schema its `GetSchema` serves; the subscriber parses that
//! schema's JSON, as it does in `l3map run`. No I/O in the timed loops: the
//! Zendesk ticket each event reaches is the page a search would have
//! returned, built beforehand.
//!
//! Run: `cargo bench --bench cdc`. Smoke test: `cargo bench --bench cdc -- --test`.

use criterion::{black_box, Criterion, Throughput};
use l3map::connectors::zendesk::Ticket as ZdTicket;
use l3map::emulator::salesforce::pubsub::avro::{EventSchema, Header};
use l3map::emulator::salesforce::{Record, Schema as OrgSchema};
use l3map::eval::convert::ConvertContext;
use l3map::eval::decide::decide;
use l3map::eval::Event;
use l3map::ir::Program;
use l3map::runtime::cdc::{decode, Decoded};
use l3map::runtime::links::fanout::{event, is_own};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per iteration.
const EVENTS: usize = 1_000;

/// One change event as it comes off the stream.
struct Wire {
    schema_id: String,
    payload: Vec<u8>,
    /// The ticket the fan-out's search found for it.
    ticket: ZdTicket,
}

fn saas() -> Program {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/saas");
    l3map::runtime::compile::compile(&dir).expect("mappings/saas compiles")
}

/// Deterministic choices (xorshift64*), so every run sees the same events.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ticket(id: u64, rng: &mut Rng) -> ZdTicket {
    // Half the tickets already hold a tier, so some writes are skipped as
    // equal, as on a desk where most tickets were set before.
    let fields = if rng.below(2) == 0 {
        serde_json::json!([{"id": 360004101, "value": "business"}])
    } else {
        serde_json::json!([])
    };
    let status = ["new", "open", "pending", "hold"][rng.below(4) as usize];
    serde_json::from_value(serde_json::json!({
        "id": id,
        "subject": "Dashboard export times out",
        "status": status,
        "priority": "normal",
        "tags": ["export", "enterprise"],
        "custom_fields": fields,
        "updated_at": "2026-12-06T09:00:00Z",
        "organization_id": 90001,
        "requester_id": 80001,
    }))
    .expect("a ticket")
}

/// `EVENTS` change events: 70% Account updates touching one to three of the
/// mapped fields (tier, contract value, renewal date), 30% Case updates
/// (priority, case number), each with `LastModifiedDate` as Salesforce
/// always sends it, from a person's edit (`changeOrigin` not l3map's).
fn wire_events(org: &OrgSchema, schemas: &HashMap<&str, EventSchema>) -> Vec<Wire> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tiers = ["Ent", "Biz", "Std", "Starter", "Gold"];
    let priorities = ["High", "Medium", "Low"];
    (0..EVENTS)
        .map(|i| {
            let account = rng.below(10) < 7;
            let object = if account { "Account" } else { "Case" };
            let es = &schemas[object];
            let mut fields = Record::new();
            if account {
                let pick = 1 + rng.below(7); // a non-empty subset of three
                if pick & 1 != 0 {
                    fields.insert(
                        "SLA_Tier__c".into(),
                        tiers[rng.below(tiers.len() as u64) as usize].into(),
                    );
                }
                if pick & 2 != 0 {
                    fields.insert(
                        "Contract_Value__c".into(),
                        (10_000 + rng.below(500) * 1_000).into(),
                    );
                }
                if pick & 4 != 0 {
                    let day = 1 + rng.below(28);
                    fields.insert("Renewal_Date__c".into(), format!("2027-06-{day:02}").into());
                }
            } else {
                fields.insert("Priority".into(), priorities[rng.below(3) as usize].into());
                if rng.below(3) == 0 {
                    fields.insert("CaseNumber".into(), format!("{:08}", 10_000 + i).into());
                }
            }
            let obj = org.object(object).expect("the object");
            if obj.field("LastModifiedDate").is_some() {
                fields.insert(
                    "LastModifiedDate".into(),
                    "2026-12-06T10:00:00.000+0000".into(),
                );
            }
            let names: BTreeSet<String> = fields.keys().cloned().collect();
            let prefix = if account { "001" } else { "500" };
            let header = Header {
                entity_name: object.into(),
                record_ids: vec![format!("{prefix}5e0000{:09}AAA", rng.below(1_000))],
                change_type: "UPDATE",
                change_origin: "com/salesforce/api/soap/64.0;client=SfdcInternalAPI/".into(),
                transaction_key: format!("0001{i:012x}-bench"),
                sequence_number: 1,
                commit_timestamp: 1_796_551_200_000 + i as i64,
                commit_number: 10_000 + i as i64,
                commit_user: "0055e0000000002AAA".into(),
                nulled_fields: vec![],
                diff_fields: vec![],
                changed_fields: es.bitmaps(&names),
            };
            let payload = es.encode(&header, &fields).expect("the emulator encodes");
            Wire {
                schema_id: es.id.clone(),
                payload,
                ticket: ticket(100_000 + i as u64, &mut rng),
            }
        })
        .collect()
}

/// Everything one event needs that `l3map run` holds per revision or per
/// connection: the program, its status index, the schema cache.
struct Runtime {
    program: Program,
    convert: ConvertContext,
    /// The subscriber's cache: schema id to the schema `GetSchema` gave.
    schemas: HashMap<String, Arc<apache_avro::Schema>>,
}

impl Runtime {
    /// One event's work, from the payload to the decision; returns the
    /// number of actions, so nothing is optimised away.
    fn avro_decide(&self, w: &Wire) -> usize {
        let schema = self.schemas.get(&w.schema_id).expect("cached");
        let decoded = decode(schema, &w.payload, "crm").expect("decodes");
        let Decoded::Change(change) = decoded else {
            unreachable!("only updates here")
        };
        if is_own(change.origin.as_deref()) {
            return 0;
        }
        let linked = self
            .program
            .links
            .iter()
            .any(|l| l.crm == change.connection && l.object == change.object);
        if !linked {
            return 0;
        }
        let mut n = 0;
        for id in &change.ids {
            let record = event::record(&change, id);
            let ev = event::build(
                &change,
                &record,
                &w.ticket,
                &self.convert.statuses,
                &self.program,
            );
            n += decide(&self.program, &ev).actions.len();
        }
        n
    }

    /// The per-ticket events, built beforehand (for the baselines).
    fn events(&self, wire: &[Wire]) -> Vec<Event> {
        wire.iter()
            .map(|w| {
                let schema = &self.schemas[&w.schema_id];
                let change = match decode(schema, &w.payload, "crm").expect("decodes") {
                    Decoded::Change(c) => c,
                    other => panic!("an update, not {other:?}"),
                };
                let record = event::record(&change, &change.ids[0]);
                event::build(
                    &change,
                    &record,
                    &w.ticket,
                    &self.convert.statuses,
                    &self.program,
                )
            })
            .collect()
    }
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let program = saas();
    program.index();
    let mut org = OrgSchema::standard();
    org.extend_from(&program);
    let event_schemas: HashMap<&str, EventSchema> = ["Account", "Case"]
        .into_iter()
        .map(|o| {
            let es = EventSchema::for_object(org.object(o).expect("object"))
                .expect("the emulator's schema");
            (o, es)
        })
        .collect();
    // The subscriber's side: the schema parsed from the JSON `GetSchema`
    // returns, cached by id.
    let schemas: HashMap<String, Arc<apache_avro::Schema>> = event_schemas
        .values()
        .map(|es| {
            let parsed = apache_avro::Schema::parse_str(&es.json).expect("parses");
            (es.id.clone(), Arc::new(parsed))
        })
        .collect();
    let wire = wire_events(&org, &event_schemas);
    let rt = Runtime {
        convert: ConvertContext::new(&program),
        program,
        schemas,
    };
    let events = rt.events(&wire);
    let json: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("serialises"))
        .collect();

    // Checked once, outside timing: both paths decide the same actions,
    // and most events write something.
    let mut writing = 0;
    for ((w, ev), text) in wire.iter().zip(&events).zip(&json) {
        let from_json = Event::from_json(text).expect("reads back");
        assert_eq!(&from_json, ev, "the JSON round trip keeps the event");
        let a = rt.avro_decide(w);
        assert_eq!(a, decide(&rt.program, &from_json).actions.len());
        writing += usize::from(a > 0);
    }
    let bytes: usize = wire.iter().map(|w| w.payload.len()).sum();
    let json_bytes: usize = json.iter().map(String::len).sum();
    println!(
        "{EVENTS} events: {writing} decide a write; Avro {:.0} bytes/event, the event as JSON {:.0} bytes/event",
        bytes as f64 / EVENTS as f64,
        json_bytes as f64 / EVENTS as f64
    );
    assert!(writing > EVENTS / 2, "most events must decide a write");

    let mut g = c.benchmark_group("cdc");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("avro_decide", |b| {
        b.iter(|| {
            wire.iter()
                .map(|w| rt.avro_decide(black_box(w)))
                .sum::<usize>()
        })
    });
    g.bench_function("avro_decode", |b| {
        b.iter(|| {
            wire.iter()
                .map(|w| {
                    let schema = &rt.schemas[&w.schema_id];
                    let d = decode(schema, black_box(&w.payload), "crm").expect("decodes");
                    d.change().fields.len()
                })
                .sum::<usize>()
        })
    });
    g.bench_function("json_decide", |b| {
        b.iter(|| {
            json.iter()
                .map(|t| {
                    let ev = Event::from_json(black_box(t)).expect("reads");
                    decide(&rt.program, &ev).actions.len()
                })
                .sum::<usize>()
        })
    });
    g.bench_function("decide", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|ev| decide(&rt.program, black_box(ev)).actions.len())
                .sum::<usize>()
        })
    });
    g.finish();
    c.final_summary();
    summary(started);
}

// ------------------------------------------------------------------ summary

fn criterion_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return h.into();
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion")
}

/// Mean time per iteration (ns) of one benchmark, if measured in this run.
fn mean_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home().join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn summary(started: SystemTime) {
    let per_sec = |id: &str| mean_ns(id, started).map(|ns| EVENTS as f64 / (ns / 1e9));
    let (Some(avro), Some(json), Some(dec), Some(decide)) = (
        per_sec("cdc/avro_decide"),
        per_sec("cdc/json_decide"),
        per_sec("cdc/avro_decode"),
        per_sec("cdc/decide"),
    ) else {
        println!("\n(no summary: not every benchmark was measured in this run)");
        return;
    };
    println!("\n== CDC events, one core ==");
    println!("Avro decoded and decided {avro:>10.0} events/s");
    println!("  Avro decode alone      {dec:>10.0} events/s");
    println!("  decide alone           {decide:>10.0} events/s");
    println!("JSON read and decided    {json:>10.0} events/s (baseline)");
    println!(
        "Avro+CDC / JSON speed {:.2}x   time per event: Avro path {:.2} us, JSON path {:.2} us",
        avro / json,
        1e6 / avro,
        1e6 / json
    );
}
