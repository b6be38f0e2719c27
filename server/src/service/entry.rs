//! The entries of batch and transaction Bundles (http.html#transaction,
//! bundle.html#transaction): what each entry asks for, read from `Bundle.entry.request`,
//! and what came of it.
//!
//! An entry's `request.url` is relative to the base (`Patient`, `Patient/123`,
//! `Patient?identifier=...`, `Patient/123/_history/2`) or an absolute URL under this
//! server's base. What each method takes:
//!
//! | method | url |
//! |---|---|
//! | GET, HEAD | `[type]/[id]` read, `[type]/[id]/_history/[vid]` vread, `[type]?...` search |
//! | POST | `[type]` create (`ifNoneExist` for a conditional create) |
//! | PUT | `[type]/[id]` update, `[type]?criteria` conditional update |
//! | PATCH | `[type]/[id]`, the body a FHIRPath Patch `Parameters` or a JSON Patch `Binary` |
//! | DELETE | `[type]/[id]` delete, `[type]?criteria` conditional delete |

use crate::service::ErrorCode;
use base64::Engine;
use serde_json::Value;

use super::audit::AuditedInteraction;
use super::stored::version_of_etag;
use super::{Patch, ServiceError, StoredResource, Written};

/// `Bundle.entry.request.method` (http-verb).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The verb of an http-verb code (`GET`, as HTTP writes it).
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            _ => return None,
        })
    }

    /// The http-verb code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// Reads change nothing and are processed last in a transaction (http.html#trules).
    pub fn is_read(self) -> bool {
        matches!(self, Self::Get | Self::Head)
    }
}

/// What an entry's URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `[type]`, with the query after `?` when there is one.
    Type {
        res_type: String,
        query: Option<String>,
    },
    /// `[type]/[id]`
    Instance { res_type: String, id: String },
    /// `[type]/[id]/_history/[vid]`
    Version {
        res_type: String,
        id: String,
        version: String,
    },
}

impl Target {
    /// The resource type the URL names.
    pub fn res_type(&self) -> &str {
        match self {
            Self::Type { res_type, .. }
            | Self::Instance { res_type, .. }
            | Self::Version { res_type, .. } => res_type,
        }
    }
}

/// What one entry asks the server to do.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its place in `Bundle.entry`.
    pub index: usize,
    pub full_url: Option<String>,
    pub method: Method,
    pub target: Target,
    pub resource: Option<Value>,
    /// `request.ifMatch`, as a version.
    pub if_match: Option<i64>,
    /// `request.ifNoneExist`, as a query string without `?`.
    pub if_none_exist: Option<String>,
}

impl Entry {
    /// The method and resource type, to name the entry in errors and logs (no query: it
    /// may hold identifiers).
    pub fn request(&self) -> String {
        format!("{} {}", self.method.code(), self.target.res_type())
    }

    /// The RESTful interaction the entry stands for (for its AuditEvent).
    pub fn interaction(&self) -> AuditedInteraction {
        use AuditedInteraction as I;
        match (self.method, &self.target) {
            (Method::Get | Method::Head, Target::Instance { .. }) => I::Read,
            (Method::Get | Method::Head, Target::Version { .. }) => I::Vread,
            (Method::Get | Method::Head, Target::Type { .. }) => I::SearchType,
            (Method::Post, _) => I::Create,
            (Method::Put, _) => I::Update,
            (Method::Patch, _) => I::Patch,
            (Method::Delete, _) => I::Delete,
        }
    }

    /// `err` as this entry's failure.
    pub fn failed(&self, err: ServiceError) -> ServiceError {
        match err {
            err @ ServiceError::InEntry { .. } => err,
            err => ServiceError::InEntry {
                index: self.index,
                request: self.request(),
                source: Box::new(err),
            },
        }
    }

    /// The resource of a POST or PUT entry.
    ///
    /// # Errors
    /// 400 when the entry has none.
    pub fn body(&self) -> Result<&Value, ServiceError> {
        self.resource.as_ref().ok_or_else(|| {
            ServiceError::at(
                ErrorCode::BundleEntry,
                format!("Bundle.entry[{}].resource", self.index),
                format!("A {} entry needs a resource.", self.method.code()),
            )
        })
    }

    /// The patch a PATCH entry carries (http.html#patch: a FHIRPath Patch `Parameters`,
    /// or a `Binary` holding a JSON Patch document).
    ///
    /// # Errors
    /// 400 when the entry carries neither.
    pub fn patch(&self) -> Result<Patch, ServiceError> {
        let body = self.body()?;
        match body.get("resourceType").and_then(Value::as_str) {
            Some("Parameters") => Patch::fhirpath_patch(body),
            Some("Binary")
                if body.get("contentType").and_then(Value::as_str)
                    == Some("application/json-patch+json") =>
            {
                let data = body
                    .get("data")
                    .and_then(Value::as_str)
                    .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                    .ok_or_else(|| {
                        ServiceError::at(
                            ErrorCode::BundleEntry,
                            format!("Bundle.entry[{}].resource.data", self.index),
                            "The Binary holds no base64 JSON Patch document.",
                        )
                    })?;
                Patch::json_patch(&data)
            }
            _ => Err(ServiceError::at(
                ErrorCode::BundleEntry,
                format!("Bundle.entry[{}].resource", self.index),
                "A PATCH entry holds a FHIRPath Patch (Parameters) or a JSON Patch (Binary \
                 with contentType application/json-patch+json).",
            )),
        }
    }
}

