//! The rules of <https://hl7.org/fhir/R4/json.html> that fhirbolt 0.4 does not enforce.
//!
//! - json.html#json: no duplicate property names; empty objects, arrays and strings are not
//!   allowed; `null` only inside arrays of primitives that have a paired `_name` array.
//! - json.html#primitive: booleans and numbers are JSON booleans and numbers, not strings.
//! - extensibility.html#modifierExtension: a resource with a modifier extension the server
//!   does not understand SHALL be rejected. This server understands none.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::FormatError;

/// Parses JSON into a [`Value`], rejecting duplicate property names (serde_json keeps the
/// last one silently).
pub(crate) fn parse_without_duplicate_keys(bytes: &[u8]) -> Result<Value, FormatError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v.0))
        .map_err(|e| {
            let why = strip_position(&e.to_string()).to_owned();
            FormatError::general(
                format!(
                    "The body is not valid JSON: {why} (line {}, column {}).",
                    e.line(),
                    e.column()
                ),
                format!(
                    "Nội dung không phải JSON hợp lệ: {why} (dòng {}, cột {}).",
                    e.line(),
                    e.column()
                ),
            )
        })?;
    Ok(value)
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// The deepest nesting of arrays and objects that reads back: serde_json's recursion limit.
pub(crate) const MAX_DEPTH: usize = 127;

/// How deeply `value` nests arrays and objects (a scalar is 0), without recursion.
pub(crate) fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(d + 1);
        stack.extend(children.map(|c| (c, d + 1)));
    }
    deepest
}

/// The `resourceType` of a resource body.
pub(crate) fn resource_type(value: &Value) -> Result<&str, FormatError> {
    let object = value.as_object().ok_or_else(|| {
        FormatError::general(
            "The body must be a JSON object (a FHIR resource).",
            "Nội dung phải là một đối tượng JSON (một tài nguyên FHIR).",
        )
    })?;
    match object.get("resourceType") {
        Some(Value::String(name)) if crate::is_resource_type(name) => Ok(name),
        Some(Value::String(name)) => Err(FormatError::at(
            "resourceType",
            format!("'{name}' is not a FHIR R4 resource type."),
            format!("'{name}' không phải là một loại tài nguyên FHIR R4."),
        )),
        Some(_) => Err(FormatError::at(
            "resourceType",
            "resourceType must be a string.",
            "resourceType phải là một chuỗi.",
        )),
        None => Err(FormatError::general(
            "The body has no resourceType, so it is not a FHIR resource.",
            "Nội dung không có resourceType, nên không phải là một tài nguyên FHIR.",
        )),
    }
}

/// Checks the json.html rules that need no type information.
pub(crate) fn json_rules(value: &Value, resource_type: &str) -> Result<(), FormatError> {
    walk_object(value.as_object().into_iter().flatten(), resource_type)
}

fn walk_object<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    path: &str,
) -> Result<(), FormatError> {
    let entries: Vec<_> = entries.collect();
    for (name, value) in &entries {
        let here = format!("{path}.{name}");
        // A resource inside a resource (contained, Bundle.entry.resource, a Parameters
        // value) names an R4 type, or fhirbolt keeps it as an empty element that the XML
        // writer turns into an unknown element (found by fuzzing).
        if name.as_str() == "resourceType" {
            match value {
                Value::String(t) if crate::is_resource_type(t) => {}
                _ => {
                    let shown = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    return Err(FormatError::at(
                        here,
                        format!("'{shown}' is not a FHIR R4 resource type."),
                        format!("'{shown}' không phải là một loại tài nguyên FHIR R4."),
                    ));
                }
            }
            // A nested resource with nothing but its type says nothing (and fhirbolt's
            // XML reader misreads what follows its empty element: found by fuzzing).
            if entries.len() == 1 && path.contains(['.', '[']) {
                return Err(FormatError::at(
                    path,
                    "A resource inside a resource needs content besides resourceType (json.html: no empty objects).",
                    "Tài nguyên lồng bên trong cần có nội dung ngoài resourceType (json.html: không có đối tượng rỗng).",
                ));
            }
        }
        if name.as_str() == "modifierExtension" {
            let url = value
                .as_array()
                .and_then(|items| items.first())
                .and_then(|ext| ext.get("url"))
                .and_then(Value::as_str)
                .unwrap_or("(no url)");
            return Err(FormatError::at(
                here,
                format!(
                    "The modifier extension '{url}' is not understood by this server, so the \
                     resource cannot be accepted (extensibility.html#modifierExtension)."
                ),
                format!(
                    "Máy chủ không hiểu phần mở rộng sửa đổi (modifier extension) '{url}', nên \
                     không thể nhận tài nguyên này (extensibility.html#modifierExtension)."
                ),
            ));
        }
        let paired = |other: &str| entries.iter().any(|(n, _)| n.as_str() == other);
        let partner = name
            .strip_prefix('_')
            .map(str::to_owned)
            .unwrap_or_else(|| format!("_{name}"));
        walk_value(value, &here, paired(&partner))?;
    }
    Ok(())
}

