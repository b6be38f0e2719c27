//! Reading search parameters into a store query (search.html).
//!
//! - Parameter types and their value syntax: search.html#token, #string, #date, #number,
//!   #quantity, #reference, #uri; prefixes (search.html#prefix) on date, number and
//!   quantity; modifiers (search.html#modifiers) `:missing :exact :contains :text :not
//!   :of-type :identifier :[type] :below :above`.
//! - OR by `,` in one value (a `\,` is a literal comma), AND by repeating the parameter
//!   (search.html#combining).
//! - Chains to any depth (search.html#chaining) and `_has`, nested (search.html#has).
//! - A modifier the server does not support is a 400: "Servers SHALL reject any search
//!   request that contains a search parameter with an unsupported modifier". An unknown
//!   parameter is ignored and left out of the self link, unless `Prefer: handling=strict`
//!   (search.html#errors).

use crate::service::ErrorCode;
use chrono::FixedOffset;
use fhir_profiles::SearchParameter;

use crate::service::index::{date, fold, table_of, text, ucum};
use crate::service::search_parameters::{Param, Registry};
use crate::service::ServiceError;
use crate::store::{Cond, Filter, RangeTest, SortKey, SortSource, Table, UriMode, MAX_SORT_KEYS};

/// How deep chains and `_has` may nest.
const MAX_CHAIN_DEPTH: usize = 4;

/// What parsing needs from the server.
#[derive(Debug, Clone)]
pub struct ParseContext<'a> {
    pub base_url: &'a str,
    /// The search parameters of the service (standard and custom).
    pub parameters: &'a Registry,
    pub default_offset: FixedOffset,
    /// `Prefer: handling=strict`.
    pub strict: bool,
}

/// The filter of one search parameter, or `None` when it is unknown and ignored.
///
/// # Errors
/// 400 naming the parameter for a malformed value or an unsupported modifier, and (strict)
/// for an unknown parameter.
pub fn filter(
    ctx: &ParseContext<'_>,
    types: &[String],
    name: &str,
    value: &str,
) -> Result<Option<Filter>, ServiceError> {
    parse(ctx, types, name, value, 0).map_err(|e| e.at(name))
}

/// An error before it is given the parameter's name.
#[derive(Debug)]
pub enum ParamError {
    Invalid(String),
    Unknown(String),
}

impl ParamError {
    fn at(self, name: &str) -> ServiceError {
        match self {
            ParamError::Invalid(why) => ServiceError::at(ErrorCode::SearchValue, name, why),
            ParamError::Unknown(why) => ServiceError::at(ErrorCode::SearchParameter, name, why),
        }
    }
}

fn invalid<T>(why: impl Into<String>) -> Result<T, ParamError> {
    Err(ParamError::Invalid(why.into()))
}

