//! Search index rows computed at write time. The foundation indexes the `identifier`
//! token (search.html#token), which conditional interactions use; the search issue grows
//! this into every R4 SearchParameter.

use serde_json::Value;

use crate::store::NewTokenRow;

/// Token rows for `identifier` (`[type].identifier`, single or repeating).
pub fn tokens(res_type: &str, id: &str, resource: &Value) -> Vec<NewTokenRow> {
    let identifiers: Vec<&Value> = match resource.get("identifier") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    };
    let mut rows: Vec<NewTokenRow> = identifiers
        .into_iter()
        .filter_map(|identifier| {
            let code = identifier.get("value")?.as_str()?;
            let system = identifier
                .get("system")
                .and_then(Value::as_str)
                .unwrap_or("");
            Some(NewTokenRow {
                res_type: res_type.to_owned(),
                res_id: id.to_owned(),
                param: "identifier".to_owned(),
                system: system.to_owned(),
                code: code.to_owned(),
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.system, &a.code).cmp(&(&b.system, &b.code)));
    rows.dedup();
    rows
}

/// The lock key writers take for an identifier value of a type, so that a conditional
/// create testing `identifier=[system|]code` and any write adding that identifier are
/// serialised. The system is left out so that criteria with and without it meet.
pub fn identifier_lock_key(res_type: &str, code: &str) -> i64 {
    lock_key(&["identifier", res_type, code])
}

/// The lock key every write of (type, id) takes, so that concurrent writes of one
/// resource queue instead of racing for the next version number.
pub fn resource_lock_key(res_type: &str, id: &str) -> i64 {
    lock_key(&["resource", res_type, id])
}

fn lock_key(parts: &[&str]) -> i64 {
    // FNV-1a: stable across processes and machines, unlike std's randomised hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.bytes().chain([0x1f])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_tokens_dedup_and_allow_single_identifier() {
        let p = serde_json::json!({"identifier":[{"system":"s","value":"1"},{"system":"s","value":"1"},{"value":"2"}]});
        let rows = tokens("Patient", "a", &p);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].system, "");
        let b = serde_json::json!({"identifier":{"system":"s","value":"9"}});
        assert_eq!(tokens("Bundle", "b", &b)[0].code, "9");
    }

    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(
            identifier_lock_key("Patient", "1"),
            identifier_lock_key("Patient", "1")
        );
        assert_ne!(
            identifier_lock_key("Patient", "1"),
            identifier_lock_key("Patient", "2")
        );
        assert_ne!(
            identifier_lock_key("Patient", "1"),
            resource_lock_key("Patient", "1")
        );
    }
}
