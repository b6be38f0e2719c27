//! Finds where in the body a fhirbolt error points. fhirbolt reports what is wrong
//! ("unknown field `foo`", "missing field `status`", "invalid type: ...") but not where;
//! the location is recovered by looking for the named element or value in the body.

use serde_json::Value;

use crate::FormatError;

/// Turns a fhirbolt message into a [`FormatError`] with the best location that can be found.
pub(crate) fn explain(message: &str, body: &Value, resource_type: &str) -> FormatError {
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(name) = quoted(message, "unknown field `") {
        let path = find_key(body, name, resource_type);
        return FormatError {
            path,
            message: format!("'{name}' is not a known element of this FHIR R4 type."),
        };
    }
    if let Some(name) = quoted(message, "missing field `") {
        return FormatError {
            path: Some(resource_type.to_owned()),
            message: format!(
                "The required element '{name}' is missing (minimum cardinality 1)."
            ),
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let path = rest
            .split_once('"')
            .and_then(|(_, tail)| tail.split_once('"'))
            .and_then(|(text, _)| find_string(body, text, resource_type));
        return FormatError {
            path,
            message: format!("Invalid value: {rest}."),
        };
    }
    FormatError {
        path: None,
        message: format!("Invalid FHIR JSON: {message}."),
    }
}

fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    rest.find('`').map(|end| &rest[..end])
}

fn find_key(value: &Value, name: &str, path: &str) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, child)| {
            let here = format!("{path}.{key}");
            if key == name {
                Some(here)
            } else {
                find_key(child, name, &here)
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| find_key(child, name, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn find_string(value: &Value, text: &str, path: &str) -> Option<String> {
    match value {
        Value::String(s) if s == text => Some(path.to_owned()),
        Value::Object(map) => map
            .iter()
            .find_map(|(key, child)| find_string(child, text, &format!("{path}.{key}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| find_string(child, text, &format!("{path}[{i}]"))),
        _ => None,
    }
}
