//! Errors of the storage layer, as categories the service maps to outcomes.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong in the store. Lower layers expose a category, never an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the caller may retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A concurrent write won a race (unique violation, serialisation failure).
    #[error("a concurrent write conflicted: {0}")]
    Conflict(String),
    /// The store is misconfigured (bad URL, unwritable path), or the database server answered
    /// and refused this configuration (no such database, wrong credentials): waiting will
    /// not help.
    #[error("storage configuration: {0}")]
    Config(String),
    /// A migration could not be applied or checked.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database failure; a bug or a corrupted database.
    #[error("database error: {0}")]
    Fault(#[source] DieselError),
}

impl StoreError {
    pub(super) fn pool(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }

    /// A failed connection attempt: refused configurations are [`StoreError::Config`],
    /// anything else (server down, starting, unreachable) is an outage.
    pub(super) fn connect(e: diesel::ConnectionError) -> Self {
        let message = e.to_string().trim().to_owned();
        // libpq reports connection failures as text only (no SQLSTATE reaches diesel); these
        // are the server's answers that no retry changes (3D000, 28000, 28P01, 42501).
        let refused = [
            "does not exist",
            "authentication failed",
            "no pg_hba.conf entry",
            "fe_sendauth",
            "permission denied",
            "unable to open database file",
        ];
        if refused.iter().any(|r| message.contains(r)) {
            StoreError::Config(message)
        } else {
            StoreError::Unavailable(message)
        }
    }
}

/// Messages by which libpq and SQLite say the connection or the server is gone or busy.
const UNAVAILABLE_HINTS: &[&str] = &[
    "server closed the connection",
    "no connection to the server",
    "terminating connection",
    "connection refused",
    "could not connect",
    "database is locked",
    "the database system is shutting down",
    "the database system is starting up",
    "SSL connection has been closed",
    "Broken pipe",
];

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
                info,
            ) => StoreError::Conflict(info.message().to_owned()),
            // PostgreSQL breaks lock cycles by failing one transaction; it can simply retry.
            DieselError::DatabaseError(_, info) if info.message().contains("deadlock detected") => {
                StoreError::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::DatabaseError(_, info)
                if UNAVAILABLE_HINTS.iter().any(|h| info.message().contains(h)) =>
            {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Fault(e),
        }
    }
}
