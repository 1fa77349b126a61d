//! sObject rows (list, create, get, update) and describe.

use super::bodies::{object_of, ok_json, read_object};
use super::errors::{Answer, SfError};
use super::pubsub::Origin;
use super::schema::{FieldSchema, FieldType, ObjectSchema};
use super::validate::write_one;
use super::{lock, Emu, Record};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/{version}/sobjects/{object}/{id}")
}

fn with_attributes(version: &str, object: &str, rec: &Record, only: Option<&[String]>) -> Json {
    let id = rec.get("Id").and_then(Json::as_str).unwrap_or_default();
    let mut out = Record::new();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": record_url(version, object, id)}),
    );
    match only {
        Some(fields) => {
            for f in fields {
                out.insert(f.clone(), rec.get(f).cloned().unwrap_or(Json::Null));
            }
        }
        None => out.extend(rec.iter().map(|(k, v)| (k.clone(), v.clone()))),
    }
    Json::Object(out)
}

fn object_urls(version: &str, name: &str) -> Json {
    let base = format!("/services/data/{version}/sobjects/{name}");
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// `GET /sobjects/{Object}/`: basic information and recent items.
pub(super) async fn list(
    State(st): State<Arc<Emu>>,
    Path((v, object)): Path<(String, String)>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let recent: Vec<Json> = {
        let store = lock(&st.store);
        let recs = store.records.get(&obj.name);
        recs.map(|m| {
            m.values()
                .rev()
                .take(5)
                .map(|r| {
                    let mut keep = vec!["Id".to_string()];
                    if r.contains_key("Name") {
                        keep.push("Name".into());
                    }
                    with_attributes(&v, &obj.name, r, Some(&keep))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    ok_json(
        StatusCode::OK,
        json!({
            "objectDescribe": {
                "name": obj.name, "label": obj.label, "keyPrefix": obj.key_prefix,
                "createable": true, "updateable": true, "queryable": true, "custom": obj.name.ends_with("__c"),
                "urls": object_urls(&v, &obj.name),
            },
            "recentItems": recent,
        }),
    )
}

/// `POST /sobjects/{Object}/`: 201 `{"id", "success", "errors"}`.
pub(super) async fn create(
    State(st): State<Arc<Emu>>,
    Path((v, object)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let body = read_object(body)?;
    let mut store = lock(&st.store);
    let id = write_one(obj, &mut store, None, &body, false)?;
    st.commit(&mut store, &Origin::rest(&v, &headers));
    ok_json(
        StatusCode::CREATED,
        json!({"id": id, "success": true, "errors": []}),
    )
}

/// `GET /sobjects/{Object}/{Id}[?fields=a,b]`.
pub(super) async fn get_record(
    State(st): State<Arc<Emu>>,
    Path((v, object, id)): Path<(String, String, String)>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let wanted = match params.as_ref().ok().and_then(|q| q.get("fields")) {
        Some(list) => Some(field_list(obj, list)?),
        None => None,
    };
    let store = lock(&st.store);
    let rec = store.find(&obj.name, &id).ok_or_else(SfError::not_found)?;
    ok_json(
        StatusCode::OK,
        with_attributes(&v, &obj.name, rec, wanted.as_deref()),
    )
}

fn field_list(obj: &ObjectSchema, list: &str) -> Result<Vec<String>, SfError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            obj.field(name).map(|f| f.name.clone()).ok_or_else(|| {
                SfError::bad(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on entity '{}'", obj.name),
                )
                .with_fields(vec![name.to_string()])
            })
        })
        .collect()
}

/// `PATCH /sobjects/{Object}/{Id}`: 204 and no body.
pub(super) async fn update_record(
    State(st): State<Arc<Emu>>,
    Path((v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let body = read_object(body)?;
    let mut store = lock(&st.store);
    if store.find(&obj.name, &id).is_none() {
        return Err(SfError::not_found());
    }
    write_one(obj, &mut store, Some(&id), &body, false)?;
    st.commit(&mut store, &Origin::rest(&v, &headers));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE .../sobjects/{object}/{id}`: 204, or the 404 error array.
pub(super) async fn delete_record(
    State(st): State<Arc<Emu>>,
    Path((v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let mut store = lock(&st.store);
    if !store.delete(&obj.name, &id) {
        return Err(SfError::not_found());
    }
    st.commit(&mut store, &Origin::rest(&v, &headers));
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn describe(
    State(st): State<Arc<Emu>>,
    Path((v, object)): Path<(String, String)>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let fields: Vec<Json> = obj.fields.iter().map(describe_field).collect();
    ok_json(
        StatusCode::OK,
        json!({
            "name": obj.name, "label": obj.label, "keyPrefix": obj.key_prefix,
            "createable": true, "updateable": true, "queryable": true,
            "custom": obj.name.ends_with("__c"),
            "fields": fields,
            "urls": object_urls(&v, &obj.name),
        }),
    )
}

fn describe_field(f: &FieldSchema) -> Json {
    let picklist: Vec<Json> = f
        .picklist
        .iter()
        .map(|p| json!({"value": p, "label": p, "active": true, "defaultValue": f.default.as_str() == Some(p), "validFor": null}))
        .collect();
    json!({
        "name": f.name,
        "label": f.name.trim_end_matches("__c").replace('_', " "),
        "type": f.ty.api_name(),
        "updateable": f.updateable,
        "createable": f.createable,
        "nillable": !f.required && f.name != "Id",
        "custom": f.name.ends_with("__c"),
        "externalId": f.external_id,
        "unique": f.unique,
        "picklistValues": picklist,
        "restrictedPicklist": f.ty == FieldType::Picklist,
        "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name(),
    })
}
