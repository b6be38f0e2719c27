//! The queries, written once for both backends.
//!
//! Each query is written once and executed on the concrete connection (`on_backend!`):
//! through diesel's `MultiConnection` every statement was prepared anew (SQLite parsed the
//! SQL on each read, measured with perf), while the concrete connections cache prepared
//! statements.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::models::{IndexRows, NewResourceVersion, ResourceRow};
use super::schema::{
    resource_versions as rv, search_date, search_number, search_quantity, search_reference,
    search_string, search_token, search_uri,
};
use super::search::SearchMemos;
use super::{Backend, DbConnection, ResourceKey, StoreError, CONTAINED_PARAM};

/// Runs `$body` with `$c` bound to the concrete connection of either backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Postgres($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Applies the type, id and `_since` filters of a [`HistoryQuery`] to a boxed query (the
/// page and the total share them).
macro_rules! history_filter {
    ($q:expr, $query:expr) => {{
        let mut q = $q;
        if let Some(t) = &$query.res_type {
            q = q.filter(rv::res_type.eq(t.clone()));
        }
        if let Some(id) = &$query.res_id {
            q = q.filter(rv::res_id.eq(id.clone()));
        }
        if let Some(since) = $query.since {
            q = q.filter(rv::last_updated.ge(since));
        }
        // A version is current from its own time until the next version's: it was current
        // during [lo, hi] when it began by hi and the next one (if any) came after lo.
        if let Some((lo, hi)) = $query.at {
            let next = NEXT_VERSION;
            q = q.filter(
                rv::last_updated.le(hi).and(
                    rv::is_current.or(diesel::dsl::exists(
                        next.filter(next.field(rv::res_type).eq(rv::res_type))
                            .filter(next.field(rv::res_id).eq(rv::res_id))
                            .filter(next.field(rv::version_id).eq(rv::version_id + 1))
                            .filter(next.field(rv::last_updated).gt(lo)),
                    )),
                ),
            );
        }
        q
    }};
}

// The versions table again, for the version after one (`_at`).
diesel::alias! {
    const NEXT_VERSION: Alias<NextVersion> = rv as next_version;
}

/// A connection lent to the service for the span of one read or one transaction.
pub struct Tx<'c> {
    pub(super) conn: &'c mut DbConnection,
    backend: Backend,
    /// What searches of this store have learnt about its data.
    pub(super) memos: &'c SearchMemos,
    /// Resources that must exist when the transaction commits, with where they are named.
    required: Vec<(String, ResourceKey)>,
}

/// Which versions a history interaction lists (http.html#history).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub res_type: Option<String>,
    pub res_id: Option<String>,
    /// Only versions updated at or after this instant (ms since the epoch).
    pub since: Option<i64>,
    /// Only versions that were current at some time in this closed range (`_at`).
    pub at: Option<(i64, i64)>,
    /// Only versions written before this position (the paging cursor).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

pub(super) fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

impl<'c> Tx<'c> {
    pub(super) fn new(
        conn: &'c mut DbConnection,
        backend: Backend,
        memos: &'c SearchMemos,
    ) -> Self {
        Self {
            conn,
            backend,
            memos,
            required: Vec::new(),
        }
    }

    /// Asks that (type, id) exist when this transaction commits (`path` says where the
    /// write names it): checked once, after every write of the transaction, so that
    /// resources written in it count.
    pub fn require_existing(&mut self, path: String, key: ResourceKey) {
        self.required.push((path, key));
    }

    /// The required resources that do not exist, with where they are named.
    ///
    /// # Errors
    /// Database failures.
    pub(super) fn missing_required(&mut self) -> Result<Vec<(String, ResourceKey)>, StoreError> {
        let mut keys: Vec<ResourceKey> = self.required.iter().map(|(_, k)| k.clone()).collect();
        keys.sort_by(|a, b| (&a.res_type, &a.res_id).cmp(&(&b.res_type, &b.res_id)));
        keys.dedup();
        let mut found = std::collections::HashSet::new();
        for chunk in keys.chunks(500) {
            found.extend(self.existing(chunk)?);
        }
        Ok(std::mem::take(&mut self.required)
            .into_iter()
            .filter(|(_, k)| !found.contains(k))
            .collect())
    }

    /// The current version of (type, id), deleted or not. `is_current` is written as a bare
    /// column (no bound `true`) so that it matches the partial index's predicate: with a
    /// bound value SQLite re-prepared the statement on every execution to decide whether
    /// the partial index applies.
    ///
    /// # Errors
    /// Database failures.
    pub fn current(
        &mut self,
        res_type: &str,
        res_id: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let query = rv::table
            .filter(rv::res_type.eq(res_type))
            .filter(rv::res_id.eq(res_id))
            .filter(rv::is_current);
        Ok(on_backend!(&mut *self.conn, |c| query
            .select(ResourceRow::as_select())
            .first(c)
            .optional())?)
    }

    /// One version of (type, id).
    ///
    /// # Errors
    /// Database failures.
    pub fn version(
        &mut self,
        res_type: &str,
        res_id: &str,
        version_id: i64,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let query = rv::table
            .filter(rv::res_type.eq(res_type))
            .filter(rv::res_id.eq(res_id))
            .filter(rv::version_id.eq(version_id));
        Ok(on_backend!(&mut *self.conn, |c| query
            .select(ResourceRow::as_select())
            .first(c)
            .optional())?)
    }

