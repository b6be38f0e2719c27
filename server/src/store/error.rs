//! Errors of the storage layer, as categories the service maps to outcomes.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong in the store. Lower layers expose a category, never an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the caller may retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Resources a write names (with where) that the store does not hold
    /// ([`Tx::require_existing`](super::Tx::require_existing)); nothing was written.
    #[error("{} referenced resources do not exist", .0.len())]
    Missing(Vec<(String, super::ResourceKey)>),
    /// A statement ran past the statement timeout and the database ended it.
    #[error("the statement ran longer than {0:?} and was cancelled")]
    Timeout(std::time::Duration),
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

/// SQLite's result codes reach diesel as text only; SQLite's messages are fixed English
/// strings (no translation), so these are stable: `SQLITE_BUSY` and `SQLITE_LOCKED`.
const SQLITE_BUSY: &[&str] = &["database is locked", "database table is locked"];

/// PostgreSQL errors are classified by SQLSTATE, which diesel turns into
/// [`DatabaseErrorKind`] before we see them: 23505 unique violation and 40001 serialization
/// failure are a [`StoreError::Conflict`] (the write is retried); class 08 (connection
/// exception) and any error after which libpq reports the connection bad (57P01 admin
/// shutdown, a server that crashed) are [`DatabaseErrorKind::ClosedConnection`]; 25006 (a
/// read-only transaction: a standby after failover) and a query libpq could not send at
/// all are an outage too. Translated messages
/// (`lc_messages`) change nothing here. The one SQLSTATE diesel does not map is 40P01
/// (deadlock); it is recognised by its message, which is only reliable in English.
impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
                info,
            ) => StoreError::Conflict(info.message().to_owned()),
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().starts_with("deadlock detected") =>
            {
                StoreError::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if SQLITE_BUSY.iter().any(|m| info.message().starts_with(m)) =>
            {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Fault(e),
        }
    }
}
