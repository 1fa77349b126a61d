use super::bodies::{ok_json, read_object};
use super::errors::{Answer, SfError};
use super::pubsub::Origin;
use super::schema::ObjectSchema;
use super::store::Store;
use super::validate::write_one;
use super::{lock, Emu, Record};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// sObject Collections accept at most this many records per request.
pub const COLLECTION_LIMIT: usize = 200;

fn collection_body(body: Result<Bytes, BytesRejection>) -> Result<(bool, Vec<Json>), SfError> {
    let body = read_object(body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let Some(Json::Array(records)) = body.get("records") else {
        return Err(SfError::bad(
            "INVALID_FIELD",
            "records: a list of sObjects is required",
        ));
    };
    if records.len() > COLLECTION_LIMIT {
        return Err(SfError::bad(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok((all_or_none, records.clone()))
}

/// One record of a collection: its object (from `attributes.type`, or
/// for updates the Id's key prefix), Id, and fields.
fn collection_item<'a>(
    st: &'a Emu,
    item: &Json,
    update: bool,
) -> Result<(&'a ObjectSchema, Option<String>, Record), SfError> {
    let Json::Object(m) = item else {
        return Err(SfError::bad("JSON_PARSER_ERROR", "Expected an sObject"));
    };
    let mut fields = m.clone();
    let id = fields
        .remove("Id")
        .and_then(|v| v.as_str().map(str::to_string));
    let type_name = m
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str);
    let by_prefix = || {
        id.as_deref().and_then(|i| {
            st.schema
                .objects
                .iter()
                .find(|o| i.get(..3) == Some(o.key_prefix.as_str()))
        })
    };
    let obj = match type_name {
        Some(t) => st.schema.object(t),
        None if update => by_prefix(),
        None => None,
    }
    .ok_or_else(|| SfError::bad("INVALID_TYPE", "sObject type is missing or not supported"))?;
    match (update, &id) {
        (true, None) => Err(
            SfError::bad("MISSING_ARGUMENT", "Id not specified in an update call")
                .with_fields(vec!["Id".into()]),
        ),
        (false, Some(_)) => Err(SfError::bad(
            "INVALID_FIELD",
            "cannot specify Id in an insert call",
        )
        .with_fields(vec!["Id".into()])),
        _ => Ok((obj, id, fields)),
    }
}

fn collection_write(
    st: &Emu,
    records: &[Json],
    all_or_none: bool,
    update: bool,
    origin: &Origin,
) -> Vec<Json> {
    let mut store = lock(&st.store);
    let attempt = |store: &mut Store, item: &Json, dry_run: bool| {
        let (obj, id, fields) = collection_item(st, item, update)?;
        write_one(obj, store, id.as_deref(), &fields, dry_run)
    };
    if all_or_none {
        let checks: Vec<Result<String, SfError>> = records
            .iter()
            .map(|r| attempt(&mut store, r, true))
            .collect();
        if checks.iter().any(Result::is_err) {
            return checks.into_iter().map(rolled_back).collect();
        }
    }
    let results = records
        .iter()
        .map(|r| save_result(attempt(&mut store, r, false)))
        .collect();
    // One request, one transaction: its events share a transactionKey.
    st.commit(&mut store, origin);
    results
}

fn save_result(r: Result<String, SfError>) -> Json {
    match r {
        Ok(id) => json!({"id": id, "success": true, "errors": []}),
        Err(e) => json!({"success": false, "errors": [e.as_record_error()]}),
    }
}

/// Under `allOrNone`, records that would have succeeded report the
/// rollback; the failing ones report their own error.
fn rolled_back(r: Result<String, SfError>) -> Json {
    match r {
        Ok(_) => json!({"success": false, "errors": [{
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
            "fields": []
        }]}),
        Err(e) => save_result(Err(e)),
    }
}

pub(super) async fn collection_create(
    State(st): State<Arc<Emu>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (all_or_none, records) = collection_body(body)?;
    let origin = Origin::rest(&v, &headers);
    ok_json(
        StatusCode::OK,
        Json::Array(collection_write(&st, &records, all_or_none, false, &origin)),
    )
}

pub(super) async fn collection_update(
    State(st): State<Arc<Emu>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (all_or_none, records) = collection_body(body)?;
    let origin = Origin::rest(&v, &headers);
    ok_json(
        StatusCode::OK,
        Json::Array(collection_write(&st, &records, all_or_none, true, &origin)),
    )
}