fn parse(
    ctx: &ParseContext<'_>,
    types: &[String],
    name: &str,
    value: &str,
    depth: usize,
) -> Result<Option<Filter>, ParamError> {
    if depth > MAX_CHAIN_DEPTH {
        return invalid(format!(
            "Chains and _has nest at most {MAX_CHAIN_DEPTH} deep."
        ));
    }
    if let Some(rest) = name.strip_prefix("_has:") {
        return has(ctx, types, rest, value, depth);
    }
    if let Some((head, rest)) = name.split_once('.') {
        return chain(ctx, types, head, rest, value, depth);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (name, None),
    };
    match code {
        "_id" => return id(modifier, value).map(Some),
        "_list" => return list(modifier, value).map(Some),
        "_lastUpdated" => return last_updated(ctx, modifier, value).map(Some),
        // A search's own `_query` is taken by the search (`named`); anywhere else (a chain,
        // conditional criteria) a named query is not a criterion.
        "_query" => return invalid("A named query (_query) is a search of its own here."),
        _ => {}
    }
    let Some(sp) = definition(ctx.parameters, types, code)? else {
        return if ctx.strict {
            Err(ParamError::Unknown(format!(
                "'{code}' is not a search parameter of {} on this server.",
                types.join(", ")
            )))
        } else {
            Ok(None)
        };
    };
    if sp.kind == "composite" {
        return composite(ctx, types, &sp, modifier, value).map(Some);
    }
    if modifier == Some("missing") {
        let table = table_of(&sp).ok_or_else(|| {
            ParamError::Invalid(format!("'{code}' cannot be searched with :missing."))
        })?;
        let any = Filter::Index {
            table,
            param: code.to_owned(),
            cond: Cond::Any,
        };
        return match value {
            "true" => Ok(Some(Filter::Not(Box::new(any)))),
            "false" => Ok(Some(any)),
            _ => invalid(":missing takes true or false."),
        };
    }
    let values = split_values(value);
    if values.iter().any(String::is_empty) {
        return invalid("A search value is empty.");
    }
    let single = |v: &str| -> Result<Filter, ParamError> { one_value(ctx, &sp, code, modifier, v) };
    let filters = values
        .iter()
        .map(|v| single(v))
        .collect::<Result<Vec<_>, _>>()?;
    let any = if filters.len() == 1 {
        filters.into_iter().next().expect("one filter")
    } else {
        Filter::Or(filters)
    };
    // search.html#modifiers: :not matches resources without a matching token, including
    // those with no value at all.
    Ok(Some(if matches!(modifier, Some("not" | "not-in")) {
        Filter::Not(Box::new(any))
    } else {
        any
    }))
}

/// The definition of `code` on every type in `types` (the same on each).
fn definition(
    parameters: &Registry,
    types: &[String],
    code: &str,
) -> Result<Option<Param>, ParamError> {
    let mut found: Option<Param> = None;
    for t in types {
        // Only what the server searches (`supported_parameters`): `_query` and the
        // composites it cannot evaluate are unknown parameters to the client.
        let Some(sp) = super::supported_parameter(parameters, t, code) else {
            return Ok(None);
        };
        match found {
            Some(ref prev) if prev.kind != sp.kind => {
                return invalid(format!(
                    "'{code}' has different types on {}; search one type at a time.",
                    types.join(", ")
                ))
            }
            _ => found = Some(sp),
        }
    }
    Ok(found)
}

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
fn composite(
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
fn split_composite(value: &str) -> Vec<Vec<String>> {
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

/// The distance `near` uses when the value gives none (search.html#special leaves it to
/// the server), in km.
const NEAR_DEFAULT_KM: f64 = 10.0;

/// Location `near=[latitude]|[longitude]|[distance]|[units]` (WGS84 degrees; units `km`
/// (the default), `m`, `[mi_i]` or `mi`).
fn near(value: &str) -> Result<Filter, ParamError> {
    let parts: Vec<&str> = value.split('|').collect();
    let number = |i: usize, what: &str| -> Result<Option<f64>, ParamError> {
        match parts.get(i).map(|p| p.trim()).filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(p) => p
                .parse::<f64>()
                .map(Some)
                .map_err(|_| ParamError::Invalid(format!("near: '{p}' is not a {what}."))),
        }
    };
    let (Some(lat), Some(lon)) = (number(0, "latitude")?, number(1, "longitude")?) else {
        return invalid(
            "near takes [latitude]|[longitude]|[distance]|[units], e.g. 21.0285|105.8542|5|km.",
        );
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return invalid("near: the latitude is within ±90 and the longitude within ±180 degrees.");
    }
    let distance = number(2, "distance")?.unwrap_or(NEAR_DEFAULT_KM);
    let km = match parts.get(3).map(|u| u.trim()).unwrap_or("") {
        "" | "km" => distance,
        "m" => distance / 1000.0,
        "[mi_i]" | "mi" => distance * 1.609_344,
        other => {
            return invalid(format!(
                "near: '{other}' is not a unit of distance this server knows (km, m, [mi_i])."
            ))
        }
    };
    if km < 0.0 || !km.is_finite() {
        return invalid("near: the distance is a number, 0 or more.");
    }
    // The equirectangular approximation (well under 1% off at the distances of a
    // country): a degree of longitude shrinks with the cosine of the latitude.
    let x = KM_PER_DEGREE * lat.to_radians().cos().max(0.01);
    let (dlat, dlon) = (km / KM_PER_DEGREE, km / x);
    Ok(Filter::Near {
        latitude: (lat - dlat, lat + dlat),
        longitude: (lon - dlon, lon + dlon),
        center: (lat, lon),
        scale: (KM_PER_DEGREE, x),
        limit: km,
    })
}

/// Kilometres per degree of latitude (mean Earth radius 6,371 km).
const KM_PER_DEGREE: f64 = 111.195;

/// Splits a value on commas not escaped with `\` and unescapes `\,` `\|` `\$` `\\`.
pub fn split_values(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next @ (',' | '$' | '\\')) => out.last_mut().expect("one").push(next),
                Some(next) => {
                    let last = out.last_mut().expect("one");
                    last.push('\\');
                    last.push(next);
                }
                None => out.last_mut().expect("one").push('\\'),
            },
            ',' => out.push(String::new()),
            c => out.last_mut().expect("one").push(c),
        }
    }
    out
}

