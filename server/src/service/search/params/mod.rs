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

mod chain;
mod composite;
mod sort;
mod value;

use chain::{chain, has};
use composite::composite;
pub use composite::composite_components;
pub use sort::sort;
use value::one_value;
pub use value::{split_bar, split_values};

/// How deep chains and `_has` may nest.
const MAX_CHAIN_DEPTH: usize = 4;

/// What parsing needs from the server.
#[derive(Debug, Clone)]
pub struct ParseContext<'a> {
    pub base_url: &'a str,
    /// The search parameters of the service (standard and custom).
    pub parameters: &'a Registry,
    /// What one search may ask for.
    pub limits: super::SearchLimits,
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
    let values = split_values(value).len();
    if values > ctx.limits.max_values {
        return Err(ServiceError::at(
            ErrorCode::SearchCost,
            name,
            format!(
                "'{name}' has {values} values; this server takes at most {} in one parameter (search.max_values).",
                ctx.limits.max_values
            ),
        ));
    }
    parse(ctx, types, name, value, 0).map_err(|e| e.at(name))
}

/// The `name=value` pairs of a query string or form body
/// (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte), refusing any that
/// is not UTF-8 once decoded: decoding it with replacement characters would search for
/// something else, and a conditional create would then make a duplicate.
///
/// # Errors
/// `HB-SEARCH-VALUE` naming the parameter.
pub fn query_pairs(query: &[u8]) -> Result<Vec<(String, String)>, ServiceError> {
    let decode = |part: &[u8]| -> Option<String> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8()
            .ok()
            .map(std::borrow::Cow::into_owned)
    };
    query
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            match (decode(name), decode(value)) {
                (Some(name), Some(value)) => Ok((name, value)),
                (name, _) => {
                    let shown = name.unwrap_or_else(|| String::from_utf8_lossy(name_bytes(pair)).into_owned());
                    Err(ServiceError::at(
                        ErrorCode::SearchValue,
                        shown.clone(),
                        format!("'{shown}' is not UTF-8 once percent-decoded; send UTF-8, percent-encoded (RFC 3986)."),
                    ))
                }
            }
        })
        .collect()
}

/// The name part of a `name=value` pair.
fn name_bytes(pair: &[u8]) -> &[u8] {
    pair.split(|b| *b == b'=').next().unwrap_or(pair)
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
pub(super) fn approximate(lo: i64, hi: i64) -> (i64, i64) {
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

#[cfg(test)]
mod tests {
    use super::composite::split_composite;
    use super::value::token;
    use super::*;

    #[test]
    fn query_pairs_are_utf8_or_refused() {
        let pairs = query_pairs(b"name=Tr%E1%BA%A7n+An&&flag&_count=5").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("name".to_owned(), "Trần An".to_owned()),
                ("flag".to_owned(), String::new()),
                ("_count".to_owned(), "5".to_owned()),
            ]
        );
        let e = query_pairs(b"identifier=x%7C%FF").unwrap_err();
        assert!(
            matches!(e, ServiceError::Refused { code: ErrorCode::SearchValue, ref path, .. } if path.as_deref() == Some("identifier"))
        );
        assert!(query_pairs(b"%FF=1").is_err());
    }
    use proptest::prelude::*;

    static PARAMETERS: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Default::default);

    fn ctx() -> ParseContext<'static> {
        ParseContext {
            base_url: "https://hb.example/fhir",
            default_offset: FixedOffset::east_opt(0).unwrap(),
            parameters: &PARAMETERS,
            limits: Default::default(),
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
