//! A stored resource version as the service hands it to `http/`, and how a new version's
//! content is stamped with its id and meta (resource.html#Meta: versionId and lastUpdated
//! are always set by the server).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::ServiceError;
use crate::store::ResourceRow;

/// One version of a resource, with its JSON kept as stored (no re-parse to serve it).
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub res_type: String,
    pub id: String,
    pub version_id: i64,
    /// Milliseconds since the Unix epoch, UTC.
    pub last_updated: i64,
    pub deleted: bool,
    /// The HTTP method that produced this version.
    pub method: String,
    /// Resource JSON with id and meta; `None` for a deletion.
    pub content: Option<String>,
}

impl From<ResourceRow> for StoredResource {
    fn from(row: ResourceRow) -> Self {
        Self {
            res_type: row.res_type,
            id: row.res_id,
            version_id: row.version_id,
            last_updated: row.last_updated,
            deleted: row.deleted,
            method: row.method,
            content: row.content,
        }
    }
}

impl StoredResource {
    /// The weak ETag of this version (http.html#versioning).
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version_id)
    }

    /// The content as JSON (`null` for a deletion).
    ///
    /// # Errors
    /// A fault if stored JSON cannot be read (never expected).
    pub fn json(&self) -> Result<Value, ServiceError> {
        match &self.content {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ServiceError::Fault(format!("stored JSON unreadable: {e}"))),
            None => Ok(Value::Null),
        }
    }

    /// `meta.lastUpdated` as a FHIR instant.
    pub fn last_updated_instant(&self) -> String {
        instant(self.last_updated)
    }
}

/// Formats milliseconds since the epoch as a FHIR instant (`2026-11-28T10:00:00.123Z`).
pub fn instant(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`, keeping the other meta elements the
/// client sent (profile, security, tag, source) and the standard element order.
pub fn stamp(resource: &Value, id: &str, version_id: i64, last_updated: i64) -> String {
    let empty = Map::new();
    let body = resource.as_object().unwrap_or(&empty);
    let mut meta = Map::new();
    meta.insert("versionId".into(), Value::String(version_id.to_string()));
    meta.insert("lastUpdated".into(), Value::String(instant(last_updated)));
    if let Some(Value::Object(sent)) = body.get("meta") {
        for (k, v) in sent {
            if k != "versionId" && k != "lastUpdated" {
                meta.insert(k.clone(), v.clone());
            }
        }
    }
    let mut out = Map::new();
    out.insert(
        "resourceType".into(),
        body.get("resourceType").cloned().unwrap_or(Value::Null),
    );
    out.insert("id".into(), Value::String(id.to_owned()));
    out.insert("meta".into(), Value::Object(meta));
    for (k, v) in body {
        if !matches!(k.as_str(), "resourceType" | "id" | "meta") {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out).to_string()
}

/// The version a version ETag names (`W/"3"`, `"3"`; http.html#concurrency).
pub fn version_of_etag(tag: &str) -> Option<i64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.trim_matches('"').parse().ok()
}

/// Whether `id` is a valid FHIR id (datatypes.html#id: 1-64 of `A-Z a-z 0-9 - .`).
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_sets_server_meta_and_keeps_client_tags() {
        let sent = serde_json::json!({"resourceType":"Patient","id":"x","meta":{"versionId":"9","tag":[{"code":"t"}]},"gender":"male"});
        let out: Value = serde_json::from_str(&stamp(&sent, "abc", 2, 0)).unwrap();
        assert_eq!(out["id"], "abc");
        assert_eq!(out["meta"]["versionId"], "2");
        assert_eq!(out["meta"]["lastUpdated"], "1970-01-01T00:00:00.000Z");
        assert_eq!(out["meta"]["tag"][0]["code"], "t");
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "gender"]);
    }

    #[test]
    fn etags() {
        assert_eq!(version_of_etag("W/\"3\""), Some(3));
        assert_eq!(version_of_etag("\"12\""), Some(12));
        assert_eq!(version_of_etag("W/\"x\""), None);
    }

    #[test]
    fn ids() {
        assert!(is_valid_id("a-1.B"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a_b"));
        assert!(!is_valid_id(&"a".repeat(65)));
    }
}
