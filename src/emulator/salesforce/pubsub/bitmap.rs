//! The bitmap fields of a change event header (`changedFields`,
//! `nulledFields`, `diffFields`) as the Pub/Sub API sends them: a list of
//! hex strings. The first, `0x…`, has bit N set when the field at position
//! N of the event's Avro schema is named; each compound field with named
//! parts adds `P-0x…`, P its position and the bits its parts' positions in
//! the nested record.
//! <https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations.html>

use apache_avro::Schema;

/// `0x` and the upper-case hex of the number whose bit N is set for each
/// position N, whole bytes (`0x650004E0` in Salesforce's example). `None`
/// when no position is given.
pub fn encode(positions: &[usize]) -> Option<String> {
    let top = positions.iter().max()?;
    let mut bytes = vec![0u8; top / 8 + 1];
    for p in positions {
        bytes[p / 8] |= 1 << (p % 8);
    }
    let hex: String = bytes.iter().rev().map(|b| format!("{b:02X}")).collect();
    Some(format!("0x{hex}"))
}

/// The positions whose bits are set in one `0x…` string; `None` when it is
/// not one.
pub fn decode(hex: &str) -> Option<Vec<usize>> {
    let digits = hex.strip_prefix("0x")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = vec![];
    // From the last digit (bits 0-3) to the first.
    for (i, c) in digits.chars().rev().enumerate() {
        let v = c.to_digit(16)? as usize;
        for bit in 0..4 {
            if v & (1 << bit) != 0 {
                out.push(i * 4 + bit);
            }
        }
    }
    Some(out)
}

/// The field names a bitmap list names, read against the event's schema:
/// top-level fields by name, parts of compound fields as `Parent.Part`.
/// Strings that do not decode, or positions past the schema, are left out.
pub fn expand(schema: &Schema, bitmaps: &[String]) -> Vec<String> {
    let Some(fields) = record_fields(schema) else {
        return vec![];
    };
    let mut out = vec![];
    for b in bitmaps {
        match b.split_once('-') {
            None => {
                for p in decode(b).unwrap_or_default() {
                    if let Some(f) = fields.get(p) {
                        out.push(f.name.clone());
                    }
                }
            }
            Some((parent, nested)) => {
                let Some(f) = parent.parse::<usize>().ok().and_then(|p| fields.get(p)) else {
                    continue;
                };
                let Some(parts) = nested_fields(&f.schema) else {
                    continue;
                };
                for p in decode(nested).unwrap_or_default() {
                    if let Some(part) = parts.get(p) {
                        out.push(format!("{}.{}", f.name, part.name));
                    }
                }
            }
        }
    }
    out
}

fn record_fields(schema: &Schema) -> Option<&[apache_avro::schema::RecordField]> {
    match schema {
        Schema::Record(r) => Some(&r.fields),
        _ => None,
    }
}

/// A compound field is `["null", {record}]`.
fn nested_fields(schema: &Schema) -> Option<&[apache_avro::schema::RecordField]> {
    match schema {
        Schema::Union(u) => u.variants().iter().find_map(record_fields),
        other => record_fields(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_schema_positions_from_the_low_end() {
        assert_eq!(encode(&[]), None);
        assert_eq!(encode(&[0]).as_deref(), Some("0x01"));
        assert_eq!(encode(&[1, 9]).as_deref(), Some("0x0202"));
        // Salesforce's example bitmap round-trips.
        let p = decode("0x650004E0").unwrap();
        assert_eq!(p, vec![5, 6, 7, 10, 24, 26, 29, 30]);
        assert_eq!(encode(&p).as_deref(), Some("0x650004E0"));
        assert_eq!(decode("0x"), None);
        assert_eq!(decode("650004E0"), None);
        assert_eq!(decode("0xZZ"), None);
    }

    #[test]
    fn expansion_names_top_level_fields_and_compound_parts() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"E","fields":[
              {"name":"ChangeEventHeader","type":"string"},
              {"name":"Name","type":["null",{"type":"record","name":"N","fields":[
                 {"name":"FirstName","type":["null","string"]},
                 {"name":"LastName","type":["null","string"]}]}]},
              {"name":"Email","type":["null","string"]}]}"#,
        )
        .unwrap();
        let names = expand(
            &schema,
            &[
                "0x06".into(),
                "1-0x02".into(),
                "9-0x01".into(),
                "junk".into(),
            ],
        );
        assert_eq!(names, vec!["Name", "Email", "Name.LastName"]);
    }
}
