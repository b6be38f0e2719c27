//! The plan of a search: its parameters read into types, filters, sort, paging, includes
//! and shape (search.html#errors: what was applied goes into the self link).

use super::contained::{contain, ContainedSearch};
use super::cursor::decode_cursor;
use super::include::{parse_include, Include};
use super::*;

/// A parsed search.
pub(super) struct Plan {
    pub(super) types: Vec<String>,
    /// A system search without `_type`.
    pub(super) every_type: bool,
    pub(super) path: String,
    pub(super) filters: Vec<Filter>,
    pub(super) sort: Vec<SortKey>,
    pub(super) count: i64,
    pub(super) total: Total,
    pub(super) summary_count: bool,
    pub(super) shape: Shape,
    pub(super) includes: Vec<Include>,
    pub(super) revincludes: Vec<Include>,
    pub(super) position: Option<Position>,
    /// What the self link shows.
    pub(super) applied: Vec<(String, String)>,
    /// `$everything`: the page's references to resources outside any Patient compartment
    /// (Practitioner, Organization, Location, Medication...) are included.
    pub(super) everything: bool,
    /// `_contained=true|both`.
    pub(super) contained: Option<ContainedSearch>,
}

impl Service {
    pub(super) fn plan(&self, request: &SearchRequest) -> Result<Plan, ServiceError> {
        let mut every_type = false;
        let (mut types, path, compartment) = match &request.scope {
            SearchScope::Type(t) => {
                ensure_type(t)?;
                (vec![t.clone()], t.clone(), None)
            }
            SearchScope::PatientCompartment { patient, res_type } => {
                ensure_id(patient)?;
                ensure_type(res_type)?;
                if fhir_profiles::patient_compartment_params(res_type).is_none()
                    && res_type != "Patient"
                {
                    return Err(ServiceError::not_found(format!(
                        "{res_type} is not in the Patient compartment."
                    )));
                }
                (
                    vec![res_type.clone()],
                    format!("Patient/{patient}/{res_type}"),
                    Some(access::compartment_filter(res_type, patient)),
                )
            }
            SearchScope::System => (Vec::new(), String::new(), None),
            SearchScope::Everything { patient } => {
                let types = everything_types(&request.params)?;
                let path = match patient {
                    Some(p) => {
                        ensure_id(p)?;
                        format!("Patient/{p}/$everything")
                    }
                    None => "Patient/$everything".to_owned(),
                };
                let compartment = patient.as_ref().map(|p| access::compartment_of(&types, p));
                every_type = true;
                (types, path, compartment)
            }
        };
        let everything = matches!(request.scope, SearchScope::Everything { .. });
        if matches!(request.scope, SearchScope::System) {
            for (name, value) in &request.params {
                if name == "_type" {
                    for t in value.split(',').map(str::trim) {
                        if !fhir_format::is_resource_type(t) {
                            return Err(ServiceError::at(
                                ErrorCode::SearchParameter,
                                "_type",
                                format!("'{t}' is not a FHIR R4 resource type."),
                            ));
                        }
                        if !types.iter().any(|x| x == t) {
                            types.push(t.to_owned());
                        }
                    }
                }
            }
            if types.is_empty() {
                every_type = true;
                types = fhir_format::resource_types()
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect();
            }
        }
        let ctx = ParseContext {
            strict: request.strict,
            ..self.parse_context()
        };
        ctx.limits.check_parameters(request.params.len())?;
        let mut plan = Plan {
            types: types.clone(),
            every_type,
            path,
            filters: compartment.into_iter().collect(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            total: Total::Default,
            summary_count: false,
            shape: Shape::Full,
            includes: Vec::new(),
            revincludes: Vec::new(),
            position: None,
            applied: Vec::new(),
            everything,
            contained: None,
        };
        // `_contained` (true or both) and `_containedType` (alone).
        let mut contained: Option<bool> = None;
        let mut alone = false;
        let mut cursor = None;
        let mut shape_params = Vec::new();
        for (name, value) in &request.params {
            let keep = |plan: &mut Plan| plan.applied.push((name.clone(), value.clone()));
            if everything {
                // The parameters of patient-operation-everything.html; `start` and `end`
                // (care dates) are not supported, so they are unknown parameters.
                match name.as_str() {
                    "_format" | "_pretty" | "_count" | "_cursor" | "_summary" | "_elements" => {}
                    "_type" => {
                        keep(&mut plan);
                        continue;
                    }
                    "_since" => {
                        let since =
                            params::filter(&ctx, &types, "_lastUpdated", &format!("ge{value}"))
                                .ok()
                                .flatten()
                                .filter(|_| value.len() > 10 && value.contains('T'))
                                .ok_or_else(|| {
                                    ServiceError::at(
                                        ErrorCode::SearchValue,
                                        "_since",
                                        "_since is an instant such as 2021-07-01T00:00:00+07:00.",
                                    )
                                })?;
                        plan.filters.push(since);
                        keep(&mut plan);
                        continue;
                    }
                    // As in system and compartment searches, refused whatever the
                    // handling: ignoring it would answer something else than was asked.
                    "_contained" | "_containedType" => {
                        return Err(ServiceError::at(
                            ErrorCode::SearchCombination,
                            name.clone(),
                            "_contained is supported in a search of one type ([base]/[type]?...), not in $everything.",
                        ))
                    }
                    _ if request.strict => {
                        return Err(ServiceError::at(
                            ErrorCode::SearchParameter,
                            name.clone(),
                            format!("'{name}' is not a parameter of Patient/$everything."),
                        ))
                    }
                    _ => continue,
                }
            }
            match name.as_str() {
                "_format" | "_pretty" => {}
                "_type" if matches!(request.scope, SearchScope::System) => keep(&mut plan),
                "_count" => plan.count = parse_count(value, MAX_COUNT)?,
                "_sort" => {
                    plan.sort = params::sort(ctx.parameters, &types, value)?;
                    keep(&mut plan);
                }
                "_total" => {
                    plan.total = match value.as_str() {
                        "none" => Total::None,
                        "estimate" => Total::Estimate,
                        "accurate" => Total::Accurate,
                        _ => {
                            return Err(ServiceError::at(
                                ErrorCode::SearchValue,
                                "_total",
                                "_total takes none, estimate or accurate.",
                            ))
                        }
                    };
                    keep(&mut plan);
                }
                "_summary" if value == "count" => {
                    plan.summary_count = true;
                    keep(&mut plan);
                }
                "_summary" | "_elements" => {
                    shape_params.push((name.as_str(), value.as_str()));
                    keep(&mut plan);
                }
                "_contained" => {
                    contained = match value.as_str() {
                        "false" => None,
                        "true" => Some(false),
                        "both" => Some(true),
                        _ => {
                            return Err(ServiceError::at(
                                ErrorCode::SearchValue,
                                "_contained",
                                "_contained takes false, true or both.",
                            ))
                        }
                    };
                    keep(&mut plan);
                }
                "_containedType" => {
                    alone = match value.as_str() {
                        "container" => false,
                        "contained" => true,
                        _ => {
                            return Err(ServiceError::at(
                                ErrorCode::SearchValue,
                                "_containedType",
                                "_containedType takes container or contained.",
                            ))
                        }
                    };
                    keep(&mut plan);
                }
                "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
                    let reverse = name.starts_with("_revinclude");
                    let include =
                        parse_include(ctx.parameters, name, value, name.ends_with(":iterate"))?;
                    if !reverse && !include.iterate && !types.contains(&include.source_type) {
                        return Err(ServiceError::at(
                            ErrorCode::SearchParameter,
                            name.clone(),
                            format!("{} is not a type searched here.", include.source_type),
                        ));
                    }
                    if reverse {
                        plan.revincludes.push(include);
                    } else {
                        plan.includes.push(include);
                    }
                    let includes = plan.includes.len() + plan.revincludes.len();
                    if includes > ctx.limits.max_includes {
                        return Err(ServiceError::at(
                            ErrorCode::SearchCost,
                            name.clone(),
                            format!(
                                "The search has more than {} _include and _revinclude; this server takes at most that many (search.max_includes).",
                                ctx.limits.max_includes
                            ),
                        ));
                    }
                    keep(&mut plan);
                }
                "_query" => {
                    plan.filters.extend(named::criteria(&ctx, &types, value)?);
                    keep(&mut plan);
                }
                "_cursor" => cursor = Some(value.clone()),
                _ => {
                    if let Some(f) = params::filter(&ctx, &types, name, value)? {
                        plan.filters.push(f);
                        keep(&mut plan);
                    }
                }
            }
        }
        plan.applied
            .push(("_count".to_owned(), plan.count.to_string()));
        plan.shape = Shape::from_params(shape_params)?;
        if let Some(both) = contained {
            contain(&mut plan, &request.scope, both, alone)?;
        }
        if let Some(cursor) = cursor {
            plan.position = Some(decode_cursor(&cursor, &plan.sort)?);
        }
        Ok(plan)
    }
}

