//! SQL text with bound values, run as cached prepared statements on either backend.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Double, HasSqlType, Text, Untyped};

use super::query::Bind;

/// SQL text with bound values; `\u{1}` marks where a bind goes (placeholders are the
/// backend's, written by diesel).
#[derive(Debug, Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) binds: Vec<Bind>,
    /// Whether the best plan depends on the bound values (ranges: string prefixes, dates,
    /// numbers): `name=nguyen` matches 38% of people, `name=xyz` almost none.
    pub(super) value_sensitive: bool,
}

impl Sql {
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(super) fn bind(&mut self, value: Bind) -> &mut Self {
        self.text.push('\u{1}');
        self.binds.push(value);
        self
    }

    /// A point where SQLite checks the statement's deadline, once per row it reaches (a
    /// term that holds until then; nothing on PostgreSQL, whose `statement_timeout` ends
    /// the statement itself).
    pub(super) fn deadline_check(&mut self) -> &mut Self {
        self.push(" AND \u{2}")
    }

    pub(super) fn text(&mut self, value: &str) -> &mut Self {
        self.bind(Bind::Text(value.to_owned()))
    }

    pub(super) fn list(&mut self, values: &[String]) -> &mut Self {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(v);
        }
        self.push(")")
    }
}

/// Distinct statement texts whose prepared statements may be cached per connection.
/// Searches of one shape (parameters, modifiers, number of OR values) share one text, so a
/// working server meets a few dozen; the bound keeps a client that invents shapes from
/// growing every connection's statement cache without limit.
pub(super) const MAX_CACHED_SHAPES: usize = 512;

/// Whether statements of this text may be cached: the first [`MAX_CACHED_SHAPES`]
/// distinct texts may.
pub(super) fn cacheable(shapes: &Mutex<HashSet<u64>>, text: &str) -> bool {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let key = hasher.finish();
    let mut shapes = shapes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if shapes.contains(&key) {
        return true;
    }
    if shapes.len() < MAX_CACHED_SHAPES {
        shapes.insert(key);
        return true;
    }
    false
}

/// A [`Sql`] as a diesel query: placeholders come from the backend (`$n` or `?`), and,
/// unlike `sql_query`, the prepared statement is cached per connection by its text (the
/// statement is parsed and planned once, not on every search).
pub(super) struct Statement<'a> {
    pub(super) sql: &'a Sql,
    pub(super) cacheable: bool,
    /// When SQLite ends the statement (ms since the epoch, `hb_in_time`); `None` checks
    /// nothing.
    pub(super) deadline: Option<i64>,
}

impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl<C> RunQueryDsl<C> for Statement<'_> {}

impl<DB> QueryFragment<DB> for Statement<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt> + HasSqlType<Double>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    f64: ToSql<Double, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cacheable {
            out.unsafe_to_cache_prepared();
        }
        let mut binds = self.sql.binds.iter();
        for (i, piece) in self.sql.text.split('\u{1}').enumerate() {
            if i > 0 {
                match binds.next() {
                    Some(Bind::Text(s)) => out.push_bind_param::<Text, String>(s)?,
                    Some(Bind::Int(v)) => out.push_bind_param::<BigInt, i64>(v)?,
                    Some(Bind::Float(v)) => out.push_bind_param::<Double, f64>(v)?,
                    None => {
                        return Err(diesel::result::Error::QueryBuilderError(
                            "a bind without a value".into(),
                        ))
                    }
                }
            }
            for (j, part) in piece.split('\u{2}').enumerate() {
                if j > 0 {
                    match &self.deadline {
                        Some(deadline) => {
                            out.push_sql("hb_in_time(");
                            out.push_bind_param::<BigInt, i64>(deadline)?;
                            out.push_sql(")");
                        }
                        None => out.push_sql("1 = 1"),
                    }
                }
                out.push_sql(part);
            }
        }
        Ok(())
    }
}

/// Runs `$sql` in the transaction `$tx` on its concrete connection, loading rows of type
/// `$row`.
macro_rules! load {
    ($tx:expr, $sql:expr, $row:ty) => {{
        use crate::store::search::sql::{cacheable, Statement};
        use crate::store::{DbConnection, StoreError};
        use diesel::RunQueryDsl;
        let sql = $sql;
        let shared = cacheable(&$tx.memos.shapes, &sql.text);
        let started = std::time::Instant::now();
        let timeout = $tx.memos.statement_timeout;
        match &mut *$tx.conn {
            // PostgreSQL plans a cached statement once for all values (a generic plan);
            // where the values decide the plan, it prepares the statement with them.
            DbConnection::Postgres(c) => Statement {
                cacheable: shared && !sql.value_sensitive,
                sql: &sql,
                deadline: None,
            }
            .load::<$row>(c),
            // SQLite plans without looking at values: always cache. It has no statement
            // timeout of its own: the statement checks its deadline as it reads rows.
            DbConnection::Sqlite(c) => Statement {
                cacheable: shared,
                sql: &sql,
                deadline: crate::store::conn::deadline(timeout),
            }
            .load::<$row>(c),
        }
        .map_err(|e| {
            // PostgreSQL reports the cancellation as SQLSTATE 57014, which diesel does not
            // pass on (and whose message `lc_messages` translates), and SQLite as the error
            // of `hb_in_time`: a statement that fails after running as long as the timeout
            // was ended by it.
            match StoreError::from(e) {
                StoreError::Fault(_) if !timeout.is_zero() && started.elapsed() >= timeout => {
                    StoreError::Timeout(timeout)
                }
                other => other,
            }
        })
    }};
}
