//! Every non-2xx answer is an OperationOutcome (operationoutcome.html), with the status
//! chosen in one table here. A 5xx body carries only a generic sentence and the request
//! id; the cause is logged once, here.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::service::validate::{Issue, Language};
use crate::service::ServiceError;
use crate::store::StoreError;

/// The code system of Healthbook's stable error codes (in `issue.details.coding`).
pub const ERROR_CODE_SYSTEM: &str = "https://healthbook.example.org/fhir/CodeSystem/error";
/// The code system of validation rule codes (docs/VALIDATION.md).
pub const RULE_CODE_SYSTEM: &str = "https://healthbook.example.org/fhir/CodeSystem/validation-rule";

/// Validation issues in an answer, re-rendered in the request's language by the request
/// middleware (set on the response).
#[derive(Debug, Clone)]
pub struct LocalizedIssues(pub Vec<Issue>);

/// An OperationOutcome of validation issues, in `language`.
pub fn validation_outcome(issues: &[Issue], language: Language) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            json!({
                "severity": i.severity.code(),
                "code": i.kind,
                "details": {
                    "coding": [{"system": RULE_CODE_SYSTEM, "code": i.rule}],
                    "text": i.message(language),
                },
                "expression": [i.expression],
            })
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

/// An error answer: status, issue type, stable code, message and location.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// IssueType code (http://hl7.org/fhir/issue-type).
    pub issue_type: &'static str,
    /// Stable Healthbook code, e.g. `HB-INVALID`.
    pub code: &'static str,
    pub message: String,
    pub expression: Option<Box<str>>,
    /// Seconds, for 503.
    pub retry_after: Option<u32>,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750 §3).
    pub challenge: Option<Box<str>>,
    /// Validation issues: the OperationOutcome lists them instead of the one message.
    pub validation: Box<[Issue]>,
}

impl ApiError {
    /// An error with the given status and description.
    pub fn new(
        status: StatusCode,
        issue_type: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            issue_type,
            code,
            message: message.into(),
            expression: None,
            retry_after: None,
            challenge: None,
            validation: Box::default(),
        }
    }

    /// A 400 about the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", "HB-INVALID", message)
    }

    /// With the location of the offending element or parameter.
    pub fn at(mut self, expression: Option<String>) -> Self {
        self.expression = expression.map(String::into_boxed_str);
        self
    }

    /// The OperationOutcome body (validation issues in English).
    pub fn outcome(&self) -> Value {
        self.outcome_in(Language::En)
    }

    /// The OperationOutcome body, validation issues in `language`.
    pub fn outcome_in(&self, language: Language) -> Value {
        if !self.validation.is_empty() {
            return validation_outcome(&self.validation, language);
        }
        let mut issue = json!({
            "severity": if self.status.is_server_error() { "fatal" } else { "error" },
            "code": self.issue_type,
            "details": {
                "coding": [{"system": ERROR_CODE_SYSTEM, "code": self.code}],
                "text": self.message,
            },
        });
        if let Some(expression) = &self.expression {
            issue["expression"] = json!([expression]);
        }
        json!({"resourceType": "OperationOutcome", "issue": [issue]})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, "application/fhir+json; charset=utf-8"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(challenge) = &self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge.to_string()));
        }
        let mut response = response.body(self.outcome().to_string());
        if !self.validation.is_empty() {
            response
                .extensions_mut()
                .insert(LocalizedIssues(self.validation.to_vec()));
        }
        response
    }
}

