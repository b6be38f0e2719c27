//! Checks of a SearchParameter resource the server is to search by (search.html, "custom"
//! search parameters; docs/SEARCH.md). An `active` SearchParameter is used for searching
//! and indexing as soon as it is written, so it must be one the server can evaluate:
//!
//! - `HB-SP-TYPE`: its type is one the index holds (number, date, string, token,
//!   reference, quantity, uri); composite and special parameters can be stored as `draft`.
//! - `HB-SP-EXPRESSION`: it has an expression, each base type has a part of it
//!   (`Patient.extension.where(url = '...').value` for base Patient), and each part is in
//!   the FHIRPath subset of `service/fhirpath.rs`.
//! - `HB-SP-CODE`: its code is a plain name (letters, digits, `-`, `_`; not starting with
//!   `_`, which the specification keeps for its own), not the code of a standard parameter
//!   of a base, nor of another active custom parameter (another `url`) of a base.

use serde_json::{json, Value};

use super::Issue;
use crate::service::search_parameters::Registry;
use crate::service::{fhirpath, index};

/// Adds the issues of a SearchParameter `resource` to `out`.
pub fn check(resource: &Value, parameters: &Registry, out: &mut Vec<Issue>) {
    if resource["status"] != "active" {
        return;
    }
    // The required elements (url, code, base, type) are HB-REQUIRED when missing.
    let Ok(sp) = serde_json::from_value::<fhir_profiles::SearchParameter>(resource.clone()) else {
        return;
    };
    if index::table_of(&sp).is_none() {
        out.push(Issue::error(
            "not-supported",
            "HB-SP-TYPE",
            "SearchParameter.type",
            format!(
                "This server searches by custom parameters of type number, date, string, token, reference, quantity and uri, not {}; store it with status draft.",
                sp.kind
            ),
            format!(
                "Máy chủ chỉ tìm kiếm theo tham số tự định nghĩa kiểu number, date, string, token, reference, quantity và uri, không hỗ trợ {}; hãy lưu với trạng thái draft.",
                sp.kind
            ),
        ));
    }
    expression(&sp, out);
    code(&sp, parameters, out);
}

fn expression(sp: &fhir_profiles::SearchParameter, out: &mut Vec<Issue>) {
    let at = "SearchParameter.expression";
    if sp.expression.is_none() {
        out.push(Issue::error(
            "required",
            "HB-SP-EXPRESSION",
            at,
            "An active SearchParameter needs an expression: the FHIRPath of the values to search.",
            "Tham số tìm kiếm đang hoạt động cần có expression: biểu thức FHIRPath chỉ ra giá trị để tìm.",
        ));
        return;
    }
    for base in &sp.base {
        let parts = index::expressions(sp, base);
        if parts.is_empty() {
            out.push(Issue::error(
                "value",
                "HB-SP-EXPRESSION",
                at,
                format!("No part of the expression starts with the base type {base} (write {base}.element...)."),
                format!("Không phần nào của expression bắt đầu bằng kiểu gốc {base} (hãy viết {base}.phần-tử...)."),
            ));
        }
        let empty = json!({ "resourceType": base });
        for part in parts {
            if let Err(why) = fhirpath::select(&empty, &part) {
                out.push(Issue::error(
                    "not-supported",
                    "HB-SP-EXPRESSION",
                    at,
                    format!(
                        "The expression {part} uses FHIRPath this server does not evaluate: {why}"
                    ),
                    format!("Biểu thức {part} dùng FHIRPath mà máy chủ không đánh giá được: {why}"),
                ));
            }
        }
    }
}

fn code(sp: &fhir_profiles::SearchParameter, parameters: &Registry, out: &mut Vec<Issue>) {
    let at = "SearchParameter.code";
    let plain = sp.code.starts_with(|c: char| c.is_ascii_alphabetic())
        && sp
            .code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        out.push(Issue::error(
            "value",
            "HB-SP-CODE",
            at,
            format!("'{}' is not a usable code: a letter, then letters, digits, '-' or '_'.", sp.code),
            format!("'{}' không dùng được làm mã: bắt đầu bằng chữ cái, sau đó là chữ, số, '-' hoặc '_'.", sp.code),
        ));
        return;
    }
    for base in &sp.base {
        let taken = fhir_profiles::standard_search_parameter(base, &sp.code)
            .map(|_| "a standard parameter")
            .or_else(|| {
                parameters
                    .custom_for(base)
                    .iter()
                    .any(|other| other.code == sp.code && other.url != sp.url)
                    .then_some("another custom parameter")
            });
        if let Some(taken) = taken {
            out.push(Issue::error(
                "duplicate",
                "HB-SP-CODE",
                at,
                format!(
                    "{base} already has {taken} '{}'; choose another code.",
                    sp.code
                ),
                format!(
                    "{base} đã có tham số '{}' ({taken}); hãy chọn mã khác.",
                    sp.code
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(resource: Value) -> Vec<&'static str> {
        let mut out = Vec::new();
        check(&resource, &Registry::default(), &mut out);
        out.into_iter().map(|i| i.rule).collect()
    }

    fn custom(code: &str, kind: &str, expression: &str) -> Value {
        json!({"resourceType": "SearchParameter", "url": format!("http://example.org/sp/{code}"),
            "name": "x", "status": "active", "description": "x", "code": code,
            "base": ["Patient"], "type": kind, "expression": expression})
    }

    #[test]
    fn usable_parameters_pass() {
        let ethnicity = custom(
            "ethnicity",
            "token",
            "Patient.extension.where(url = 'http://example.org/ethnicity').value",
        );
        assert!(rules(ethnicity).is_empty());
        let mut draft = custom("combo", "composite", "Patient");
        draft["status"] = json!("draft");
        assert!(
            rules(draft).is_empty(),
            "drafts are not used, so not checked"
        );
    }

    #[test]
    fn unusable_parameters_are_refused() {
        assert_eq!(rules(custom("x", "composite", "Patient")), ["HB-SP-TYPE"]);
        assert_eq!(
            rules(custom("x", "token", "Observation.code")),
            ["HB-SP-EXPRESSION"]
        );
        assert_eq!(
            rules(custom("x", "token", "Patient.name.select(given)")),
            ["HB-SP-EXPRESSION"]
        );
        assert_eq!(
            rules(custom("family", "string", "Patient.name.family")),
            ["HB-SP-CODE"]
        );
        assert_eq!(
            rules(custom("_mine", "string", "Patient.name.family")),
            ["HB-SP-CODE"]
        );
        let mut no_expression = custom("x", "token", "");
        no_expression.as_object_mut().unwrap().remove("expression");
        assert_eq!(rules(no_expression), ["HB-SP-EXPRESSION"]);
    }
}
