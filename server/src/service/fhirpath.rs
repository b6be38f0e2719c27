//! The FHIRPath subset the server evaluates (https://hl7.org/fhirpath/N1/): the paths of
//! FHIRPath Patch (fhirpatch.html) and the expressions of the standard SearchParameters
//! (search.html), which decide compartment membership and, later, index values.
//!
//! Supported: element names (choice elements by their stem: `Observation.value` finds
//! `valueQuantity`), indexers `[n]`, `first()`, `last()`, `where(path = literal)`,
//! `where(resolve() is Type)` on references, `as(Type)`, `ofType(Type)`, infix `as`,
//! parentheses and top-level unions `a | b`. Selections are JSON pointers, so callers can
//! read or change what was selected.

use serde_json::Value;

/// A location in the resource JSON.
pub type Pointer = Vec<Step>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// What `expression` selects in `resource`, in document order per union member.
///
/// # Errors
/// A message when the expression uses FHIRPath outside the supported subset.
pub fn select(resource: &Value, expression: &str) -> Result<Vec<Pointer>, String> {
    nesting(expression)?;
    let mut selected = Vec::new();
    for part in fhir_profiles::split_union(expression) {
        selected.extend(select_one(resource, part)?);
    }
    Ok(selected)
}

/// The deepest parenthesis nesting an expression may have. Evaluation recurses into
/// parenthesised heads and `where(...)`, and finds each closing parenthesis by a scan, so
/// an expression of 100,000 `(` would overflow the stack or run for minutes; the paths of
/// the R4 search parameters nest 3 deep.
pub const MAX_NESTING: usize = 32;

fn nesting(expression: &str) -> Result<(), String> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in expression.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "The FHIRPath expression nests parentheses {deepest} deep; at most {MAX_NESTING} are read."
        ));
    }
    Ok(())
}

/// The values `expression` selects (unknown FHIRPath selects nothing).
pub fn values<'a>(resource: &'a Value, expression: &str) -> Vec<&'a Value> {
    select(resource, expression)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| get(resource, p))
        .collect()
}

fn select_one(resource: &Value, expression: &str) -> Result<Vec<Pointer>, String> {
    let mut expression = expression.trim();
    while expression.starts_with('(') && closing_paren(expression) == Some(expression.len() - 1) {
        expression = expression[1..expression.len() - 1].trim();
    }
    // `(path as Type).element`: a parenthesised head, then steps from what it selected.
    if expression.starts_with('(') {
        if let Some(close) = closing_paren(expression) {
            if let Some(rest) = expression[close + 1..].trim().strip_prefix('.') {
                let mut current = select_one(resource, &expression[1..close])?;
                for step in split_steps(rest)? {
                    current = apply_step(resource, current, &step)?;
                }
                return Ok(current);
            }
        }
    }
    if let Some((path, type_name)) = split_infix_as(expression) {
        let selected = select_one(resource, path)?;
        return Ok(of_type(resource, selected, type_name));
    }
    evaluate(resource, expression)
}

/// The index of the parenthesis closing the one at 0.
fn closing_paren(text: &str) -> Option<usize> {
    let (mut depth, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `path as Type` at the top level.
fn split_infix_as(expression: &str) -> Option<(&str, &str)> {
    let i = expression.rfind(" as ")?;
    let (path, type_name) = (&expression[..i], expression[i + 4..].trim());
    let balanced = path.matches('(').count() == path.matches(')').count();
    (balanced && type_name.chars().all(|c| c.is_ascii_alphanumeric())).then_some((path, type_name))
}

/// Keeps the selections of data type (choice suffix) or resource type `type_name`.
fn of_type(resource: &Value, selected: Vec<Pointer>, type_name: &str) -> Vec<Pointer> {
    selected
        .into_iter()
        .filter(|ptr| {
            let by_key = ptr.iter().rev().find_map(|s| match s {
                Step::Key(k) => Some(k),
                Step::Index(_) => None,
            });
            let suffix_matches = by_key.is_some_and(|k| {
                k.len() > type_name.len()
                    && k[k.len() - type_name.len()..].eq_ignore_ascii_case(type_name)
                    && k[k.len() - type_name.len()..].starts_with(|c: char| c.is_ascii_uppercase())
            });
            suffix_matches
                || get(resource, ptr)
                    .and_then(|v| v.get("resourceType"))
                    .and_then(Value::as_str)
                    == Some(type_name)
        })
        .collect()
}

pub fn get<'a>(value: &'a Value, ptr: &[Step]) -> Option<&'a Value> {
    ptr.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

pub fn get_mut<'a>(value: &'a mut Value, ptr: &[Step]) -> Option<&'a mut Value> {
    ptr.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// Evaluates a path to the locations it selects.
