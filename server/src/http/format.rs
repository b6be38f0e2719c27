//! Content negotiation — https://hl7.org/fhir/R4/http.html#mime
//!
//! Response format from `_format` (which wins) or `Accept`; request format from
//! `Content-Type`. `application/json` and `application/xml` are accepted as FHIR JSON and
//! XML, as real clients send them. `_pretty=true` indents the answer.

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpRequest;
use serde_json::Value;

use super::error::ApiError;
use crate::service::shape::Shape;

/// A wire format of FHIR resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// How a resource is written back to the client.
#[derive(Debug, Clone)]
pub struct Representation {
    pub format: Format,
    /// The media type of the answer.
    pub mime: &'static str,
    pub pretty: bool,
    pub shape: Shape,
}

const JSON: &str = "application/fhir+json";
const XML: &str = "application/fhir+xml";

/// The format a media type or `_format` value names. Answers always carry the formal
/// FHIR media type ("The correct mime type SHALL be used by clients and servers").
fn by_name(name: &str) -> Option<(Format, &'static str)> {
    let essence = name
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "json"
        | "application/fhir+json"
        | "application/json+fhir"
        | "application/json"
        | "text/json"
        | "*/*"
        | "application/*" => Some((Format::Json, JSON)),
        "xml"
        | "application/fhir+xml"
        | "application/xml+fhir"
        | "application/xml"
        | "text/xml" => Some((Format::Xml, XML)),
        _ => None,
    }
}

/// Whether a media type's parameters are ones this server serves: `fhirVersion` 4.0 (R4;
/// http.html#version-parameter) and, for a body, `charset` UTF-8 (http.html#mime-type).
fn parameters_served(media_type: &str, body: bool) -> bool {
    media_type.split(';').skip(1).all(|p| {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "fhirversion" => matches!(value, "4.0" | "4.0.1"),
            "charset" if body => value.eq_ignore_ascii_case("utf-8"),
            _ => true,
        }
    })
}

/// Every parameter of the request's query string, in order, decoded.
///
/// # Errors
/// 400 for a parameter that is not UTF-8 once percent-decoded.
pub fn query_params(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    crate::service::search::params::query_pairs(req.query_string().as_bytes())
        .map_err(ApiError::from)
}

/// The value of a query parameter (first occurrence), decoded.
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Representation {
    /// Negotiates the answer's format and shape for a request.
    ///
    /// # Errors
    /// 406 when neither `_format` nor `Accept` names a format this server writes; 400 for
    /// bad `_summary`/`_elements`/`_pretty` values.
    pub fn negotiate(req: &HttpRequest) -> Result<Self, ApiError> {
        let format = Self::negotiate_bundle(req)?;
        Ok(Self {
            shape: Shape::parse(req.query_string()).map_err(ApiError::from)?,
            ..format
        })
    }

    /// Negotiates the format of a Bundle whose entries the service shapes itself (search:
    /// `_summary` and `_elements` apply to each entry, and `_summary=count` is valid).
    ///
    /// # Errors
    /// As [`Representation::negotiate`], without the shape checks.
    pub fn negotiate_bundle(req: &HttpRequest) -> Result<Self, ApiError> {
        let (format, mime) = if let Some(f) = query_param(req, "_format") {
            by_name(&f).ok_or_else(|| not_acceptable(&format!("_format={f}")))?
        } else {
            match req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
            {
                None => (Format::Json, JSON),
                Some(accept) => accepted(accept).ok_or_else(|| not_acceptable("Accept"))?,
            }
        };
        let pretty = match query_param(req, "_pretty").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ApiError::new(
                    ErrorCode::FormatParameter,
                    "_pretty must be true or false.",
                )
                .at(Some("_pretty".into())))
            }
        };
        Ok(Self {
            format,
            mime,
            pretty,
            shape: Shape::Full,
        })
    }

    /// The Content-Type header value.
    pub fn content_type(&self) -> String {
        format!("{}; charset=utf-8", self.mime)
    }

    /// Writes stored resource JSON in this representation. Whole JSON resources are sent
    /// as stored, without parsing.
    ///
    /// # Errors
    /// 500 if stored content cannot be converted (never expected).
    pub fn render(&self, json: &str) -> Result<Bytes, ApiError> {
        if self.format == Format::Json && !self.pretty && self.shape.is_full() {
            return Ok(Bytes::copy_from_slice(json.as_bytes()));
        }
        let mut value: Value = serde_json::from_str(json).map_err(|e| internal(&e.to_string()))?;
        self.render_value(&mut value)
    }

    /// Writes a resource held as a value.
    ///
    /// # Errors
    /// 500 if the value cannot be converted to XML (never expected).
    pub fn render_value(&self, value: &mut Value) -> Result<Bytes, ApiError> {
        if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            self.shape.apply(value);
        }
        match self.format {
            Format::Json if self.pretty => {
                Ok(serde_json::to_vec_pretty(value).unwrap_or_default().into())
            }
            Format::Json => Ok(serde_json::to_vec(value).unwrap_or_default().into()),
            Format::Xml => fhir_format::json_to_xml(value)
                .map(Bytes::from)
                .map_err(|e| internal(&e.message)),
        }
    }
}

