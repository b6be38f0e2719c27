//! Lexical checks of primitive values against their R4 data types
//! (<https://hl7.org/fhir/R4/datatypes.html#primitive>), which fhirbolt does not make:
//! dates that are not dates (`1990-13-45`, `14/02/1990`), times without a zone,
//! ids, codes, oids, uuids, uris with spaces, `positiveInt` 0. The element types come from
//! the official StructureDefinitions (fhir-profiles). Also the two structural rules that
//! need the element's definition: an element with max cardinality 1 is a single value,
//! never an array (json.html#complex), and a choice element `value[x]` appears under one of
//! its type names at most (formats.html#choice: `valueString` with `valueInteger` is an
//! error).

use chrono::NaiveDate;
use fhir_profiles::element;
use serde_json::{Map, Value};

use crate::FormatError;

/// Checks every primitive value of a resource (and of the resources it contains).
pub(crate) fn check(resource: &Value, resource_type: &str) -> Result<(), FormatError> {
    match resource.as_object() {
        Some(object) => walk_object(object, resource_type, resource_type, true),
        None => Ok(()),
    }
}

/// A child element as its definition describes it.
struct Child {
    /// Its type code (`Quantity` for `valueQuantity`).
    type_code: String,
    /// The path its own children are defined under.
    definition: String,
    /// The stem of its choice element (`value` for `valueQuantity`).
    choice: Option<String>,
    /// Max cardinality 1 (json.html#complex: a single value, never an array).
    single: bool,
}

/// `definition`: the path children are defined under (`Patient`, `HumanName`,
/// `Patient.contact`); `shown`: the location reported (`Patient.contact[0]`).
fn walk_object(
    object: &Map<String, Value>,
    definition: &str,
    shown: &str,
    is_resource: bool,
) -> Result<(), FormatError> {
    let mut choices: Vec<(String, &str)> = Vec::new();
    for (name, value) in object {
        if name == "resourceType" || name.starts_with('_') {
            continue;
        }
        let here = format!("{shown}.{name}");
        if is_resource && name == "id" {
            check_each(value, &here, "id")?;
            continue;
        }
        let Some(child) = resolve(definition, name) else {
            continue; // unknown elements are reported by the R4 model
        };
        if child.single && value.is_array() {
            return Err(FormatError::at(
                here,
                "This element takes a single value, not an array (json.html).",
                "Phần tử này chỉ nhận một giá trị, không phải một mảng (json.html).",
            ));
        }
        if let Some(stem) = child.choice {
            if let Some((_, first)) = choices.iter().find(|(s, _)| *s == stem) {
                return Err(FormatError::at(
                    here,
                    format!(
                        "{shown}.{stem}[x] takes one type only, but both '{first}' and \
                         '{name}' are given (formats.html#choice)."
                    ),
                    format!(
                        "{shown}.{stem}[x] chỉ nhận một kiểu, nhưng có cả '{first}' và \
                         '{name}' (formats.html#choice)."
                    ),
                ));
            }
            choices.push((stem, name));
        }
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{here}[{i}]");
                    walk_value(item, &child.type_code, &child.definition, &at)?;
                }
            }
            single => walk_value(single, &child.type_code, &child.definition, &here)?,
        }
    }
    Ok(())
}

fn check_each(value: &Value, shown: &str, type_code: &str) -> Result<(), FormatError> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| primitive(item, type_code, &format!("{shown}[{i}]"))),
        single => primitive(single, type_code, shown),
    }
}

fn walk_value(
    value: &Value,
    type_code: &str,
    definition: &str,
    shown: &str,
) -> Result<(), FormatError> {
    match (type_code, value) {
        ("Resource", Value::Object(object)) => {
            match object.get("resourceType").and_then(Value::as_str) {
                Some(rt) => walk_object(object, rt, shown, true),
                None => Ok(()),
            }
        }
        ("BackboneElement" | "Element", Value::Object(object)) => {
            walk_object(object, definition, shown, false)
        }
        (t, Value::Object(object)) if t.starts_with(|c: char| c.is_ascii_uppercase()) => {
            walk_object(object, t, shown, false)
        }
        (_, Value::Null) => Ok(()),
        (t, primitive_value) => primitive(primitive_value, t, shown),
    }
}

