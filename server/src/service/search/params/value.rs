//! One value of a parameter by its type (search.html#token, #string, #date, #number,
//! #quantity, #reference, #uri, and Location `near`), and the value syntax: `,` for OR,
//! `|` within a token, `\` escapes.

use super::*;

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

pub(super) fn unescape_bar(s: &str) -> String {
    s.replace("\\|", "|")
}

pub(super) fn one_value(
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
pub(super) fn token(value: &str) -> Cond {
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
pub(super) fn reference(
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

/// The distance `near` uses when the value gives none (search.html#special leaves it to
/// the server), in km.
pub(super) const NEAR_DEFAULT_KM: f64 = 10.0;

/// Location `near=[latitude]|[longitude]|[distance]|[units]` (WGS84 degrees; units `km`
/// (the default), `m`, `[mi_i]` or `mi`).
pub(super) fn near(value: &str) -> Result<Filter, ParamError> {
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
pub(super) const KM_PER_DEGREE: f64 = 111.195;
