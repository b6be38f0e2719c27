//! Chains (search.html#chaining) and reverse chains (`_has`, search.html#has).

use super::*;

/// `ref[:Type].rest=value`: resources whose reference `ref` points at a resource that
/// matches `rest=value`.
pub(super) fn chain(
    ctx: &ParseContext<'_>,
    types: &[String],
    head: &str,
    rest: &str,
    value: &str,
    depth: usize,
) -> Result<Option<Filter>, ParamError> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let Some(sp) = definition(ctx.parameters, types, code)? else {
        return if ctx.strict {
            Err(ParamError::Unknown(format!(
                "'{code}' is not a search parameter here."
            )))
        } else {
            Ok(None)
        };
    };
    if sp.kind != "reference" {
        return invalid(format!(
            "'{code}' is not a reference parameter, so it cannot be chained."
        ));
    }
    let target_types: Vec<String> = match type_modifier {
        Some(t) if sp.target.iter().any(|x| x == t) => vec![t.to_owned()],
        Some(t) => return invalid(format!("'{code}' cannot refer to a {t}.")),
        None => {
            // search.html#chaining: without a type, the chained parameter must be one
            // that every possible target type has.
            let (next_code, _) = rest.split_once(['.', ':']).unwrap_or((rest, ""));
            let candidates: Vec<String> = sp
                .target
                .iter()
                .filter(|t| {
                    matches!(next_code, "_id" | "_lastUpdated")
                        || next_code.starts_with("_has")
                        || ctx.parameters.get(t, next_code).is_some()
                })
                .cloned()
                .collect();
            if candidates.is_empty() {
                return invalid(format!(
                    "No type '{code}' can refer to has a search parameter '{next_code}'."
                ));
            }
            candidates
        }
    };
    let strict = ParseContext {
        strict: true,
        ..ctx.clone()
    };
    // Search each target type on its own where the parameter differs in type.
    let mut per_type = Vec::new();
    for t in &target_types {
        match parse(&strict, std::slice::from_ref(t), rest, value, depth + 1) {
            Ok(Some(f)) => per_type.push((t.clone(), f)),
            Ok(None) => {}
            Err(ParamError::Unknown(_)) if target_types.len() > 1 => {}
            Err(e) => return Err(e),
        }
    }
    let filters: Vec<Filter> = per_type
        .into_iter()
        .map(|(t, f)| Filter::Chain {
            param: code.to_owned(),
            target_types: vec![t],
            filter: Box::new(f),
        })
        .collect();
    Ok(Some(if filters.len() == 1 {
        filters.into_iter().next().expect("one")
    } else {
        Filter::Or(filters)
    }))
}

/// `_has:Type:ref:rest=value`: resources that a `Type` resource refers to through its
/// reference parameter `ref`, where that resource matches `rest=value`.
pub(super) fn has(
    ctx: &ParseContext<'_>,
    types: &[String],
    spec: &str,
    value: &str,
    depth: usize,
) -> Result<Option<Filter>, ParamError> {
    let mut parts = spec.splitn(3, ':');
    let (Some(source_type), Some(param), Some(rest)) = (parts.next(), parts.next(), parts.next())
    else {
        return invalid(
            "_has takes the form _has:[type]:[reference parameter]:[parameter]=[value].",
        );
    };
    if fhir_profiles::elements(source_type).is_none() {
        return invalid(format!("'{source_type}' is not a resource type."));
    }
    let Some(sp) = ctx.parameters.get(source_type, param) else {
        return invalid(format!(
            "'{param}' is not a search parameter of {source_type}."
        ));
    };
    if sp.kind != "reference" || !types.iter().all(|t| sp.target.iter().any(|x| x == t)) {
        return invalid(format!(
            "{source_type}.{param} is not a reference to {}.",
            types.join(", ")
        ));
    }
    let strict = ParseContext {
        strict: true,
        ..ctx.clone()
    };
    let sources = [source_type.to_owned()];
    let inner = parse(&strict, &sources, rest, value, depth + 1)?.ok_or_else(|| {
        ParamError::Invalid(format!(
            "'{rest}' is not a search parameter of {source_type}."
        ))
    })?;
    Ok(Some(Filter::Has {
        source_type: source_type.to_owned(),
        param: param.to_owned(),
        filter: Box::new(inner),
    }))
}
