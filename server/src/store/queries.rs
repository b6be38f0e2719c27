//! The queries, written once for both backends.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::models::{NewResourceVersion, NewTokenRow, ResourceRow};
use super::schema::{resource_versions as rv, search_token as st};
use super::{Backend, DbConnection, StoreError};

/// A connection lent to the service for the span of one read or one transaction.
pub struct Tx<'c> {
    conn: &'c mut DbConnection,
    backend: Backend,
}

/// Which versions a history interaction lists (http.html#history).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub res_type: Option<String>,
    pub res_id: Option<String>,
    /// Only versions updated at or after this instant (ms since the epoch).
    pub since: Option<i64>,
    /// Only versions written before this position (the paging cursor).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

pub(super) fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: &'c mut DbConnection, backend: Backend) -> Self {
        Self { conn, backend }
    }

    /// The current version of (type, id), deleted or not.
    ///
    /// # Errors
    /// Database failures.
    pub fn current(
        &mut self,
        res_type: &str,
        res_id: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        Ok(rv::table
            .filter(rv::res_type.eq(res_type))
            .filter(rv::res_id.eq(res_id))
            .filter(rv::is_current.eq(true))
            .select(ResourceRow::as_select())
            .first(self.conn)
            .optional()?)
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
        Ok(rv::table
            .filter(rv::res_type.eq(res_type))
            .filter(rv::res_id.eq(res_id))
            .filter(rv::version_id.eq(version_id))
            .select(ResourceRow::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Versions newest first, as the history interaction lists them.
    ///
    /// # Errors
    /// Database failures.
    pub fn history(&mut self, query: &HistoryQuery) -> Result<Vec<ResourceRow>, StoreError> {
        let mut q = rv::table.select(ResourceRow::as_select()).into_boxed();
        if let Some(t) = &query.res_type {
            q = q.filter(rv::res_type.eq(t.clone()));
        }
        if let Some(id) = &query.res_id {
            q = q.filter(rv::res_id.eq(id.clone()));
        }
        if let Some(since) = query.since {
            q = q.filter(rv::last_updated.ge(since));
        }
        if let Some(before) = query.before_seq {
            q = q.filter(rv::seq.lt(before));
        }
        Ok(q.order(rv::seq.desc()).limit(query.limit).load(self.conn)?)
    }

    /// How many versions a history query matches in all (Bundle.total).
    ///
    /// # Errors
    /// Database failures.
    pub fn history_total(&mut self, query: &HistoryQuery) -> Result<i64, StoreError> {
        let mut q = rv::table.count().into_boxed();
        if let Some(t) = &query.res_type {
            q = q.filter(rv::res_type.eq(t.clone()));
        }
        if let Some(id) = &query.res_id {
            q = q.filter(rv::res_id.eq(id.clone()));
        }
        if let Some(since) = query.since {
            q = q.filter(rv::last_updated.ge(since));
        }
        Ok(q.get_result(self.conn)?)
    }

    /// Ids of live resources of a type whose token index has `param` = `system|code`
    /// (any system when `system` is `None`; no system when it is `Some("")`).
    ///
    /// # Errors
    /// Database failures.
    pub fn ids_by_token(
        &mut self,
        res_type: &str,
        param: &str,
        system: Option<&str>,
        code: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut q = st::table
            .filter(st::res_type.eq(res_type))
            .filter(st::param.eq(param))
            .filter(st::code.eq(code))
            .select(st::res_id)
            .distinct()
            .into_boxed();
        if let Some(system) = system {
            q = q.filter(st::system.eq(system.to_owned()));
        }
        Ok(q.load(self.conn)?)
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
        let n = diesel::update(
            rv::table
                .filter(rv::res_type.eq(res_type))
                .filter(rv::res_id.eq(res_id))
                .filter(rv::version_id.eq(version_id))
                .filter(rv::is_current.eq(true)),
        )
        .set(rv::is_current.eq(false))
        .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Writes a new version.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when that version already exists.
    pub fn insert(&mut self, version: &NewResourceVersion) -> Result<(), StoreError> {
        diesel::insert_into(rv::table)
            .values(version)
            .execute(self.conn)?;
        Ok(())
    }

    /// Replaces the token index rows of (type, id).
    ///
    /// # Errors
    /// Database failures.
    pub fn replace_tokens(
        &mut self,
        res_type: &str,
        res_id: &str,
        rows: &[NewTokenRow],
    ) -> Result<(), StoreError> {
        diesel::delete(
            st::table
                .filter(st::res_type.eq(res_type))
                .filter(st::res_id.eq(res_id)),
        )
        .execute(self.conn)?;
        if !rows.is_empty() {
            // Multi-row VALUES is backend-specific in diesel, so dispatch on the backend.
            match &mut *self.conn {
                DbConnection::Postgres(c) => {
                    diesel::insert_into(st::table).values(rows).execute(c)?
                }
                DbConnection::Sqlite(c) => {
                    diesel::insert_into(st::table).values(rows).execute(c)?
                }
            };
        }
        Ok(())
    }
}
