//! Validation against a StructureDefinition posted to the server (profiling.html): a
//! resource that names it in `meta.profile` is checked against the constraints of its
//! differential that need no FHIRPath engine:
//! - `HB-PROFILE-MIN` / `HB-PROFILE-MAX`: the element's cardinality, for every present
//!   parent (elementdefinition.html#min-max);
//! - `HB-PROFILE-FIXED`: a `fixed[x]` value, exactly;
//! - `HB-PROFILE-PATTERN`: a `pattern[x]` value, as a subset (elementdefinition.html#pattern);
//! - `HB-PROFILE-TYPE`: a choice element of a type the profile does not allow.
//!
//! Not yet: slices (elements with a `sliceName` are skipped), `constraint` expressions,
//! bindings and the base profile chain beyond the core type.

use serde_json::Value;

use super::base::capitalised;
use super::Issue;

/// Adds the issues of `resource` against the profile `sd` to `out`.
pub fn check(sd: &Value, resource: &Value, out: &mut Vec<Issue>) {
    let name = sd["title"]
        .as_str()
        .or_else(|| sd["name"].as_str())
        .unwrap_or("profile")
        .to_owned();
    let Some(res_type) = resource["resourceType"].as_str() else {
        return;
    };
    if sd["type"].as_str() != Some(res_type) {
        out.push(Issue::error(
            "invalid",
            "HB-PROFILE-TYPE",
            res_type,
            format!(
                "The profile {name} is for {}, not {res_type}.",
                sd["type"].as_str().unwrap_or("?")
            ),
            format!(
                "Hồ sơ {name} dành cho {}, không phải {res_type}.",
                sd["type"].as_str().unwrap_or("?")
            ),
        ));
        return;
    }
    let elements = sd["differential"]["element"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for element in &elements {
        if element.get("sliceName").is_some()
            || element["id"].as_str().is_some_and(|id| id.contains(':'))
        {
            continue;
        }
        let Some(path) = element["path"].as_str() else {
            continue;
        };
        let Some((parent, last)) = path.rsplit_once('.') else {
            continue;
        };
        for (at, node) in nodes(resource, res_type, parent) {
            let values = values_of(node, last);
            let shown = format!("{at}.{}", last.trim_end_matches("[x]"));
            if let Some(min) = element["min"].as_u64() {
                if (values.len() as u64) < min {
                    out.push(Issue::error(
                        "required",
                        "HB-PROFILE-MIN",
                        shown.clone(),
                        format!("{shown} is required by the profile {name} (at least {min})."),
                        format!("Hồ sơ {name} yêu cầu {shown} (ít nhất {min})."),
                    ));
                }
            }
            if let Some(max) = element["max"]
                .as_str()
                .and_then(|m| m.parse::<usize>().ok())
            {
                if values.len() > max {
                    out.push(Issue::error(
                        "structure",
                        "HB-PROFILE-MAX",
                        shown.clone(),
                        format!("The profile {name} allows at most {max} {shown}."),
                        format!("Hồ sơ {name} chỉ cho phép tối đa {max} {shown}."),
                    ));
                }
            }
            if let Some(types) = element["type"].as_array().filter(|_| last.ends_with("[x]")) {
                let stem = last.trim_end_matches("[x]");
                let allowed: Vec<String> = types
                    .iter()
                    .filter_map(|t| t["code"].as_str())
                    .map(capitalised)
                    .collect();
                for (key, _) in node.as_object().into_iter().flatten() {
                    let chosen = key
                        .strip_prefix(stem)
                        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()));
                    if let Some(chosen) = chosen.filter(|c| !allowed.iter().any(|a| a == c)) {
                        out.push(Issue::error(
                            "structure",
                            "HB-PROFILE-TYPE",
                            format!("{at}.{key}"),
                            format!(
                                "The profile {name} does not allow {shown} as {chosen} (only {}).",
                                allowed.join(", ")
                            ),
                            format!(
                                "Hồ sơ {name} không cho phép {shown} kiểu {chosen} (chỉ {}).",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            }
            for (key, wanted) in element.as_object().into_iter().flatten() {
                let (rule, exact) = if key.starts_with("fixed") {
                    ("HB-PROFILE-FIXED", true)
                } else if key.starts_with("pattern") {
                    ("HB-PROFILE-PATTERN", false)
                } else {
                    continue;
                };
                for (i, value) in values.iter().enumerate() {
                    let ok = if exact {
                        *value == wanted
                    } else {
                        contains(value, wanted)
                    };
                    if !ok {
                        let at = if values.len() > 1 {
                            format!("{shown}[{i}]")
                        } else {
                            shown.clone()
                        };
                        out.push(Issue::error(
                            "value",
                            rule,
                            at.clone(),
                            format!("{at} must be {wanted} (profile {name})."),
                            format!("{at} phải là {wanted} (hồ sơ {name})."),
                        ));
                    }
                }
            }
        }
    }
}

/// The nodes at `path` (`Patient.contact.name` below the resource), with their FHIRPath
/// locations.
fn nodes<'a>(resource: &'a Value, res_type: &str, path: &str) -> Vec<(String, &'a Value)> {
    let mut current = vec![(res_type.to_owned(), resource)];
    let mut steps = path.split('.');
    if steps.next() != Some(res_type) {
        return Vec::new();
    }
    for step in steps {
        let mut next = Vec::new();
        for (at, node) in current {
            match node.get(step) {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        next.push((format!("{at}.{step}[{i}]"), item));
                    }
                }
                Some(item) => next.push((format!("{at}.{step}"), item)),
                None => {}
            }
        }
        current = next;
    }
    current
}

/// The values of element `name` (`given`, `value[x]`) in `node`.
fn values_of<'a>(node: &'a Value, name: &str) -> Vec<&'a Value> {
    let Some(object) = node.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |v: &'a Value| match v {
        Value::Array(items) => out.extend(items.iter()),
        v => out.push(v),
    };
    match name.strip_suffix("[x]") {
        Some(stem) => object
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
            .for_each(|(_, v)| push(v)),
        None => {
            if let Some(v) = object.get(name) {
                push(v);
            }
        }
    }
    out
}

