//! Base R4 checks (profiling.html, the core StructureDefinitions): minimum cardinality,
//! required bindings, and core invariants written out in Rust.
//!
//! - `HB-REQUIRED`: an element with `min` 1 or more is missing while its parent is present
//!   (elementdefinition.html#min-max).
//! - `HB-CODE`: a code outside the value set of a required binding
//!   (terminologies.html#required); for a CodeableConcept or Coding, no coding is in it.
//! - ele-1 (an element has a value or children), ext-1 (an extension has extensions or a
//!   value, not both), dom-2..dom-5 (contained resources), pat-1 (Patient.contact has
//!   details or an organization), imm-1 (Immunization.education has a document type or a
//!   reference), obs-6 (no dataAbsentReason with a value), obs-7 (no value when a component
//!   has the Observation's code), obs-3 (a reference range has low, high or text), con-3
//!   (warning: a problem-list Condition has a clinical status), con-4 (abatement only when
//!   resolved, in remission or inactive), con-5 (no clinical status when entered in error),
//!   dom-6 (warning: a resource has a narrative).
//! - The invariants of data types wherever they occur: per-1 (a Period's start is not
//!   after its end), cpt-2 (a ContactPoint with a value has a system), qty-3 (a Quantity
//!   with a code has a system).

use serde_json::{Map, Value};

use super::Issue;
use crate::service::index::date;

/// Adds the base issues of `resource` to `out`.
pub fn check(resource: &Value, out: &mut Vec<Issue>) {
    let Some(res_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return;
    };
    let Some(object) = resource.as_object() else {
        return;
    };
    walk(object, res_type, res_type, out);
    invariants(object, res_type, res_type, false, out);
    // Bundle, Binary and Parameters are the R4 resources that are not DomainResources.
    let domain_resource = !matches!(res_type, "Bundle" | "Binary" | "Parameters");
    let narrative = object
        .get("text")
        .is_some_and(|text| text.get("div").is_some());
    if domain_resource && !narrative {
        out.push(Issue::warning(
            "invariant",
            "dom-6",
            format!("{res_type}.text"),
            "A resource should have a narrative (text.div) for robust management (dom-6).",
            "Tài nguyên nên có phần mô tả (text.div) để quản lý tốt hơn (dom-6).",
        ));
    }
}

/// Checks the elements of `object`, defined at `def_path`, shown as `shown`.
fn walk(object: &Map<String, Value>, def_path: &str, shown: &str, out: &mut Vec<Issue>) {
    for (name, def) in fhir_profiles::children(def_path) {
        if def.min >= 1 && !present(object, name, def) {
            let element = name.trim_end_matches("[x]");
            out.push(Issue::error(
                "required",
                "HB-REQUIRED",
                format!("{shown}.{element}"),
                format!("{shown}.{element} is required."),
                format!("Thiếu {shown}.{element} (bắt buộc)."),
            ));
        }
    }
    for (key, value) in object {
        if key == "resourceType" || key.starts_with('_') {
            continue;
        }
        let Some((name, def, chosen)) = definition(def_path, key) else {
            continue;
        };
        let items: Vec<(String, &Value)> = match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{shown}.{key}[{i}]"), v))
                .collect(),
            v => vec![(format!("{shown}.{key}"), v)],
        };
        for (at, item) in items {
            if let Some(url) = &def.binding {
                binding(item, chosen, url, &at, out);
            }
            let Some(child) = item.as_object() else {
                continue;
            };
            if child.is_empty() {
                out.push(Issue::error(
                    "invariant",
                    "ele-1",
                    at.clone(),
                    format!("{at} is empty: an element has a value or children (ele-1)."),
                    format!(
                        "{at} đang trống: mỗi phần tử phải có giá trị hoặc phần tử con (ele-1)."
                    ),
                ));
                continue;
            }
            if chosen == "Resource" {
                if let Some(t) = child.get("resourceType").and_then(Value::as_str) {
                    walk(child, t, &at, out);
                }
                continue;
            }
            let child_def = match &def.content_reference {
                Some(target) => target.clone(),
                None if matches!(chosen, "BackboneElement" | "Element") => {
                    format!("{def_path}.{name}")
                }
                None if chosen.starts_with(|c: char| c.is_ascii_uppercase()) => chosen.to_owned(),
                None => continue,
            };
            if chosen == "Extension" || child_def == "Extension" {
                extension(child, &at, out);
            }
            if chosen == "Reference" && !def.targets.is_empty() {
                reference_target(child, &def.targets, &at, out);
            }
            datatype_invariants(chosen, child, &at, out);
            walk(child, &child_def, &at, out);
        }
    }
}

