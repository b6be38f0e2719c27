//! Builds the application from settings: store, service, HTTP server. Port 0 works, so
//! tests can run differently configured servers side by side.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::PractitionerAccess;
use crate::config::Settings;
use crate::http::admission::Admission;
use crate::http::metrics::Metrics;
use crate::http::{self, AppState};
use crate::service::audit::{self, AuditWriter};
use crate::service::qr::grant::GrantRule;
use crate::service::qr::PersonalQr;
use crate::service::search_parameters::Registry;
use crate::service::validate::{Language, Validator};
use crate::service::Service;
use crate::store::{Backend, Store, StoreError, StoreOptions};

use anyhow::Context;

/// A bound, not yet running server.
pub struct Application {
    service: Service,
    /// The shipped StructureDefinitions could not be written at start.
    profiles_pending: bool,
    authenticator: Arc<Authenticator>,
    audit_writer: AuditWriter,
    server: http::Server,
    shutdown_timeout: Duration,
    port: u16,
    base_url: String,
}

impl Application {
    /// Opens the store (migrating SQLite), binds the listener and prepares the server.
    ///
    /// # Errors
    /// Configuration, migration and bind failures.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // The port first: a port in use is found before anything touches the database.
        let listener = TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("server.bind: cannot listen on {}", settings.server.bind))?;
        let store = Store::open(&StoreOptions {
            url: settings.database.url.clone(),
            pool_max_size: settings.database.pool_max_size,
            acquire_timeout: Duration::from_millis(settings.database.acquire_timeout_ms),
            statement_timeout: Duration::from_millis(settings.database.statement_timeout_ms),
        })?;
        let reachable = match store.backend() {
            Backend::Sqlite => {
                let applied = store.migrate()?;
                if applied > 0 {
                    tracing::info!(migrations = applied, "SQLite schema migrated");
                }
                true
            }
            // PostgreSQL is migrated by `healthbook migrate`. A database that is down now may
            // come up later (serve 503 until then); one that refuses us (no such database,
            // wrong credentials) or lacks migrations stops start-up.
            Backend::Postgres => match store.probe() {
                Ok(false) => true,
                Ok(true) => anyhow::bail!("the PostgreSQL database has pending migrations; run `healthbook migrate` first"),
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "PostgreSQL is not reachable at start; serving 503 until it is");
                    false
                }
                Err(e) => return Err(e).context("database.url: PostgreSQL refused the connection"),
            },
        };
        // Load the vendored R4 tables now rather than on the first request.
        let _ = (
            fhir_profiles::element("Patient.id"),
            fhir_profiles::elements("Patient"),
        );
        let address = listener.local_addr()?;
        let base_url = if settings.server.base_url.is_empty() {
            let scheme = if settings.server.tls.enabled() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{address}/fhir")
        } else {
            settings.server.base_url.trim_end_matches('/').to_owned()
        };
        let authenticator = Arc::new(Authenticator::new(&settings.auth, &base_url)?);
        if !authenticator.enabled() {
            tracing::warn!(
                "auth.mode = \"none\": every request has full access; use only on this machine \
                 (the server is bound to a loopback address)"
            );
        }
        let offset = settings
            .server
            .offset()
            .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
        // One registry of search parameters for the validator, the indexer and the audit
        // writer: the custom ones are loaded into it by `prepare`.
        let parameters = Registry::default();
        let (audit_log, audit_writer) =
            audit::channel(store.clone(), &base_url, offset, parameters.clone());
        let service = Service::new(
            store,
            base_url.clone(),
            audit_log,
            (offset, settings.search.limits()),
            (
                Validator::new(settings.validation.policy(), offset, parameters.clone()),
                parameters,
            ),
        )
        .with_personal_qr(
            PersonalQr::new(
                &settings.qr.secret,
                settings.qr.max_failed_lookups_per_minute,
            )
            .map_err(anyhow::Error::msg)?
            .with_grants(GrantRule::new(
                settings.access.practitioner == PractitionerAccess::Qr,
                settings.access.grant_hours,
                settings.access.emergency_minutes,
            )),
        );
        // The shipped profiles and the custom search parameters are in place before the
        // first request, unless the database is away (then once it is back).
        let profiles_pending = !reachable
            || match prepare(&service).await {
                Ok(()) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "shipped StructureDefinitions not installed yet");
                    true
                }
            };
        let state = AppState {
            service: service.clone(),
            body_limit: settings.server.body_limit_bytes,
            bundle: settings.bundle.clone(),
            language: Language::parse(&settings.validation.language).unwrap_or(Language::Vi),
            authenticator: Arc::clone(&authenticator),
            admission: Arc::new(Admission::new(&settings.admission)),
            metrics: Arc::new(Metrics::new(audit_writer.backlog())),
        };
        let server = http::server(state, listener, &settings.server)?;
        Ok(Self {
            service,
            profiles_pending,
            authenticator,
            audit_writer,
            server,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
            port: address.port(),
            base_url,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The FHIR base URL links are built from.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish and writes the
    /// queued audit events, all within `server.shutdown_timeout_secs` of the signal
    /// whatever the database does: what could not be written by then is counted in the log.
    ///
    /// # Errors
    /// I/O failures of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Discover the OpenID providers in the background so the first request is fast.
        let authenticator = Arc::clone(&self.authenticator);
        tokio::spawn(async move { authenticator.warm_up().await });
        let backlog = self.audit_writer.backlog();
        let audit = tokio::spawn(self.audit_writer.run());
        // Upkeep: what `prepare` could not do at start, then the custom search parameters
        // other servers on the same database wrote. The task holds the service (and with it
        // a sender of the audit queue): it is stopped with the server, so that the audit
        // writer can drain and end.
        let service = self.service;
        let mut pending = self.profiles_pending;
        let upkeep = tokio::spawn(async move {
            loop {
                if pending {
                    match prepare(&service).await {
                        Ok(()) => pending = false,
                        Err(e) => {
                            tracing::warn!(error = %e, "shipped StructureDefinitions not installed yet");
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                tokio::time::sleep(SEARCH_PARAMETER_REFRESH).await;
                if let Err(e) = service.load_search_parameters().await {
                    tracing::warn!(error = %e, "custom search parameters not reloaded");
                }
            }
        });
        let handle = self.server.handle();
        let mut server = self.server;
        let deadline = tokio::select! {
            served = &mut server => {
                upkeep.abort();
                return served;
            }
            () = stop_signal() => tokio::time::Instant::now() + self.shutdown_timeout,
        };
        tracing::info!("stop signal received; finishing in-flight requests");
        // Graceful: the workers finish what they are doing, for `shutdown_timeout` at most.
        let ((), served) = tokio::join!(handle.stop(true), server);
        upkeep.abort();
        let _ = upkeep.await;
        // The workers are gone and with them every sender of the audit queue: the writer
        // drains what is queued and ends, unless the database keeps it from doing so past
        // the deadline.
        if tokio::time::timeout_at(deadline, audit).await.is_err() {
            tracing::error!(
                unwritten = backlog.unwritten(),
                "audit events not written before the shutdown deadline"
            );
        }
        served
    }
}

/// SIGTERM (how process managers stop a service) or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGTERM handler not installed; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How often the custom search parameters are read again (those other servers wrote).
const SEARCH_PARAMETER_REFRESH: Duration = Duration::from_secs(30);

/// Writes the shipped StructureDefinitions that are missing or changed, and installs the
/// custom search parameters of the store.
async fn prepare(service: &Service) -> Result<(), crate::service::ServiceError> {
    let written = service.install_profiles().await?;
    if written > 0 {
        tracing::info!(written, "shipped StructureDefinitions installed");
    }
    let custom = service.load_search_parameters().await?;
    if custom > 0 {
        tracing::info!(custom, "custom search parameters installed");
    }
    Ok(())
}
