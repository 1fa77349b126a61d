//! Salesforce payloads: REST sObjects, SOQL query results and Change Data
//! Capture events. All become `record_changed` events with the record
//! under `records[Object]`, fields named as Salesforce names them.

use super::{
    as_object, fail, get, id_value, index, join, millis_to_rfc3339, opt_str, req_object, req_str,
    rfc3339, str_list, SalesforceOptions,
};
use crate::eval::event::{Event, EventError, EventKind, Ticket};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// How deep `attributes` are stripped from nested relationship records;
/// deeper than any real SOQL relationship chain (Salesforce allows five).
const MAX_DEPTH: usize = 32;

/// Reads a REST record (`{"attributes": {"type": "Case", ...}, "Id": ...}`)
/// or a SOQL query result (`{"totalSize", "done", "records": [...]}`, one
/// event per record). A record is a state, not a change: `changed` stays
/// empty, so every field present counts as current.
pub fn from_records(v: &Json, opts: &SalesforceOptions) -> Result<Vec<Event>, EventError> {
    let top = as_object(v, "")?;
    if get(top, "attributes").is_some() {
        return Ok(vec![record(top, "", opts)?]);
    }
    let Some(records) = get(top, "records") else {
        return Err(fail(
            "records",
            "missing (expected a record or a query result)",
        ));
    };
    let items = records
        .as_array()
        .ok_or_else(|| fail("records", "expected an array of records"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let path = index("records", i);
            record(as_object(r, &path)?, &path, opts)
        })
        .collect()
}

/// The record's modification stamp is its version: the event id pairs it
/// with the record id, so re-reading an unchanged record gives the same id.
fn record(
    m: &Map<String, Json>,
    base: &str,
    opts: &SalesforceOptions,
) -> Result<Event, EventError> {
    let attrs = req_object(m, base, "attributes")?;
    let object = req_str(attrs, &join(base, "attributes"), "type")?;
    let id = req_str(m, base, "Id")?;
    let (key, stamp) = match (
        opt_str(m, base, "SystemModstamp")?,
        opt_str(m, base, "LastModifiedDate")?,
    ) {
        (Some(s), _) => ("SystemModstamp", s),
        (None, Some(s)) => ("LastModifiedDate", s),
        (None, None) => {
            return Err(fail(
                &join(base, "SystemModstamp"),
                "missing, and so is LastModifiedDate (the event's time and id come from them: \
                 select one in the query)",
            ))
        }
    };
    let at = rfc3339(&stamp, &join(base, key))?;
    let fields = strip_attributes(m, 0);
    let ticket = linked_ticket(&fields, base, opts)?;
    Ok(Event {
        id: format!("salesforce:{object}:{id}:{at}"),
        kind: EventKind::RecordChanged,
        at,
        ticket,
        comment: None,
        turn: None,
        records: BTreeMap::from([(object, fields)]),
        changed: vec![],
    })
}

/// `attributes` (type and URL) is REST metadata, not a field; it is
/// removed from the record and from every related record inside it.
fn strip_attributes(m: &Map<String, Json>, depth: usize) -> Map<String, Json> {
    m.iter()
        .filter(|(k, v)| !(k.as_str() == "attributes" && v.is_object()))
        .map(|(k, v)| (k.clone(), strip_value(v, depth + 1)))
        .collect()
}

