//! Durable storage of resource versions over PostgreSQL and SQLite with one set of diesel
//! queries (`DbConnection` is a `diesel::MultiConnection`). No FHIR semantics live here:
//! the service layer decides what to write; this layer writes it atomically.

mod conn;
mod error;
mod grants;
mod health;
mod key;
mod models;
mod qr;
mod queries;
mod schema;
mod search;

pub use conn::{Backend, DbConnection};
pub use error::StoreError;
pub use grants::GrantRow;
pub use models::{
    IndexRows, NewDateRow, NewNumberRow, NewQuantityRow, NewReferenceRow, NewResourceVersion,
    NewStringRow, NewTokenRow, NewUriRow, ResourceRow,
};
pub use qr::QrRow;
pub use queries::{HistoryQuery, Tx};
pub use search::{
    Bind, Cond, Filter, KeyKind, KeyValue, Position, RangeTest, ResourceKey, SearchQuery,
    SearchRow, SortKey, SortSource, Table, UriMode, MAX_SORT_KEYS,
};
pub use search::{CONTAINED_PARAM, CONTAINER_PARAM, NEAR_LATITUDE, NEAR_LONGITUDE};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::Connection;

use conn::Manager;
use health::{Health, OnConnectError};
use search::SearchMemos;

/// Connection pools over one database. SQLite has a single writer connection so that write
/// transactions queue in the pool instead of failing with `SQLITE_BUSY`; PostgreSQL reads
/// and writes share one pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: Pool<Manager>,
    write: Pool<Manager>,
    /// Opens connections outside the pools ([`Store::probe`]).
    manager: Manager,
    /// Down after a failed connection attempt, until the database answers again.
    health: Arc<Health>,
    /// What searches have learnt about the data (`search.rs`, the walk).
    memos: Arc<SearchMemos>,
    /// Checkouts of the read and the write pool, and the time spent waiting for them.
    waits: Arc<[PoolWaits; 2]>,
}

/// Checkouts of one pool and the time spent waiting for them.
#[derive(Default)]
struct PoolWaits {
    acquired: AtomicU64,
    wait_micros: AtomicU64,
}

/// A pool's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `read`, `write` (SQLite's one writer) or `shared` (PostgreSQL's one pool).
    pub name: &'static str,
    pub connections: u32,
    pub idle: u32,
    /// Connections taken from the pool since start.
    pub acquired: u64,
    /// Microseconds spent waiting for them.
    pub wait_micros: u64,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// Maximum open connections (readers, for SQLite).
    pub pool_max_size: u32,
    /// How long a request waits for a connection before the store reports itself busy.
    pub acquire_timeout: Duration,
    /// How long a PostgreSQL statement may run before the database ends it
    /// ([`StoreError::Timeout`]); zero for no limit.
    pub statement_timeout: Duration,
}

