//! The one route table: every FHIR route with its method, handler, the interaction it
//! audits and what the CapabilityStatement says it offers. The router, the audit
//! (`middleware.rs`) and `GET /metadata` (`capabilities.rs`) all read this table, so a new
//! route cannot be served unaudited or unannounced by accident.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::interaction::{
    batch, capabilities, create, delete, everything, health, history, patch, qr, read, reindex,
    search, smart_configuration, update, validate, vread,
};
use crate::service::audit::AuditedInteraction as A;
// The HTTP methods of the table: FHIR's http-verb (the same as a Bundle entry's).
use crate::service::entry::Method as Verb;
use crate::service::ErrorCode;

/// The route template a request matched (`/fhir/{type}/{id}`), kept on its resource so that
/// the request context middleware reads it instead of matching the path a second time
/// (`HttpRequest::match_pattern` walks every pattern again: most of the router's cost).
#[derive(Debug, Clone, Copy)]
pub struct RoutePattern(pub &'static str);

/// One resource of the table: its method as a resource guard (as `Scope::route` does, so
/// that a resource of another method is passed over), its pattern, its handler.
fn resource_of<F, Args>(
    verb: Verb,
    path: &'static str,
    pattern: &'static str,
    handler: F,
) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let method = match verb {
        Verb::Get => actix_web::http::Method::GET,
        Verb::Head => actix_web::http::Method::HEAD,
        Verb::Post => actix_web::http::Method::POST,
        Verb::Put => actix_web::http::Method::PUT,
        Verb::Patch => actix_web::http::Method::PATCH,
        Verb::Delete => actix_web::http::Method::DELETE,
    };
    web::resource(path)
        .guard(actix_web::guard::Method(method))
        .app_data(RoutePattern(pattern))
        .route(route_of(verb).to(handler))
}

/// The actix-web route of a verb.
fn route_of(verb: Verb) -> actix_web::Route {
    match verb {
        Verb::Get => web::get(),
        Verb::Head => web::head(),
        Verb::Post => web::post(),
        Verb::Put => web::put(),
        Verb::Patch => web::patch(),
        Verb::Delete => web::delete(),
    }
}

