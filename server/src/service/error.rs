//! Errors of the service layer, in FHIR terms. Each refusal names its [`ErrorCode`], which
//! fixes its HTTP status and issue type (the one table, `error_code.rs`); `http/` only
//! renders them. Store errors arrive here as categories (unavailable, conflict, fault) and
//! go no further.

use super::error_code::ErrorCode;
use crate::store::{StoreError, WriteFailure};

/// Why an interaction failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request cannot be carried out as sent, for the reason `code` names; `path`
    /// names the offending element, header or parameter.
    #[error("{message}")]
    Refused {
        code: ErrorCode,
        message: String,
        path: Option<String>,
    },
    /// The body is not a FHIR resource (`HB-FORMAT`, 400), said in English and Vietnamese.
    #[error("{0}")]
    Format(fhir_format::FormatError),
    /// The resource breaks validation rules (`HB-INVALID-RESOURCE`, 422); every issue,
    /// errors first (validate/).
    #[error("the resource is not valid ({} issues)", .0.len())]
    Rejected(Vec<super::validate::Issue>),
    /// The token lacks the scope, or the resource is outside the patient's compartment
    /// (`HB-FORBIDDEN`, 403). `scope` names what would be needed, when one scope would do.
    #[error("access denied")]
    Forbidden { scope: String },
    /// An entry of a batch or transaction Bundle failed (http.html#transaction): `index`
    /// is its place in `Bundle.entry`, `request` its method and resource type (never its
    /// query, which may hold identifiers).
    #[error("Bundle.entry[{index}] ({request}): {source}")]
    InEntry {
        index: usize,
        request: String,
        source: Box<ServiceError>,
    },
    /// The database cannot be reached (`HB-UNAVAILABLE`, 503); the store logs the outage.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Concurrent writes won every retry (`HB-CONFLICT`, 409).
    #[error("a concurrent write conflicted: {0}")]
    Conflict(String),
    /// A practitioner without an access grant for the person whose record this is
    /// (`HB-QR-SCAN-REQUIRED`, 403, the personal-QR rule). `patients` are that person (or
    /// those persons), for the audit record only: the person sees the attempt in their
    /// access log; the answer does not name them.
    #[error("a scan of the person's QR is required")]
    ScanRequired { patients: Vec<String> },
    /// Too many failed personal QR lookups from this client (`HB-QR-TOO-MANY`, 429): try
    /// again after `retry_after` seconds.
    #[error("too many failed QR lookups; retry after {retry_after} s")]
    Throttled { retry_after: u32 },
    /// A bug or a broken database (`HB-INTERNAL`, 500): logged, never sent.
    #[error("internal failure: {0}")]
    Fault(String),
}

impl ServiceError {
    /// A refusal with no particular location.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Refused {
            code,
            message: message.into(),
            path: None,
        }
    }

    /// A refusal about the element, header or parameter at `path`.
    pub fn at(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Refused {
            code,
            message: message.into(),
            path: Some(path.into()),
        }
    }

    /// `HB-NOT-FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `HB-DELETED`: the resource has been deleted (http.html#read: 410).
    pub fn gone(res_type: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::Deleted,
            format!("{res_type}/{id} has been deleted; its history is still available."),
        )
    }

    /// The code of the answer this error becomes.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::Refused { code, .. } => *code,
            ServiceError::Format(_) => ErrorCode::Format,
            ServiceError::Rejected(_) => ErrorCode::InvalidResource,
            ServiceError::Forbidden { .. } => ErrorCode::Forbidden,
            ServiceError::InEntry { source, .. } => source.code(),
            ServiceError::Unavailable(_) => ErrorCode::Unavailable,
            ServiceError::Conflict(_) => ErrorCode::Conflict,
            ServiceError::Throttled { .. } => ErrorCode::QrTooMany,
            ServiceError::ScanRequired { .. } => ErrorCode::QrScanRequired,
            ServiceError::Fault(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => ServiceError::Unavailable(cause),
            StoreError::Missing(missing) => ServiceError::Rejected(
                missing
                    .into_iter()
                    .map(|(path, key)| {
                        let target = format!("{}/{}", key.res_type, key.res_id);
                        super::validate::Issue::error(
                            "not-found",
                            "HB-REFERENCE-UNKNOWN",
                            path,
                            format!("{target} does not exist on this server; create it first, or send both in one transaction."),
                            format!("{target} không có trên máy chủ này; hãy tạo nó trước, hoặc gửi cả hai trong một giao dịch (transaction)."),
                        )
                    })
                    .collect(),
            ),
            StoreError::Timeout(after) => ServiceError::new(
                ErrorCode::Timeout,
                format!(
                    "The search ran longer than this server allows ({} ms) and was stopped; narrow it (fewer or more selective parameters) or retry later.",
                    after.as_millis()
                ),
            ),
            StoreError::Conflict(cause) => ServiceError::Conflict(cause),
            other => ServiceError::Fault(other.to_string()),
        }
    }
}

impl From<fhir_format::FormatError> for ServiceError {
    fn from(e: fhir_format::FormatError) -> Self {
        ServiceError::Format(e)
    }
}

impl WriteFailure for ServiceError {
    fn is_conflict(&self) -> bool {
        match self {
            ServiceError::Conflict(_) => true,
            ServiceError::InEntry { source, .. } => source.is_conflict(),
            _ => false,
        }
    }

    fn is_unavailable(&self) -> bool {
        match self {
            ServiceError::Unavailable(_) => true,
            ServiceError::InEntry { source, .. } => source.is_unavailable(),
            _ => false,
        }
    }
}
