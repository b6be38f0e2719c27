//! Every non-2xx answer is an OperationOutcome (operationoutcome.html) of one
//! [`ErrorCode`], whose row in the table (`service/error_code.rs`) gives status and issue
//! type. A 5xx body carries only a generic sentence and the request
//! id; the cause is logged once, here.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::service::error_code::ERROR_CODE_SYSTEM;
use crate::service::validate::{Issue, Language};
use crate::service::{ErrorCode, ServiceError};
/// The code system of validation rule codes (docs/VALIDATION.md).
pub const RULE_CODE_SYSTEM: &str = "https://healthbook.example.org/fhir/CodeSystem/validation-rule";

/// An error answer said in more than one language (validation issues, structure errors),
/// re-rendered in the request's language by the request middleware (set on the response).
#[derive(Debug, Clone)]
pub struct Localized(pub ApiError);

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

/// Seconds a 503 asks the client to wait before it retries.
const RETRY_AFTER_SECS: u32 = 5;

/// An error answer: its code (which fixes status and issue type), message and location.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    /// In English.
    pub message: String,
    /// In Vietnamese, where the message has been translated.
    pub message_vi: Option<String>,
    pub expression: Option<Box<str>>,
    /// Seconds: every 503 says when to come back (RFC 9110 §10.2.3).
    pub retry_after: Option<u32>,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750 §3).
    pub challenge: Option<Box<str>>,
    /// Validation issues: the OperationOutcome lists them instead of the one message.
    pub validation: Box<[Issue]>,
    /// The persons whose record a refused request was about, for its audit record (never
    /// sent).
    pub patients: Option<Box<Vec<String>>>,
}

/// The persons a refused request was about (an error response's extension, read by the
/// audit middleware).
#[derive(Debug, Clone)]
pub struct RefusedPatients(pub Vec<String>);

impl ApiError {
    /// An error of `code` with the given description; a 503 asks to retry after 5 s.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            message_vi: None,
            expression: None,
            retry_after: (code.info().status == 503).then_some(RETRY_AFTER_SECS),
            challenge: None,
            validation: Box::default(),
            patients: None,
        }
    }

    /// With the location of the offending element, header or parameter.
    pub fn at(mut self, expression: Option<String>) -> Self {
        self.expression = expression.map(String::into_boxed_str);
        self
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.info().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The OperationOutcome body (validation issues in English).
    pub fn outcome(&self) -> Value {
        self.outcome_in(Language::En)
    }

    /// The OperationOutcome body in `language` (where the message has that language).
    pub fn outcome_in(&self, language: Language) -> Value {
        if !self.validation.is_empty() {
            return validation_outcome(&self.validation, language);
        }
        let text = match (language, &self.message_vi) {
            (Language::Vi, Some(vi)) => vi,
            _ => &self.message,
        };
        let info = self.code.info();
        let mut issue = json!({
            "severity": if info.status >= 500 { "fatal" } else { "error" },
            "code": info.issue_type,
            "details": {
                "coding": [{"system": ERROR_CODE_SYSTEM, "code": info.code}],
                "text": text,
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
        let info = self.code.info();
        write!(f, "{} {}", info.status, info.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        response.insert_header((header::CONTENT_TYPE, "application/fhir+json; charset=utf-8"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(challenge) = &self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge.to_string()));
        }
        let mut response = response.body(self.outcome().to_string());
        if !self.validation.is_empty() || self.message_vi.is_some() {
            response.extensions_mut().insert(Localized(self.clone()));
        }
        if let Some(patients) = &self.patients {
            response
                .extensions_mut()
                .insert(RefusedPatients(patients.to_vec()));
        }
        response
    }
}

/// What each service error adds to its code: the location, the challenge of a 403, the
/// validation issues, Retry-After, and the one log line of a failure.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Refused {
                code,
                message,
                path,
            } => ApiError::new(code, message).at(path),
            ServiceError::Format(e) => ApiError::from(e),
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
                    ..ApiError::new(ErrorCode::Forbidden, message)
                }
            }
            ServiceError::Rejected(issues) => ApiError {
                validation: issues.into_boxed_slice(),
                ..ApiError::new(
                    ErrorCode::InvalidResource,
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
                let within =
                    |message: &str| format!("Bundle.entry[{index}] ({request}): {message}{at}");
                ApiError {
                    message: within(&inner.message),
                    message_vi: inner.message_vi.as_deref().map(within),
                    expression: Some(format!("Bundle.entry[{index}]").into()),
                    ..inner
                }
            }
            ServiceError::Unavailable(cause) => {
                // The store logs the outage once; a line per request would flood the log.
                tracing::debug!(error.cause = %cause, "database unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "The service is temporarily unavailable; retry after a few seconds.",
                )
            }
            ServiceError::Conflict(cause) => {
                tracing::info!(error.cause = %cause, "write conflict after retries");
                ApiError::new(
                    ErrorCode::Conflict,
                    "The resource was changed by concurrent requests; retry the request.",
                )
            }
            ServiceError::Throttled { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    ErrorCode::QrTooMany,
                    "Too many codes from this client were unknown or misread; wait before scanning again.",
                )
            },
            ServiceError::ScanRequired { patients } => ApiError {
                patients: Some(Box::new(patients)),
                ..ApiError::new(
                    ErrorCode::QrScanRequired,
                    "This person's record opens to a practitioner when their personal QR is scanned (Patient/$qr-resolve), or by an emergency access (Patient/{id}/$emergency-access).",
                )
            },
            ServiceError::Fault(cause) => internal(&cause),
        }
    }
}

/// A 500 whose cause is logged here, once, and not sent.
pub fn internal(cause: &str) -> ApiError {
    tracing::error!(error.cause = %cause, "internal failure");
    ApiError::new(
        ErrorCode::Internal,
        "An internal error occurred; it has been logged.",
    )
}

impl From<fhir_format::FormatError> for ApiError {
    fn from(e: fhir_format::FormatError) -> Self {
        ApiError {
            message_vi: Some(e.message_vi),
            ..ApiError::new(ErrorCode::Format, e.message).at(e.path)
        }
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
                    ErrorCode::Unauthenticated,
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
                    ErrorCode::InvalidToken,
                    format!("The access token was not accepted: {why}."),
                )
            },
            AuthError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "OpenID provider unavailable");
                ApiError::new(
                    ErrorCode::IdpUnavailable,
                    "The access token cannot be checked right now; retry after a few seconds.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::validate::Issue;

    /// One OperationOutcome per error code, as a client receives it (status, issue type,
    /// code system, severity, location); `cargo insta review` shows a changed answer.
    #[test]
    fn one_outcome_per_code() {
        let mut answers = serde_json::Map::new();
        for &code in ErrorCode::ALL {
            let error = match code {
                ErrorCode::InvalidResource => {
                    ApiError::from(ServiceError::Rejected(vec![Issue::error(
                        "required",
                        "HB-REQUIRED",
                        "Immunization.status",
                        "Immunization.status is required.",
                        "Immunization.status là bắt buộc.",
                    )]))
                }
                _ => ApiError::new(code, code.info().doc).at(Some("Patient.id".into())),
            };
            let response = error.error_response();
            answers.insert(
                code.code().to_owned(),
                json!({"status": response.status().to_string(), "outcome": error.outcome()}),
            );
        }
        insta::assert_json_snapshot!("outcomes", answers);
    }
}
