//! The HTTP layer: the only module that knows actix-web. Routes, content negotiation,
//! headers and OperationOutcome answers; FHIR semantics are the service's.

pub mod admission;
mod error;
mod extract;
mod format;
mod headers;
pub mod interaction;
pub mod metrics;
mod middleware;
mod respond;
pub mod routes;
mod wire;

pub use error::ApiError;
pub use respond::AppState;
pub use routes::routes;

use actix_web::web;

/// A bound HTTP server; awaiting it serves until its handle stops it. It does not watch
/// signals itself: [`crate::startup::Application::run_until_stopped`] does, so that the
/// whole shutdown (requests, then the audit queue) fits in `shutdown_timeout_secs`.
pub type Server = actix_web::dev::Server;

/// Builds the HTTP server over `state` on `listener`: compression, admission control
/// (`admission.rs`), CORS, the request context middleware, the routes; a graceful stop
/// waits `shutdown_timeout_secs` at most. It is assembled from actix-web's parts as
/// `HttpServer` assembles it (same timeouts), with each
/// connection wrapped in [`wire::Wire`] so that the parser's own error answers carry an
/// OperationOutcome.
///
/// # Errors
/// When the listener or the TLS files cannot be used.
pub fn server(
    state: AppState,
    listener: std::net::TcpListener,
    settings: &crate::config::ServerSettings,
) -> std::io::Result<Server> {
    use actix_http::error::DispatchError;
    use actix_http::Protocol;
    use actix_service::{fn_service, ServiceFactoryExt};
    use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
    use actix_tls::accept::TlsError;
    use actix_web::rt::net::TcpStream;
    use wire::Wire;

    let state = web::Data::new(state);
    let origins = settings.cors_allowed_origins.clone();
    let address = listener.local_addr()?;
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_secs);
    if settings.workers > 0 {
        builder = builder.workers(settings.workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    let http = move || (state.clone(), origins.clone(), shutdown.clone());
    builder = match tls_config_of(settings)? {
        None => builder.listen("healthbook", listener, move || {
            fn_service(|io: TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok::<_, DispatchError>((
                    Wire::new(io),
                    Protocol::Http1,
                    peer,
                )))
            })
            .and_then({
                let (state, origins, shutdown) = http();
                http_service(state, &origins, shutdown, address)
            })
        })?,
        Some(config) => builder.listen("healthbook", listener, move || {
            Acceptor::new(config.clone())
                .map_err(
                    |e: TlsError<std::io::Error, std::convert::Infallible>| match e {
                        TlsError::Tls(e) => DispatchError::Io(e),
                        TlsError::Timeout => DispatchError::Io(std::io::ErrorKind::TimedOut.into()),
                        TlsError::Service(never) => match never {},
                    },
                )
                .and_then(fn_service(|io: TlsStream<TcpStream>| {
                    let peer = io.get_ref().0.peer_addr().ok();
                    std::future::ready(Ok::<_, DispatchError>((
                        Wire::new(io),
                        Protocol::Http1,
                        peer,
                    )))
                }))
                .and_then({
                    let (state, origins, shutdown) = http();
                    http_service(state, &origins, shutdown, address)
                })
        })?,
    };
    Ok(builder.run())
}

/// The App as an HTTP/1.1 service over connections of type `T`, with actix-web's defaults
/// (`HttpServer`'s timeouts, its graceful stop of idle keep-alive connections).
fn http_service<T>(
    state: web::Data<AppState>,
    origins: &[String],
    shutdown: actix_server::GracefulShutdownSignal,
    address: std::net::SocketAddr,
) -> impl actix_service::ServiceFactory<
    (T, actix_http::Protocol, Option<std::net::SocketAddr>),
    Config = (),
    Response = (),
    Error = actix_http::error::DispatchError,
    InitError = (),
>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    use actix_service::{map_config, IntoServiceFactory, ServiceFactoryExt};
    use std::time::Duration;
    let app = actix_web::App::new()
        .app_data(state)
        .wrap(actix_web::middleware::Compress::default())
        // Inside CORS, so that a browser app can read a 503 or 429 it was answered.
        .wrap(actix_web::middleware::from_fn(admission::admit))
        .wrap(cors(origins))
        .wrap(actix_web::middleware::from_fn(request_context))
        .configure(routes);
    actix_http::HttpService::build()
        .graceful_shutdown_signal(move || {
            let shutdown = shutdown.clone();
            async move { shutdown.notified().await }
        })
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .local_addr(address)
        .finish(map_config(
            app.into_factory()
                .map_err(|e: actix_web::Error| e.error_response()),
            |()| actix_web::dev::AppConfig::default(),
        ))
}

/// The TLS configuration, when `server.tls` is set.
fn tls_config_of(
    settings: &crate::config::ServerSettings,
) -> std::io::Result<Option<rustls::ServerConfig>> {
    if !settings.tls.enabled() {
        return Ok(None);
    }
    let mut config = tls_config(&settings.tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// A rustls server configuration from the PEM files of `server.tls`.
fn tls_config(tls: &crate::config::TlsSettings) -> std::io::Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| invalid("server.tls.cert", &e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| invalid("server.tls.key", &e))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("server.tls", &e))
}

/// CORS for browser apps (SMART App Launch apps call the API from the browser with a bearer
/// token): the configured origins, the FHIR request headers, and the response headers a
/// client needs to see (ETag, Location, Last-Modified, WWW-Authenticate, X-Request-Id).
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::HeaderName::from_static("if-none-exist"),
            header::HeaderName::from_static("prefer"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::LAST_MODIFIED,
            header::CONTENT_LOCATION,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("x-request-id"),
        ])
        .max_age(3600)
        // An origin that is not listed gets an answer without CORS headers (the browser
        // withholds it), not an error: metadata and smart-configuration stay public.
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin().send_wildcard()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Runs `future` to completion on the HTTP runtime (the binary's entry point).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// The middleware every request passes through (request id, access log, 5xx scrub).
pub use middleware::request_context;