/// Splits `system|code` on the first `|` not escaped with `\`.
pub fn split_bar(value: &str) -> (Option<String>, String) {
    let mut prev_backslash = false;
    for (i, c) in value.char_indices() {
        if c == '|' && !prev_backslash {
            return (
                Some(unescape_bar(&value[..i])),
                unescape_bar(&value[i + 1..]),
            );
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    (None, unescape_bar(value))
}

fn unescape_bar(s: &str) -> String {
    s.replace("\\|", "|")
}

fn one_value(
    ctx: &ParseContext<'_>,
    sp: &SearchParameter,
    code: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, ParamError> {
    let index = |table: Table, param: String, cond: Cond| Filter::Index { table, param, cond };
    let unsupported = |m: &str| -> Result<Filter, ParamError> {
        invalid(format!(
            "The modifier :{m} is not supported on '{code}' (a {} parameter).",
            sp.kind
        ))
    };
    match sp.kind.as_str() {
        "token" => match modifier {
            None | Some("not") => Ok(index(Table::Token, code.to_owned(), token(value))),
            Some("text") => Ok(index(
                Table::String,
                format!("{code}:text"),
                Cond::StringStarts(fold::fold(value)),
            )),
            // search.html#token `:above` / `:below`: the code and what it subsumes (or is
            // subsumed by) in a code system of R4 with an is-a hierarchy.
            Some(m @ ("above" | "below")) => {
                let (system, wanted) = split_bar(value);
                let systems: Vec<&str> = match &system {
                    Some(system) => vec![system.as_str()],
                    None => fhir_profiles::hierarchies_with(&wanted),
                };
                let mut pairs = Vec::new();
                for system in systems {
                    let codes = if m == "below" {
                        fhir_profiles::subsumed_by(system, &wanted)
                    } else {
                        fhir_profiles::subsuming(system, &wanted)
                    };
                    pairs.extend(codes.into_iter().map(|c| (system.to_owned(), c)));
                }
                if pairs.is_empty() {
                    return invalid(format!(
                        "The subsumption of '{value}' is not known: :{m} works on the code \
                         systems of R4 with a hierarchy (docs/SEARCH.md)."
                    ));
                }
                Ok(index(Table::Token, code.to_owned(), Cond::TokenIn(pairs)))
            }
            // search.html#token `:in` / `:not-in`: a code of the value set (an R4 value
            // set expanded from the official CodeSystems); `:not-in` negates it below.
            Some("in" | "not-in") => {
                let url = value.split('|').next().unwrap_or(value);
                let codes = fhir_profiles::value_set(url).ok_or_else(|| {
                    ParamError::Invalid(format!(
                        "The value set '{url}' is not known to this server (the R4 value sets \
                         it can expand)."
                    ))
                })?;
                Ok(index(
                    Table::Token,
                    code.to_owned(),
                    Cond::TokenIn(codes.to_vec()),
                ))
            }
            Some("of-type") => {
                let parts: Vec<&str> = value.splitn(3, '|').collect();
                match parts.as_slice() {
                    [system, type_code, v] if !type_code.is_empty() && !v.is_empty() => Ok(index(
                        Table::Token,
                        format!("{code}:of-type"),
                        Cond::Token {
                            system: Some((*system).to_owned()),
                            code: Some(format!("{type_code}|{v}")),
                        },
                    )),
                    _ => invalid(":of-type takes [system]|[type code]|[value]."),
                }
            }
            Some(m) => unsupported(m),
        },
        "string" if matches!(code, "_text" | "_content") => {
            // search.html#content: every word of the value starts a word of the text
            // (`:contains`: is inside one). The row is ` word word ... ` (`text.rs`).
            let words = text::words(value);
            if words.is_empty() {
                return invalid(format!("'{value}' has no word to search {code} for."));
            }
            let cond = |word: String| match modifier {
                None => Ok(Cond::StringContains(format!(" {word}"))),
                Some("contains") => Ok(Cond::StringContains(word)),
                Some(m) => Err(m.to_owned()),
            };
            let mut all = Vec::new();
            for word in words {
                match cond(word) {
                    Ok(c) => all.push(index(Table::String, code.to_owned(), c)),
                    Err(m) => return unsupported(&m),
                }
            }
            Ok(Filter::And(all))
        }
        "special" if code == "near" => {
            if let Some(m) = modifier {
                return unsupported(m);
            }
            near(value)
        }
        "string" => {
            let cond = match modifier {
                None => Cond::StringStarts(fold::fold(value)),
                Some("exact") => Cond::StringExact {
                    norm: fold::fold(value),
                    exact: value.to_owned(),
                },
                Some("contains") => Cond::StringContains(fold::fold(value)),
                Some(m) => return unsupported(m),
            };
            Ok(index(Table::String, code.to_owned(), cond))
        }
        "date" => {
            if let Some(m) = modifier {
                return unsupported(m);
            }
            let (prefix, rest) = prefix(value);
            let range = date::range(rest, ctx.default_offset).ok_or_else(|| {
                ParamError::Invalid(format!(
                    "'{rest}' is not a date: use YYYY, YYYY-MM, YYYY-MM-DD or a dateTime such \
                     as 2021-07-01T08:30:00+07:00, after an optional prefix (eq, ne, gt, lt, \
                     ge, le, sa, eb, ap)."
                ))
            })?;
            let (lo, hi) = if prefix == Prefix::Ap {
                approximate(range.lo, range.hi)
            } else {
                (range.lo, range.hi)
            };
            Ok(index(
                Table::Date,
                code.to_owned(),
                Cond::DateRange(prefix.test(lo, hi, false)),
            ))
        }
        "number" => {
            if let Some(m) = modifier {
                return unsupported(m);
            }
            let (prefix, rest) = prefix(value);
            let (lo, hi) = number_range(prefix, rest)?;
            Ok(index(
                Table::Number,
                code.to_owned(),
                Cond::Value {
                    test: prefix.test(lo, hi, true),
                    system: None,
                    code: None,
                },
            ))
        }
        "quantity" => {
            if let Some(m) = modifier {
                return unsupported(m);
            }
            let (prefix, rest) = prefix(value);
            let mut parts = rest.splitn(3, '|');
            let number = parts.next().unwrap_or_default();
            let system = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
            let unit = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
            let (mut lo, mut hi) = number_range(prefix, number)?;
            let (mut system, mut unit) = (system, unit);
            // search.html#quantity: compare in canonical units where the unit is known.
            if let Some(u) = unit.as_deref() {
                if system.as_deref().is_none_or(|s| s == ucum::SYSTEM) {
                    if let (Some((clo, base)), Some((chi, _))) =
                        (ucum::canonical(lo, u), ucum::canonical(hi, u))
                    {
                        lo = clo;
                        hi = chi;
                        unit = Some(base.to_owned());
                        system = Some(ucum::SYSTEM.to_owned());
                    }
                }
            }
            Ok(index(
                Table::Quantity,
                code.to_owned(),
                Cond::Value {
                    test: prefix.test(lo, hi, true),
                    system,
                    code: unit,
                },
            ))
        }
        "reference" => match modifier {
            Some("identifier") => Ok(index(
                Table::Token,
                format!("{code}:identifier"),
                token(value),
            )),
            Some(m) if m.starts_with(|c: char| c.is_ascii_uppercase()) => {
                if !sp.target.iter().any(|t| t == m) {
                    return invalid(format!("'{code}' cannot refer to a {m}."));
                }
                Ok(index(
                    Table::Reference,
                    code.to_owned(),
                    reference(ctx, Some(m), value)?,
                ))
            }
            Some(m) => unsupported(m),
            None => Ok(index(
                Table::Reference,
                code.to_owned(),
                reference(ctx, None, value)?,
            )),
        },
        "uri" => {
            let mode = match modifier {
                None => UriMode::Equal,
                Some("below") => UriMode::Below,
                Some("above") => UriMode::Above,
                Some(m) => return unsupported(m),
            };
            Ok(index(
                Table::Uri,
                code.to_owned(),
                Cond::Uri {
                    value: value.to_owned(),
                    mode,
                },
            ))
        }
        other => invalid(format!(
            "'{code}' is a {other} parameter, which this server does not search yet."
        )),
    }
}

/// `[system]|[code]`, `|code` (no system), `system|` (any code), `code` (any system).
fn token(value: &str) -> Cond {
    match split_bar(value) {
        (None, code) => Cond::Token {
            system: None,
            code: Some(code),
        },
        (Some(system), code) => Cond::Token {
            system: Some(system),
            code: (!code.is_empty()).then_some(code),
        },
    }
}

/// A reference value: `Type/id`, `id` (with an optional `:Type`), or an absolute URL
/// (local when under the base URL).
fn reference(
    ctx: &ParseContext<'_>,
    type_modifier: Option<&str>,
    value: &str,
) -> Result<Cond, ParamError> {
    let base = ctx.base_url.trim_end_matches('/');
    let local = value
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
        .or_else(|| (!value.contains("://")).then_some(value));
    let Some(local) = local else {
        return Ok(Cond::Url(value.to_owned()));
    };
    let local = local.split("/_history/").next().unwrap_or(local);
    let (res_type, id) = match local.split_once('/') {
        Some((t, id)) => (Some(t), id),
        None => (None, local),
    };
    if id.is_empty() || id.contains('/') {
        return invalid(format!(
            "'{value}' is not a reference: use [type]/[id], [id] or a URL."
        ));
    }
    if let (Some(t), Some(m)) = (res_type, type_modifier) {
        if t != m {
            return invalid(format!("'{value}' is not a {m}."));
        }
    }
    let types = res_type
        .or(type_modifier)
        .map(|t| vec![t.to_owned()])
        .unwrap_or_default();
    Ok(Cond::Target {
        types,
        id: id.to_owned(),
    })
}

/// The prefix of a date, number or quantity value (search.html#prefix), `eq` by default.
/// A search prefix (search.html#prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    /// What the prefix asks of a stored range, given the searched range `[lo, hi]`
    /// (search.html#prefix). A number stands for the half-open range of its precision
    /// (`100` is `[99.5, 100.5)`, search.html#number), so its `eq` and `ne` are
    /// half-open.
    pub fn test<T>(self, lo: T, hi: T, half_open: bool) -> RangeTest<T> {
        use RangeTest as R;
        match self {
            Prefix::Eq if half_open => R::WithinHalfOpen(lo, hi),
            Prefix::Ne if half_open => R::OutsideHalfOpen(lo, hi),
            Prefix::Eq => R::Within(lo, hi),
            Prefix::Ne => R::Outside(lo, hi),
            // `ap` is taken as overlapping the widened range (`approximate`).
            Prefix::Ap => R::Overlaps(lo, hi),
            Prefix::Gt => R::EndsAfter(hi),
            Prefix::Lt => R::StartsBefore(lo),
            Prefix::Ge => R::EndsAtOrAfter(lo),
            Prefix::Le => R::StartsAtOrBefore(hi),
            Prefix::Sa => R::StartsAfter(hi),
            Prefix::Eb => R::EndsBefore(lo),
        }
    }
}

fn prefix(value: &str) -> (Prefix, &str) {
    let p = match value.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, value),
    };
    (p, &value[2..])
}

