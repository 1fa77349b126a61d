//! From the payloads Zendesk and Salesforce actually send to the normalised
//! [`Event`]. Each converter is a pure function of the payload and a small
//! context built once from the compiled [`Program`]; a payload that cannot
//! be read is refused with the JSON path of the wrong field, never a panic.
//! See docs/EVENTS.md, "Converting source payloads".

pub mod salesforce;
pub mod zendesk;

use super::event::{Event, EventError};
use crate::ir::Program;
use crate::model::{Category, Kind};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Map, Value as Json};
use std::fmt::Display;

/// The statuses a Zendesk payload can be read into, indexed once per
/// program so converting an event is a couple of hash lookups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusIndex {
    by_custom_id: FxHashMap<u64, String>,
    /// A category's one status without a custom status id: the one a
    /// ticket in the category's default status is.
    by_category: FxHashMap<String, String>,
    names: FxHashSet<String>,
}

impl StatusIndex {
    /// Indexes the program's Zendesk status table: the first table of a
    /// Zendesk connection, the same one the interpreter decides against.
    pub fn new(p: &Program) -> StatusIndex {
        let mut index = StatusIndex::default();
        let table = p
            .status_tables
            .iter()
            .find(|t| p.kind_of(&t.connection) == Some(Kind::Zendesk));
        for s in table.iter().flat_map(|t| &t.statuses) {
            if let Some(id) = s.custom_status_id {
                index
                    .by_custom_id
                    .entry(id)
                    .or_insert_with(|| s.name.clone());
            }
            index.names.insert(s.name.clone());
        }
        // A status by category only is its lockfile default's custom
        // status: l3map writes that id, so a ticket there reads back as it
        // (an `#id` status declaring the same id keeps it: the checker warns).
        for s in table.iter().flat_map(|t| &t.statuses) {
            if let (None, Some(id)) = (s.custom_status_id, s.instance_status_id) {
                index
                    .by_custom_id
                    .entry(id)
                    .or_insert_with(|| s.name.clone());
            }
        }
        for (category, _) in Category::ALL {
            let mut without = table
                .iter()
                .flat_map(|t| &t.statuses)
                .filter(|s| s.category.as_str() == category && s.custom_status_id.is_none());
            if let (Some(only), None) = (without.next(), without.next()) {
                index
                    .by_category
                    .insert(category.to_string(), only.name.clone());
            }
        }
        index
    }

    /// The l3map status name for a Zendesk ticket: its custom status when
    /// the table declares that id, else (with no custom status id at all)
    /// the category's one status without an id, else a status named like
    /// the Zendesk category, else the category itself (so a condition can
    /// still see it).
    pub fn resolve(&self, category: Option<&str>, custom_status_id: Option<u64>) -> Option<String> {
        if let Some(name) = custom_status_id.and_then(|id| self.by_custom_id.get(&id)) {
            return Some(name.clone());
        }
        category.map(|c| {
            // Only a ticket with no custom status is in the category's
            // default: an id the table does not declare is some other
            // status, which must not pass for the declared one.
            if let Some(name) = self
                .by_category
                .get(c)
                .filter(|_| custom_status_id.is_none())
            {
                return name.clone();
            }
            match self.names.get(c) {
                Some(name) => name.clone(),
                None => c.to_string(),
            }
        })
    }
}

/// How Salesforce records relate to Zendesk tickets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesforceOptions {
    /// The Salesforce field holding the Zendesk ticket id, e.g.
    /// `Zendesk_Ticket_Id__c` (a dotted path reads a related record).
    /// When the record carries it, the event gets `ticket.id`.
    pub ticket_field: Option<String>,
}

/// Everything the converters need besides the payload. Build it once per
/// compiled program and reuse it for every event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvertContext {
    pub statuses: StatusIndex,
    pub salesforce: SalesforceOptions,
}

impl ConvertContext {
    pub fn new(p: &Program) -> ConvertContext {
        ConvertContext {
            statuses: StatusIndex::new(p),
            salesforce: SalesforceOptions::default(),
        }
    }

    pub fn with_salesforce(mut self, options: SalesforceOptions) -> ConvertContext {
        self.salesforce = options;
        self
    }
}