fn strip_value(v: &Json, depth: usize) -> Json {
    if depth > MAX_DEPTH {
        return v.clone();
    }
    match v {
        Json::Object(m) => Json::Object(strip_attributes(m, depth)),
        Json::Array(a) => Json::Array(a.iter().map(|x| strip_value(x, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// The Zendesk ticket a record points at, through the configured field.
/// An empty or absent field means "not linked", not an error.
fn linked_ticket(
    fields: &Map<String, Json>,
    base: &str,
    opts: &SalesforceOptions,
) -> Result<Option<Ticket>, EventError> {
    let Some(path) = opts.ticket_field.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let mut cur: Option<&Json> = None;
    for (i, seg) in path.split('.').enumerate() {
        cur = if i == 0 {
            fields.get(seg)
        } else {
            cur.and_then(|c| c.get(seg))
        };
    }
    match cur {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => Ok(Some(Ticket {
            id: id_value(v, &join(base, path))?,
            ..Ticket::default()
        })),
    }
}

// ---------------------------------------------------------------- CDC

fn has_header(p: &Map<String, Json>) -> bool {
    p.get("ChangeEventHeader").is_some_and(Json::is_object)
}

fn envelope(env: &Map<String, Json>) -> Option<&Map<String, Json>> {
    env.get("payload")
        .and_then(Json::as_object)
        .filter(|p| has_header(p))
}

/// A change event's payload, the envelope it came in (if any) and the
/// payload's path for error messages.
pub(crate) type Found<'a> = (&'a Map<String, Json>, Option<&'a Map<String, Json>>, String);

/// The change event inside whatever carries it: the bare payload, the
/// `{"payload", "event": {"replayId"}}` envelope, or a CometD message
/// (`{"channel", "data": {...envelope...}}`). Returns the payload and the
/// envelope it came in, if any.
pub(crate) fn change_payload(m: &Map<String, Json>) -> Option<Found<'_>> {
    if has_header(m) {
        return Some((m, None, String::new()));
    }
    if let Some(p) = envelope(m) {
        return Some((p, Some(m), "payload".to_string()));
    }
    let data = m.get("data").and_then(Json::as_object)?;
    envelope(data).map(|p| (p, Some(data), "data.payload".to_string()))
}

/// Reads a Change Data Capture event: one event per id in `recordIds`
/// (Salesforce merges identical changes to several records into one).
/// Deletes and gap events carry no field values to decide on and are
/// refused with the reason.
pub fn from_change_event(v: &Json, opts: &SalesforceOptions) -> Result<Vec<Event>, EventError> {
    let top = as_object(v, "")?;
    if let Some(h) = get(top, "ChangeEventHeader") {
        as_object(h, "ChangeEventHeader")?;
    }
    let Some((payload, envelope, base)) = change_payload(top) else {
        return Err(fail(
            "ChangeEventHeader",
            "missing (expected a change event)",
        ));
    };
    let hpath = join(&base, "ChangeEventHeader");
    let header = req_object(payload, &base, "ChangeEventHeader")?;
    let object = req_str(header, &hpath, "entityName")?;
    let change_type = req_str(header, &hpath, "changeType")?;
    check_change_type(&change_type, &object, &join(&hpath, "changeType"))?;
    let record_ids = record_ids(header, &hpath)?;
    let at = commit_time(header, &hpath)?;
    let stem = event_stem(header, &hpath, envelope, &base)?;
    let changed = match change_type.as_str() {
        "UPDATE" => str_list(header, &hpath, "changedFields")?
            .into_iter()
            .map(|f| format!("{object}.{f}"))
            .collect(),
        _ => vec![],
    };
    let body = change_body(payload, header, &hpath)?;
    record_ids
        .into_iter()
        .map(|rid| {
            let mut fields = body.clone();
            // The body never carries the record id; the interpreter needs
            // it to address writes back to this record.
            fields.insert("Id".into(), Json::String(rid.clone()));
            Ok(Event {
                id: format!("{stem}:{rid}"),
                kind: EventKind::RecordChanged,
                at: at.clone(),
                ticket: linked_ticket(&fields, &base, opts)?,
                comment: None,
                turn: None,
                records: BTreeMap::from([(object.clone(), fields)]),
                changed: changed.clone(),
            })
        })
        .collect()
}

fn check_change_type(ct: &str, object: &str, path: &str) -> Result<(), EventError> {
    match ct {
        "CREATE" | "UPDATE" | "UNDELETE" => Ok(()),
        "DELETE" => Err(fail(
            path,
            format!(
                "DELETE: the {object} record is gone and the event carries none of its fields, \
                 so there is nothing to decide on; skip it (or handle deletes outside l3map)"
            ),
        )),
        gap if gap.starts_with("GAP_") => Err(fail(
            path,
            format!(
                "{gap}: a gap event carries no field values; read the {object} record through \
                 the REST API and convert that instead"
            ),
        )),
        other => Err(fail(
            path,
            format!("{other:?} is not CREATE, UPDATE, UNDELETE or DELETE"),
        )),
    }
}

fn record_ids(header: &Map<String, Json>, hpath: &str) -> Result<Vec<String>, EventError> {
    let path = join(hpath, "recordIds");
    let ids = str_list(header, hpath, "recordIds")?;
    if ids.is_empty() {
        return Err(fail(
            &path,
            "missing or empty (expected the changed record ids)",
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        // `001*`: a field type conversion touched every record of the
        // object; there is no single record to act on.
        if id.contains('*') || id.trim().is_empty() {
            return Err(fail(
                &index(&path, i),
                format!("{id:?} is not a record id (a wildcard names every record of the object)"),
            ));
        }
    }
    Ok(ids)
}

fn commit_time(header: &Map<String, Json>, hpath: &str) -> Result<String, EventError> {
    let path = join(hpath, "commitTimestamp");
    match get(header, "commitTimestamp") {
        Some(Json::Number(n)) => match n.as_u64() {
            Some(ms) => millis_to_rfc3339(ms, &path),
            None => Err(fail(
                &path,
                format!("{n} is not a time in milliseconds since 1970"),
            )),
        },
        Some(other) => Err(fail(
            &path,
            format!(
                "expected a number of milliseconds, found {}",
                super::describe(other)
            ),
        )),
        None => Err(fail(&path, "missing (expected milliseconds since 1970)")),
    }
}

/// What makes the event id: `transactionKey` + `sequenceNumber` name the
/// change within its transaction; without them, the envelope's `replayId`.
/// Both survive redelivery.
fn event_stem(
    header: &Map<String, Json>,
    hpath: &str,
    envelope: Option<&Map<String, Json>>,
    base: &str,
) -> Result<String, EventError> {
    let key = opt_str(header, hpath, "transactionKey")?.filter(|k| !k.trim().is_empty());
    let seq = get(header, "sequenceNumber")
        .map(|v| id_value(v, &join(hpath, "sequenceNumber")))
        .transpose()?;
    if let (Some(key), Some(seq)) = (key, seq) {
        return Ok(format!("salesforce:cdc:{key}:{seq}"));
    }
    let replay = envelope
        .and_then(|e| get(e, "event"))
        .and_then(Json::as_object)
        .and_then(|e| get(e, "replayId"));
    let env_base = base
        .strip_suffix("payload")
        .unwrap_or("")
        .trim_end_matches('.');
    match replay {
        Some(r) => {
            let n = id_value(r, &join(&join(env_base, "event"), "replayId"))?;
            Ok(format!("salesforce:cdc:replay:{n}"))
        }
        None => Err(fail(
            &join(hpath, "transactionKey"),
            "missing, with no sequenceNumber or envelope replayId either: the event id \
             (what makes redeliveries harmless) comes from them",
        )),
    }
}

/// The changed fields: everything beside the header. Fields listed in
/// `nulledFields` were set to null, which the body leaves out, so they are
/// put back as null; `diffFields` hold a diff rather than the value, so
/// they are dropped (still listed in `changed`).
fn change_body(
    payload: &Map<String, Json>,
    header: &Map<String, Json>,
    hpath: &str,
) -> Result<Map<String, Json>, EventError> {
    let mut body: Map<String, Json> = payload
        .iter()
        .filter(|(k, _)| k.as_str() != "ChangeEventHeader")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for f in str_list(header, hpath, "nulledFields")? {
        if !f.contains('.') {
            body.insert(f, Json::Null);
        }
    }
    for f in str_list(header, hpath, "diffFields")? {
        body.remove(&f);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Json {
        serde_json::from_str(s).expect("test JSON")
    }

    fn linked() -> SalesforceOptions {
        SalesforceOptions {
            ticket_field: Some("Zendesk_Ticket_Id__c".into()),
        }
    }

    const CASE: &str = r#"{"attributes":{"type":"Case","url":"/services/data/v60.0/sobjects/Case/5003k00001AbCdE"},
        "Id":"5003k00001AbCdE","Status":"Escalated","Zendesk_Ticket_Id__c":"4211",
        "SystemModstamp":"2026-11-11T10:00:00.000+0000",
        "Account":{"attributes":{"type":"Account","url":"/x"},"SLA_Tier__c":"Ent"}}"#;

    #[test]
    fn a_rest_record() {
        let ev = &from_records(&parse(CASE), &linked()).unwrap()[0];
        assert_eq!(
            ev.id,
            "salesforce:Case:5003k00001AbCdE:2026-11-11T10:00:00.000Z"
        );
        assert_eq!(ev.at, "2026-11-11T10:00:00.000Z");
        assert_eq!(ev.kind, EventKind::RecordChanged);
        assert_eq!(ev.ticket.as_ref().map(|t| t.id), Some(4211));
        let case = &ev.records["Case"];
        assert!(case.get("attributes").is_none());
        assert_eq!(case["Account"], parse(r#"{"SLA_Tier__c":"Ent"}"#));
        assert!(ev.changed.is_empty());
        let unlinked = &from_records(&parse(CASE), &SalesforceOptions::default()).unwrap()[0];
        assert_eq!(unlinked.ticket, None);
    }

    #[test]
    fn ticket_link_accepts_numbers_and_ignores_blanks() {
        let with = |v: &str| {
            from_records(
                &parse(&format!(
                    r#"{{"attributes":{{"type":"Case"}},"Id":"5","LastModifiedDate":"2026-11-11T10:00:00Z","Zendesk_Ticket_Id__c":{v}}}"#
                )),
                &linked(),
            )
        };
        assert_eq!(
            with("4211.0").unwrap()[0].ticket.as_ref().map(|t| t.id),
            Some(4211)
        );
        assert_eq!(with("null").unwrap()[0].ticket, None);
        assert_eq!(with("\"\"").unwrap()[0].ticket, None);
        let e = with("\"ZD-4211\"").unwrap_err().message;
        assert!(
            e.starts_with("Zendesk_Ticket_Id__c: expected a number"),
            "{e}"
        );
        let dotted = SalesforceOptions {
            ticket_field: Some("Parent.Zendesk_Ticket_Id__c".into()),
        };
        let ev = from_records(
            &parse(r#"{"attributes":{"type":"Case"},"Id":"5","LastModifiedDate":"2026-11-11T10:00:00Z","Parent":{"Zendesk_Ticket_Id__c":"9"}}"#),
            &dotted,
        )
        .unwrap();
        assert_eq!(ev[0].ticket.as_ref().map(|t| t.id), Some(9));
    }

    #[test]
    fn a_query_result_gives_one_event_per_record() {
        let q = format!(r#"{{"totalSize":2,"done":true,"records":[{CASE},{CASE}]}}"#);
        assert_eq!(from_records(&parse(&q), &linked()).unwrap().len(), 2);
        let empty = from_records(
            &parse(r#"{"totalSize":0,"done":true,"records":[]}"#),
            &linked(),
        );
        assert_eq!(empty.unwrap(), vec![]);
    }

    const CDC: &str = r#"{"ChangeEventHeader":{"entityName":"Case","recordIds":["500A","500B"],
        "changeType":"UPDATE","changeOrigin":"com/salesforce/api/rest/60.0","transactionKey":"0002a-tk",
        "sequenceNumber":3,"commitTimestamp":1794391200123,"commitNumber":1,"commitUser":"005x",
        "nulledFields":["Reason"],"diffFields":["Description"],"changedFields":["Status","Reason","Description","LastModifiedDate"]},
        "Status":"Escalated","Description":"@@ -1 +1 @@","LastModifiedDate":"2026-11-11T10:00:00.000Z"}"#;

    #[test]
    fn a_change_event_per_record_id() {
        let evs = from_change_event(&parse(CDC), &linked()).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].id, "salesforce:cdc:0002a-tk:3:500A");
        assert_eq!(evs[1].id, "salesforce:cdc:0002a-tk:3:500B");
        assert_eq!(evs[0].at, "2026-11-11T10:00:00.123Z");
        assert_eq!(
            evs[0].changed,
            [
                "Case.Status",
                "Case.Reason",
                "Case.Description",
                "Case.LastModifiedDate"
            ]
        );
        let case = &evs[1].records["Case"];
        assert_eq!(case["Id"], "500B");
        assert_eq!(case["Reason"], Json::Null);
        assert!(case.get("Description").is_none());
        assert!(case.get("ChangeEventHeader").is_none());
    }

    #[test]
    fn envelopes_and_replay_ids() {
        let bare: Json = parse(
            r#"{"ChangeEventHeader":{"entityName":"Case","recordIds":["500A"],"changeType":"CREATE","commitTimestamp":0},"Status":"New"}"#,
        );
        let env = serde_json::json!({"schema": "x", "payload": bare, "event": {"replayId": 42}});
        let ev = &from_change_event(&env, &linked()).unwrap()[0];
        assert_eq!(ev.id, "salesforce:cdc:replay:42:500A");
        assert_eq!(ev.at, "1970-01-01T00:00:00.000Z");
        assert!(
            ev.changed.is_empty(),
            "a create lists no changed fields: all count"
        );
        let cometd = serde_json::json!({"channel": "/data/CaseChangeEvent", "data": env});
        assert_eq!(from_change_event(&cometd, &linked()).unwrap()[0].id, ev.id);
        let e = from_change_event(&bare, &linked()).unwrap_err().message;
        assert!(
            e.starts_with("ChangeEventHeader.transactionKey: missing"),
            "{e}"
        );
    }

    #[test]
    fn bad_records_name_the_path() {
        let cases = [
            (
                r#"{"attributes":{"url":"/x"},"Id":"1","SystemModstamp":"2026-11-11T10:00:00Z"}"#,
                "attributes.type: missing",
            ),
            (
                r#"{"attributes":{"type":"Case"},"SystemModstamp":"2026-11-11T10:00:00Z"}"#,
                "Id: missing",
            ),
            (
                r#"{"attributes":{"type":"Case"},"Id":5,"SystemModstamp":"2026-11-11T10:00:00Z"}"#,
                "Id: expected a string",
            ),
            (
                r#"{"attributes":{"type":"Case"},"Id":"5"}"#,
                "SystemModstamp: missing, and so is LastModifiedDate",
            ),
            (
                r#"{"attributes":{"type":"Case"},"Id":"5","SystemModstamp":"11/11/2026"}"#,
                "SystemModstamp: \"11/11/2026\" is not a timestamp",
            ),
            (
                r#"{"attributes":"Case","Id":"5"}"#,
                "attributes: expected an object",
            ),
            (
                r#"{"totalSize":1,"done":true,"records":{}}"#,
                "records: expected an array",
            ),
            (
                r#"{"totalSize":1,"done":true,"records":[7]}"#,
                "records[0]: expected an object",
            ),
            (
                r#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Case"},"Id":"5"}]}"#,
                "records[0].SystemModstamp: missing",
            ),
            (r#"{"totalSize":1}"#, "records: missing"),
        ];
        for (input, want) in cases {
            let got = from_records(&parse(input), &linked()).unwrap_err().message;
            assert!(
                got.starts_with(want),
                "{input}\n  got:  {got}\n  want: {want}"
            );
        }
    }

    #[test]
    fn bad_change_events_name_the_path() {
        let h = |header: &str| format!(r#"{{"ChangeEventHeader":{{{header}}}}}"#);
        const OK: &str = r#""entityName":"Case","recordIds":["500A"],"transactionKey":"k","sequenceNumber":1,"commitTimestamp":1"#;
        let cases = [
            (h(&format!(r#"{OK},"changeType":"DELETE""#)), "ChangeEventHeader.changeType: DELETE: the Case record is gone"),
            (h(&format!(r#"{OK},"changeType":"GAP_UPDATE""#)), "ChangeEventHeader.changeType: GAP_UPDATE: a gap event"),
            (h(&format!(r#"{OK},"changeType":"MERGE""#)), "ChangeEventHeader.changeType: \"MERGE\" is not"),
            (h(OK), "ChangeEventHeader.changeType: missing"),
            (h(r#""recordIds":["500A"],"changeType":"UPDATE""#), "ChangeEventHeader.entityName: missing"),
            (h(r#""entityName":"Case","changeType":"UPDATE","commitTimestamp":1"#), "ChangeEventHeader.recordIds: missing or empty"),
            (h(r#""entityName":"Case","recordIds":"500A","changeType":"UPDATE""#), "ChangeEventHeader.recordIds: expected an array"),
            (h(r#""entityName":"Case","recordIds":["001*"],"changeType":"UPDATE""#), "ChangeEventHeader.recordIds[0]: \"001*\" is not a record id"),
            (h(r#""entityName":"Case","recordIds":["5"],"changeType":"UPDATE""#), "ChangeEventHeader.commitTimestamp: missing"),
            (h(r#""entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":"now""#), "ChangeEventHeader.commitTimestamp: expected a number"),
            (h(r#""entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":-5"#), "ChangeEventHeader.commitTimestamp: -5 is not"),
            (h(r#""entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":1e20"#), "ChangeEventHeader.commitTimestamp:"),
            (h(r#""entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":18446744073709551615"#), "ChangeEventHeader.commitTimestamp: 18446744073709551615 is past the year 9999"),
            (h(&format!(r#"{OK},"changeType":"UPDATE","changedFields":[1]"#)), "ChangeEventHeader.changedFields[0]: expected a string"),
            (h(r#""entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":1,"transactionKey":"k","sequenceNumber":"x""#), "ChangeEventHeader.sequenceNumber: expected a number"),
            (r#"{"payload":{"ChangeEventHeader":{"entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":1}},"event":{"replayId":"abc"}}"#.into(), "event.replayId: expected a number"),
            (r#"{"data":{"payload":{"ChangeEventHeader":{"entityName":"Case","recordIds":["5"],"changeType":"UPDATE","commitTimestamp":1}},"event":{"replayId":true}}}"#.into(), "data.event.replayId: expected a number"),
            (r#"{"data":{"payload":{"ChangeEventHeader":{"entityName":7}}}}"#.into(), "data.payload.ChangeEventHeader.entityName: expected a string"),
        ];
        for (input, want) in cases {
            let got = from_change_event(&parse(&input), &linked())
                .unwrap_err()
                .message;
            assert!(
                got.starts_with(want),
                "{input}\n  got:  {got}\n  want: {want}"
            );
        }
    }
}