fn internal(cause: &str) -> ApiError {
    tracing::error!(error.cause = cause, "stored resource could not be rendered");
    ApiError::new(
        ErrorCode::Internal,
        "An internal error occurred; it has been logged.",
    )
}

/// The first acceptable media type of an Accept header, by quality then order.
fn accepted(accept: &str) -> Option<(Format, &'static str)> {
    let mut candidates: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .map(|(i, item)| {
            let q = item
                .split(';')
                .skip(1)
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q, i, item.trim())
        })
        .filter(|(q, _, item)| *q > 0.0 && parameters_served(item, false))
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates
        .into_iter()
        .find_map(|(_, _, item)| by_name(item))
}

fn not_acceptable(what: &str) -> ApiError {
    ApiError::new(
 ErrorCode::NotAcceptable,
        format!("{what} asks for a format this server does not write; use application/fhir+json or application/fhir+xml."),
    )
}

/// The format of a request body, from its Content-Type (sniffed when absent).
///
/// # Errors
/// 415 for media types that are not FHIR JSON or XML.
pub fn request_format(req: &HttpRequest, body: &[u8]) -> Result<Format, ApiError> {
    match req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => by_name(ct)
            .filter(|_| !ct.trim_start().starts_with("*/*") && parameters_served(ct, true))
            .map(|(f, _)| f)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnsupportedMedia,
                    format!("Content-Type '{ct}' is not supported; send application/fhir+json or application/fhir+xml, in UTF-8, for FHIR 4.0."),
                )
            }),
        None => Ok(match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => Format::Xml,
            _ => Format::Json,
        }),
    }
}

/// Parses a resource body in the request's format.
///
/// # Errors
/// 415 for an unsupported media type, 400 for a body that is not a valid resource.
pub fn parse_resource(req: &HttpRequest, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::NoBody,
            "The request has no body; send a FHIR resource.",
        ));
    }
    let parsed = match request_format(req, body)? {
        Format::Json => fhir_format::parse_json(body),
        Format::Xml => fhir_format::parse_xml(body),
    };
    parsed.map_err(|e| located(e, body))
}

/// A structural error with its location: the parser names a missing required element
/// but not where it is missing; the base validation's walk of the JSON finds it.
fn located(mut e: fhir_format::FormatError, body: &[u8]) -> ApiError {
    if e.message.contains("required element") {
        if let Ok(raw) = serde_json::from_slice::<Value>(body) {
            let mut issues = Vec::new();
            crate::service::validate::base::check(&raw, &mut issues);
            if let Some(missing) = issues.iter().find(|i| i.rule == "HB-REQUIRED") {
                e.path = Some(missing.expression.clone());
            }
        }
    }
    ApiError::from(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_by_quality() {
        assert_eq!(
            accepted("application/fhir+xml;q=0.5, application/fhir+json")
                .unwrap()
                .0,
            Format::Json
        );
        assert_eq!(
            accepted("text/html, application/xml;q=0.9").unwrap().0,
            Format::Xml
        );
        assert_eq!(
            accepted("application/fhir+json; fhirVersion=4.0")
                .unwrap()
                .1,
            JSON
        );
        assert!(accepted("text/csv").is_none());
    }
}
