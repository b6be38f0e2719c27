//! `_sort` (search.html#_sort): up to three keys, `-` for descending.

use super::*;

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
    for part in value.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(ServiceError::at(
                ErrorCode::SearchValue,
                "_sort",
                "_sort is a comma-separated list of parameters (search.html#_sort); one of them is empty.",
            ));
        }
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