    /// Versions newest first, as the history interaction lists them.
    ///
    /// # Errors
    /// Database failures.
    pub fn history(&mut self, query: &HistoryQuery) -> Result<Vec<ResourceRow>, StoreError> {
        Ok(on_backend!(&mut *self.conn, |c| {
            let mut q = history_filter!(
                rv::table.select(ResourceRow::as_select()).into_boxed(),
                query
            );
            if let Some(before) = query.before_seq {
                q = q.filter(rv::seq.lt(before));
            }
            q.order(rv::seq.desc()).limit(query.limit).load(c)
        })?)
    }

    /// How many versions a history query matches in all (Bundle.total).
    ///
    /// # Errors
    /// Database failures.
    pub fn history_total(&mut self, query: &HistoryQuery) -> Result<i64, StoreError> {
        Ok(on_backend!(&mut *self.conn, |c| {
            history_filter!(rv::table.count().into_boxed(), query).get_result(c)
        })?)
    }

    /// Serialises writers that test the same condition (conditional create/update): on
    /// PostgreSQL a transaction-scoped advisory lock on `key`; SQLite has one writer.
    ///
    /// # Errors
    /// Database failures.
    pub fn lock(&mut self, key: i64) -> Result<(), StoreError> {
        if let (Backend::Postgres, DbConnection::Postgres(pg)) = (self.backend, &mut *self.conn) {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(key)
                .execute(pg)?;
        }
        Ok(())
    }

    /// [`Tx::lock`] on each of `keys`, in the order given, in one round trip.
    ///
    /// # Errors
    /// Database failures.
    pub fn lock_many(&mut self, keys: &[i64]) -> Result<(), StoreError> {
        if let (Backend::Postgres, DbConnection::Postgres(pg), false) =
            (self.backend, &mut *self.conn, keys.is_empty())
        {
            // unnest yields the array's elements in order, and the locks are taken row by
            // row as they come.
            diesel::sql_query(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1) WITH ORDINALITY AS t(k, n)",
            )
            .bind::<diesel::sql_types::Array<BigInt>, _>(keys)
            .execute(pg)?;
        }
        Ok(())
    }

    /// Marks `version_id` of (type, id) as no longer current. Returns false when it was not
    /// the current version any more (a concurrent writer got there first).
    ///
    /// # Errors
    /// Database failures.
    pub fn retire(
        &mut self,
        res_type: &str,
        res_id: &str,
        version_id: i64,
    ) -> Result<bool, StoreError> {
        let target = rv::table
            .filter(rv::res_type.eq(res_type))
            .filter(rv::res_id.eq(res_id))
            .filter(rv::version_id.eq(version_id))
            .filter(rv::is_current);
        let n = on_backend!(&mut *self.conn, |c| diesel::update(target)
            .set(rv::is_current.eq(false))
            .execute(c))?;
        Ok(n == 1)
    }

    /// Writes a new version.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when that version already exists.
    pub fn insert(&mut self, version: &NewResourceVersion) -> Result<(), StoreError> {
        on_backend!(&mut *self.conn, |c| diesel::insert_into(rv::table)
            .values(version)
            .execute(c))?;
        Ok(())
    }

    /// Writes many new versions in one statement (audit batches).
    ///
    /// # Errors
    /// Database failures.
    pub fn insert_many(&mut self, versions: &[NewResourceVersion]) -> Result<(), StoreError> {
        if !versions.is_empty() {
            on_backend!(&mut *self.conn, |c| diesel::insert_into(rv::table)
                .values(versions)
                .execute(c))?;
        }
        Ok(())
    }

    /// Writes the index rows of first versions (nothing to replace), in one statement per
    /// table.
    ///
    /// # Errors
    /// Database failures.
    pub fn insert_index(&mut self, rows: &IndexRows) -> Result<(), StoreError> {
        self.replace_index("", "", rows, true)
    }

    /// Replaces every index row of (type, id) and of its contained resources with `rows`
    /// (empty for a deletion). A first version (`fresh`) has no rows yet, so nothing is
    /// deleted.
    ///
    /// # Errors
    /// Database failures.
    pub fn replace_index(
        &mut self,
        res_type: &str,
        res_id: &str,
        rows: &IndexRows,
        fresh: bool,
    ) -> Result<(), StoreError> {
        // The rows of the old version's contained resources (keys on its `_contained`
        // token rows) go with it.
        let mut keys = vec![(res_type.to_owned(), res_id.to_owned())];
        if !fresh {
            let contained = search_token::table
                .filter(search_token::res_type.eq(res_type))
                .filter(search_token::res_id.eq(res_id))
                .filter(search_token::param.eq(CONTAINED_PARAM))
                .select((search_token::system, search_token::code));
            keys.extend(on_backend!(&mut *self.conn, |c| contained.load::<(String, String)>(c))?);
        }
        macro_rules! replace {
            ($table:ident, $rows:expr) => {{
                for (key_type, key_id) in keys.iter().filter(|_| !fresh) {
                    let old = $table::table
                        .filter($table::res_type.eq(key_type))
                        .filter($table::res_id.eq(key_id));
                    on_backend!(&mut *self.conn, |c| diesel::delete(old).execute(c))?;
                }
                if !$rows.is_empty() {
                    on_backend!(&mut *self.conn, |c| diesel::insert_into($table::table)
                        .values($rows)
                        .execute(c))?;
                }
            }};
        }
        // Values past the databases' index limits are indexed by their keys (`key.rs`).
        let rows = super::key::bounded(rows);
        replace!(search_token, &rows.tokens);
        replace!(search_string, &rows.strings);
        replace!(search_date, &rows.dates);
        replace!(search_number, &rows.numbers);
        replace!(search_quantity, &rows.quantities);
        replace!(search_reference, &rows.references);
        replace!(search_uri, &rows.uris);
        Ok(())
    }
}