/// What a route stands for in the CapabilityStatement (capabilitystatement.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offers {
    /// `rest.resource.interaction` of every resource type.
    Type(&'static str),
    /// `rest.interaction`.
    System(&'static str),
    /// `rest.resource.operation`, on every type or on one.
    Operation {
        name: &'static str,
        definition: &'static str,
        on: Option<&'static str>,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub verb: Verb,
    /// Under `/fhir`, in actix-web's pattern syntax (what `match_pattern` reports).
    pub path: &'static str,
    /// The AuditEvent subtype; `None` for discovery (metadata, SMART configuration).
    pub audit: Option<A>,
    pub offers: &'static [Offers],
}

const VALIDATE: Offers = Offers::Operation {
    name: "validate",
    definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    on: None,
};
const EVERYTHING: Offers = Offers::Operation {
    name: "everything",
    definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    on: Some("Patient"),
};

/// The personal QR operations (docs/QR.md), defined by Healthbook's OperationDefinitions.
const QR_ISSUE: Offers = Offers::Operation {
    name: "qr-issue",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/qr-issue",
    on: Some("Patient"),
};
const QR_REVOKE: Offers = Offers::Operation {
    name: "qr-revoke",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/qr-revoke",
    on: Some("Patient"),
};
const QR_SHOW: Offers = Offers::Operation {
    name: "qr",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/qr",
    on: Some("Patient"),
};
const QR_RESOLVE: Offers = Offers::Operation {
    name: "qr-resolve",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/qr-resolve",
    on: Some("Patient"),
};
/// The personal-QR rule's operations (docs/QR.md): break the glass, end a grant.
const EMERGENCY_ACCESS: Offers = Offers::Operation {
    name: "emergency-access",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/emergency-access",
    on: Some("Patient"),
};
const GRANT_REVOKE: Offers = Offers::Operation {
    name: "revoke",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/consent-revoke",
    on: Some("Consent"),
};

/// The read of the table's `/{type}/{id}`, tried before every other route: a read by id is
/// the most frequent request, and the router matches patterns one after the other (each
/// dynamic one a regular expression). The type must start with a capital letter and the id
/// be made of id characters (datatypes.html#id), so that no other route of the table can
/// match it: `_history`, `_search`, `$everything`, `.well-known` fall through to their own
/// routes, and any other `Type/id` (an unknown type, a malformed id) to the table's read.
const READ: &str = "/{type:[A-Z][A-Za-z]*}/{id:[A-Za-z0-9.-]+}";

macro_rules! route_table {
    ($($verb:ident $path:literal => $handler:path, $audit:expr, [$($offers:expr),*];)*) => {
        /// Every FHIR route, in the order the router tries them.
        pub const ROUTES: &[Route] = &[$(Route {
            verb: Verb::$verb,
            path: $path,
            audit: $audit,
            offers: &[$($offers),*],
        },)*];

        /// The routes of the table on the `/fhir` scope, after the read of a well-formed
        /// `Type/id` (see [`READ`]).
        fn fhir_scope() -> actix_web::Scope {
            web::scope("/fhir")
                .service(resource_of(Verb::Get, READ, "/fhir/{type}/{id}", read::read))
                .service(resource_of(Verb::Head, READ, "/fhir/{type}/{id}", read::read))
                $(.service(resource_of(Verb::$verb, $path, concat!("/fhir", $path), $handler)))*
        }
    };
}

route_table! {
    // One URL for both: batch.rs reads the Bundle, a transaction goes on to transaction.rs.
    Post "" => batch::batch, Some(A::Batch), [Offers::System("batch"), Offers::System("transaction")];
    Post "/" => batch::batch, Some(A::Batch), [];
    Get "" => search::search_system, Some(A::SearchSystem), [Offers::System("search-system")];
    Get "/" => search::search_system, Some(A::SearchSystem), [];
    Post "/_search" => search::search_system_post, Some(A::SearchSystem), [];
    Get "/.well-known/smart-configuration" => smart_configuration::smart_configuration, None, [];
    Get "/metadata" => capabilities::capabilities, None, [];
    Head "/metadata" => capabilities::capabilities, None, [];
    Get "/_history" => history::history_system, Some(A::HistorySystem), [Offers::System("history-system")];
    Get "/Patient/$qr-resolve" => qr::resolve, Some(A::Operation), [QR_RESOLVE];
    Post "/Patient/$qr-resolve" => qr::resolve_post, Some(A::Operation), [];
    Post "/Patient/{id}/$qr-issue" => qr::issue, Some(A::Operation), [QR_ISSUE];
    Post "/Patient/{id}/$qr-revoke" => qr::revoke, Some(A::Operation), [QR_REVOKE];
    Post "/Patient/{id}/$emergency-access" => qr::emergency_access, Some(A::Operation), [EMERGENCY_ACCESS];
    Post "/Consent/{id}/$revoke" => qr::grant_revoke, Some(A::Operation), [GRANT_REVOKE];
    Get "/Patient/{id}/$qr" => qr::show, Some(A::Operation), [QR_SHOW];
    Get "/Patient/$everything" => everything::everything_type, Some(A::Operation), [EVERYTHING];
    Post "/Patient/$everything" => everything::everything_type_post, Some(A::Operation), [];
    Get "/Patient/{id}/$everything" => everything::everything_instance, Some(A::Operation), [];
    Post "/Patient/{id}/$everything" => everything::everything_instance_post, Some(A::Operation), [];
    // An administration operation (docs/SEARCH.md), not announced.
    Post "/$reindex" => reindex::reindex_system, Some(A::Operation), [];
    Post "/{type}/$reindex" => reindex::reindex_type, Some(A::Operation), [];
    Post "/{type}/$validate" => validate::validate_type, Some(A::Operation), [VALIDATE];
    Post "/{type}/{id}/$validate" => validate::validate_instance, Some(A::Operation), [];
    Post "/{type}" => create::create, Some(A::Create), [Offers::Type("create")];
    Put "/{type}" => update::conditional_update, Some(A::Update), [];
    Delete "/{type}" => delete::conditional_delete, Some(A::Delete), [];
    Get "/{type}" => search::search_type, Some(A::SearchType), [Offers::Type("search-type")];
    Get "/{type}/_history" => history::history_type, Some(A::HistoryType), [Offers::Type("history-type")];
    Post "/{type}/_search" => search::search_type_post, Some(A::SearchType), [];
    Get "/{type}/{id}" => read::read, Some(A::Read), [Offers::Type("read")];
    Head "/{type}/{id}" => read::read, Some(A::Read), [];
    Put "/{type}/{id}" => update::update, Some(A::Update), [Offers::Type("update")];
    Patch "/{type}/{id}" => patch::patch, Some(A::Patch), [Offers::Type("patch")];
    Delete "/{type}/{id}" => delete::delete, Some(A::Delete), [Offers::Type("delete")];
    Get "/{type}/{id}/_history" => history::history_instance, Some(A::HistoryInstance), [Offers::Type("history-instance")];
    Get "/{type}/{id}/_history/{vid}" => vread::vread, Some(A::Vread), [Offers::Type("vread")];
    Head "/{type}/{id}/_history/{vid}" => vread::vread, Some(A::Vread), [];
    Get "/{type}/{id}/{compartment_type}" => search::search_compartment, Some(A::SearchType), [];
}

/// Registers the table under `/fhir`, then the health endpoints; another method on a
/// type or instance address is 405, any other address 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(super::metrics::metrics))
        .service(
            fhir_scope()
                .route("/{type}", web::route().to(method_not_allowed))
                .route("/{type}/{id}", web::route().to(method_not_allowed)),
        )
        .default_service(web::to(not_found));
}

/// The interaction a request audits: its route pattern (`/fhir/{type}/{id}`) and method.
pub fn audited(method: &actix_web::http::Method, pattern: &str) -> Option<A> {
    let verb = Verb::parse(method.as_str())?;
    let path = pattern.strip_prefix("/fhir")?;
    ROUTES
        .iter()
        .find(|r| r.verb == verb && r.path == path)
        .and_then(|r| r.audit)
}

/// Everything the table offers, in its order, each once.
pub fn offered() -> impl Iterator<Item = Offers> {
    let mut seen = Vec::new();
    ROUTES
        .iter()
        .flat_map(|r| r.offers.iter().copied())
        .filter(move |o| {
            let new = !seen.contains(o);
            seen.push(*o);
            new
        })
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::NoRoute,
        "There is nothing at this address; the FHIR API is under /fhir.",
    ))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::Method,
        "This HTTP method is not supported at this address.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route that reads or changes resources is audited; only discovery is not.
    #[test]
    fn every_fhir_interaction_is_audited() {
        for r in ROUTES {
            let discovery = r.path == "/metadata" || r.path.starts_with("/.well-known/");
            assert_eq!(
                r.audit.is_none(),
                discovery,
                "{:?} {} audit {:?}",
                r.verb,
                r.path,
                r.audit
            );
        }
    }

    /// The early read matches reads by id and no path of any other route of the table.
    #[test]
    fn the_early_read_matches_only_reads_by_id() {
        let read = actix_web::dev::ResourceDef::new(READ);
        for path in ["/Patient/123", "/Immunization/a-b.c", "/AuditEvent/0f3e"] {
            assert!(read.is_match(path), "{path}");
        }
        for r in ROUTES.iter().filter(|r| r.path != "/{type}/{id}") {
            let path = r
                .path
                .replace("{type}", "Patient")
                .replace("{id}", "123")
                .replace("{vid}", "2")
                .replace("{compartment_type}", "Immunization");
            assert!(
                !read.is_match(&path),
                "{:?} {} taken by the read",
                r.verb,
                r.path
            );
        }
        for other in [
            "/patient/123",
            "/Patient/1_2",
            "/.well-known/x",
            "/Patient/$qr",
        ] {
            assert!(!read.is_match(other), "{other}");
        }
    }

    #[test]
    fn the_audit_follows_the_table() {
        use actix_web::http::Method;
        assert_eq!(audited(&Method::GET, "/fhir/{type}/{id}"), Some(A::Read));
        assert_eq!(audited(&Method::PUT, "/fhir/{type}"), Some(A::Update));
        assert_eq!(audited(&Method::POST, "/fhir"), Some(A::Batch));
        assert_eq!(audited(&Method::GET, "/fhir/metadata"), None);
        assert_eq!(audited(&Method::GET, "/health/ready"), None);
    }
}