/// The type and the definition path of the child `name` of `definition`; choice elements
/// (`valueQuantity` of `Observation.value[x]`) take the type from the name's suffix and
/// name their stem (`value`).
fn resolve(definition: &str, name: &str) -> Option<Child> {
    let path = format!("{definition}.{name}");
    if let Some(def) = element(&path) {
        let (type_code, definition) = match &def.content_reference {
            Some(target) => ("BackboneElement".to_owned(), target.clone()),
            None => (def.types.first()?.clone(), path),
        };
        return Some(Child {
            type_code,
            definition,
            choice: None,
            single: def.max == "1",
        });
    }
    for (i, c) in name.char_indices().skip(1) {
        if !c.is_ascii_uppercase() {
            continue;
        }
        let (stem, suffix) = name.split_at(i);
        if let Some(def) = element(&format!("{definition}.{stem}[x]")) {
            let type_code = def
                .types
                .iter()
                .find(|t| t.eq_ignore_ascii_case(suffix))?
                .clone();
            return Some(Child {
                type_code,
                definition: path,
                choice: Some(stem.to_owned()),
                single: def.max == "1",
            });
        }
    }
    None
}

/// The largest string value (datatypes.html#string: "SHALL NOT exceed 1MB").
const MAX_STRING_BYTES: usize = 1024 * 1024;

fn primitive(value: &Value, type_code: &str, shown: &str) -> Result<(), FormatError> {
    let invalid = |(en, vi): (&str, &str)| {
        Err(FormatError::at(
            shown,
            format!("{shown} is not a valid {type_code}: {en}."),
            format!("{shown} không phải là {type_code} hợp lệ: {vi}."),
        ))
    };
    match (type_code, value) {
        ("positiveInt", Value::Number(n)) if n.as_i64().is_none_or(|v| v < 1) => {
            invalid(("it must be 1 or more", "phải từ 1 trở lên"))
        }
        ("unsignedInt", Value::Number(n)) if n.as_i64().is_none_or(|v| v < 0) => {
            invalid(("it must be 0 or more", "phải từ 0 trở lên"))
        }
        // datatypes.html#integer: a 32-bit signed integer (positiveInt and unsignedInt too).
        ("integer" | "positiveInt" | "unsignedInt", Value::Number(n))
            if n.as_i64().is_none_or(|v| i32::try_from(v).is_err()) =>
        {
            invalid((
                "it must fit in 32 bits (at most 2,147,483,647)",
                "phải nằm trong 32 bit (tối đa 2.147.483.647)",
            ))
        }
        // A decimal past the range of a double (1e400, 10,000 digits) is infinite to
        // every JSON reader that meets it, and cannot be searched.
        ("decimal", Value::Number(n)) if n.as_f64().is_none_or(|f| !f.is_finite()) => invalid((
            "it is outside the range of a double (about ±1.8e308)",
            "nằm ngoài phạm vi số thực (khoảng ±1,8e308)",
        )),
        (_, Value::String(text)) => {
            // datatypes.html#string: "Strings SHALL NOT contain Unicode character points
            // below 32, except for u0009 (horizontal tab), u0010 (carriage return) and u0013
            // (line feed)", and SHALL NOT exceed 1 MB (binary content is base64Binary).
            if let Some(c) = text
                .chars()
                .find(|c| (*c as u32) < 32 && !matches!(c, '\t' | '\r' | '\n'))
            {
                return Err(FormatError::at(
                    shown,
                    format!("{shown} holds the control character U+{:04X}; strings may hold tab, carriage return and line feed only (datatypes.html#string).", c as u32),
                    format!("{shown} chứa ký tự điều khiển U+{:04X}; chuỗi chỉ được chứa tab, xuống dòng (CR, LF) (datatypes.html#string).", c as u32),
                ));
            }
            if text.len() > MAX_STRING_BYTES && type_code != "base64Binary" {
                return Err(FormatError::at(
                    shown,
                    format!("{shown} is {} bytes; a FHIR string is at most 1 MB (datatypes.html#string).", text.len()),
                    format!("{shown} dài {} byte; chuỗi FHIR tối đa 1 MB (datatypes.html#string).", text.len()),
                ));
            }
            let ok = match type_code {
                "date" => is_date(text),
                "dateTime" => is_date_time(text),
                "instant" => is_instant(text),
                "time" => is_time(text),
                "id" => {
                    (1..=64).contains(&text.len())
                        && text
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                }
                "code" => {
                    !text.starts_with(char::is_whitespace)
                        && !text.ends_with(char::is_whitespace)
                        && !text.contains("  ")
                }
                "uri" | "url" | "canonical" => !text.chars().any(char::is_whitespace),
                "oid" => is_oid(text),
                "uuid" => is_uuid(text),
                "base64Binary" => text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/= \r\n".contains(&b)),
                _ => true,
            };
            if ok {
                Ok(())
            } else {
                invalid(match type_code {
                    "date" => (
                        "write YYYY, YYYY-MM or YYYY-MM-DD with a real calendar date",
                        "viết YYYY, YYYY-MM hoặc YYYY-MM-DD với một ngày có thật",
                    ),
                    "dateTime" => (
                        "write a date, or a date and time with a time zone (2021-07-01T08:30:00+07:00)",
                        "viết một ngày, hoặc ngày và giờ kèm múi giờ (2021-07-01T08:30:00+07:00)",
                    ),
                    "instant" => (
                        "write a date and time to the second with a time zone (2021-07-01T08:30:00Z)",
                        "viết ngày và giờ đến từng giây kèm múi giờ (2021-07-01T08:30:00Z)",
                    ),
                    "time" => ("write hh:mm:ss", "viết hh:mm:ss"),
                    "id" => (
                        "use 1-64 characters A-Z a-z 0-9 - .",
                        "dùng 1-64 ký tự A-Z a-z 0-9 - .",
                    ),
                    "code" => (
                        "no leading, trailing or repeated spaces",
                        "không có khoảng trắng ở đầu, ở cuối hoặc liên tiếp",
                    ),
                    "oid" => (
                        "write urn:oid: followed by the dotted numbers",
                        "viết urn:oid: rồi đến các số cách nhau bởi dấu chấm",
                    ),
                    "uuid" => (
                        "write urn:uuid: followed by a UUID",
                        "viết urn:uuid: rồi đến một UUID",
                    ),
                    _ => (
                        "it contains characters this type does not allow",
                        "có ký tự mà kiểu này không cho phép",
                    ),
                })
            }
        }
        _ => Ok(()),
    }
}

fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    // The year is 0001 to 9999 (the R4 regex of date: no year 0).
    let year = |y: &str| digits(y, 4) && y != "0000";
    match parts.as_slice() {
        [y] => year(y),
        [y, m] => year(y) && digits(m, 2) && (1..=12).contains(&m.parse::<u32>().unwrap_or(0)),
        [y, m, d] => {
            year(y)
                && digits(m, 2)
                && digits(d, 2)
                && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
        }
        _ => false,
    }
}

fn is_time(text: &str) -> bool {
    let (main, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let parts: Vec<&str> = main.split(':').collect();
    let two = |s: &str, max: u32| {
        s.len() == 2
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|v| v <= max)
    };
    matches!(parts.as_slice(), [h, m, s] if two(h, 23) && two(m, 59) && two(s, 60))
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn is_zone(text: &str) -> bool {
    if text == "Z" {
        return true;
    }
    let Some(rest) = text.strip_prefix('+').or_else(|| text.strip_prefix('-')) else {
        return false;
    };
    matches!(rest.split_once(':'), Some((h, m)) if h.len() == 2 && m.len() == 2
        && h.parse::<u32>().is_ok_and(|v| v <= 14) && m.parse::<u32>().is_ok_and(|v| v <= 59))
}

fn is_date_time(text: &str) -> bool {
    match text.split_once('T') {
        None => is_date(text),
        Some((date, rest)) => {
            let zone_at = rest.find(['Z', '+', '-']);
            match zone_at {
                Some(i) => {
                    date.len() == 10 && is_date(date) && is_time(&rest[..i]) && is_zone(&rest[i..])
                }
                None => false,
            }
        }
    }
}

fn is_instant(text: &str) -> bool {
    text.contains('T') && is_date_time(text)
}

fn is_oid(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("urn:oid:") else {
        return false;
    };
    let arcs: Vec<&str> = rest.split('.').collect();
    arcs.len() >= 2
        && matches!(arcs[0], "0" | "1" | "2")
        && arcs.iter().all(|a| {
            !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a.len() == 1 || !a.starts_with('0'))
        })
}

fn is_uuid(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = rest.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in ["1990", "1990-02", "1990-02-14", "2024-02-29"] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "1990-13-45",
            "14/02/1990",
            "1990-02-30",
            "2023-02-29",
            "90-01-01",
            "yesterday",
            "1990-2-1",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn date_times_and_instants() {
        assert!(is_date_time("2021-07-01"));
        assert!(is_date_time("2021-07-01T08:30:00+07:00"));
        assert!(is_date_time("2021-07-01T08:30:00.123Z"));
        assert!(!is_date_time("2021-07-01T08:30:00"));
        assert!(!is_date_time("2021-07-01T25:30:00Z"));
        assert!(is_instant("2021-07-01T08:30:00Z"));
        assert!(!is_instant("2021-07-01"));
    }

    #[test]
    fn oids_and_uuids() {
        assert!(is_oid("urn:oid:2.16.840.1.113883"));
        assert!(!is_oid("urn:oid:2.016"));
        assert!(is_uuid("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
        assert!(!is_uuid("c757873d-ec9a-4326-a141-556f43239520"));
    }
}
