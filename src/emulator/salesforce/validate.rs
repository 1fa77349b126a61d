use super::errors::SfError;
use super::ids;
use super::schema::{FieldSchema, FieldType, ObjectSchema};
use super::store::{parse_stamp, Store};
use super::Record;
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// Checks a write against the schema, in the order Salesforce reports:
/// unknown fields, then read-only ones, then value types, then
/// picklists, then required fields. Returns the changes with canonical
/// field names.
fn validate(obj: &ObjectSchema, body: &Record, mode: Mode) -> Result<Record, SfError> {
    let mut out = Record::new();
    let mut read_only = vec![];
    for (k, v) in body {
        if k == "attributes" && v.is_object() {
            continue;
        }
        let Some(f) = obj.field(k) else {
            return Err(SfError::bad(
                "INVALID_FIELD",
                format!("No such column '{k}' on sobject of type {}", obj.name),
            )
            .with_fields(vec![k.clone()]));
        };
        let allowed = match mode {
            Mode::Create => f.createable,
            Mode::Update => f.updateable,
        };
        if !allowed {
            read_only.push(f.name.clone());
        }
        out.insert(f.name.clone(), v.clone());
    }
    if !read_only.is_empty() {
        return Err(SfError::bad(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this \
                 field and verify that it is read/write for your user or client application.",
                read_only.join(", ")
            ),
        )
        .with_fields(read_only));
    }
    for (k, v) in &out {
        if let Some(f) = obj.field(k) {
            check_value(f, v)?;
        }
    }
    if mode == Mode::Create {
        let missing: Vec<String> = obj
            .fields
            .iter()
            .filter(|f| f.required && out.get(&f.name).is_none_or(Json::is_null))
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(SfError::bad(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing));
        }
    }
    Ok(out)
}

fn check_value(f: &FieldSchema, v: &Json) -> Result<(), SfError> {
    if v.is_null() {
        return Ok(());
    }
    let type_ok = match f.ty {
        t if t.is_text() => v.is_string(),
        FieldType::Currency | FieldType::Double => v.is_number(),
        FieldType::Boolean => v.is_boolean(),
        FieldType::Date => v
            .as_str()
            .is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10),
        FieldType::DateTime => v.as_str().and_then(parse_stamp).is_some(),
        _ => false,
    };
    if !type_ok {
        return Err(SfError::bad(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {} value for field {}",
                f.ty.api_name(),
                json_kind(v),
                f.name
            ),
        )
        .with_fields(vec![f.name.clone()]));
    }
    let s = v.as_str().unwrap_or_default();
    if f.ty == FieldType::Picklist && !f.picklist.iter().any(|p| p == s) {
        return Err(SfError::bad(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!("{}: bad value for restricted picklist field: {s}", f.name),
        )
        .with_fields(vec![f.name.clone()]));
    }
    if f.ty == FieldType::Reference && !ids::is_valid(s) {
        return Err(SfError::bad(
            "MALFORMED_ID",
            format!("{}: id value of incorrect type: {s}", f.name),
        )
        .with_fields(vec![f.name.clone()]));
    }
    Ok(())
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Reference fields must name an existing record of a target object.
fn check_references(obj: &ObjectSchema, store: &Store, changes: &Record) -> Result<(), SfError> {
    for (k, v) in changes {
        let (Some(f), Some(id)) = (obj.field(k), v.as_str()) else {
            continue;
        };
        if f.ty == FieldType::Reference && !store.exists_anywhere(&f.reference_to, id) {
            return Err(SfError::bad(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {}", f.name),
            )
            .with_fields(vec![f.name.clone()]));
        }
    }
    Ok(())
}

/// The full write path of one record, under the store lock: validate,
/// check references, then (unless `dry_run`) apply. Returns the Id.
pub(super) fn write_one(
    obj: &ObjectSchema,
    store: &mut Store,
    id: Option<&str>,
    body: &Record,
    dry_run: bool,
) -> Result<String, SfError> {
    let mode = if id.is_some() {
        Mode::Update
    } else {
        Mode::Create
    };
    let changes = validate(obj, body, mode)?;
    check_references(obj, store, &changes)?;
    match id {
        None if dry_run => Ok(String::new()),
        None => Ok(store.create(obj, changes)),
        Some(id) => {
            let id = store
                .canonical_id(&obj.name, id)
                .ok_or_else(SfError::not_found)?;
            if !dry_run {
                store.update(&obj.name, &id, changes);
            }
            Ok(id)
        }
    }
}
