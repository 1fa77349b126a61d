//! The Pub/Sub API's field bitmaps (`changedFields`, `nulledFields`,
//! `diffFields` of a `ChangeEventHeader`), expanded to field names.
//!
//! https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations.html:
//! a bitmap field is an array of strings. The first, `0x…`, is a hex
//! number whose bit *i* (counted from the least significant) stands for
//! the field at position *i* of the event's Avro schema. Each further
//! element, `N-0x…`, is a compound field (a `Name`, an address): `N` is the
//! compound field's position, the hex number a bitmap over the fields of
//! its nested record. Salesforce's own utilities name a nested field
//! `Parent.Child` (`Name.FirstName`); [`field_name`] turns that into the
//! name a record has in SOQL and REST (`FirstName`, `BillingCity`).

use apache_avro::schema::RecordSchema;
use apache_avro::Schema;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitmapError {
    #[error("{0:?} is not a field bitmap (0x… or N-0x…)")]
    Malformed(String),
    #[error("bit {bit} of {bitmap:?} names no field of the schema ({fields} fields)")]
    NoSuchField {
        bitmap: String,
        bit: usize,
        fields: usize,
    },
    #[error("{0:?} names a field that is not a compound field")]
    NotCompound(String),
}

/// Record schemas by name, for nested records that a schema names instead
/// of repeating (a second address field refers to the first's `Address`).
pub struct Records<'s> {
    by_name: HashMap<String, &'s RecordSchema>,
}

