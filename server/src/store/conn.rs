//! Connections: the backend is chosen from the URL scheme (diesel's own
//! `MultiConnection::establish` tries every backend and hides the real error), SQLite gets
//! its pragmas on connect, and migrations are embedded per backend.

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{StoreError, WriteFailure};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// One connection to either backend; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// The database product behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// Splits `sqlite://PATH` into (Sqlite, PATH); `postgres://` and `postgresql://` URLs are
    /// kept whole.
    ///
    /// # Errors
    /// [`StoreError::Config`] for any other scheme.
    pub fn from_url(url: &str) -> Result<(Self, String), StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config(
                    "database.url sqlite:// needs a file path".into(),
                ));
            }
            Ok((Backend::Sqlite, path.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Backend::Postgres, url.to_owned()))
        } else {
            Err(StoreError::Config(
                "database.url must start with sqlite:// or postgres://".into(),
            ))
        }
    }
}

/// Creates the folder of a SQLite file, so that the zero-setup start works.
pub(super) fn prepare_sqlite_file(path: &str) -> Result<(), StoreError> {
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!(
                    "cannot create the folder {}: {e}",
                    parent.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// A pooled connection with what the pool needs to know about its health: a connection
/// that failed with a connection-level error is dropped when it returns to the pool, and
/// one that worked a moment ago is handed out again without a `SELECT 1`.
pub struct PooledDb {
    pub conn: DbConnection,
    last_ok: Instant,
    broken: bool,
}

impl PooledDb {
    /// Notes the outcome of a use: a lost database marks the connection broken; a use
    /// without error makes it trusted for a while.
    pub fn record<E: WriteFailure>(&mut self, error: Option<&E>) {
        match error {
            Some(e) if e.is_unavailable() => self.broken = true,
            Some(_) => {}
            None => self.last_ok = Instant::now(),
        }
    }
}

/// Connections used successfully within this span are not validated again on checkout.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Seconds libpq waits for a PostgreSQL server to answer a connection attempt.
const CONNECT_TIMEOUT_SECS: u32 = 3;

/// r2d2 manager that opens the configured backend and reports its real connection error.
#[derive(Clone)]
pub struct Manager {
    backend: Backend,
    target: String,
    /// `statement_timeout` of each PostgreSQL session; zero for none.
    statement_timeout: Duration,
}

impl Manager {
    pub(super) fn new(backend: Backend, target: String, statement_timeout: Duration) -> Self {
        // A host that drops packets would hold a connection attempt for minutes; libpq gives
        // up after `connect_timeout` seconds (unless the URL sets its own).
        let target = match backend {
            Backend::Postgres if !target.contains("connect_timeout=") => {
                let join = if target.contains('?') { '&' } else { '?' };
                format!("{target}{join}connect_timeout={CONNECT_TIMEOUT_SECS}")
            }
            _ => target,
        };
        Self {
            backend,
            target,
            statement_timeout,
        }
    }
}

impl ManageConnection for Manager {
    type Connection = PooledDb;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<PooledDb, diesel::ConnectionError> {
        let conn = match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.target)?;
                // The database itself ends a statement that runs too long (and cancels its
                // work), whatever happens to the request that sent it.
                if !self.statement_timeout.is_zero() {
                    conn.batch_execute(&format!(
                        "SET statement_timeout = {}",
                        self.statement_timeout.as_millis()
                    ))
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                }
                DbConnection::Postgres(conn)
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target)?;
                // WAL lets readers run beside the single writer; synchronous=FULL makes every
                // acknowledged commit survive power loss; busy_timeout covers checkpoints.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                hb_in_time_utils::register_nondeterministic_impl(&mut conn, InTime)
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(PooledDb {
            conn,
            last_ok: Instant::now(),
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PooledDb) -> Result<(), diesel::ConnectionError> {
        if conn.last_ok.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        conn.conn
            .ping()
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        conn.last_ok = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut PooledDb) -> bool {
        std::thread::panicking() || conn.broken || conn.conn.is_broken()
    }
}

diesel::define_sql_function! {
    /// True until `deadline` (ms since the epoch), then an error that ends the statement:
    /// SQLite's statement timeout (`search/sql.rs` places it where statements read rows).
    fn hb_in_time(deadline: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// The answer of `hb_in_time` for one deadline.
#[derive(Debug)]
struct InTime(i64);

impl diesel::serialize::ToSql<diesel::sql_types::Bool, diesel::sqlite::Sqlite> for InTime {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
    ) -> diesel::serialize::Result {
        if now_ms() > self.0 {
            return Err("statement timeout".into());
        }
        out.set_value(1);
        Ok(diesel::serialize::IsNull::No)
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The deadline of a statement that starts now and may run `timeout` (none for zero).
pub(super) fn deadline(timeout: Duration) -> Option<i64> {
    (!timeout.is_zero())
        .then(|| now_ms().saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)))
}

pub(super) fn run_migrations(conn: &mut DbConnection) -> Result<usize, StoreError> {
    let applied = match conn {
        DbConnection::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    applied.map_err(|e| StoreError::Migration(e.to_string()))
}

pub(super) fn has_pending_migrations(conn: &mut DbConnection) -> Result<bool, StoreError> {
    let pending = match conn {
        DbConnection::Postgres(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    pending.map_err(|e| StoreError::Migration(e.to_string()))
}