/// The types `$everything` returns: the Patient and every type of its compartment
/// (compartmentdefinition-patient.html), narrowed by `_type`. AuditEvents (the record of
/// who looked) come only when `_type` names them.
pub(super) fn everything_types(params: &[(String, String)]) -> Result<Vec<String>, ServiceError> {
    let in_compartment = |t: &str| {
        t == "Patient"
            || fhir_profiles::patient_compartment_params(t).is_some_and(|p| !p.is_empty())
    };
    let mut wanted: Vec<String> = Vec::new();
    for (name, value) in params.iter().filter(|(n, _)| n == "_type") {
        for t in value.split(',').map(str::trim) {
            if !fhir_format::is_resource_type(t) {
                return Err(ServiceError::at(
                    ErrorCode::SearchParameter,
                    name.clone(),
                    format!("'{t}' is not a FHIR R4 resource type."),
                ));
            }
            if !in_compartment(t) {
                return Err(ServiceError::at(
                    ErrorCode::SearchParameter,
                    name.clone(),
                    format!(
                        "{t} is not in the Patient compartment; $everything does not return it."
                    ),
                ));
            }
            if !wanted.iter().any(|w| w == t) {
                wanted.push(t.to_owned());
            }
        }
    }
    if wanted.is_empty() {
        wanted = fhir_format::resource_types()
            .iter()
            .filter(|t| **t != "AuditEvent" && in_compartment(t))
            .map(|t| (*t).to_owned())
            .collect();
    }
    Ok(wanted)
}