fn evaluate(resource: &Value, path: &str) -> Result<Vec<Pointer>, String> {
    let mut steps = split_steps(path)?;
    let res_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if steps.first().map(String::as_str) == Some(res_type) {
        steps.remove(0);
    }
    let mut current: Vec<Pointer> = vec![Vec::new()];
    for step in steps {
        current = apply_step(resource, current, &step)?;
    }
    Ok(current)
}

fn apply_step(resource: &Value, current: Vec<Pointer>, step: &str) -> Result<Vec<Pointer>, String> {
    let (head, indexer) = match step.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
        Some((head, n)) => (
            head,
            Some(
                n.parse::<usize>()
                    .map_err(|_| format!("'{step}' has a bad index."))?,
            ),
        ),
        None => (step, None),
    };
    let mut selected = match head {
        "first()" => current.into_iter().take(1).collect(),
        _ if head.starts_with("where(resolve() is ") && head.ends_with(')') => {
            let target = head["where(resolve() is ".len()..head.len() - 1].trim();
            current
                .into_iter()
                .filter(|ptr| {
                    get(resource, ptr)
                        .and_then(|r| r.get("reference"))
                        .and_then(Value::as_str)
                        .is_some_and(|r| reference_type(r) == Some(target))
                })
                .collect()
        }
        _ if (head.starts_with("as(") || head.starts_with("ofType(")) && head.ends_with(')') => {
            let open = head.find('(').unwrap_or(0);
            of_type(resource, current, head[open + 1..head.len() - 1].trim())
        }
        "last()" => current.into_iter().last().into_iter().collect(),
        _ if head.starts_with("where(") && head.ends_with(')') => {
            let condition = &head[6..head.len() - 1];
            let (left, right) = condition.split_once('=').ok_or_else(|| {
                format!("Only where(path = value) is supported, not '{condition}'.")
            })?;
            let literal = parse_literal(right.trim())?;
            let mut kept = Vec::new();
            for ptr in current {
                let Some(node) = get(resource, &ptr) else {
                    continue;
                };
                let sub = evaluate_relative(node, left.trim())?;
                if sub.iter().any(|p| get(node, p) == Some(&literal)) {
                    kept.push(ptr);
                }
            }
            kept
        }
        name if name.ends_with(')') => {
            return Err(format!(
                "The FHIRPath function '{name}' is not supported in patches."
            ))
        }
        name => children(resource, current, name),
    };
    if let Some(n) = indexer {
        selected = selected.into_iter().nth(n).into_iter().collect();
    }
    Ok(selected)
}

fn evaluate_relative(node: &Value, path: &str) -> Result<Vec<Pointer>, String> {
    let mut current: Vec<Pointer> = vec![Vec::new()];
    for step in split_steps(path)? {
        current = apply_step(node, current, &step)?;
    }
    Ok(current)
}

fn children(resource: &Value, current: Vec<Pointer>, name: &str) -> Vec<Pointer> {
    let mut out = Vec::new();
    for ptr in current {
        let Some(Value::Object(map)) = get(resource, &ptr) else {
            continue;
        };
        // A choice element is named by its stem (`value` finds `valueQuantity`).
        let key = if map.contains_key(name) {
            Some(name.to_owned())
        } else {
            map.keys()
                .find(|k| {
                    k.strip_prefix(name)
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
                })
                .cloned()
        };
        let Some(key) = key else { continue };
        let mut base = ptr.clone();
        base.push(Step::Key(key.clone()));
        match map.get(&key) {
            Some(Value::Array(items)) => {
                for i in 0..items.len() {
                    let mut p = base.clone();
                    p.push(Step::Index(i));
                    out.push(p);
                }
            }
            Some(_) => out.push(base),
            None => {}
        }
    }
    out
}

fn parse_literal(text: &str) -> Result<Value, String> {
    if let Some(s) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(Value::String(s.replace("\\'", "'")));
    }
    match text {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_number)
            .ok_or_else(|| format!("'{text}' is not a string, number or boolean literal.")),
    }
}