/// The range a number stands for, given its precision (search.html#number: `100` means
/// [99.5, 100.5)); `gt lt ge le sa eb` compare with the value itself.
pub fn number_range(prefix: Prefix, text: &str) -> Result<(f64, f64), ParamError> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    let value: f64 = match text.parse::<f64>() {
        Ok(v) if valid && v.is_finite() => v,
        _ => return invalid(format!("'{text}' is not a number.")),
    };
    match prefix {
        Prefix::Eq | Prefix::Ne => {
            let (mantissa, exponent) = match text.split_once(['e', 'E']) {
                Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
                None => (text, 0),
            };
            let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
            let half = 0.5 * 10f64.powi(exponent - decimals);
            Ok((value - half, value + half))
        }
        Prefix::Ap => {
            let margin = (value * 0.1).abs();
            Ok((value - margin, value + margin))
        }
        _ => Ok((value, value)),
    }
}

/// `ap` on dates: the range widened by 10% of its distance from now (search.html#prefix
/// leaves the amount to the server), at least a day.
fn approximate(lo: i64, hi: i64) -> (i64, i64) {
    let now = crate::service::stored::now_ms();
    let gap = (now - lo).abs().max((now - hi).abs());
    let margin = (gap / 10).max(86_400_000);
    (lo.saturating_sub(margin), hi.saturating_add(margin))
}

