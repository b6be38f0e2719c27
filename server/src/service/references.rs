//! Referential integrity (http.html#delete: servers may choose to enforce it; issue 14): a
//! write's literal references (`Patient/123`, `Patient/123/_history/2`, or an absolute URL
//! under this server's base) must name resources of the store, or resources written in
//! the same database transaction (a transaction Bundle's entries). An Immunization for
//! `Patient/does-not-exist` would otherwise be counted in campaign figures and in nobody's
//! record. Local (`#id`), `urn:` and other servers' references are not checked. The check
//! runs when the transaction is about to commit (`Tx::require_existing`), so the order of
//! a Bundle's entries does not matter. `validation.rules.HB-REFERENCE-UNKNOWN = "off"`
//! turns it off (loading historic data whose targets come later).

use serde_json::Value;

use super::index::IndexContext;
use crate::store::{ResourceKey, Tx};

/// Asks `tx` to make sure, before it commits, that the literal references of `resource`
/// (of type `res_type`) name resources of the store.
pub(super) fn require(tx: &mut Tx<'_>, ctx: &IndexContext, res_type: &str, resource: &Value) {
    if !ctx.check_references {
        return;
    }
    let mut found = Vec::new();
    walk(resource, res_type.to_owned(), &ctx.base_url, &mut found);
    for (path, key) in found {
        tx.require_existing(path, key);
    }
}

fn walk(value: &Value, path: String, base_url: &str, out: &mut Vec<(String, ResourceKey)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(reference) if key == "reference" => {
                        if let Some(target) = literal(reference, base_url) {
                            out.push((format!("{path}.reference"), target));
                        }
                    }
                    // A contained resource's references are checked as its container's.
                    _ => walk(v, format!("{path}.{key}"), base_url, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), base_url, out);
            }
        }
        _ => {}
    }
}

/// The resource a literal reference names on this server, if it names one.
fn literal(reference: &str, base_url: &str) -> Option<ResourceKey> {
    let local = match reference.strip_prefix(base_url) {
        Some(rest) => rest.strip_prefix('/')?,
        None if reference.contains("://") || reference.starts_with("urn:") => return None,
        None => reference,
    };
    let mut parts = local.split('/');
    let (res_type, id) = (parts.next()?, parts.next()?);
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) | (Some("_history"), Some(_), None) => {}
        _ => return None,
    }
    (fhir_format::is_resource_type(res_type) && super::stored::is_valid_id(id)).then(|| {
        ResourceKey {
            res_type: res_type.to_owned(),
            res_id: id.to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_references_on_this_server() {
        let base = "https://hb.example/fhir";
        let key = |t: &str, id: &str| {
            Some(ResourceKey {
                res_type: t.into(),
                res_id: id.into(),
            })
        };
        assert_eq!(literal("Patient/p1", base), key("Patient", "p1"));
        assert_eq!(literal("Patient/p1/_history/3", base), key("Patient", "p1"));
        assert_eq!(
            literal("https://hb.example/fhir/Patient/p1", base),
            key("Patient", "p1")
        );
        for other in [
            "#m1",
            "urn:uuid:2f3c0d5e-0000-4000-8000-000000000001",
            "https://other.example/fhir/Patient/p1",
            "Patient?identifier=x|1",
            "Nothing/1",
            "Patient",
        ] {
            assert_eq!(literal(other, base), None, "{other}");
        }
    }
}