/// Splits a path on dots outside quotes and parentheses.
fn split_steps(path: &str) -> Result<Vec<String>, String> {
    let mut steps = Vec::new();
    let mut current = String::new();
    let (mut depth, mut quoted) = (0i32, false);
    for c in path.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '.' if !quoted && depth == 0 => {
                steps.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    steps.push(current);
    if depth != 0 || quoted || steps.iter().any(String::is_empty) {
        return Err(format!("'{path}' is not a valid FHIRPath path."));
    }
    Ok(steps)
}

/// The resource type a reference points at (`Patient/1`, `http://x/fhir/Patient/1`,
/// `Patient/1/_history/2`).
pub fn reference_type(reference: &str) -> Option<&str> {
    reference_target(reference).map(|(res_type, _)| res_type)
}

/// The type and id a reference points at (`("Patient", "1")`); `None` for contained
/// (`#x`), `urn:` and other non-RESTful references.
pub fn reference_target(reference: &str) -> Option<(&str, &str)> {
    let path = reference.split(['?', '#']).next()?;
    let parts: Vec<&str> = path.split('/').collect();
    let id_at = match parts.iter().rposition(|p| *p == "_history") {
        Some(h) if h >= 2 => h - 1,
        Some(_) => return None,
        None => parts.len().checked_sub(1)?,
    };
    let res_type = parts
        .get(id_at.checked_sub(1)?)
        .copied()
        .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))?;
    Some((res_type, parts[id_at]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observation() -> Value {
        json!({"resourceType":"Observation","status":"final","code":{"text":"x"},
            "subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/d1"},{"reference":"http://x/fhir/Patient/p2"}],
            "valueQuantity":{"value":1},"effectiveDateTime":"2021-01-01"})
    }

    #[test]
    fn nesting_is_bounded_at_every_depth() {
        let o = observation();
        for depth in [10, 32, 33, 1_000, 100_000] {
            let parens = format!(
                "{}Observation.subject{}",
                "(".repeat(depth),
                ")".repeat(depth)
            );
            let wheres = format!(
                "Observation.performer{}",
                ".where(reference = 'x')".repeat(depth)
            );
            let nested_where = format!(
                "Observation{}{}",
                ".where(a".repeat(depth),
                " = 1)".repeat(depth)
            );
            let parens = select(&o, &parens);
            if depth <= MAX_NESTING {
                assert_eq!(parens.expect("within the bound").len(), 1, "{depth}");
            } else {
                let e = parens.expect_err("too deep");
                assert!(e.contains("at most 32"), "{depth}: {e}");
                assert!(select(&o, &nested_where).is_err(), "{depth}");
            }
            // A long chain of steps is not nesting: it is read, step by step.
            assert!(select(&o, &wheres).is_ok(), "{depth}");
        }
    }

    #[test]
    fn search_parameter_expressions() {
        let o = observation();
        assert_eq!(
            values(&o, "Observation.subject.where(resolve() is Patient)").len(),
            1
        );
        assert_eq!(
            values(&o, "Observation.performer.where(resolve() is Patient)")[0]["reference"],
            "http://x/fhir/Patient/p2"
        );
        assert_eq!(values(&o, "(Observation.value as Quantity)")[0]["value"], 1);
        assert!(values(&o, "(Observation.value as CodeableConcept)").is_empty());
        let coded =
            json!({"resourceType": "Observation", "valueCodeableConcept": {"text": "dương tính"}});
        assert_eq!(
            values(
                &coded,
                "(Observation.value as string) | (Observation.value as CodeableConcept).text"
            ),
            [&json!("dương tính")]
        );
        assert_eq!(
            values(&o, "Observation.effective.as(dateTime) | Observation.code").len(),
            2
        );
        assert_eq!(
            values(&o, "Observation.effective.ofType(dateTime)")[0],
            "2021-01-01"
        );
    }

    #[test]
    fn references() {
        assert_eq!(reference_target("Patient/1"), Some(("Patient", "1")));
        assert_eq!(
            reference_target("http://x/fhir/Patient/1/_history/2"),
            Some(("Patient", "1"))
        );
        assert_eq!(reference_target("#contained"), None);
        assert_eq!(reference_type("urn:uuid:abc"), None);
    }
}