/// The payload shapes [`from_source_json`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Already an l3map event (`id` and `kind` at the top).
    Normalised,
    /// Tickets API: `{"ticket": {...}}`, `{"tickets": [...]}` or a bare ticket.
    ZendeskTicket,
    /// A webhook event subscription: `"type": "zen:event-type:..."`.
    ZendeskWebhook,
    /// A REST sObject or a SOQL query result.
    SalesforceRecords,
    /// A Change Data Capture event, bare or in its envelope.
    SalesforceChange,
}

/// Tells which source shape a payload has, by the fields only that shape has.
pub fn detect(v: &Json) -> Option<Shape> {
    let m = v.as_object()?;
    let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
    let is_obj = |k: &str| m.get(k).is_some_and(Json::is_object);
    // `at` is ours alone too: a normalised event that lost its `kind`
    // should say so, not be read as a Zendesk ticket.
    if has("id") && (has("kind") || has("at")) {
        return Some(Shape::Normalised);
    }
    if m.get("type")
        .and_then(Json::as_str)
        .is_some_and(|t| t.starts_with(zendesk::EVENT_TYPE_PREFIX))
    {
        return Some(Shape::ZendeskWebhook);
    }
    if has("ChangeEventHeader") || salesforce::change_payload(m).is_some() {
        return Some(Shape::SalesforceChange);
    }
    if is_obj("attributes") || (m.get("records").is_some_and(Json::is_array) && has("totalSize")) {
        return Some(Shape::SalesforceRecords);
    }
    if is_obj("ticket") || m.get("tickets").is_some_and(Json::is_array) {
        return Some(Shape::ZendeskTicket);
    }
    if has("id") && (has("status") || has("updated_at")) {
        return Some(Shape::ZendeskTicket);
    }
    None
}

/// Reads any supported payload into events: one for a Zendesk ticket or
/// webhook, one per record for Salesforce (a query result or a change event
/// may name several). An already-normalised event passes through
/// [`Event::from_json`] unchanged.
pub fn from_source_json(text: &str, ctx: &ConvertContext) -> Result<Vec<Event>, EventError> {
    let v: Json = serde_json::from_str(text).map_err(|e| fail("", format!("invalid JSON: {e}")))?;
    if detect(&v) == Some(Shape::Normalised) {
        return Event::from_json(text).map(|e| vec![e]);
    }
    from_source_value(&v, ctx)
}

/// What `POST /webhooks/zendesk` reads: one Zendesk webhook delivery,
/// never another source's shape (see [`zendesk::from_delivery`]).
pub fn from_zendesk_webhook(text: &str, ctx: &ConvertContext) -> Result<Event, EventError> {
    let v: Json = serde_json::from_str(text).map_err(|e| fail("", format!("invalid JSON: {e}")))?;
    zendesk::from_delivery(&v, &ctx.statuses)
}

/// [`from_source_json`] for a payload already parsed.
pub fn from_source_value(v: &Json, ctx: &ConvertContext) -> Result<Vec<Event>, EventError> {
    match detect(v) {
        Some(Shape::Normalised) => {
            let text = serde_json::to_string(v).map_err(|e| fail("", e))?;
            Event::from_json(&text).map(|e| vec![e])
        }
        Some(Shape::ZendeskTicket) => zendesk::from_ticket(v, &ctx.statuses),
        Some(Shape::ZendeskWebhook) => zendesk::from_webhook(v, &ctx.statuses).map(|e| vec![e]),
        Some(Shape::SalesforceRecords) => salesforce::from_records(v, &ctx.salesforce),
        Some(Shape::SalesforceChange) => salesforce::from_change_event(v, &ctx.salesforce),
        None if !v.is_object() => Err(fail(
            "",
            format!("expected a JSON object, found {}", describe(v)),
        )),
        None => Err(fail(
            "",
            "not a payload l3map can read: expected a Zendesk ticket ({\"ticket\": ...}) or \
             webhook event (\"type\": \"zen:event-type:...\"), a Salesforce record \
             (\"attributes\"), query result (\"records\") or change event \
             (\"ChangeEventHeader\"), or a normalised event (\"id\" and \"kind\")",
        )),
    }
}

// ---------------------------------------------------------------- helpers
// Every accessor takes the path of the object it reads from, so an error
// names the field the way the payload spells it: `detail.id`, `records[2].Id`.

pub(crate) fn fail(path: &str, msg: impl Display) -> EventError {
    EventError {
        message: if path.is_empty() {
            msg.to_string()
        } else {
            format!("{path}: {msg}")
        },
    }
}

pub(crate) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

pub(crate) fn describe(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A present value: JSON `null` counts as absent, as sources send both.
pub(crate) fn get<'a>(m: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    m.get(key).filter(|v| !v.is_null())
}