fn id(modifier: Option<&str>, value: &str) -> Result<Filter, ParamError> {
    let ids = split_values(value);
    if ids.iter().any(String::is_empty) {
        return invalid("A search value is empty.");
    }
    match modifier {
        None => Ok(Filter::Id(ids)),
        Some("not") => Ok(Filter::Not(Box::new(Filter::Id(ids)))),
        Some(m) => invalid(format!("The modifier :{m} is not supported on '_id'.")),
    }
}

fn last_updated(
    ctx: &ParseContext<'_>,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, ParamError> {
    if let Some(m) = modifier {
        return invalid(format!(
            "The modifier :{m} is not supported on '_lastUpdated'."
        ));
    }
    let filters = split_values(value)
        .iter()
        .map(|v| {
            let (prefix, rest) = prefix(v);
            let range = date::range(rest, ctx.default_offset).ok_or_else(|| {
                ParamError::Invalid(format!("'{rest}' is not a date or instant."))
            })?;
            let (lo, hi) = if prefix == Prefix::Ap {
                approximate(range.lo, range.hi)
            } else {
                (range.lo, range.hi)
            };
            Ok(Filter::LastUpdated(prefix.test(lo, hi, false)))
        })
        .collect::<Result<Vec<_>, ParamError>>()?;
    Ok(if filters.len() == 1 {
        filters.into_iter().next().expect("one")
    } else {
        Filter::Or(filters)
    })
}