/// The one table from service categories to HTTP statuses.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        match e {
            ServiceError::Invalid { message, path } => {
                ApiError::new(S::BAD_REQUEST, "invalid", "HB-INVALID", message).at(path)
            }
            ServiceError::NotFound(message) => {
                ApiError::new(S::NOT_FOUND, "not-found", "HB-NOT-FOUND", message)
            }
            ServiceError::Gone { res_type, id } => ApiError::new(
                S::GONE,
                "deleted",
                "HB-DELETED",
                format!("{res_type}/{id} has been deleted; its history is still available."),
            ),
            ServiceError::PreconditionFailed(message) => ApiError::new(
                S::PRECONDITION_FAILED,
                "conflict",
                "HB-PRECONDITION",
                message,
            ),
            ServiceError::Unprocessable { message, path } => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "processing",
                "HB-UNPROCESSABLE",
                message,
            )
            .at(path),
            ServiceError::Forbidden { scope } => {
                let (message, challenge) = if scope.is_empty() {
                    (
                        "The access token does not allow this interaction on this resource."
                            .to_owned(),
                        r#"Bearer realm="healthbook", error="insufficient_scope""#.to_owned(),
                    )
                } else {
                    (
                        format!(
                            "The access token lacks the scope this interaction needs ({scope})."
                        ),
                        format!(
                            r#"Bearer realm="healthbook", error="insufficient_scope", scope="{scope}""#
                        ),
                    )
                };
                ApiError {
                    challenge: Some(challenge.into()),
                    ..ApiError::new(S::FORBIDDEN, "forbidden", "HB-FORBIDDEN", message)
                }
            }
            ServiceError::NotAllowed(message) => ApiError::new(
                S::METHOD_NOT_ALLOWED,
                "not-supported",
                "HB-NOT-ALLOWED",
                message,
            ),
            ServiceError::Rejected(issues) => ApiError {
                validation: issues.into_boxed_slice(),
                ..ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "processing",
                    "HB-INVALID-RESOURCE",
                    "The resource breaks validation rules.",
                )
            },
            ServiceError::InEntry {
                index,
                request,
                source,
            } => {
                let mut inner = ApiError::from(*source);
                // Validation issues are located in the Bundle: `Patient.gender` of entry 2
                // is `Bundle.entry[2].resource.gender`.
                for issue in inner.validation.iter_mut() {
                    let rest = issue.expression.split_once('.').map_or("", |(_, r)| r);
                    issue.expression = if rest.is_empty() {
                        format!("Bundle.entry[{index}].resource")
                    } else {
                        format!("Bundle.entry[{index}].resource.{rest}")
                    };
                }
                let at = inner
                    .expression
                    .as_deref()
                    .map(|e| format!(" (at {e})"))
                    .unwrap_or_default();
                ApiError {
                    message: format!("Bundle.entry[{index}] ({request}): {}{at}", inner.message),
                    expression: Some(format!("Bundle.entry[{index}]").into()),
                    ..inner
                }
            }
            ServiceError::Store(StoreError::Unavailable(cause)) => {
                // The store logs the outage once; a line per request would flood the log.
                tracing::debug!(error.cause = %cause, "database unavailable");
                ApiError {
                    retry_after: Some(5),
                    ..ApiError::new(
                        S::SERVICE_UNAVAILABLE,
                        "transient",
                        "HB-UNAVAILABLE",
                        "The service is temporarily unavailable; retry after a few seconds.",
                    )
                }
            }
            ServiceError::Store(StoreError::Conflict(cause)) => {
                tracing::info!(error.cause = %cause, "write conflict after retries");
                ApiError::new(
                    S::CONFLICT,
                    "conflict",
                    "HB-CONFLICT",
                    "The resource was changed by concurrent requests; retry the request.",
                )
            }
            other => {
                tracing::error!(error.cause = %other, error.debug = ?other, "internal failure");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "exception",
                    "HB-INTERNAL",
                    "An internal error occurred; it has been logged.",
                )
            }
        }
    }
}

impl From<fhir_format::FormatError> for ApiError {
    fn from(e: fhir_format::FormatError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "structure", "HB-FORMAT", e.message).at(e.path)
    }
}

/// RFC 6750 §3: 401 with a Bearer challenge (no error code when no token was sent); a
/// provider that cannot be reached is 503, not 401, so users are not logged out by it.
impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match e {
            AuthError::Missing => ApiError {
                challenge: Some(r#"Bearer realm="healthbook""#.into()),
                ..ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "login",
                    "HB-UNAUTHENTICATED",
                    "This server needs an access token: send Authorization: Bearer <token>.",
                )
            },
            AuthError::Invalid(why) => ApiError {
                challenge: Some(
                    format!(
                        r#"Bearer realm="healthbook", error="invalid_token", error_description="{why}""#
                    )
                    .into(),
                ),
                ..ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "login",
                    "HB-INVALID-TOKEN",
                    format!("The access token was not accepted: {why}."),
                )
            },
            AuthError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "OpenID provider unavailable");
                ApiError {
                    retry_after: Some(5),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "transient",
                        "HB-IDP-UNAVAILABLE",
                        "The access token cannot be checked right now; retry after a few seconds.",
                    )
                }
            }
        }
    }
}
