//! The one table of Healthbook's error codes: for each, its stable code (sent in
//! `OperationOutcome.issue.details.coding` under [`ERROR_CODE_SYSTEM`]), the HTTP status,
//! the issue type (http://hl7.org/fhir/issue-type) and what it means. Every non-2xx answer
//! is built from one of these (http.html#2.21.0.5: "Servers SHALL return an
//! OperationOutcome" with errors); `docs/ERRORS.md` is generated from this table and a test
//! keeps it in step. Validation rule codes (docs/VALIDATION.md) are a second code system,
//! used inside the issues of an `HB-INVALID-RESOURCE` answer.

/// The code system of Healthbook's stable error codes.
pub const ERROR_CODE_SYSTEM: &str = "https://healthbook.example.org/fhir/CodeSystem/error";

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub status: u16,
    pub issue_type: &'static str,
    pub doc: &'static str,
}

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:literal, $issue:literal, $doc:literal;)*) => {
        /// Why a request failed, with its status and issue type in [`ErrorCode::info`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The row of the table.
            pub const fn info(self) -> ErrorInfo {
                match self {
                    $(ErrorCode::$variant => ErrorInfo {
                        code: $code,
                        status: $status,
                        issue_type: $issue,
                        doc: $doc,
                    },)*
                }
            }
        }
    };
}

