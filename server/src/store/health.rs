//! Whether the database answers. A failed connection attempt marks it down once (one log
//! line); while it is down, requests fail at once instead of each waiting the acquire
//! timeout, and one background probe tries a connection every second until the database
//! answers again (one log line). Connection failures are seen by the pools' error handler,
//! so nothing else reports them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::r2d2::{HandleError, ManageConnection};

use super::conn::Manager;
use super::StoreError;

/// How often the probe tries the database while it is down.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The database's state as this process last saw it.
pub(super) struct Health {
    down: AtomicBool,
    manager: Manager,
}

impl std::fmt::Debug for Health {
    // The manager holds the database URL and with it perhaps a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("down", &self.down)
            .finish_non_exhaustive()
    }
}

impl Health {
    pub(super) fn new(manager: Manager) -> Arc<Self> {
        Arc::new(Self {
            down: AtomicBool::new(false),
            manager,
        })
    }

    /// Fails fast while the database is down.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Acquire) {
            Err(StoreError::Unavailable(
                "the database did not answer the last connection attempt; waiting for it to come back".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Notes a failed connection attempt; the first one of an outage logs it and starts the
    /// probe.
    pub(super) fn mark_down(self: &Arc<Self>, cause: &str) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(error.cause = %cause, "database unreachable; answering 503 until it is back");
        let health = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("db-probe".into())
            .spawn(move || probe(&health));
        if let Err(e) = spawned {
            // Without a probe the next request tries the database itself.
            tracing::error!(error = %e, "database probe not started");
            self.down.store(false, Ordering::Release);
        }
    }
}

/// Tries a connection every [`PROBE_INTERVAL`] until one succeeds or the store is gone.
fn probe(health: &Weak<Health>) {
    loop {
        std::thread::sleep(PROBE_INTERVAL);
        let Some(health) = health.upgrade() else {
            return;
        };
        if health.manager.connect().is_ok() {
            health.down.store(false, Ordering::Release);
            tracing::info!("database reachable again");
            return;
        }
    }
}

/// The pools' error handler: a failed connection attempt marks the database down (r2d2's
/// default handler logs every attempt).
#[derive(Debug)]
pub(super) struct OnConnectError(pub(super) Arc<Health>);

impl HandleError<diesel::ConnectionError> for OnConnectError {
    fn handle_error(&self, error: diesel::ConnectionError) {
        self.0.mark_down(error.to_string().trim());
    }
}