/// The per-type narrowing of a restricted token as one filter. When every type is
/// narrowed to the same compartment (a `patient/` token), one compartment filter over all
/// the types: a single index lookup instead of one per type.
pub(super) fn merged(narrowed: Vec<Filter>) -> Filter {
    fn compartment(f: &Filter) -> Option<&Filter> {
        match f {
            Filter::And(parts) | Filter::Or(parts) if parts.len() == 1 => compartment(&parts[0]),
            Filter::Compartment { .. } => Some(f),
            _ => None,
        }
    }
    let mut target: Option<(String, Vec<String>)> = None;
    let mut members = Vec::new();
    let mut itself = false;
    for f in &narrowed {
        let Filter::And(parts) = f else {
            return Filter::Or(narrowed);
        };
        let Some(Filter::Compartment {
            target_type,
            target_ids,
            members: m,
            itself: i,
        }) = parts.get(1).and_then(compartment)
        else {
            return Filter::Or(narrowed);
        };
        let this = (target_type.clone(), target_ids.clone());
        if parts.len() != 2 || target.as_ref().is_some_and(|t| *t != this) {
            return Filter::Or(narrowed);
        }
        target = Some(this);
        members.extend(m.iter().cloned());
        itself |= *i;
    }
    match target {
        Some((target_type, target_ids)) => Filter::Compartment {
            target_type,
            target_ids,
            members,
            itself,
        },
        None => Filter::Or(narrowed),
    }
}