fn walk_value(value: &Value, path: &str, has_partner_array: bool) -> Result<(), FormatError> {
    match value {
        Value::Null => Err(FormatError::at(
            path,
            "null is not allowed here; leave the element out instead (json.html).",
            "Không được dùng null ở đây; hãy bỏ hẳn phần tử này (json.html).",
        )),
        Value::String(s) if s.is_empty() => Err(FormatError::at(
            path,
            "An empty string is not allowed; leave the element out instead (json.html).",
            "Không được dùng chuỗi rỗng; hãy bỏ hẳn phần tử này (json.html).",
        )),
        Value::Object(map) if map.is_empty() => Err(FormatError::at(
            path,
            "An empty object is not allowed; leave the element out instead (json.html).",
            "Không được dùng đối tượng rỗng; hãy bỏ hẳn phần tử này (json.html).",
        )),
        Value::Array(items) if items.is_empty() => Err(FormatError::at(
            path,
            "An empty array is not allowed; leave the element out instead (json.html).",
            "Không được dùng mảng rỗng; hãy bỏ hẳn phần tử này (json.html).",
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let here = format!("{path}[{i}]");
                match item {
                    // json.html#primitive: nulls keep primitive arrays and their `_name`
                    // extension arrays aligned; anywhere else they are an error.
                    Value::Null if has_partner_array => {}
                    Value::Array(_) => {
                        return Err(FormatError::at(
                            here,
                            "Arrays cannot be nested (json.html).",
                            "Không được lồng mảng trong mảng (json.html).",
                        ))
                    }
                    other => walk_value(other, &here, false)?,
                }
            }
            if items.iter().all(Value::is_null) {
                return Err(FormatError::at(
                    path,
                    "An array of only nulls is not allowed (json.html).",
                    "Không được dùng mảng chỉ chứa null (json.html).",
                ));
            }
            Ok(())
        }
        Value::Object(map) => walk_object(map.iter(), path),
        _ => Ok(()),
    }
}

/// Compares what the client sent with what the R4 model made of it. fhirbolt accepts and
/// silently repairs several errors; any repair shows up here as a difference, reported at
/// its location.
pub(crate) fn same_content(
    sent: &Value,
    canonical: &Value,
    resource_type: &str,
) -> Result<(), FormatError> {
    compare(sent, canonical, resource_type)
}

fn compare(sent: &Value, model: &Value, path: &str) -> Result<(), FormatError> {
    match (sent, model) {
        (Value::Object(a), Value::Object(b)) => compare_objects(a, b, path),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (other, Value::Array(_)) if !other.is_array() => Err(FormatError::at(
            path,
            "This element repeats, so its value must be a JSON array (json.html).",
            "Phần tử này lặp lại nên giá trị phải là một mảng JSON (json.html).",
        )),
        (Value::String(_), Value::Bool(_)) => Err(FormatError::at(
            path,
            "This element is a boolean: write true or false without quotes (json.html#primitive).",
            "Phần tử này là kiểu boolean: viết true hoặc false, không có dấu ngoặc kép (json.html#primitive).",
        )),
        (Value::String(_), Value::Number(_)) => Err(FormatError::at(
            path,
            "This element is a number: write it without quotes (json.html#primitive).",
            "Phần tử này là số: viết không có dấu ngoặc kép (json.html#primitive).",
        )),
        (Value::Number(_) | Value::Bool(_), Value::String(_)) => Err(FormatError::at(
            path,
            "This element is a string: write its value in quotes (json.html#primitive).",
            "Phần tử này là chuỗi: viết giá trị trong dấu ngoặc kép (json.html#primitive).",
        )),
        (Value::Number(a), Value::Number(b)) if same_number(a, b) => Ok(()),
        (a, b) if a == b => Ok(()),
        _ => Err(FormatError::at(
            path,
            "This value is not valid for the element's FHIR data type.",
            "Giá trị này không hợp lệ với kiểu dữ liệu FHIR của phần tử.",
        )),
    }
}

fn compare_objects(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    path: &str,
) -> Result<(), FormatError> {
    for (name, value) in a {
        let here = format!("{path}.{name}");
        match b.get(name) {
            Some(other) => compare(value, other, &here)?,
            None => {
                return Err(FormatError::at(
                    here,
                    format!("'{name}' is not a valid element here (it has no meaning in FHIR R4)."),
                    format!(
                    "'{name}' không phải là phần tử hợp lệ ở đây (không có nghĩa trong FHIR R4)."
                ),
                ))
            }
        }
    }
    if let Some(name) = b.keys().find(|k| !a.contains_key(*k)) {
        return Err(FormatError::at(
            format!("{path}.{name}"),
            "The element is not valid as written.",
            "Phần tử này không hợp lệ như đã viết.",
        ));
    }
    Ok(())
}

/// Numbers keep their text (`1.50` stays `1.50`), but fhirbolt rewrites exponents
/// (`1e2` becomes `1e+2`); both spell the same decimal.
fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    a.to_string() == b.to_string() || a.as_f64().is_some() && a.as_f64() == b.as_f64()
}

/// A [`Value`] whose deserialisation fails on a repeated property name.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            // serde_json's arbitrary_precision feature (switched on by fhirbolt) carries
            // numbers as a one-entry map with this private key; hand it back unchanged.
            if key == "$serde_json::private::Number" {
                let text: String = access.next_value()?;
                let number: serde_json::Number = text.parse().map_err(de::Error::custom)?;
                return Ok(Value::Number(number));
            }
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the property '{key}' appears twice in one object"
                )));
            }
            let StrictValue(v) = access.next_value()?;
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }
}
