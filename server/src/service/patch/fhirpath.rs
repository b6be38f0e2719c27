//! FHIRPath Patch — https://hl7.org/fhir/R4/fhirpatch.html
//!
//! Operations `add`, `insert`, `delete`, `replace` and `move`. Paths are the FHIRPath
//! subset patches use in practice: element names (choice elements by their stem, e.g.
//! `Observation.value`), indexers `[n]`, `first()`, `last()`, and `where(path = literal)`
//! with a string, number or boolean literal. Values are `value[x]` of any data type; a value
//! made of `part`s (anonymous backbone elements) is built from the parts.

use crate::service::ErrorCode;
use serde_json::{Map, Value};

use crate::service::fhirpath::{get_mut, select, Pointer, Step};
use crate::service::ServiceError;

/// One FHIRPath Patch operation.
#[derive(Debug, Clone)]
pub struct Operation {
    kind: Kind,
    path: String,
    name: Option<String>,
    value: Option<Value>,
    index: Option<usize>,
    source: Option<usize>,
    destination: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

/// Reads the operations of a Parameters resource.
pub fn parse(parameters: &Value) -> Result<Vec<Operation>, ServiceError> {
    let params = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::PatchDocument,
                "The FHIRPath Patch has no operations.",
            )
        })?;
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            parse_operation(p).map_err(|m| {
                ServiceError::at(
                    ErrorCode::PatchDocument,
                    format!("Parameters.parameter[{i}]"),
                    m,
                )
            })
        })
        .collect()
}

fn parse_operation(parameter: &Value) -> Result<Operation, String> {
    if parameter.get("name").and_then(Value::as_str) != Some("operation") {
        return Err("Each parameter of a FHIRPath Patch is named 'operation'.".into());
    }
    let parts = parameter
        .get("part")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let part = |name: &str| {
        parts
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
    };
    let text = |name: &str| {
        part(name)
            .and_then(|p| value_x(p))
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let number = |name: &str| -> Result<Option<usize>, String> {
        match part(name).and_then(value_x) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| format!("The '{name}' part must be a non-negative integer.")),
        }
    };
    let kind = match text("type").as_deref() {
        Some("add") => Kind::Add,
        Some("insert") => Kind::Insert,
        Some("delete") => Kind::Delete,
        Some("replace") => Kind::Replace,
        Some("move") => Kind::Move,
        Some(other) => return Err(format!("'{other}' is not a FHIRPath Patch operation type.")),
        None => return Err("The operation has no 'type' part.".into()),
    };
    let path = text("path").ok_or("The operation has no 'path' part.")?;
    let value = part("value").map(|p| value_x(p).cloned().unwrap_or_else(|| from_parts(p)));
    let op = Operation {
        kind,
        path,
        name: text("name"),
        value,
        index: number("index")?,
        source: number("source")?,
        destination: number("destination")?,
    };
    let missing =
        |what: &str| Err(format!("A {kind:?} operation needs a '{what}' part.").to_lowercase());
    match kind {
        Kind::Add if op.name.is_none() => missing("name"),
        Kind::Add | Kind::Insert | Kind::Replace if op.value.is_none() => missing("value"),
        Kind::Insert if op.index.is_none() => missing("index"),
        Kind::Move if op.source.is_none() || op.destination.is_none() => {
            missing("source and destination")
        }
        _ => Ok(op),
    }
}

/// The `value[x]` of a parameter part.
fn value_x(part: &Value) -> Option<&Value> {
    part.as_object()?
        .iter()
        .find(|(k, _)| k.starts_with("value") && k.len() > 5)
        .map(|(_, v)| v)
}

/// A backbone element value given as nested parts (fhirpatch.html#parameters).
fn from_parts(part: &Value) -> Value {
    let mut object = Map::new();
    for p in part
        .get("part")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = p.get("name").and_then(Value::as_str) {
            let v = value_x(p).cloned().unwrap_or_else(|| from_parts(p));
            object.insert(name.to_owned(), v);
        }
    }
    Value::Object(object)
}

impl Operation {
    /// Applies the operation; the message says why it could not be.
    pub fn apply(&self, resource: &mut Value) -> Result<(), String> {
        let targets = select(resource, &self.path)?;
        match self.kind {
            // fhirpatch.html: deleting what is not there is not an error.
            Kind::Delete => match targets.as_slice() {
                [] => Ok(()),
                [target] => {
                    remove(resource, target);
                    Ok(())
                }
                _ => Err(format!(
                    "The path '{}' matches more than one element.",
                    self.path
                )),
            },
            Kind::Insert | Kind::Move => self.reorder(resource, &targets),
            Kind::Replace | Kind::Add => {
                let [target] = targets.as_slice() else {
                    return Err(format!(
                        "The path '{}' must match exactly one element; it matches {}.",
                        self.path,
                        targets.len()
                    ));
                };
                let value = self.value.clone().unwrap_or(Value::Null);
                if self.kind == Kind::Replace {
                    *get_mut(resource, target).ok_or("The path does not resolve.")? = value;
                    return Ok(());
                }
                let name = self.name.clone().unwrap_or_default();
                let container = get_mut(resource, target)
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| {
                        format!("'{}' is not an element that can hold '{name}'.", self.path)
                    })?;
                match container.get_mut(&name) {
                    Some(Value::Array(items)) => items.push(value),
                    Some(_) => return Err(format!("'{name}' already has a value; use replace.")),
                    // A single value; the R4 model wraps it in an array if the element repeats.
                    None => {
                        container.insert(name, value);
                    }
                }
                Ok(())
            }
        }
    }
}