/// The definition of JSON property `key` under `def_path`: its element name (`value[x]`),
/// definition and the type chosen (`Quantity` for `valueQuantity`).
fn definition(
    def_path: &str,
    key: &str,
) -> Option<(
    &'static str,
    &'static fhir_profiles::ElementDefinition,
    &'static str,
)> {
    for (name, def) in fhir_profiles::children(def_path) {
        if *name == key {
            let chosen = def.types.first().map_or("", String::as_str);
            return Some((name, def, chosen));
        }
        if let Some(stem) = name.strip_suffix("[x]") {
            if let Some(suffix) = key.strip_prefix(stem) {
                if let Some(t) = def.types.iter().find(|t| capitalised(t) == suffix) {
                    return Some((name, def, t));
                }
            }
        }
    }
    None
}

/// A type code as it ends a choice element's name (`dateTime` → `DateTime`).
pub(super) fn capitalised(t: &str) -> String {
    let mut chars = t.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Whether element `name` (`status`, `value[x]`) is present in `object`.
fn present(
    object: &Map<String, Value>,
    name: &str,
    def: &fhir_profiles::ElementDefinition,
) -> bool {
    match name.strip_suffix("[x]") {
        Some(stem) => def
            .types
            .iter()
            .any(|t| object.contains_key(&format!("{stem}{}", capitalised(t)))),
        // A primitive may be present only by its extensions (`_birthDate`).
        None => object.contains_key(name) || object.contains_key(&format!("_{name}")),
    }
}

/// A required binding: the code (or one of the codings) in the value set.
fn binding(item: &Value, chosen: &str, url: &str, at: &str, out: &mut Vec<Issue>) {
    let Some(codes) = fhir_profiles::value_set(url) else {
        return;
    };
    let (ok, shown) = match chosen {
        "code" => match item.as_str() {
            Some(code) => (codes.iter().any(|(_, c)| c == code), code.to_owned()),
            None => return,
        },
        "Coding" => (coding_in(item, codes), coding_text(item)),
        "CodeableConcept" => {
            let codings = item.get("coding").and_then(Value::as_array);
            match codings {
                // A concept given only as text says nothing the binding can check.
                None => return,
                Some(list) => (
                    list.iter().any(|c| coding_in(c, codes)),
                    list.iter().map(coding_text).collect::<Vec<_>>().join(", "),
                ),
            }
        }
        _ => return,
    };
    if !ok {
        let name = url.rsplit('/').next().unwrap_or(url);
        out.push(Issue::error(
            "code-invalid",
            "HB-CODE",
            at,
            format!("'{shown}' is not a code allowed for {at} (value set {name})."),
            format!("'{shown}' không phải là mã hợp lệ cho {at} (bộ mã {name})."),
        ));
    }
}

fn coding_in(coding: &Value, codes: &[(String, String)]) -> bool {
    let system = coding.get("system").and_then(Value::as_str);
    let code = coding.get("code").and_then(Value::as_str);
    match (system, code) {
        (Some(s), Some(c)) => codes.iter().any(|(cs, cc)| cs == s && cc == c),
        _ => false,
    }
}

fn coding_text(coding: &Value) -> String {
    format!(
        "{}|{}",
        coding
            .get("system")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        coding
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// A literal reference (`Type/id`, `Type/id/_history/v`, or an absolute URL ending so)
/// points at a type the element allows (its `targetProfile`s): a Patient's
/// `managingOrganization` is an Organization, not an Observation. Local (`#id`) and
/// `urn:` references are resolved elsewhere.
fn reference_target(
    object: &Map<String, Value>,
    targets: &[String],
    at: &str,
    out: &mut Vec<Issue>,
) {
    let Some(reference) = object.get("reference").and_then(Value::as_str) else {
        return;
    };
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return;
    }
    let path = reference.split('?').next().unwrap_or(reference);
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let history = segments.len() >= 4 && segments[segments.len() - 2] == "_history";
    let type_at = if history {
        segments.len().checked_sub(4)
    } else {
        segments.len().checked_sub(2)
    };
    let Some(res_type) = type_at.map(|i| segments[i]) else {
        return;
    };
    if !fhir_format::is_resource_type(res_type) || targets.iter().any(|t| t == res_type) {
        return;
    }
    let allowed = targets.join(", ");
    out.push(Issue::error(
        "value",
        "HB-REFERENCE-TYPE",
        format!("{at}.reference"),
        format!("{at} refers to a {res_type}; it may refer to: {allowed}."),
        format!("{at} tham chiếu đến {res_type}; chỉ được tham chiếu đến: {allowed}."),
    ));
}

/// ext-1: an extension has either extensions or a value, not both.
fn extension(object: &Map<String, Value>, at: &str, out: &mut Vec<Issue>) {
    let nested = object.contains_key("extension");
    let valued = object.keys().any(|k| k.starts_with("value"));
    if nested == valued {
        out.push(Issue::error(
            "invariant",
            "ext-1",
            at,
            format!("{at} must have either extensions or a value, not both (ext-1)."),
            format!("{at} phải có hoặc extension con hoặc giá trị, không được cả hai (ext-1)."),
        ));
    }
}

/// The invariants of the data types (datatypes.html) that matter for data quality.
fn datatype_invariants(
    type_code: &str,
    object: &Map<String, Value>,
    at: &str,
    out: &mut Vec<Issue>,
) {
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    match type_code {
        // narrative.html#xhtml: no scripts, event attributes or script URLs, one XHTML div
        // with content; every app that shows text.div relies on it.
        "Narrative" => {
            if let Some(div) = text("div") {
                if let Err(problem) = fhir_format::check_narrative(div) {
                    out.push(Issue::error(
                        "invariant",
                        problem.rule,
                        format!("{at}.div"),
                        format!("{at}.div: {}", problem.message),
                        format!("{at}.div: {}", problem.message_vi),
                    ));
                }
            }
        }
        "Period" => {
            // `start <= end`; partial dates of different precision compare only when
            // their ranges do not overlap (FHIRPath comparison is empty otherwise).
            let utc = chrono::FixedOffset::east_opt(0).expect("zero offset");
            let range = |key: &str| text(key).and_then(|v| date::range(v, utc));
            if let (Some(start), Some(end)) = (range("start"), range("end")) {
                if start.lo > end.hi {
                    out.push(Issue::error(
                        "invariant",
                        "per-1",
                        format!("{at}.start"),
                        format!("{at}: the start is after the end (per-1)."),
                        format!("{at}: ngày bắt đầu sau ngày kết thúc (per-1)."),
                    ));
                }
            }
        }
        "ContactPoint" if object.contains_key("value") && !object.contains_key("system") => {
            out.push(Issue::error(
                "invariant",
                "cpt-2",
                format!("{at}.system"),
                format!("{at} has a value but no system (phone, email...) (cpt-2)."),
                format!(
                    "{at} có giá trị nhưng thiếu loại liên lạc (điện thoại, email...) (cpt-2)."
                ),
            ));
        }
        "Quantity" if object.contains_key("code") && !object.contains_key("system") => {
            out.push(Issue::error(
                "invariant",
                "qty-3",
                format!("{at}.system"),
                format!("{at} has a unit code but no system for it (qty-3)."),
                format!("{at} có mã đơn vị nhưng thiếu hệ mã của đơn vị (qty-3)."),
            ));
        }
        _ => {}
    }
}

/// The invariants of DomainResource and of the resource types the campaign writes.
fn invariants(
    object: &Map<String, Value>,
    res_type: &str,
    shown: &str,
    contained: bool,
    out: &mut Vec<Issue>,
) {
    let issue = |rule: &'static str, at: String, en: &str, vi: &str| {
        Issue::error(
            "invariant",
            rule,
            at,
            format!("{en} ({rule})."),
            format!("{vi} ({rule})."),
        )
    };
    if let Some(list) = object.get("contained").and_then(Value::as_array) {
        let text = Value::Object(object.clone()).to_string();
        for (i, c) in list.iter().enumerate() {
            let at = format!("{shown}.contained[{i}]");
            if contained || c.get("contained").is_some() {
                out.push(issue(
                    "dom-2",
                    at.clone(),
                    "A contained resource cannot contain resources",
                    "Tài nguyên lồng bên trong không được chứa tài nguyên khác",
                ));
            }
            let meta = c.get("meta");
            if meta.is_some_and(|m| m.get("versionId").is_some() || m.get("lastUpdated").is_some())
            {
                out.push(issue(
                    "dom-4",
                    at.clone(),
                    "A contained resource has no meta.versionId or meta.lastUpdated",
                    "Tài nguyên lồng bên trong không có meta.versionId hay meta.lastUpdated",
                ));
            }
            if meta.is_some_and(|m| m.get("security").is_some()) {
                out.push(issue(
                    "dom-5",
                    at.clone(),
                    "A contained resource has no security label",
                    "Tài nguyên lồng bên trong không có nhãn bảo mật",
                ));
            }
            if let Some(id) = c.get("id").and_then(Value::as_str) {
                // Referred to from elsewhere in the resource ("#id"), or refers to it ("#").
                let referred = text.contains(&format!("\"#{id}\""));
                let refers_back = c.to_string().contains("\"#\"");
                if !referred && !refers_back {
                    out.push(issue(
                        "dom-3",
                        at.clone(),
                        "A contained resource must be referred to from elsewhere in the resource",
                        "Tài nguyên lồng bên trong phải được tham chiếu từ nơi khác trong tài nguyên",
                    ));
                }
            }
            if let (Some(t), Some(inner)) =
                (c.get("resourceType").and_then(Value::as_str), c.as_object())
            {
                invariants(inner, t, &at, true, out);
            }
        }
    }
    let list = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    match res_type {
        "Patient" => {
            for (i, contact) in list("contact").iter().enumerate() {
                let details = ["name", "telecom", "address", "organization"]
                    .iter()
                    .any(|k| contact.get(k).is_some());
                if !details {
                    out.push(issue(
                        "pat-1",
                        format!("{shown}.contact[{i}]"),
                        "A contact has a name, telecom, address or organization",
                        "Người liên hệ phải có tên, số liên lạc, địa chỉ hoặc tổ chức",
                    ));
                }
            }
        }
        "Immunization" => {
            for (i, education) in list("education").iter().enumerate() {
                if education.get("documentType").is_none() && education.get("reference").is_none() {
                    out.push(issue(
                        "imm-1",
                        format!("{shown}.education[{i}]"),
                        "Education material has a document type or a reference",
                        "Tài liệu hướng dẫn phải có loại tài liệu hoặc đường dẫn",
                    ));
                }
            }
        }
        "Observation" => {
            for (i, range) in list("referenceRange").iter().enumerate() {
                if !["low", "high", "text"]
                    .iter()
                    .any(|k| range.get(k).is_some())
                {
                    out.push(issue(
                        "obs-3",
                        format!("{shown}.referenceRange[{i}]"),
                        "A reference range has a low, a high or a text",
                        "Khoảng tham chiếu phải có giá trị thấp, giá trị cao hoặc mô tả",
                    ));
                }
            }
            let valued = object.keys().any(|k| k.starts_with("value"));
            if valued && object.contains_key("dataAbsentReason") {
                out.push(issue(
                    "obs-6",
                    format!("{shown}.dataAbsentReason"),
                    "dataAbsentReason is only given when there is no value",
                    "Chỉ ghi lý do thiếu dữ liệu (dataAbsentReason) khi không có giá trị",
                ));
            }
            let codings = |v: &Value| {
                v.get("coding")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let own = object.get("code").map(codings).unwrap_or_default();
            let same = list("component").iter().any(|c| {
                c.get("code")
                    .map(codings)
                    .unwrap_or_default()
                    .iter()
                    .any(|x| own.contains(x))
            });
            if valued && same {
                out.push(issue(
                    "obs-7",
                    format!("{shown}.value"),
                    "An Observation whose code is also a component's code has no value of its own",
                    "Quan sát có mã trùng với mã của một thành phần thì không có giá trị riêng",
                ));
            }
        }
        "Condition" => condition(object, shown, out),
        _ => {}
    }
}

/// con-3, con-4, con-5 of Condition (condition.html#invs).
fn condition(object: &Map<String, Value>, shown: &str, out: &mut Vec<Issue>) {
    let has_code = |element: &str, system: &str, codes: &[&str]| {
        object
            .get(element)
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .is_some_and(|codings| {
                codings.iter().any(|c| {
                    c.get("system").and_then(Value::as_str) == Some(system)
                        && c.get("code")
                            .and_then(Value::as_str)
                            .is_some_and(|code| codes.contains(&code))
                })
            })
    };
    let clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical";
    let verification = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
    let entered_in_error = has_code("verificationStatus", verification, &["entered-in-error"]);
    let has_clinical_status = object.contains_key("clinicalStatus");
    let problem_list = object
        .get("category")
        .and_then(Value::as_array)
        .is_some_and(|categories| {
            categories.iter().any(|c| {
                c.get("coding")
                    .and_then(Value::as_array)
                    .is_some_and(|codings| {
                        codings.iter().any(|x| {
                            x.get("code").and_then(Value::as_str) == Some("problem-list-item")
                        })
                    })
            })
        });
    if !has_clinical_status && !entered_in_error && problem_list {
        out.push(Issue::warning(
            "invariant",
            "con-3",
            format!("{shown}.clinicalStatus"),
            "A problem-list Condition should have a clinical status (con-3).",
            "Bệnh trong danh sách vấn đề nên có trạng thái lâm sàng (con-3).",
        ));
    }
    let abated = object.keys().any(|k| k.starts_with("abatement"));
    if abated
        && !has_code(
            "clinicalStatus",
            clinical,
            &["resolved", "remission", "inactive"],
        )
    {
        out.push(Issue::error(
            "invariant",
            "con-4",
            format!("{shown}.clinicalStatus"),
            "A Condition with an abatement has the clinical status resolved, remission or inactive (con-4).",
            "Bệnh đã có thời điểm khỏi (abatement) phải có trạng thái lâm sàng resolved, remission hoặc inactive (con-4).",
        ));
    }
    if entered_in_error && has_clinical_status {
        out.push(Issue::error(
            "invariant",
            "con-5",
            format!("{shown}.clinicalStatus"),
            "A Condition entered in error has no clinical status (con-5).",
            "Bệnh được đánh dấu nhập nhầm (entered-in-error) không được có trạng thái lâm sàng (con-5).",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(resource: Value) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        check(&resource, &mut out);
        out.into_iter()
            .filter(|i| i.rule != "dom-6")
            .map(|i| (i.rule, i.expression))
            .collect()
    }

    #[test]
    fn missing_required_elements_are_located() {
        let found = rules(
            json!({"resourceType": "Immunization", "vaccineCode": {"text": "x"},
            "protocolApplied": [{"series": "primary"}]}),
        );
        assert!(
            found.contains(&("HB-REQUIRED", "Immunization.status".into())),
            "{found:?}"
        );
        assert!(found.contains(&("HB-REQUIRED", "Immunization.patient".into())));
        assert!(found.contains(&("HB-REQUIRED", "Immunization.occurrence".into())));
        assert!(found.contains(&(
            "HB-REQUIRED",
            "Immunization.protocolApplied[0].doseNumber".into()
        )));
        let ok = rules(
            json!({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "x"},
            "patient": {"reference": "Patient/1"}, "occurrenceString": "last week"}),
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn required_bindings_in_nested_and_complex_elements() {
        let found = rules(json!({"resourceType": "Patient", "gender": "man",
            "telecom": [{"system": "pager-ish", "value": "1"}],
            "contact": [{"gender": "female", "name": {"use": "official", "family": "A"}}]}));
        assert!(
            found.contains(&("HB-CODE", "Patient.gender".into())),
            "{found:?}"
        );
        assert!(found.contains(&("HB-CODE", "Patient.telecom[0].system".into())));
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn core_invariants() {
        let found = rules(
            json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "valueString": "x", "dataAbsentReason": {"text": "n/a"},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}, "valueString": "y"}],
            "extension": [{"url": "http://x/e"}],
            "contained": [{"resourceType": "Patient", "id": "p", "meta": {"versionId": "1"}}]}),
        );
        for rule in ["obs-6", "obs-7", "ext-1", "dom-3", "dom-4"] {
            assert!(found.iter().any(|(r, _)| *r == rule), "{rule}: {found:?}");
        }
        let referred = rules(
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "#p"}, "contained": [{"resourceType": "Patient", "id": "p"}]}),
        );
        assert!(referred.is_empty(), "{referred:?}");
        let patient = rules(
            json!({"resourceType": "Patient", "contact": [{"relationship": [{"text": "mother"}]}]}),
        );
        assert_eq!(patient, vec![("pat-1", "Patient.contact[0]".to_owned())]);
    }

    #[test]
    fn narrative_is_recommended() {
        let mut out = Vec::new();
        check(&json!({"resourceType": "Patient"}), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            (out[0].rule, out[0].severity),
            ("dom-6", super::super::Severity::Warning)
        );
        out.clear();
        check(
            &json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}),
            &mut out,
        );
        check(
            &json!({"resourceType": "Bundle", "type": "collection"}),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn data_type_and_condition_invariants() {
        let found = rules(json!({"resourceType": "Patient",
            "telecom": [{"value": "0912345678"}],
            "name": [{"family": "A", "period": {"start": "2021-05-02", "end": "2021-05-01"}}],
            "contact": [{"name": {"family": "B"}, "period": {"start": "2021-05", "end": "2021-05-01"}}]}));
        assert_eq!(
            found,
            vec![
                ("cpt-2", "Patient.telecom[0].system".to_owned()),
                ("per-1", "Patient.name[0].period.start".to_owned()),
            ],
            "a partial start overlapping the end is not an error"
        );
        let found = rules(
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 1, "code": "mg"}, "referenceRange": [{"type": {"text": "normal"}}]}),
        );
        assert!(
            found.contains(&("qty-3", "Observation.valueQuantity.system".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("obs-3", "Observation.referenceRange[0]".into())),
            "{found:?}"
        );
        let references = rules(json!({"resourceType": "Patient",
            "managingOrganization": {"reference": "Observation/1"},
            "generalPractitioner": [{"reference": "https://other.example/fhir/Practitioner/7/_history/2"},
                {"reference": "Organization/2"}, {"reference": "#local"}, {"reference": "urn:uuid:x"}]}));
        assert_eq!(
            references,
            vec![(
                "HB-REFERENCE-TYPE",
                "Patient.managingOrganization.reference".to_owned()
            )]
        );
        let narratives = rules(
            json!({"resourceType": "Patient", "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"},
            "contained": [{"resourceType": "Medication", "id": "m", "text": {"status": "generated",
                "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"> </div>"}}]}),
        );
        assert!(
            narratives.contains(&("txt-1", "Patient.text.div".into())),
            "{narratives:?}"
        );
        assert!(
            narratives.contains(&("txt-2", "Patient.contained[0].text.div".into())),
            "{narratives:?}"
        );
        let clinical = |code: &str| json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": code}]});
        let found = rules(
            json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"},
            "clinicalStatus": clinical("active"), "abatementDateTime": "2022-01-01",
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}]}}),
        );
        assert!(
            found.contains(&("con-4", "Condition.clinicalStatus".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("con-5", "Condition.clinicalStatus".into())),
            "{found:?}"
        );
        let found = rules(
            json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}]}),
        );
        assert_eq!(
            found,
            vec![("con-3", "Condition.clinicalStatus".to_owned())]
        );
        let ok = rules(
            json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"},
            "clinicalStatus": clinical("resolved"), "abatementDateTime": "2022-01-01"}),
        );
        assert!(ok.is_empty(), "{ok:?}");
    }
}