pub(crate) fn as_object<'a>(v: &'a Json, path: &str) -> Result<&'a Map<String, Json>, EventError> {
    v.as_object()
        .ok_or_else(|| fail(path, format!("expected an object, found {}", describe(v))))
}

pub(crate) fn req_object<'a>(
    m: &'a Map<String, Json>,
    base: &str,
    key: &str,
) -> Result<&'a Map<String, Json>, EventError> {
    let path = join(base, key);
    match get(m, key) {
        Some(v) => as_object(v, &path),
        None => Err(fail(&path, "missing (expected an object)")),
    }
}

pub(crate) fn opt_str(
    m: &Map<String, Json>,
    base: &str,
    key: &str,
) -> Result<Option<String>, EventError> {
    match get(m, key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(fail(
            &join(base, key),
            format!("expected a string, found {}", describe(v)),
        )),
    }
}

/// A string that must be there and must not be blank.
pub(crate) fn req_str(m: &Map<String, Json>, base: &str, key: &str) -> Result<String, EventError> {
    match opt_str(m, base, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(fail(&join(base, key), "must not be empty")),
        None => Err(fail(&join(base, key), "missing (expected a string)")),
    }
}

pub(crate) fn opt_bool(
    m: &Map<String, Json>,
    base: &str,
    key: &str,
) -> Result<Option<bool>, EventError> {
    match get(m, key) {
        None => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(fail(
            &join(base, key),
            format!("expected a boolean, found {}", describe(v)),
        )),
    }
}

pub(crate) fn str_list(
    m: &Map<String, Json>,
    base: &str,
    key: &str,
) -> Result<Vec<String>, EventError> {
    let path = join(base, key);
    let Some(v) = get(m, key) else {
        return Ok(vec![]);
    };
    let items = v.as_array().ok_or_else(|| {
        fail(
            &path,
            format!("expected an array of strings, found {}", describe(v)),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| match x {
            Json::String(s) => Ok(s.clone()),
            other => Err(fail(
                &index(&path, i),
                format!("expected a string, found {}", describe(other)),
            )),
        })
        .collect()
}

/// A numeric id as Zendesk and Salesforce send them: a JSON integer, a
/// whole float (Salesforce number fields: `4211.0`) or a string of digits
/// (Zendesk webhooks: `"4211"`).
pub(crate) fn id_value(v: &Json, path: &str) -> Result<u64, EventError> {
    let bad = |what: String| {
        fail(
            path,
            format!("expected a number (an id such as 4211), found {what}"),
        )
    };
    match v {
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                return Ok(u);
            }
            // Only floats that are exact integers: 2^53 is where f64 stops
            // holding every integer, so a larger float is not an id.
            match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => {
                    Ok(f as u64)
                }
                _ => Err(bad(format!("{n}"))),
            }
        }
        Json::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse()
                    .map_err(|_| bad(format!("{s:?}, which is too large")))
            } else {
                Err(bad(format!("{s:?}")))
            }
        }
        other => Err(bad(describe(other).to_string())),
    }
}

pub(crate) fn opt_id(
    m: &Map<String, Json>,
    base: &str,
    key: &str,
) -> Result<Option<u64>, EventError> {
    get(m, key)
        .map(|v| id_value(v, &join(base, key)))
        .transpose()
}

pub(crate) fn req_id(m: &Map<String, Json>, base: &str, key: &str) -> Result<u64, EventError> {
    opt_id(m, base, key)?.ok_or_else(|| fail(&join(base, key), "missing (expected a number)"))
}

// ---------------------------------------------------------------- time

/// A source timestamp as RFC 3339. Salesforce writes its offset without a
/// colon (`2026-11-11T10:00:00.000+0000`), which is ISO 8601 but not RFC
/// 3339: the offset is rewritten (`Z`, `+05:30`), nothing else is touched.
pub(crate) fn rfc3339(s: &str, path: &str) -> Result<String, EventError> {
    let fixed = fix_offset(s);
    if is_rfc3339(&fixed) {
        Ok(fixed)
    } else {
        Err(fail(
            path,
            format!("{s:?} is not a timestamp such as \"2026-11-11T10:00:00Z\""),
        ))
    }
}