/// Whether `value` holds everything `pattern` has (elementdefinition.html#pattern: arrays
/// match when each pattern item matches some item).
fn contains(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| contains(vv, pv))),
        (Value::Array(v), Value::Array(p)) => {
            p.iter().all(|pv| v.iter().any(|vv| contains(vv, pv)))
        }
        (v, p) => v == p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(resource: Value) -> Vec<(&'static str, String)> {
        let sd = json!({"resourceType": "StructureDefinition", "title": "Site Patient", "type": "Patient",
        "differential": {"element": [
            {"id": "Patient", "path": "Patient"},
            {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1, "max": "2"},
            {"id": "Patient.identifier.system", "path": "Patient.identifier.system", "min": 1,
             "fixedUri": "https://site.example/mrn"},
            {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
             "patternCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"}]}},
            {"id": "Patient.deceased[x]", "path": "Patient.deceased[x]", "type": [{"code": "boolean"}]},
            {"id": "Patient.identifier:other", "path": "Patient.identifier", "sliceName": "other", "min": 5}
        ]}});
        let mut out = Vec::new();
        check(&sd, &resource, &mut out);
        out.into_iter().map(|i| (i.rule, i.expression)).collect()
    }

    #[test]
    fn differential_cardinality_fixed_pattern_and_types() {
        assert!(rules(json!({"resourceType": "Patient",
            "identifier": [{"system": "https://site.example/mrn", "value": "1"}],
            "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
            "deceasedBoolean": false})).is_empty());
        assert_eq!(
            rules(json!({"resourceType": "Patient"})),
            [("HB-PROFILE-MIN", "Patient.identifier".to_owned())]
        );
        let found = rules(json!({"resourceType": "Patient",
            "identifier": [{"system": "https://other.example", "value": "1"}, {"value": "2"}, {"value": "3"}],
            "maritalStatus": {"text": "married"},
            "deceasedDateTime": "2020-01-01"}));
        assert!(
            found.contains(&("HB-PROFILE-MAX", "Patient.identifier".to_owned())),
            "{found:?}"
        );
        assert!(found.contains(&(
            "HB-PROFILE-FIXED",
            "Patient.identifier[0].system".to_owned()
        )));
        assert!(found.contains(&("HB-PROFILE-MIN", "Patient.identifier[1].system".to_owned())));
        assert!(found.contains(&("HB-PROFILE-PATTERN", "Patient.maritalStatus".to_owned())));
        assert!(found.contains(&("HB-PROFILE-TYPE", "Patient.deceasedDateTime".to_owned())));
    }
}
