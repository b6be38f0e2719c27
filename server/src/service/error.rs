//! Errors of the service layer: FHIR categories, mapped to HTTP statuses only in `http/`.

use crate::store::{AsStoreError, StoreError};

/// Why an interaction failed, in FHIR terms.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed (400); `path` names the offending element or parameter.
    #[error("{message}")]
    Invalid {
        message: String,
        path: Option<String>,
    },
    /// The resource type, resource or version does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource existed and was deleted (410).
    #[error("{res_type}/{id} was deleted")]
    Gone { res_type: String, id: String },
    /// A precondition (If-Match, a conditional match count) failed (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request is well-formed but its result would be an invalid resource (422).
    #[error("{message}")]
    Unprocessable {
        message: String,
        path: Option<String>,
    },
    /// The resource breaks validation rules (422); every issue, errors first
    /// (validate/).
    #[error("the resource is not valid ({} issues)", .0.len())]
    Rejected(Vec<super::validate::Issue>),
    /// The token lacks the scope, or the resource is outside the patient's compartment
    /// (403). `scope` names what would be needed, when one scope would do.
    #[error("access denied")]
    Forbidden { scope: String },
    /// The interaction is not supported on this target (405).
    #[error("{0}")]
    NotAllowed(String),
    /// An entry of a batch or transaction Bundle failed (http.html#transaction): `index`
    /// is its place in `Bundle.entry`, `request` its method and resource type (never its
    /// query, which may hold identifiers).
    #[error("Bundle.entry[{index}] ({request}): {source}")]
    InEntry {
        index: usize,
        request: String,
        source: Box<ServiceError>,
    },
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: the worker task died.
    #[error("internal failure: {0}")]
    Fault(String),
}

impl ServiceError {
    /// A 400 error about `path`.
    pub fn invalid_at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            message: message.into(),
            path: Some(path.into()),
        }
    }

    /// A 400 error with no particular location.
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            message: message.into(),
            path: None,
        }
    }
}

impl From<fhir_format::FormatError> for ServiceError {
    fn from(e: fhir_format::FormatError) -> Self {
        ServiceError::Invalid {
            message: e.message,
            path: e.path,
        }
    }
}

impl AsStoreError for ServiceError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            ServiceError::Store(e) => Some(e),
            ServiceError::InEntry { source, .. } => source.as_store_error(),
            _ => None,
        }
    }
}