fn fix_offset(s: &str) -> String {
    // Checked on bytes first: the tail is sliced only once it is known to
    // be ASCII, so a multi-byte character there cannot split.
    let b = s.as_bytes();
    let Some(tail) = b.len().checked_sub(5).map(|i| &b[i..]) else {
        return s.to_string();
    };
    let is_offset = matches!(tail[0], b'+' | b'-') && tail[1..].iter().all(u8::is_ascii_digit);
    if b.len() <= 5 || !is_offset {
        return s.to_string();
    }
    let (head, tail) = s.split_at(s.len() - 5);
    if &tail[1..] == "0000" {
        format!("{head}Z")
    } else {
        format!("{head}{}:{}", &tail[..3], &tail[3..])
    }
}

fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let date_time = (|| {
        let ok = num(0..4).is_some()
            && b.get(4) == Some(&b'-')
            && (1..=12).contains(&num(5..7)?)
            && b.get(7) == Some(&b'-')
            && (1..=31).contains(&num(8..10)?)
            && matches!(b.get(10), Some(b'T' | b't'))
            && num(11..13)? < 24
            && b.get(13) == Some(&b':')
            && num(14..16)? < 60
            && b.get(16) == Some(&b':')
            && num(17..19)? <= 60;
        Some(ok)
    })();
    if date_time != Some(true) {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
                && (*h1 - b'0') * 10 + (*h2 - b'0') < 24
                && (*m1 - b'0') * 10 + (*m2 - b'0') < 60
        }
        _ => false,
    }
}