impl Operation {
    /// insert and move: the path names a list (all its items).
    fn reorder(&self, resource: &mut Value, targets: &[Pointer]) -> Result<(), String> {
        let list = targets
            .first()
            .and_then(|t| match t.split_last() {
                Some((Step::Index(_), parent)) => Some(parent.to_vec()),
                _ => None,
            })
            .ok_or_else(|| format!("The path '{}' does not name a list.", self.path))?;
        if targets.iter().any(|t| t[..t.len() - 1] != list[..]) {
            return Err(format!(
                "The path '{}' names items of more than one list.",
                self.path
            ));
        }
        let items = get_mut(resource, &list)
            .and_then(Value::as_array_mut)
            .ok_or("The path does not name a list.")?;
        if self.kind == Kind::Insert {
            let index = self.index.unwrap_or(0);
            if index > items.len() {
                return Err(format!("index {index} is beyond the end of the list."));
            }
            items.insert(index, self.value.clone().unwrap_or(Value::Null));
        } else {
            let (from, to) = (self.source.unwrap_or(0), self.destination.unwrap_or(0));
            if from >= items.len() || to >= items.len() {
                return Err("source or destination is beyond the end of the list.".into());
            }
            let item = items.remove(from);
            items.insert(to, item);
        }
        Ok(())
    }
}

fn remove(resource: &mut Value, target: &Pointer) {
    let Some((last, parent)) = target.split_last() else {
        return;
    };
    let Some(container) = get_mut(resource, parent) else {
        return;
    };
    match (last, container) {
        (Step::Key(k), Value::Object(map)) => {
            map.remove(k);
        }
        (Step::Index(i), Value::Array(items)) => {
            items.remove(*i);
            if items.is_empty() {
                // json.html forbids empty arrays: drop the element itself.
                let parent = parent.to_vec();
                remove(resource, &parent);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(kind: &str, path: &str, extra: Value) -> Operation {
        let mut parts = vec![
            json!({"name":"type","valueCode":kind}),
            json!({"name":"path","valueString":path}),
        ];
        parts.extend(extra.as_array().cloned().unwrap_or_default());
        parse_operation(&json!({"name":"operation","part":parts})).unwrap()
    }

    fn patient() -> Value {
        json!({"resourceType":"Patient","id":"1","identifier":[{"system":"a","value":"1"},{"system":"b","value":"2"}],"name":[{"family":"X","given":["A","B"]}],"gender":"male"})
    }

    #[test]
    fn replace_with_where_and_index() {
        let mut p = patient();
        op(
            "replace",
            "Patient.identifier.where(system = 'b').value",
            json!([{"name":"value","valueString":"9"}]),
        )
        .apply(&mut p)
        .unwrap();
        assert_eq!(p["identifier"][1]["value"], "9");
        op(
            "replace",
            "Patient.name[0].given[1]",
            json!([{"name":"value","valueString":"C"}]),
        )
        .apply(&mut p)
        .unwrap();
        assert_eq!(p["name"][0]["given"], json!(["A", "C"]));
    }

    #[test]
    fn add_insert_move_delete() {
        let mut p2 = patient();
        op("add", "Patient", json!([{"name":"name","valueString":"birthDate"},{"name":"value","valueDate":"1990-01-01"}])).apply(&mut p2).unwrap();
        assert_eq!(p2["birthDate"], "1990-01-01");
        op("insert", "Patient.identifier", json!([{"name":"index","valueInteger":0},{"name":"value","valueIdentifier":{"value":"0"}}])).apply(&mut p2).unwrap();
        assert_eq!(p2["identifier"][0]["value"], "0");
        op(
            "move",
            "Patient.identifier",
            json!([{"name":"source","valueInteger":0},{"name":"destination","valueInteger":2}]),
        )
        .apply(&mut p2)
        .unwrap();
        assert_eq!(p2["identifier"][2]["value"], "0");
        op("delete", "Patient.gender", json!([]))
            .apply(&mut p2)
            .unwrap();
        assert!(p2.get("gender").is_none());
        op("delete", "Patient.identifier", json!([]))
            .apply(&mut p2)
            .unwrap_err();
        op("delete", "Patient.birthDate.where(x = 'y')", json!([]))
            .apply(&mut p2)
            .unwrap();
    }

    #[test]
    fn deleting_the_last_item_removes_the_array() {
        let mut p = json!({"resourceType":"Patient","name":[{"family":"X"}]});
        op("delete", "Patient.name[0]", json!([]))
            .apply(&mut p)
            .unwrap();
        assert!(p.get("name").is_none());
    }

    #[test]
    fn ambiguous_replace_fails() {
        let mut p = patient();
        assert!(op(
            "replace",
            "Patient.identifier.value",
            json!([{"name":"value","valueString":"9"}])
        )
        .apply(&mut p)
        .is_err());
    }
}