impl<'s> Records<'s> {
    pub fn of(schema: &'s Schema) -> Records<'s> {
        let mut by_name = HashMap::new();
        collect(schema, &mut by_name);
        Records { by_name }
    }

    /// The record a field's type is, through `["null", X]` unions and
    /// named references.
    pub fn record_of(&self, schema: &'s Schema) -> Option<&'s RecordSchema> {
        match schema {
            Schema::Record(r) => Some(r),
            Schema::Union(u) => u.variants().iter().find_map(|v| self.record_of(v)),
            Schema::Ref { name } => self.by_name.get(name.name()).copied(),
            _ => None,
        }
    }
}

fn collect<'s>(schema: &'s Schema, out: &mut HashMap<String, &'s RecordSchema>) {
    match schema {
        Schema::Record(r) => {
            out.insert(r.name.name().to_string(), r);
            for f in &r.fields {
                collect(&f.schema, out);
            }
        }
        Schema::Union(u) => u.variants().iter().for_each(|v| collect(v, out)),
        Schema::Array(a) => collect(&a.items, out),
        Schema::Map(m) => collect(&m.types, out),
        _ => {}
    }
}

/// The positions whose bits are set in `0x…`, lowest first.
fn bits(hex: &str, whole: &str) -> Result<Vec<usize>, BitmapError> {
    let digits = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .ok_or_else(|| BitmapError::Malformed(whole.to_string()))?;
    if digits.is_empty() {
        return Err(BitmapError::Malformed(whole.to_string()));
    }
    let mut out = Vec::new();
    // The last digit holds bits 0-3, the one before it 4-7, and so on: a
    // hex number of any length, so no integer type bounds the field count.
    for (i, c) in digits.chars().rev().enumerate() {
        let v = c
            .to_digit(16)
            .ok_or_else(|| BitmapError::Malformed(whole.to_string()))?;
        for b in 0..4 {
            if v & (1 << b) != 0 {
                out.push(i * 4 + b);
            }
        }
    }
    Ok(out)
}

fn names_at(
    record: &RecordSchema,
    positions: &[usize],
    bitmap: &str,
) -> Result<Vec<String>, BitmapError> {
    positions
        .iter()
        .map(|&bit| {
            record
                .fields
                .get(bit)
                .map(|f| f.name.clone())
                .ok_or_else(|| BitmapError::NoSuchField {
                    bitmap: bitmap.to_string(),
                    bit,
                    fields: record.fields.len(),
                })
        })
        .collect()
}

/// The names a bitmap field stands for, in Salesforce's utilities' form
/// (`Name`, `Name.FirstName`), in bitmap order.
pub fn expand(
    schema: &RecordSchema,
    records: &Records<'_>,
    bitmap: &[String],
) -> Result<Vec<String>, BitmapError> {
    let mut out = Vec::new();
    for element in bitmap {
        match element.split_once('-') {
            None => out.extend(names_at(schema, &bits(element, element)?, element)?),
            Some((pos, hex)) => {
                let pos: usize = pos
                    .parse()
                    .map_err(|_| BitmapError::Malformed(element.clone()))?;
                let parent = schema
                    .fields
                    .get(pos)
                    .ok_or_else(|| BitmapError::NoSuchField {
                        bitmap: element.clone(),
                        bit: pos,
                        fields: schema.fields.len(),
                    })?;
                let nested = records
                    .record_of(&parent.schema)
                    .ok_or_else(|| BitmapError::NotCompound(element.clone()))?;
                for child in names_at(nested, &bits(hex, element)?, element)? {
                    out.push(format!("{}.{child}", parent.name));
                }
            }
        }
    }
    Ok(out)
}

/// A compound field's part as the record names it in SOQL and REST:
/// `Name.FirstName` is `FirstName`, `BillingAddress.City` is `BillingCity`
/// (the address fields of every object follow that rule; a Lead's
/// `Address.City` is `City`). Other names are returned as they are.
pub fn field_name(name: &str) -> String {
    match name.split_once('.') {
        None => name.to_string(),
        Some((parent, child)) => match parent.strip_suffix("Address") {
            Some(prefix) => format!("{prefix}{child}"),
            None => child.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema shaped as Salesforce's change events are: the header,
    /// then the record's fields, each `["null", T]`, compound fields as
    /// nested records, the second address naming the first's type.
    pub(crate) fn schema(fields: usize) -> Schema {
        let mut fs = vec![
            r#"{"name":"ChangeEventHeader","type":"string"}"#.to_string(),
            r#"{"name":"Name","type":["null",{"type":"record","name":"Name","fields":[
                {"name":"Salutation","type":["null","string"],"default":null},
                {"name":"FirstName","type":["null","string"],"default":null},
                {"name":"LastName","type":["null","string"],"default":null}]}],"default":null}"#
                .to_string(),
            r#"{"name":"BillingAddress","type":["null",{"type":"record","name":"Address","fields":[
                {"name":"Street","type":["null","string"],"default":null},
                {"name":"City","type":["null","string"],"default":null},
                {"name":"State","type":["null","string"],"default":null},
                {"name":"PostalCode","type":["null","string"],"default":null},
                {"name":"Country","type":["null","string"],"default":null}]}],"default":null}"#
                .to_string(),
            r#"{"name":"ShippingAddress","type":["null","Address"],"default":null}"#.to_string(),
        ];
        for i in fs.len()..fields {
            fs.push(format!(
                r#"{{"name":"F{i}","type":["null","string"],"default":null}}"#
            ));
        }
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"AccountChangeEvent","namespace":"com.sforce.eventbus","fields":[{}]}}"#,
            fs.join(",")
        ))
        .unwrap()
    }

    fn expanded(s: &Schema, bitmap: &[&str]) -> Result<Vec<String>, BitmapError> {
        let Schema::Record(r) = s else { panic!() };
        let bitmap: Vec<String> = bitmap.iter().map(|s| s.to_string()).collect();
        expand(r, &Records::of(s), &bitmap)
    }

    #[test]
    fn the_documented_example_expands_bit_by_bit() {
        // Salesforce's example, `['0x650004E0','4-0x10','7-0x06']`:
        // 0x650004E0 = bits 5, 6, 7, 10, 24, 26, 29, 30.
        let s = schema(31);
        let got = expanded(&s, &["0x650004E0"]).unwrap();
        assert_eq!(got, ["F5", "F6", "F7", "F10", "F24", "F26", "F29", "F30"]);
        // 4-0x10 needs field 4 to be a compound field; here it is not.
        assert_eq!(
            expanded(&s, &["0x1", "4-0x10"]),
            Err(BitmapError::NotCompound("4-0x10".into()))
        );
    }

    #[test]
    fn compound_fields_expand_through_their_nested_record() {
        let s = schema(8);
        // Name (1) changed: FirstName and LastName; the shipping address
        // (3, a reference to the billing address's record) its City.
        let got = expanded(&s, &["0x0A", "1-0x06", "3-0x02"]).unwrap();
        assert_eq!(
            got,
            [
                "Name",
                "ShippingAddress",
                "Name.FirstName",
                "Name.LastName",
                "ShippingAddress.City"
            ]
        );
        let names: Vec<String> = got.iter().map(|n| field_name(n)).collect();
        assert_eq!(
            names,
            [
                "Name",
                "ShippingAddress",
                "FirstName",
                "LastName",
                "ShippingCity"
            ]
        );
    }

    #[test]
    fn wide_bitmaps_and_bad_ones() {
        // More fields than a u64 has bits.
        let s = schema(80);
        assert_eq!(
            expanded(&s, &["0x8000000000000000001"]).unwrap(),
            ["ChangeEventHeader", "F75"]
        );
        assert_eq!(expanded(&s, &[]).unwrap(), Vec::<String>::new());
        assert!(matches!(
            expanded(&s, &["0x1000000000000000000000"]),
            Err(BitmapError::NoSuchField { bit: 84, .. })
        ));
        for bad in ["650004E0", "0x", "0xZZ", "x-0x1", "99-0x1"] {
            assert!(expanded(&s, &[bad]).is_err(), "{bad}");
        }
    }
}
