//! Search criteria of conditional interactions: http.html#ccreate (`If-None-Exist`),
//! http.html#cond-update and http.html#cdelete.
//!
//! The foundation supports `identifier` (search.html#token: `[system]|[code]`, `|[code]`,
//! `[code]`, OR by comma) and `_id`, ANDed by repetition. Any other parameter is a 400:
//! silently ignoring a criterion in a conditional write could match, update or delete the
//! wrong resource.

use std::collections::BTreeSet;

use super::index::identifier_lock_key;
use super::ServiceError;
use crate::store::{StoreError, Tx};

/// Parameters that shape the response, never the match.
const RESULT_PARAMETERS: &[&str] = &["_format", "_pretty", "_summary", "_elements"];

/// Parsed, ANDed criteria.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criteria {
    clauses: Vec<Clause>,
}

/// One parameter occurrence; its values are ORed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Id(Vec<String>),
    Identifier(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// `None`: any system; `Some("")`: no system.
    system: Option<String>,
    code: String,
}

impl Criteria {
    /// Parses a query string such as `identifier=http://x|1&_id=a`.
    ///
    /// # Errors
    /// 400 for unsupported parameters, modifiers or empty values, and when no criterion is
    /// given at all.
    pub fn parse(query: &str) -> Result<Self, ServiceError> {
        let mut clauses = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            if RESULT_PARAMETERS.contains(&name.as_ref()) {
                continue;
            }
            let values = split_unescaped(&value, ',');
            if values.iter().any(String::is_empty) {
                return Err(ServiceError::invalid_at(
                    name.as_ref(),
                    format!("The search parameter '{name}' has an empty value."),
                ));
            }
            match name.as_ref() {
                "_id" => clauses.push(Clause::Id(values)),
                "identifier" => clauses.push(Clause::Identifier(
                    values.iter().map(|v| Token::parse(v)).collect(),
                )),
                other => {
                    return Err(ServiceError::invalid_at(
                        other,
                        format!(
                            "The search parameter '{other}' is not supported in conditional \
                             interactions yet; use identifier or _id."
                        ),
                    ))
                }
            }
        }
        if clauses.is_empty() {
            return Err(ServiceError::invalid(
                "A conditional interaction needs search criteria (for example identifier=system|value).",
            ));
        }
        Ok(Self { clauses })
    }

    /// Ids of the live resources of `res_type` that match every clause.
    ///
    /// # Errors
    /// Database failures.
    pub fn matches(&self, tx: &mut Tx<'_>, res_type: &str) -> Result<Vec<String>, StoreError> {
        let mut result: Option<BTreeSet<String>> = None;
        for clause in &self.clauses {
            let ids: BTreeSet<String> = match clause {
                Clause::Id(ids) => {
                    let mut found = BTreeSet::new();
                    for id in ids {
                        if tx.current(res_type, id)?.is_some_and(|row| !row.deleted) {
                            found.insert(id.clone());
                        }
                    }
                    found
                }
                Clause::Identifier(tokens) => {
                    let mut found = BTreeSet::new();
                    for token in tokens {
                        found.extend(tx.ids_by_token(
                            res_type,
                            "identifier",
                            token.system.as_deref(),
                            &token.code,
                        )?);
                    }
                    found
                }
            };
            result = Some(match result {
                None => ids,
                Some(previous) => previous.intersection(&ids).cloned().collect(),
            });
        }
        Ok(result.unwrap_or_default().into_iter().collect())
    }

    /// Lock keys that serialise writers testing these criteria (see
    /// [`identifier_lock_key`]).
    pub fn lock_keys(&self, res_type: &str) -> Vec<i64> {
        self.clauses
            .iter()
            .flat_map(|clause| match clause {
                Clause::Identifier(tokens) => tokens
                    .iter()
                    .map(|t| identifier_lock_key(res_type, &t.code))
                    .collect(),
                Clause::Id(_) => Vec::new(),
            })
            .collect()
    }
}

impl Token {
    fn parse(value: &str) -> Self {
        let mut parts = split_unescaped(value, '|');
        if parts.len() == 1 {
            return Token {
                system: None,
                code: parts.remove(0),
            };
        }
        let system = parts.remove(0);
        Token {
            system: Some(system),
            code: parts.join("|"),
        }
    }
}

/// Splits on `sep` unless escaped with `\` (search.html#escaping), unescaping the parts.
fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next != sep {
                        current.push('\\');
                    }
                    current.push(next);
                }
            }
            c if c == sep => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_and_without_system() {
        let c = Criteria::parse("identifier=http://x|1,|2,3&_id=a").unwrap();
        assert_eq!(
            c.clauses[0],
            Clause::Identifier(vec![
                Token {
                    system: Some("http://x".into()),
                    code: "1".into()
                },
                Token {
                    system: Some(String::new()),
                    code: "2".into()
                },
                Token {
                    system: None,
                    code: "3".into()
                },
            ])
        );
        assert_eq!(c.clauses[1], Clause::Id(vec!["a".into()]));
    }

    #[test]
    fn escaped_separators_stay_in_values() {
        let c = Criteria::parse("identifier=s|a\\,b").unwrap();
        assert_eq!(
            c.clauses[0],
            Clause::Identifier(vec![Token {
                system: Some("s".into()),
                code: "a,b".into()
            }])
        );
    }

    #[test]
    fn rejects_unknown_parameters_and_empty_criteria() {
        assert!(Criteria::parse("name=x").is_err());
        assert!(Criteria::parse("").is_err());
        assert!(Criteria::parse("_format=json").is_err());
        assert!(Criteria::parse("identifier=").is_err());
    }
}