/// What came of one entry.
#[derive(Debug, Clone)]
pub enum EntryOutcome {
    /// A create, update or patch (or a conditional create that found its match).
    Written(Written),
    /// A delete; the version that records it, when there was something to delete.
    Deleted(Option<i64>),
    /// A read or vread.
    Resource(StoredResource),
    /// A search: the `searchset` Bundle (JSON).
    Bundle(String),
}

/// One entry's result, with what the entry was (for the response and the audit).
#[derive(Debug)]
pub struct EntryResult {
    pub interaction: AuditedInteraction,
    pub res_type: String,
    pub result: Result<EntryOutcome, ServiceError>,
}

impl EntryResult {
    /// The result of `entry`.
    pub fn of(entry: &Entry, result: Result<EntryOutcome, ServiceError>) -> Self {
        Self {
            interaction: entry.interaction(),
            res_type: entry.target.res_type().to_owned(),
            result,
        }
    }
}

/// The entries of a batch or transaction Bundle, in order.
///
/// # Errors
/// 400 naming the entry whose request is missing or malformed.
pub fn entries(bundle: &Value, base_url: &str) -> Result<Vec<Entry>, ServiceError> {
    let Some(list) = bundle.get("entry") else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| {
        ServiceError::at(
            ErrorCode::BundleEntry,
            "Bundle.entry",
            "Bundle.entry is a list.",
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(index, entry)| parse_entry(index, entry, base_url))
        .collect()
}

fn parse_entry(index: usize, entry: &Value, base_url: &str) -> Result<Entry, ServiceError> {
    let at = |element: &str| format!("Bundle.entry[{index}].{element}");
    let request = entry.get("request").ok_or_else(|| {
        ServiceError::at(
            ErrorCode::BundleEntry,
            at("request"),
            "Each entry of a batch or transaction needs a request (method and url).",
        )
    })?;
    let text = |name: &str| request.get(name).and_then(Value::as_str);
    let method = text("method").and_then(Method::parse).ok_or_else(|| {
        ServiceError::at(
            ErrorCode::BundleEntry,
            at("request.method"),
            "request.method is one of GET, HEAD, POST, PUT, PATCH or DELETE.",
        )
    })?;
    let url = text("url").ok_or_else(|| {
        ServiceError::at(
            ErrorCode::BundleEntry,
            at("request.url"),
            "The entry's request has no url.",
        )
    })?;
    let target = parse_url(url, base_url).ok_or_else(|| {
        ServiceError::at(
            ErrorCode::BundleEntry,
            at("request.url"),
            "request.url is not a resource type, resource or version of this server \
             ([type], [type]/[id], [type]?criteria or [type]/[id]/_history/[vid]).",
        )
    })?;
    let allowed = matches!(
        (&method, &target),
        (Method::Get | Method::Head, _)
            | (Method::Post, Target::Type { query: None, .. })
            | (
                Method::Put | Method::Delete,
                Target::Type { query: Some(_), .. }
            )
            | (
                Method::Put | Method::Patch | Method::Delete,
                Target::Instance { .. }
            )
    );
    if !allowed {
        return Err(ServiceError::at(
            ErrorCode::BundleEntry,
            at("request.url"),
            format!(
                "{} does not take this kind of url in a bundle (see http.html#transaction).",
                method.code()
            ),
        ));
    }
    let if_match = match text("ifMatch") {
        None => None,
        Some(tag) => Some(version_of_etag(tag).ok_or_else(|| {
            ServiceError::at(
                ErrorCode::IfMatch,
                at("request.ifMatch"),
                "ifMatch must be a version ETag such as W/\"3\".",
            )
        })?),
    };
    let if_none_exist = text("ifNoneExist").map(|v| {
        let v = v.trim();
        v.split_once('?').map_or(v, |(_, q)| q).to_owned()
    });
    let resource = entry.get("resource").cloned();
    if matches!(method, Method::Post | Method::Put) {
        let body_type = resource
            .as_ref()
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str);
        match body_type {
            None => {
                return Err(ServiceError::at(
                    ErrorCode::BundleEntry,
                    at("resource"),
                    format!("A {} entry needs a resource.", method.code()),
                ))
            }
            Some(t) if t != target.res_type() => {
                return Err(ServiceError::at(
                    ErrorCode::BundleEntry,
                    at("resource"),
                    format!(
                        "The entry's resource is a {t}, but its url is for {}.",
                        target.res_type()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let full_url = entry.get("fullUrl").and_then(Value::as_str);
    if let Some(url) = full_url {
        // bundle.html#bundle-unique: a `urn:uuid:` fullUrl holds a UUID, a `urn:oid:` one
        // an OID; anything else would be a reference no one can resolve.
        let well_formed = match (url.strip_prefix("urn:uuid:"), url.strip_prefix("urn:oid:")) {
            (Some(uuid), _) => uuid.len() == 36 && uuid::Uuid::parse_str(uuid).is_ok(),
            (_, Some(oid)) => {
                oid.split('.').count() >= 2
                    && oid
                        .split('.')
                        .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
            }
            _ => true,
        };
        if !well_formed {
            return Err(ServiceError::at(
                ErrorCode::BundleEntry,
                at("fullUrl"),
                format!("'{url}' is not a urn:uuid: with a UUID or a urn:oid: with an OID."),
            ));
        }
    }
    Ok(Entry {
        index,
        full_url: full_url.map(str::to_owned),
        method,
        target,
        resource,
        if_match,
        if_none_exist,
    })
}

/// Reads a request URL relative to the base (an absolute URL must be under `base_url`).
fn parse_url(url: &str, base_url: &str) -> Option<Target> {
    let (path, query) = match url.trim().split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (url.trim(), None),
    };
    let path = if path.contains("://") {
        path.strip_prefix(base_url)?.strip_prefix('/')?
    } else {
        path.trim_start_matches('/')
    };
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(match segments.as_slice() {
        [t] => Target::Type {
            res_type: (*t).to_owned(),
            query,
        },
        [t, id] if !id.starts_with(['_', '$']) => Target::Instance {
            res_type: (*t).to_owned(),
            id: (*id).to_owned(),
        },
        [t, id, "_history", version] => Target::Version {
            res_type: (*t).to_owned(),
            id: (*id).to_owned(),
            version: (*version).to_owned(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: &str = "http://x/fhir";

    fn one(request: Value, resource: Option<Value>) -> Result<Entry, ServiceError> {
        let mut entry = json!({ "request": request });
        if let Some(r) = resource {
            entry["resource"] = r;
        }
        entries(&json!({"entry": [entry]}), BASE).map(|mut e| e.remove(0))
    }

    #[test]
    fn urls_relative_and_absolute() {
        assert_eq!(
            parse_url("Patient/1", BASE),
            Some(Target::Instance {
                res_type: "Patient".into(),
                id: "1".into()
            })
        );
        assert_eq!(
            parse_url("http://x/fhir/Patient/1", BASE),
            parse_url("Patient/1", BASE)
        );
        assert_eq!(parse_url("http://other/fhir/Patient/1", BASE), None);
        assert_eq!(
            parse_url("Patient?identifier=http://sys|1", BASE),
            Some(Target::Type {
                res_type: "Patient".into(),
                query: Some("identifier=http://sys|1".into())
            })
        );
        assert_eq!(
            parse_url("Patient?identifier=a|b", BASE),
            Some(Target::Type {
                res_type: "Patient".into(),
                query: Some("identifier=a|b".into())
            })
        );
        assert!(matches!(
            parse_url("Patient/1/_history/2", BASE),
            Some(Target::Version { .. })
        ));
        assert_eq!(parse_url("Patient/$everything", BASE), None);
        assert_eq!(parse_url("Patient//1", BASE), None);
    }

    #[test]
    fn methods_take_their_urls_only() {
        let patient = || Some(json!({"resourceType": "Patient"}));
        assert!(one(json!({"method": "POST", "url": "Patient"}), patient()).is_ok());
        assert!(one(json!({"method": "POST", "url": "Patient/1"}), patient()).is_err());
        assert!(one(json!({"method": "PATCH", "url": "Patient?x=1"}), None).is_err());
        assert!(one(json!({"method": "DELETE", "url": "Patient?x=1"}), None).is_ok());
        assert!(one(json!({"method": "PUT", "url": "Observation/1"}), patient()).is_err());
        assert!(one(json!({"method": "POST", "url": "Patient"}), None).is_err());
        assert!(one(json!({"method": "OPTIONS", "url": "Patient"}), None).is_err());
        let e = one(
            json!({"method": "POST", "url": "Patient", "ifNoneExist": "Patient?identifier=a|1", "ifMatch": "W/\"2\""}),
            patient(),
        )
        .unwrap();
        assert_eq!(e.if_none_exist.as_deref(), Some("identifier=a|1"));
        assert_eq!(e.if_match, Some(2));
        assert_eq!(e.request(), "POST Patient");
    }

    #[test]
    fn a_bad_entry_is_named() {
        let err = entries(
            &json!({"entry": [{"request": {"method": "GET", "url": "Patient"}}, {}]}),
            BASE,
        )
        .unwrap_err();
        match err {
            ServiceError::Refused {
                code: ErrorCode::BundleEntry,
                path,
                ..
            } => {
                assert_eq!(path.as_deref(), Some("Bundle.entry[1].request"))
            }
            other => panic!("{other:?}"),
        }
    }
}