impl Store {
    /// Opens the pools. Connections are made lazily, so a database that is down at start
    /// does not stop the server; requests get 503 until it is back.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL names no supported backend.
    pub fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let (backend, target) = Backend::from_url(&options.url)?;
        let manager = Manager::new(backend, target.clone(), options.statement_timeout);
        let health = Health::new(manager.clone());
        let build = |size: u32| {
            Pool::builder()
                .max_size(size)
                .error_handler(Box::new(OnConnectError(Arc::clone(&health))))
                .min_idle(Some(0))
                .connection_timeout(options.acquire_timeout)
                // Checkout validates only connections idle for a while (see PooledDb),
                // so a busy server does not pay a round trip per request.
                .test_on_check_out(true)
                .build_unchecked(manager.clone())
        };
        let (read, write) = match backend {
            Backend::Sqlite => {
                conn::prepare_sqlite_file(&target)?;
                (build(options.pool_max_size.max(1)), build(1))
            }
            Backend::Postgres => {
                let pool = build(options.pool_max_size.max(1));
                (pool.clone(), pool)
            }
        };
        Ok(Self {
            backend,
            read,
            write,
            manager,
            health,
            memos: Arc::new(SearchMemos::new(options.statement_timeout)),
            waits: Arc::default(),
        })
    }

    /// The state of the pools (one for PostgreSQL, a read and a write pool for SQLite).
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let stats = |name, pool: &Pool<Manager>, waits: &PoolWaits| {
            let state = pool.state();
            PoolStats {
                name,
                connections: state.connections,
                idle: state.idle_connections,
                acquired: waits.acquired.load(Ordering::Relaxed),
                wait_micros: waits.wait_micros.load(Ordering::Relaxed),
            }
        };
        match self.backend {
            Backend::Postgres => vec![stats("shared", &self.read, &self.waits[0])],
            Backend::Sqlite => vec![
                stats("read", &self.read, &self.waits[0]),
                stats("write", &self.write, &self.waits[1]),
            ],
        }
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations; returns how many ran.
    ///
    /// # Errors
    /// When the database cannot be reached or a migration fails.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        conn::run_migrations(&mut conn.conn)
    }

    /// Opens one connection outside the pools (no acquire wait) and tells whether migrations
    /// are pending: what start-up and `check-config` need to know.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the server refuses this database or these credentials,
    /// [`StoreError::Unavailable`] when it cannot be reached.
    pub fn probe(&self) -> Result<bool, StoreError> {
        let mut conn = self.manager.connect().map_err(|e| {
            let e = StoreError::connect(e);
            if let StoreError::Unavailable(cause) = &e {
                self.health.mark_down(cause);
            }
            e
        })?;
        conn::has_pending_migrations(&mut conn.conn)
    }

    /// Checks that the database answers (used by `/health/ready`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it does not.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader()?;
        let result = queries::ping(&mut conn.conn);
        conn.record(result.as_ref().err());
        result
    }

    /// Runs read-only queries on one pooled connection.
    ///
    /// # Errors
    /// Whatever the queries or the pool report.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.reader()?;
        let mut tx = Tx::new(&mut conn.conn, self.backend, &self.memos);
        let result = f(&mut tx);
        conn.record(result.as_ref().err());
        result
    }

    /// Runs `f` in one database transaction, committed when it returns `Ok`. A write that
    /// lost a race (unique violation, serialisation failure) is retried from the start a
    /// few times, so concurrent updates queue rather than fail.
    ///
    /// # Errors
    /// The error of `f`, or [`StoreError::Conflict`] when the retries are exhausted.
    pub fn write<T, E>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError> + WriteFailure,
    {
        const ATTEMPTS: usize = 5;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.writer()?;
            let backend = self.backend;
            let memos = &self.memos;
            let result = conn.conn.transaction::<T, TxFailure<E>, _>(|c| {
                let mut tx = Tx::new(c, backend, memos);
                let value = f(&mut tx).map_err(TxFailure::Caller)?;
                let missing = tx
                    .missing_required()
                    .map_err(|e| TxFailure::Caller(E::from(e)))?;
                if !missing.is_empty() {
                    return Err(TxFailure::Caller(E::from(StoreError::Missing(missing))));
                }
                Ok(value)
            });
            match result {
                Ok(value) => {
                    conn.record::<StoreError>(None);
                    return Ok(value);
                }
                Err(TxFailure::Caller(e)) => {
                    conn.record(Some(&e));
                    if !e.is_conflict() || attempt == ATTEMPTS {
                        return Err(e);
                    }
                }
                Err(TxFailure::Db(e)) => {
                    let e = StoreError::from(e);
                    conn.record(Some(&e));
                    if !e.is_conflict() || attempt == ATTEMPTS {
                        return Err(e.into());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2 * attempt as u64));
        }
    }

    fn reader(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.health.check()?;
        checkout(&self.read, &self.waits[0])
    }

    fn writer(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.health.check()?;
        // PostgreSQL's writes use the one pool: counted with the reads.
        let waits = match self.backend {
            Backend::Postgres => &self.waits[0],
            Backend::Sqlite => &self.waits[1],
        };
        checkout(&self.write, waits)
    }
}

/// A connection from `pool`, counting the checkout and its wait.
fn checkout(
    pool: &Pool<Manager>,
    waits: &PoolWaits,
) -> Result<PooledConnection<Manager>, StoreError> {
    let started = std::time::Instant::now();
    let conn = pool.get().map_err(StoreError::pool);
    let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    waits.acquired.fetch_add(1, Ordering::Relaxed);
    waits.wait_micros.fetch_add(waited, Ordering::Relaxed);
    conn
}

/// What [`Store::write`] needs to know of a caller's error: whether to run the
/// transaction again, and whether the connection is lost.
pub trait WriteFailure {
    /// A concurrent write won a race; running again may succeed.
    fn is_conflict(&self) -> bool;
    /// The database went away; the connection is not used again.
    fn is_unavailable(&self) -> bool;
}

impl WriteFailure for StoreError {
    fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }

    fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

enum TxFailure<E> {
    Caller(E),
    Db(diesel::result::Error),
}

impl<E> From<diesel::result::Error> for TxFailure<E> {
    fn from(e: diesel::result::Error) -> Self {
        TxFailure::Db(e)
    }
}