/// Milliseconds since 1970 (Salesforce `commitTimestamp`) as RFC 3339 UTC
/// with milliseconds; times past the end of year 9999 (as jiff counts it,
/// 9999-12-30T22:00:00Z) are refused.
pub(crate) fn millis_to_rfc3339(ms: u64, path: &str) -> Result<String, EventError> {
    // jiff does the calendar; the format is fixed to milliseconds, the
    // precision Salesforce stamps with.
    let ts = i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .ok_or_else(|| fail(path, format!("{ms} is past the year 9999")))?;
    Ok(format!(
        "{}.{:03}Z",
        ts.strftime("%Y-%m-%dT%H:%M:%S"),
        ms % 1000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EventKind;

    fn ctx() -> ConvertContext {
        ConvertContext::default()
    }

    fn err(text: &str) -> String {
        from_source_json(text, &ctx()).unwrap_err().message
    }

    #[test]
    fn detects_each_shape() {
        let shape = |s: &str| detect(&serde_json::from_str(s).unwrap());
        assert_eq!(
            shape(r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z"}"#),
            Some(Shape::Normalised)
        );
        assert_eq!(shape(r#"{"ticket":{"id":1}}"#), Some(Shape::ZendeskTicket));
        assert_eq!(shape(r#"{"tickets":[]}"#), Some(Shape::ZendeskTicket));
        assert_eq!(
            shape(r#"{"id":1,"status":"open","type":"question"}"#),
            Some(Shape::ZendeskTicket)
        );
        assert_eq!(
            shape(r#"{"type":"zen:event-type:ticket.created","id":"x"}"#),
            Some(Shape::ZendeskWebhook)
        );
        assert_eq!(
            shape(r#"{"attributes":{"type":"Case"}}"#),
            Some(Shape::SalesforceRecords)
        );
        assert_eq!(
            shape(r#"{"totalSize":0,"done":true,"records":[]}"#),
            Some(Shape::SalesforceRecords)
        );
        assert_eq!(
            shape(r#"{"ChangeEventHeader":{}}"#),
            Some(Shape::SalesforceChange)
        );
        assert_eq!(
            shape(r#"{"payload":{"ChangeEventHeader":{}},"event":{"replayId":1}}"#),
            Some(Shape::SalesforceChange)
        );
        assert_eq!(
            shape(
                r#"{"channel":"/data/CaseChangeEvent","data":{"payload":{"ChangeEventHeader":{}}}}"#
            ),
            Some(Shape::SalesforceChange)
        );
        assert_eq!(shape(r#"{"hello":"world"}"#), None);
        assert_eq!(shape(r#"[1]"#), None);
    }

    #[test]
    fn normalised_events_pass_through_unchanged() {
        let text =
            r#"{"id":"t-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{"id":42}}"#;
        assert_eq!(
            from_source_json(text, &ctx()).unwrap(),
            vec![Event::from_json(text).unwrap()]
        );
        let v: Json = serde_json::from_str(text).unwrap();
        assert_eq!(
            from_source_value(&v, &ctx()).unwrap()[0].kind,
            EventKind::AgentTurn
        );
        // Its errors are Event::from_json's, path and all.
        assert!(
            err(r#"{"id":"x","kind":"explosion","at":"2026-11-11T10:00:00Z"}"#)
                .starts_with("kind:")
        );
    }

    #[test]
    fn never_panics_on_hostile_input() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_obj = format!("{}1{}", r#"{"ticket":"#.repeat(5_000), "}".repeat(5_000));
        let inputs = [
            "",
            "{not json",
            "null",
            "42",
            "\"text\"",
            "[]",
            "{}",
            deep.as_str(),
            deep_obj.as_str(),
            r#"{"ticket":{"id":1e400,"updated_at":"2026-01-01T00:00:00Z"}}"#,
            r#"{"ticket":{"id":184467440737095516160,"updated_at":"2026-01-01T00:00:00Z"}}"#,
            r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00\u00e9Z"}}"#,
            r#"{"ticket":{"id":1,"updated_at":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}}"#,
            r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00+\u00e9\u00e9"}}"#,
            r#"{"ChangeEventHeader":[]}"#,
            r#"{"ChangeEventHeader":{"entityName":"Case","recordIds":["1"],"changeType":"UPDATE","commitTimestamp":253402300800000,"transactionKey":"k","sequenceNumber":1}}"#,
            r#"{"type":"zen:event-type:","id":"x"}"#,
            r#"{"attributes":{},"records":"x"}"#,
            r#"{"id":null,"kind":null}"#,
        ];
        for input in inputs {
            assert!(
                from_source_json(input, &ctx()).is_err(),
                "accepted {input:.80}"
            );
        }
    }

    #[test]
    fn top_level_errors_say_what_was_expected() {
        assert!(err("{not json").starts_with("invalid JSON:"));
        assert_eq!(err("[1]"), "expected a JSON object, found an array");
        assert!(err(r#"{"hello":"world"}"#).starts_with("not a payload l3map can read"));
    }

    #[test]
    fn timestamps() {
        let ok = |s: &str| rfc3339(s, "at").unwrap();
        assert_eq!(ok("2026-11-11T10:00:00Z"), "2026-11-11T10:00:00Z");
        assert_eq!(
            ok("2026-11-11T10:00:00.123456789Z"),
            "2026-11-11T10:00:00.123456789Z"
        );
        assert_eq!(
            ok("2026-11-11T10:00:00.000+0000"),
            "2026-11-11T10:00:00.000Z"
        );
        assert_eq!(
            ok("2026-11-11T10:00:00.000+0530"),
            "2026-11-11T10:00:00.000+05:30"
        );
        assert_eq!(ok("2026-11-11T10:00:00-08:00"), "2026-11-11T10:00:00-08:00");
        for bad in [
            "",
            "2026-11-11",
            "2026-11-11 10:00:00Z",
            "2026-11-11T10:00:00",
            "2026-11-11T24:00:00Z",
            "2026-11-11T10:00:00.Z",
            "2026-11-11T10:00:00+25:00",
            "+0000",
            "2026-00-11T10:00:00Z",
        ] {
            assert!(rfc3339(bad, "at").is_err(), "{bad}");
        }
        let ms = |n: u64| millis_to_rfc3339(n, "t").unwrap();
        assert_eq!(ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ms(1_794_391_200_123), "2026-11-11T10:00:00.123Z");
        assert_eq!(ms(253_402_207_200_999), "9999-12-30T22:00:00.999Z");
        assert!(millis_to_rfc3339(253_402_207_201_000, "t").is_err());
        assert!(millis_to_rfc3339(u64::MAX, "t").is_err());
    }

    #[test]
    fn ids() {
        let id = |s: &str| id_value(&serde_json::from_str(s).unwrap(), "id");
        assert_eq!(id("4211").unwrap(), 4211);
        assert_eq!(id("\"4211\"").unwrap(), 4211);
        assert_eq!(id("4211.0").unwrap(), 4211);
        assert_eq!(id("18446744073709551615").unwrap(), u64::MAX);
        for bad in [
            "-1",
            "1.5",
            "1e300",
            "\"\"",
            "\"-1\"",
            "\"1 2\"",
            "\"18446744073709551616\"",
            "true",
            "{}",
            "[]",
            "null",
        ] {
            let e = id(bad).unwrap_err().message;
            assert!(e.starts_with("id: expected a number"), "{bad}: {e}");
        }
    }
}