error_codes! {
    // The request as a whole.
    Format = "HB-FORMAT", 400, "structure",
        "The body is not a FHIR resource in JSON or XML: it does not parse, names an element R4 does not have, or gives a value of the wrong JSON type.";
    NoBody = "HB-NO-BODY", 400, "required",
        "The interaction needs a body and the request has none.";
    BodyIncomplete = "HB-BODY-INCOMPLETE", 400, "incomplete",
        "The client broke off while sending the body.";
    Http = "HB-HTTP", 400, "structure",
        "The request is not valid HTTP/1.1 (request line, a header, Content-Length or Transfer-Encoding); answered by the HTTP parser before any FHIR processing.";
    HeadTooLarge = "HB-HEAD-TOO-LARGE", 431, "too-costly",
        "The request line and headers are larger than 128 KB or more than 96 headers.";
    HeadTimeout = "HB-HEAD-TIMEOUT", 408, "timeout",
        "The request's head did not arrive within 5 seconds of the connection.";
    TooLarge = "HB-TOO-LARGE", 413, "too-costly",
        "The body is larger than `server.body_limit_bytes` (or `bundle.body_limit_bytes` for a Bundle).";
    UnsupportedMedia = "HB-UNSUPPORTED-MEDIA", 415, "not-supported",
        "The Content-Type is not FHIR JSON or XML (or, for POST `_search`, not a form).";
    NotAcceptable = "HB-NOT-ACCEPTABLE", 406, "not-supported",
        "Accept or `_format` asks for a format this server does not write.";
    FormatParameter = "HB-FORMAT-PARAM", 400, "invalid",
        "`_pretty` is not true or false.";
    ResourceType = "HB-RESOURCE-TYPE", 400, "invalid",
        "The body has no resourceType, or not the one the URL names (http.html#create), or is not the resource the interaction takes.";
    ResourceId = "HB-RESOURCE-ID", 400, "invalid",
        "The body's id is missing, not a FHIR id, or not the id of the URL or of the matched resource (http.html#update).";
    IfMatch = "HB-IF-MATCH", 400, "invalid",
        "If-Match (or `Bundle.entry.request.ifMatch`) is not a version ETag such as W/\"3\".";
    // What the request addresses.
    UnknownType = "HB-UNKNOWN-TYPE", 404, "not-supported",
        "The URL names no FHIR R4 resource type.";
    NotFound = "HB-NOT-FOUND", 404, "not-found",
        "The resource or version is not known, or the id is not a FHIR id.";
    QrUnknown = "HB-QR-UNKNOWN", 404, "not-found",
        "The scanned personal QR code is unknown or no longer valid (revoked, rotated, expired), or the Patient has none.";
    QrMisread = "HB-QR-MISREAD", 404, "not-found",
        "The scanned code has the shape of a personal QR token but its check character does not match: a misread character; scan it again.";
    QrTooMany = "HB-QR-TOO-MANY", 429, "throttled",
        "Too many personal QR lookups from this client failed within a minute (`qr.max_failed_lookups_per_minute`); Retry-After says when it may try again.";
    QrOwner = "HB-QR-OWNER", 403, "forbidden",
        "Only the person (their own `patient/` token) or a backend service (`system/`) may issue, show or revoke a personal QR.";
    QrScanRequired = "HB-QR-SCAN-REQUIRED", 403, "forbidden",
        "A practitioner reaches a person's record only after scanning their personal QR (`Patient/$qr-resolve`) or under an emergency access (`Patient/{id}/$emergency-access`), while `access.practitioner = qr`.";
    QrPractitioner = "HB-QR-PRACTITIONER", 403, "forbidden",
        "A scan or an emergency access opens a record to a practitioner: the token needs `user/` scopes and a `fhirUser` that is a Practitioner or PractitionerRole.";
    GrantManaged = "HB-GRANT-MANAGED", 422, "business-rule",
        "The Consent records an access grant of the personal-QR rule: the server writes it; end it with `Consent/{id}/$revoke`.";
    Deleted = "HB-DELETED", 410, "deleted",
        "The resource was deleted; its history is still there (http.html#read).";
    NotAllowed = "HB-NOT-ALLOWED", 405, "not-supported",
        "The interaction is not offered on this resource type (AuditEvents cannot be changed or deleted).";
    NoRoute = "HB-NO-ROUTE", 404, "not-found",
        "There is nothing at this address; the FHIR API is under /fhir.";
    Method = "HB-METHOD", 405, "not-supported",
        "This HTTP method is not offered at this address.";
    NoCompartment = "HB-NO-COMPARTMENT", 404, "not-found",
        "A compartment search names a compartment other than Patient.";
    NoAuth = "HB-NO-AUTH", 404, "not-found",
        "The SMART configuration was asked for while the server runs with `auth.mode = none`.";
    // Versions and conditions.
    VersionConflict = "HB-VERSION-CONFLICT", 412, "conflict",
        "If-Match names a version that is not the current one (http.html#concurrency).";
    MultipleMatches = "HB-MULTIPLE-MATCHES", 412, "multiple-matches",
        "The criteria of a conditional create, update, patch or delete match more than one resource (http.html#cond-update).";
    ConditionalCriteria = "HB-CONDITIONAL-CRITERIA", 400, "invalid",
        "A conditional interaction has no search criteria, or criteria with an unknown parameter.";
    // Search and paging.
    SearchParameter = "HB-SEARCH-PARAM", 400, "not-supported",
        "A search, `_sort`, `_include`, `_type` or `_query` names a parameter, type or query this server does not know here (with Prefer: handling=strict for unknown parameters; search.html#errors).";
    SearchValue = "HB-SEARCH-VALUE", 400, "invalid",
        "A search or result parameter has a value of the wrong form (a date, a number, a token, `_count`, `_total`, `_summary`, `_contained`, `_since`).";
    SearchCombination = "HB-SEARCH-COMBINATION", 400, "not-supported",
        "Parameters this server does not offer together (`_contained` with `_sort` or `_include`, `_summary` with `_elements`), or more sort keys than it takes.";
    SearchCost = "HB-SEARCH-COST", 400, "too-costly",
        "The search asks for more than one request may: more than `search.max_parameters` parameters, `search.max_values` values in one parameter or `search.max_includes` includes; the message names the limit.";
    Cursor = "HB-CURSOR", 400, "invalid",
        "The paging cursor of a next link is not valid for this search (edited or from another search).";
    // Bundles (http.html#transaction).
    BundleType = "HB-BUNDLE-TYPE", 400, "invalid",
        "POST to the base takes a Bundle of type batch or transaction.";
    TooManyEntries = "HB-TOO-MANY-ENTRIES", 413, "too-costly",
        "The Bundle has more entries than `bundle.max_entries`.";
    BundleEntry = "HB-BUNDLE-ENTRY", 400, "invalid",
        "An entry lacks its request, method, url or resource, or its url is not one this server serves.";
    BundleDuplicate = "HB-BUNDLE-DUPLICATE", 400, "invalid",
        "Two entries have the same fullUrl, or touch the same resource in one transaction.";
    BundleReference = "HB-BUNDLE-REFERENCE", 400, "invalid",
        "A reference in a transaction points to a urn:uuid or urn:oid that is no entry's fullUrl.";
    // Patch (http.html#patch).
    PatchDocument = "HB-PATCH-DOCUMENT", 400, "invalid",
        "The body is not a JSON Patch document or a FHIRPath Patch Parameters resource, or an operation of it is malformed.";
    PatchFailed = "HB-PATCH-FAILED", 422, "processing",
        "The patch does not apply to the current version, or its result is not a valid resource.";
    // Operations.
    OperationParameter = "HB-OPERATION-PARAM", 400, "invalid",
        "An operation's parameter is missing or has a value the operation does not take.";
    // Validation (docs/VALIDATION.md).
    InvalidResource = "HB-INVALID-RESOURCE", 422, "processing",
        "The resource breaks validation rules; each issue names its rule (docs/VALIDATION.md).";
    // Access (SMART App Launch, RFC 6750).
    Unauthenticated = "HB-UNAUTHENTICATED", 401, "login",
        "The server needs an access token and the request has none.";
    InvalidToken = "HB-INVALID-TOKEN", 401, "login",
        "The access token does not verify: signature, issuer, audience or expiry.";
    Forbidden = "HB-FORBIDDEN", 403, "forbidden",
        "The token's scopes or its patient compartment do not allow this interaction on this resource.";
    IdpUnavailable = "HB-IDP-UNAVAILABLE", 503, "transient",
        "The OpenID provider cannot be reached to check the token; retry after Retry-After.";
    // The server.
    RateLimited = "HB-RATE-LIMITED", 429, "throttled",
        "This client made more requests per second than its quota (`admission.client_rate`); Retry-After says when it may go on.";
    Overloaded = "HB-OVERLOADED", 503, "transient",
        "The server is at capacity and sheds requests (citizen apps first, practitioners next, the ministry last; docs/OPERATIONS.md); retry after Retry-After.";
    Conflict = "HB-CONFLICT", 409, "conflict",
        "Concurrent requests kept changing the resource while this one was retried; retry it.";
    Timeout = "HB-TIMEOUT", 503, "timeout",
        "A statement ran longer than `database.statement_timeout_ms` and the database stopped it; narrow the search or retry after Retry-After.";
    Unavailable = "HB-UNAVAILABLE", 503, "transient",
        "The database is not reachable; retry after Retry-After.";
    Internal = "HB-INTERNAL", 500, "exception",
        "A failure of the server; the body says no more, the log has the cause under the request id.";
}

