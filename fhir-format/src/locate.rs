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
            message_vi: format!("'{name}' không phải là phần tử của kiểu FHIR R4 này."),
        };
    }
    if let Some(name) = quoted(message, "missing field `") {
        return FormatError {
            path: Some(resource_type.to_owned()),
            message: format!("The required element '{name}' is missing (minimum cardinality 1)."),
            message_vi: format!("Thiếu phần tử bắt buộc '{name}' (số lượng tối thiểu 1)."),
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
            message_vi: format!("Giá trị không hợp lệ: {rest}."),
        };
    }
    FormatError {
        path: None,
        message: format!("Invalid FHIR JSON: {message}."),
        message_vi: format!("JSON FHIR không hợp lệ: {message}."),
    }
}

/// Finds the element that makes `parse` fail by leaving elements out one at a time: the
/// culprit is the one whose removal changes the error. Runs only for errors fhirbolt
/// reports without a name to look for (e.g. "ParseBoolError").
pub(crate) fn by_elimination(
    body: &Value,
    resource_type: &str,
    parse: impl Fn(Value) -> Result<(), String>,
) -> Option<String> {
    let original = parse(body.clone()).err()?;
    let mut pointer: Vec<Step> = Vec::new();
    loop {
        let node = get(body, &pointer)?;
        let children: Vec<Step> = match node {
            Value::Object(map) => map
                .keys()
                .filter(|k| *k != "resourceType")
                .map(|k| Step::Key(k.clone()))
                .collect(),
            // Removing the only item would leave an empty array; the parent's step covers it.
            Value::Array(items) if items.len() > 1 => (0..items.len()).map(Step::Index).collect(),
            _ => Vec::new(),
        };
        let culprit = children.into_iter().find(|child| {
            let mut candidate = body.clone();
            let mut at = pointer.clone();
            at.push(child.clone());
            remove(&mut candidate, &at);
            parse(candidate).err().as_deref() != Some(original.as_str())
        });
        match culprit {
            Some(step) => pointer.push(step),
            None => {
                // A single-item array: step into its item without testing removal.
                if let Some(Value::Array(items)) = get(body, &pointer) {
                    if items.len() == 1 && items[0].is_object() {
                        pointer.push(Step::Index(0));
                        continue;
                    }
                }
                return (!pointer.is_empty()).then(|| render(resource_type, &pointer));
            }
        }
    }
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn get<'a>(value: &'a Value, pointer: &[Step]) -> Option<&'a Value> {
    pointer.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

fn remove(value: &mut Value, pointer: &[Step]) {
    let Some((last, parent)) = pointer.split_last() else {
        return;
    };
    let node = parent.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(*i),
    });
    match (node, last) {
        (Some(Value::Object(map)), Step::Key(k)) => {
            map.remove(k);
        }
        (Some(Value::Array(items)), Step::Index(i)) => {
            items.remove(*i);
        }
        _ => {}
    }
}

fn render(resource_type: &str, pointer: &[Step]) -> String {
    let mut path = resource_type.to_owned();
    for step in pointer {
        match step {
            Step::Key(k) => {
                path.push('.');
                path.push_str(k);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
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