/// `ref[:Type].rest=value`: resources whose reference `ref` points at a resource that
/// matches `rest=value`.
fn chain(
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

/// `_list=[id]` (search.html#list): the resources the List `[id]` has as `entry.item`;
/// several lists (`_list=a,b`): those of any. Functional lists (`$current-problems`...)
/// are not defined on this server.
fn list(modifier: Option<&str>, value: &str) -> Result<Filter, ParamError> {
    if let Some(m) = modifier {
        return invalid(format!("The modifier :{m} does not apply to _list."));
    }
    let ids = split_values(value);
    if let Some(functional) = ids.iter().find(|id| id.starts_with('$')) {
        return invalid(format!(
            "The functional list '{functional}' is not defined on this server; give a List id."
        ));
    }
    if !ids.iter().all(|id| crate::service::stored::is_valid_id(id)) {
        return invalid(format!(
            "'{value}' is not a List id (or a comma-separated list of them)."
        ));
    }
    Ok(Filter::Has {
        source_type: "List".to_owned(),
        param: "item".to_owned(),
        filter: Box::new(Filter::Id(ids)),
    })
}

/// `_has:Type:ref:rest=value`: resources that a `Type` resource refers to through its
/// reference parameter `ref`, where that resource matches `rest=value`.
fn has(
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

/// `_sort=a,-b` (search.html#sort).
///
/// # Errors
/// 400 for an unknown or unsortable parameter, or too many keys.
pub fn sort(
    parameters: &Registry,
    types: &[String],
    value: &str,
) -> Result<Vec<SortKey>, ServiceError> {
    let mut keys = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (descending, code) = match part.strip_prefix('-') {
            Some(code) => (true, code),
            None => (false, part),
        };
        let source = match code {
            "_id" => SortSource::Id,
            "_lastUpdated" => SortSource::LastUpdated,
            _ => {
                let sp = definition(parameters, types, code)
                    .map_err(|e| e.at("_sort"))?
                    .ok_or_else(|| {
                        ServiceError::at(
                            ErrorCode::SearchParameter,
                            "_sort",
                            format!("'{code}' is not a search parameter here."),
                        )
                    })?;
                let table = table_of(&sp).ok_or_else(|| {
                    ServiceError::at(
                        ErrorCode::SearchParameter,
                        "_sort",
                        format!("'{code}' cannot be sorted by."),
                    )
                })?;
                SortSource::Index {
                    table,
                    param: code.to_owned(),
                }
            }
        };
        keys.push(SortKey { source, descending });
    }
    if keys.len() > MAX_SORT_KEYS {
        return Err(ServiceError::at(
            ErrorCode::SearchCombination,
            "_sort",
            format!("Sort by at most {MAX_SORT_KEYS} parameters."),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static PARAMETERS: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Default::default);

    fn ctx() -> ParseContext<'static> {
        ParseContext {
            base_url: "https://hb.example/fhir",
            default_offset: FixedOffset::east_opt(0).unwrap(),
            parameters: &PARAMETERS,
            strict: false,
        }
    }

    fn types(t: &str) -> Vec<String> {
        vec![t.to_owned()]
    }

    #[test]
    fn splits_escaped_commas_and_bars() {
        assert_eq!(split_values(r"a,b\,c"), vec!["a", "b,c"]);
        assert_eq!(split_bar(r"s\|x|c"), (Some("s|x".into()), "c".into()));
        assert_eq!(split_bar("c"), (None, "c".into()));
    }

    #[test]
    fn token_forms() {
        assert_eq!(
            token("s|c"),
            Cond::Token {
                system: Some("s".into()),
                code: Some("c".into())
            }
        );
        assert_eq!(
            token("|c"),
            Cond::Token {
                system: Some(String::new()),
                code: Some("c".into())
            }
        );
        assert_eq!(
            token("s|"),
            Cond::Token {
                system: Some("s".into()),
                code: None
            }
        );
        assert_eq!(
            token("c"),
            Cond::Token {
                system: None,
                code: Some("c".into())
            }
        );
    }

    #[test]
    fn number_precision() {
        assert_eq!(number_range(Prefix::Eq, "100").unwrap(), (99.5, 100.5));
        let (lo, hi) = number_range(Prefix::Eq, "100.00").unwrap();
        assert!((lo - 99.995).abs() < 1e-9 && (hi - 100.005).abs() < 1e-9);
        assert_eq!(number_range(Prefix::Gt, "5").unwrap(), (5.0, 5.0));
        assert!(number_range(Prefix::Eq, "abc").is_err());
        assert!(number_range(Prefix::Eq, "inf").is_err());
    }

    #[test]
    fn modifiers_that_do_not_apply_are_errors() {
        for (name, value) in [
            ("birthdate:exact", "2020"),
            ("gender:contains", "m"),
            ("family:below", "x"),
            ("gender:in", "http://vs"),
            ("birthdate", "2020-13"),
            ("birthdate", "notadate"),
            ("general-practitioner:Observation", "1"),
            ("family:missing", "maybe"),
        ] {
            assert!(
                filter(&ctx(), &types("Patient"), name, value).is_err(),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn unknown_parameters_are_ignored_unless_strict() {
        assert_eq!(
            filter(&ctx(), &types("Patient"), "colour", "red").unwrap(),
            None
        );
        let strict = ParseContext {
            strict: true,
            ..ctx()
        };
        assert!(filter(&strict, &types("Patient"), "colour", "red").is_err());
    }

    #[test]
    fn chains_and_has_nest() {
        let f = filter(&ctx(), &types("Immunization"), "patient.identifier", "s|1")
            .unwrap()
            .unwrap();
        assert!(
            matches!(f, Filter::Chain { ref target_types, .. } if target_types == &types("Patient"))
        );
        let f = filter(&ctx(), &types("Observation"), "subject:Patient.name", "an")
            .unwrap()
            .unwrap();
        assert!(matches!(f, Filter::Chain { .. }));
        let f = filter(
            &ctx(),
            &types("Patient"),
            "_has:Observation:patient:code",
            "1234-5",
        )
        .unwrap()
        .unwrap();
        assert!(matches!(f, Filter::Has { ref source_type, .. } if source_type == "Observation"));
        assert!(filter(&ctx(), &types("Patient"), "_has:Observation:code:code", "x").is_err());
        assert!(filter(&ctx(), &types("Patient"), "gender.name", "x").is_err());
    }

    #[test]
    fn composite_values_split_on_unescaped_commas_and_dollars() {
        assert_eq!(
            split_composite(r"a|1$gt5,b\$c$x\,y"),
            vec![
                vec!["a|1".to_owned(), "gt5".to_owned()],
                vec!["b$c".to_owned(), "x,y".to_owned()]
            ]
        );
        let sp =
            fhir_profiles::standard_search_parameter("Observation", "code-value-quantity").unwrap();
        let parts = composite_components("Observation", sp).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
            ["code", "value-quantity"]
        );
        let repeating = fhir_profiles::standard_search_parameter(
            "Observation",
            "component-code-value-quantity",
        )
        .unwrap();
        assert!(composite_components("Observation", repeating).is_none());
        assert!(filter(
            &ctx(),
            &types("Observation"),
            "code-value-quantity",
            "a|1$lt5"
        )
        .is_ok());
        assert!(filter(&ctx(), &types("Observation"), "code-value-quantity", "a|1").is_err());
        assert!(filter(
            &ctx(),
            &types("Observation"),
            "code-value-quantity:missing",
            "true"
        )
        .is_err());
    }

    #[test]
    fn sort_keys() {
        let keys = sort(&PARAMETERS, &types("Patient"), "family,-birthdate").unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[1].descending);
        assert!(sort(&PARAMETERS, &types("Patient"), "nope").is_err());
        assert!(sort(&PARAMETERS, &types("Patient"), "a,b,c,d").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(name in "[a-z_:.\\-A-Z]{0,30}", value in "\\PC{0,30}") {
            let _ = filter(&ctx(), &types("Observation"), &name, &value);
        }

        #[test]
        fn split_values_round_trips(parts in proptest::collection::vec("[a-z,\\\\]{1,5}", 1..4)) {
            let escaped: Vec<String> = parts.iter().map(|p| p.replace('\\', "\\\\").replace(',', "\\,")).collect();
            prop_assert_eq!(split_values(&escaped.join(",")), parts);
        }
    }
}