impl ErrorCode {
    /// The stable code, e.g. `HB-NOT-FOUND`.
    pub const fn code(self) -> &'static str {
        self.info().code
    }

    /// `docs/ERRORS.md`: the table as Markdown.
    pub fn markdown() -> String {
        let mut out = String::from(
            "# Error codes\n\n\
             <!-- Generated from server/src/service/error_code.rs by the test \
             `error_code::tests::errors_md_is_the_table`; run it with UPDATE_DOCS=1 to \
             rewrite this file. -->\n\n\
             Every answer that is not 2xx is an OperationOutcome with one issue per problem \
             (http.html#2.21.0.5). Its `issue.details.coding` carries one of these codes \
             under the system `",
        );
        out.push_str(ERROR_CODE_SYSTEM);
        out.push_str(
            "`, and `issue.code` the issue type. A 5xx says no more than the table; the log \
             has the cause under the answer's `X-Request-Id`. The issues of an \
             `HB-INVALID-RESOURCE` answer carry validation rule codes instead \
             (docs/VALIDATION.md).\n\n\
             | Code | Status | Issue type | Meaning |\n|---|---|---|---|\n",
        );
        for code in Self::ALL {
            let i = code.info();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                i.code, i.status, i.issue_type, i.doc
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_shaped() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let i = code.info();
            assert!(seen.insert(i.code), "{} twice", i.code);
            assert!(
                i.code.starts_with("HB-")
                    && i.code[3..]
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'-')
            );
            assert!((400..600).contains(&i.status), "{}", i.code);
            let issue_types = fhir_profiles::value_set("http://hl7.org/fhir/ValueSet/issue-type")
                .expect("the IssueType value set is shipped");
            assert!(
                issue_types.iter().any(|(_, c)| c == i.issue_type),
                "{}: {} is not an IssueType",
                i.code,
                i.issue_type
            );
        }
    }

    /// docs/ERRORS.md is the table; `UPDATE_DOCS=1 cargo test -p healthbook errors_md`
    /// rewrites it.
    #[test]
    fn errors_md_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ERRORS.md");
        let generated = ErrorCode::markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &generated).expect("write docs/ERRORS.md");
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == generated,
            "docs/ERRORS.md is not the table of error_code.rs; run UPDATE_DOCS=1 cargo test -p healthbook errors_md"
        );
    }
}
