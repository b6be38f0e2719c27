//! Composite parameters (search.html#composite): `code$value` over one element.

use super::*;

/// The component parameters of the composite `sp` on `res_type`, when this server searches
/// it (search.html#composite): a composite over the resource itself, so that "both
/// components match one element" is "both match the resource" (Observation
/// `code-value-quantity`, `code-value-concept`, `code-value-date`, `code-value-string`),
/// whose components are indexed parameters of the type. Composites over repeating elements
/// (`component-code-value-quantity`, `context-type-value`...) need component tuples in the
/// index and are not searched yet.
pub fn composite_components(
    res_type: &str,
    sp: &SearchParameter,
) -> Option<Vec<&'static SearchParameter>> {
    if sp.kind != "composite" || sp.expressions_for(res_type) != [res_type] {
        return None;
    }
    let indexed = crate::service::index::indexed_parameters(res_type);
    sp.component
        .iter()
        .map(|c| {
            let part = fhir_profiles::search_parameter_by_url(&c.definition)?;
            let on_type = fhir_profiles::standard_search_parameter(res_type, &part.code)?;
            indexed
                .iter()
                .any(|(i, _)| std::ptr::eq(*i, on_type))
                .then_some(on_type)
        })
        .collect()
}

/// A composite parameter (search.html#composite): `value$value` per component, `,` between
/// alternatives; each component value read as its own parameter reads it.
pub(super) fn composite(
    ctx: &ParseContext<'_>,
    types: &[String],
    sp: &SearchParameter,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, ParamError> {
    let code = &sp.code;
    if let Some(m) = modifier {
        return invalid(format!(
            "The modifier :{m} is not supported on '{code}' (a composite parameter)."
        ));
    }
    let [res_type] = types else {
        return invalid(format!("Search '{code}' on one type at a time."));
    };
    let grouped = crate::service::index::grouped_composites(res_type)
        .iter()
        .find(|g| std::ptr::eq(g.sp, sp));
    let parts = match (composite_components(res_type, sp), grouped) {
        (Some(parts), _) => parts,
        (None, Some(g)) => g.parts.iter().map(|p| p.sp).collect(),
        (None, None) => {
            return Err(ParamError::Unknown(format!(
                "'{code}' is not searched on {res_type} by this server."
            )))
        }
    };
    let mut alternatives = Vec::new();
    for group in split_composite(value) {
        if group.len() != parts.len() || group.iter().any(String::is_empty) {
            let names: Vec<&str> = parts.iter().map(|p| p.code.as_str()).collect();
            return invalid(format!(
                "'{code}' takes {} values joined by $ ({}).",
                parts.len(),
                names.join("$")
            ));
        }
        let filters = parts
            .iter()
            .zip(&group)
            .map(|(part, v)| one_value(ctx, part, &part.code, None, v))
            .collect::<Result<Vec<_>, _>>()?;
        if grouped.is_none() {
            alternatives.push(Filter::And(filters));
            continue;
        }
        // Over repeating elements: each part a condition on the element's component rows.
        let parts = filters
            .into_iter()
            .map(|f| match f {
                Filter::Index { table, cond, .. } => Ok((table, cond)),
                _ => invalid(format!(
                    "This value is not supported in the composite '{code}'."
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        alternatives.push(Filter::Composite {
            param: code.clone(),
            parts,
        });
    }
    Ok(match alternatives.len() {
        1 => alternatives.remove(0),
        _ => Filter::Or(alternatives),
    })
}

/// Splits a composite value into alternatives (`,`) of components (`$`), unescaping `\,`
/// `\$` and `\\` (a `\|` stays for the token reading).
pub(super) fn split_composite(value: &str) -> Vec<Vec<String>> {
    let mut groups = vec![vec![String::new()]];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let part = groups
            .last_mut()
            .and_then(|g| g.last_mut())
            .expect("a group with a part");
        match c {
            '\\' => match chars.next() {
                Some(next @ (',' | '$' | '\\')) => part.push(next),
                Some(next) => {
                    part.push('\\');
                    part.push(next);
                }
                None => part.push('\\'),
            },
            ',' => groups.push(vec![String::new()]),
            '$' => groups.last_mut().expect("a group").push(String::new()),
            c => part.push(c),
        }
    }
    groups
}
