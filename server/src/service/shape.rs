//! `_summary` and `_elements` on a returned resource — https://hl7.org/fhir/R4/search.html#summary,
//! https://hl7.org/fhir/R4/search.html#elements
//!
//! A shaped resource carries the `SUBSETTED` tag (http://terminology.hl7.org/CodeSystem/v3-ObservationValue)
//! so that nobody mistakes it for the whole resource.

use crate::service::ErrorCode;
use fhir_profiles::ResourceElements;
use serde_json::{json, Map, Value};

use super::ServiceError;

/// How much of a resource to return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Shape {
    /// The whole resource (`_summary=false`, the default).
    #[default]
    Full,
    /// `_summary=true`: the elements marked isSummary.
    Summary,
    /// `_summary=text`: text, id, meta and the mandatory elements.
    Text,
    /// `_summary=data`: everything but the narrative.
    Data,
    /// `_elements=a,b`: the named top-level elements plus the mandatory ones.
    Elements(Vec<String>),
}

impl Shape {
    /// Reads `_summary` and `_elements` from a query string.
    ///
    /// # Errors
    /// 400 for an unknown `_summary` value, `_summary=count` on a read, or both parameters.
    pub fn parse(query: &str) -> Result<Self, ServiceError> {
        Self::from_params(url::form_urlencoded::parse(query.as_bytes()))
    }

    /// As [`Shape::parse`], from decoded parameters (other names are ignored).
    ///
    /// # Errors
    /// As [`Shape::parse`].
    pub fn from_params<N: AsRef<str>, V: AsRef<str>>(
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, ServiceError> {
        let mut shape = Shape::Full;
        let mut seen = 0;
        for (name, value) in params {
            match name.as_ref() {
                "_summary" => {
                    seen += 1;
                    shape = match value.as_ref() {
                        "true" => Shape::Summary,
                        "text" => Shape::Text,
                        "data" => Shape::Data,
                        "false" => Shape::Full,
                        "count" => {
                            return Err(ServiceError::at(ErrorCode::SearchValue,
                                "_summary",
                                "_summary=count applies to searches, not to a read.",
                            ))
                        }
                        other => {
                            return Err(ServiceError::at(ErrorCode::SearchValue,
                                "_summary",
                                format!("'{other}' is not a _summary value (true, text, data, count, false)."),
                            ))
                        }
                    }
                }
                "_elements" => {
                    seen += 1;
                    shape = Shape::Elements(
                        value
                            .as_ref()
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        if seen > 1 {
            return Err(ServiceError::new(
                ErrorCode::SearchCombination,
                "Use either _summary or _elements, not both, and each at most once.",
            ));
        }
        Ok(shape)
    }

    /// Whether the resource is returned whole.
    pub fn is_full(&self) -> bool {
        *self == Shape::Full
    }

    /// Applies the shape to a resource.
    pub fn apply(&self, resource: &mut Value) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let res_type = object
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(elements) = fhir_profiles::elements(&res_type) else {
            return;
        };
        let keep = |name: &str| -> bool {
            if matches!(name, "resourceType" | "id" | "meta") {
                return true;
            }
            let mandatory = ResourceElements::contains(&elements.mandatory, name);
            match self {
                Shape::Full => true,
                Shape::Summary => ResourceElements::contains(&elements.summary, name),
                Shape::Text => name == "text" || mandatory,
                Shape::Data => name != "text",
                Shape::Elements(names) => {
                    mandatory
                        || names.iter().any(|n| {
                            n == name
                                || name.strip_prefix(n.as_str()).is_some_and(|r| {
                                    r.starts_with(|c: char| c.is_ascii_uppercase())
                                })
                        })
                }
            }
        };
        let before = object.len();
        object.retain(|name, _| keep(name));
        // http://hl7.org/fhir/R4/search.html#summary: servers mark subsets as SUBSETTED.
        if object.len() < before
            || matches!(self, Shape::Summary | Shape::Text | Shape::Elements(_))
        {
            mark_subsetted(object);
        }
    }
}

fn mark_subsetted(object: &mut Map<String, Value>) {
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED",
                "display": "Resource encoded in summary mode"
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Value {
        json!({"resourceType":"Patient","id":"1","meta":{"versionId":"1"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"name":[{"family":"N"}],"photo":[{"url":"http://x"}],"deceasedBoolean":false})
    }

    #[test]
    fn summary_keeps_summary_elements_and_tags() {
        let mut p = patient();
        Shape::parse("_summary=true").unwrap().apply(&mut p);
        assert!(p.get("photo").is_none() && p.get("text").is_none());
        assert_eq!(p["deceasedBoolean"], false);
        assert_eq!(p["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn elements_and_data() {
        let mut p = patient();
        Shape::parse("_elements=name,deceased")
            .unwrap()
            .apply(&mut p);
        assert!(
            p.get("name").is_some()
                && p.get("deceasedBoolean").is_some()
                && p.get("photo").is_none()
        );
        let mut p = patient();
        Shape::parse("_summary=data").unwrap().apply(&mut p);
        assert!(p.get("text").is_none() && p.get("photo").is_some());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Shape::parse("_summary=maybe").is_err());
        assert!(Shape::parse("_summary=count").is_err());
        assert!(Shape::parse("_summary=true&_elements=name").is_err());
    }
}
