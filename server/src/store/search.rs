//! Search queries over the index tables (search.html), written once for both backends.
//!
//! The service hands over a [`SearchQuery`]: resource types, a tree of [`Filter`]s, sort
//! keys and a keyset position. It becomes one SQL statement whose values are all bound
//! parameters (never spliced into the text). Each filter is a semi-join
//! `(rv.res_type, rv.res_id) IN (SELECT res_type, res_id FROM <index> WHERE ...)`, which
//! both planners drive from the index when it is selective; chains and `_has` nest the
//! same shape. Pages are keyset pages: ordered by the sort keys, then type and id, and
//! continued after the last row's keys, so no offset is ever scanned. A search by common
//! conditions alone walks the live resources in page order instead ([`Tx::walk`]).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Double, HasSqlType, Nullable, Text, Untyped};

use super::queries::Tx;
use super::{DbConnection, StoreError};

/// The index table of a search parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Token,
    String,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Token => "search_token",
            Table::String => "search_string",
            Table::Date => "search_date",
            Table::Number => "search_number",
            Table::Quantity => "search_quantity",
            Table::Reference => "search_reference",
            Table::Uri => "search_uri",
        }
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

/// How a stored range `[lo, hi]` compares with a searched range (search.html#prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// A condition on the rows of one index table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Any row of the parameter (for `:missing=false`).
    Any,
    /// Token by system and/or code (`None` = any).
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    /// Token that is one of these (system, code) pairs (`:in`, a value set's codes).
    TokenIn(Vec<(String, String)>),
    /// Folded string starts with the (folded) value.
    StringStarts(String),
    /// The string exactly as written (`norm` is its folded form, to use the index).
    StringExact { norm: String, exact: String },
    /// Folded string contains the (folded) value.
    StringContains(String),
    /// The row's range `[lo, hi]` against the searched range (dates, in ms).
    DateRange { prefix: Prefix, lo: i64, hi: i64 },
    /// The row's value against the searched range (numbers; quantities with unit).
    Value {
        prefix: Prefix,
        lo: f64,
        hi: f64,
        /// Quantity only: the unit system and code, when searched.
        system: Option<String>,
        code: Option<String>,
    },
    /// A local reference: target type (any when `None`) and id.
    Target { types: Vec<String>, id: String },
    /// An absolute or canonical reference.
    Url(String),
    /// URI equal, or (`below`) starting with the value, or (`above`) a prefix of it.
    Uri { value: String, mode: UriMode },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMode {
    Equal,
    Below,
    Above,
}

/// What resources must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// The logical id is one of these.
    Id(Vec<String>),
    /// The resource type is one of these.
    Types(Vec<String>),
    /// `meta.lastUpdated` (a point) against a searched range.
    LastUpdated {
        prefix: Prefix,
        lo: i64,
        hi: i64,
    },
    /// Some row of the index table for `param` satisfies `cond`.
    Index {
        table: Table,
        param: String,
        cond: Cond,
    },
    /// Chaining (search.html#chaining): the reference `param` points at a resource of
    /// one of `target_types` that satisfies `filter`.
    Chain {
        param: String,
        target_types: Vec<String>,
        filter: Box<Filter>,
    },
    /// Reverse chaining (search.html#has): some `source_type` resource whose reference
    /// `param` points here satisfies `filter`.
    Has {
        source_type: String,
        param: String,
        filter: Box<Filter>,
    },
    /// A composite over repeating elements (search.html#composite): one element of
    /// composite `param` whose i-th component (rows `<param>#<k>$<i>` of table `parts[i].0`)
    /// satisfies `parts[i].1`, for every i.
    Composite {
        param: String,
        parts: Vec<(Table, Cond)>,
    },
    /// Location `near` (search.html#special): the position (number rows
    /// [`NEAR_LATITUDE`], [`NEAR_LONGITUDE`]) within `km` of (`lat`, `lon`), by the
    /// equirectangular approximation (well under 1% off at the distances of a country).
    Near {
        lat: f64,
        lon: f64,
        km: f64,
    },
    /// Contained resources (search.html#contained): the resource contains one of
    /// `types` that satisfies `filter`.
    Contains {
        types: Vec<String>,
        filter: Box<Filter>,
    },
    /// In the compartment of `target_type/target_id` (compartmentdefinition.html): one of
    /// the `members` (type, reference parameter) points at it, or (with `itself`) it is
    /// that resource. One lookup of the reverse reference index, whatever the number of
    /// types.
    Compartment {
        target_type: String,
        target_id: String,
        members: Vec<(String, String)>,
        itself: bool,
    },
}

/// The token row of a container for each of its contained resources: system = the
/// contained type, code = its index key (service/index: `contained_key`).
pub const CONTAINED_PARAM: &str = "_contained";
/// The token row of a contained resource naming its container: system = type, code = id.
pub const CONTAINER_PARAM: &str = "_container";

/// The number rows of a Location's position (`near`): latitude and longitude, WGS84
/// degrees.
pub const NEAR_LATITUDE: &str = "near$lat";
pub const NEAR_LONGITUDE: &str = "near$lon";
/// Kilometres per degree of latitude (mean Earth radius 6,371 km).
const KM_PER_DEGREE: f64 = 111.195;

/// The kind of a sort key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Int,
    Float,
}

/// One `_sort` key (search.html#sort).
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub source: SortSource,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortSource {
    Id,
    LastUpdated,
    Index { table: Table, param: String },
}

impl SortKey {
    /// The kind of value this key sorts by.
    pub fn kind(&self) -> KeyKind {
        match &self.source {
            SortSource::Id => KeyKind::Text,
            SortSource::LastUpdated => KeyKind::Int,
            SortSource::Index { table, .. } => match table {
                Table::Date => KeyKind::Int,
                Table::Number | Table::Quantity => KeyKind::Float,
                _ => KeyKind::Text,
            },
        }
    }
}

/// A sort key value of a row (the keyset position).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Text(String),
    Int(i64),
    Float(f64),
}

/// Where a page starts: strictly after (or, paging back, before) this row.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub keys: Vec<KeyValue>,
    pub res_type: String,
    pub res_id: String,
    /// Paging backwards: rows before the position, nearest first.
    pub backwards: bool,
}

impl Position {
    /// Just after `row`, paging forwards by type and id (no sort keys).
    pub fn after(row: &SearchRow) -> Self {
        Self {
            keys: Vec::new(),
            res_type: row.res_type.clone(),
            res_id: row.res_id.clone(),
            backwards: false,
        }
    }
}

/// Most sort keys a search may have.
pub const MAX_SORT_KEYS: usize = 3;

/// A search of current resources.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The types searched (at least one).
    pub types: Vec<String>,
    pub filter: Filter,
    pub sort: Vec<SortKey>,
    pub position: Option<Position>,
    pub limit: i64,
}

/// A row of a search result.
#[derive(Debug, Clone, QueryableByName)]
pub struct SearchRow {
    #[diesel(sql_type = Text)]
    pub res_type: String,
    #[diesel(sql_type = Text)]
    pub res_id: String,
    #[diesel(sql_type = BigInt)]
    pub version_id: i64,
    #[diesel(sql_type = BigInt)]
    pub last_updated: i64,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = Nullable<Text>)]
    s1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    s2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    s3: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    i1: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    i2: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    i3: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    f1: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    f2: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    f3: Option<f64>,
}

impl SearchRow {
    /// The row's sort key values, for the next page's position.
    pub fn keys(&self, sort: &[SortKey]) -> Vec<KeyValue> {
        sort.iter()
            .enumerate()
            .map(|(i, key)| match key.kind() {
                KeyKind::Text => KeyValue::Text(
                    [&self.s1, &self.s2, &self.s3][i]
                        .clone()
                        .unwrap_or_default(),
                ),
                KeyKind::Int => KeyValue::Int([self.i1, self.i2, self.i3][i].unwrap_or_default()),
                KeyKind::Float => {
                    KeyValue::Float([self.f1, self.f2, self.f3][i].unwrap_or_default())
                }
            })
            .collect()
    }
}

/// A (type, id) pair of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, QueryableByName)]
pub struct ResourceKey {
    #[diesel(sql_type = Text)]
    pub res_type: String,
    #[diesel(sql_type = Text)]
    pub res_id: String,
}

#[derive(QueryableByName)]
struct Explained {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sort values of resources without the sorted element: after all others ascending.
const TEXT_LAST: &str = "\u{10FFFF}";
const INT_LAST: i64 = i64::MAX;
const FLOAT_LAST: f64 = f64::MAX;
/// The sort values of a missing element in descending order (below every real value; index
/// values are never empty strings).
const TEXT_FIRST: &str = "";
const INT_FIRST: i64 = i64::MIN;
const FLOAT_FIRST: f64 = f64::MIN;

/// SQL text with bound values; `\u{1}` marks where a bind goes (placeholders are the
/// backend's, written by diesel).
#[derive(Debug, Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
    /// Whether the best plan depends on the bound values (ranges: string prefixes, dates,
    /// numbers): `name=nguyen` matches 38% of people, `name=xyz` almost none.
    value_sensitive: bool,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Self {
        self.text.push('\u{1}');
        self.binds.push(value);
        self
    }

    fn text(&mut self, value: &str) -> &mut Self {
        self.bind(Bind::Text(value.to_owned()))
    }

    fn list(&mut self, values: &[String]) -> &mut Self {
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
const MAX_CACHED_SHAPES: usize = 512;

fn cacheable(text: &str) -> bool {
    static SHAPES: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let key = hasher.finish();
    let mut shapes = SHAPES
        .get_or_init(|| Mutex::new(HashSet::new()))
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
struct Statement<'a> {
    sql: &'a Sql,
    cacheable: bool,
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
            out.push_sql(piece);
        }
        Ok(())
    }
}

/// Runs `$sql` on the concrete connection, loading rows of type `$row`.
macro_rules! load {
    ($conn:expr, $sql:expr, $row:ty) => {{
        let sql = $sql;
        let shared = cacheable(&sql.text);
        match $conn {
            // PostgreSQL plans a cached statement once for all values (a generic plan);
            // where the values decide the plan, it prepares the statement with them.
            DbConnection::Postgres(c) => Statement {
                cacheable: shared && !sql.value_sensitive,
                sql: &sql,
            }
            .load::<$row>(c),
            // SQLite plans without looking at values: always cache.
            DbConnection::Sqlite(c) => Statement {
                cacheable: shared,
                sql: &sql,
            }
            .load::<$row>(c),
        }
        .map_err(StoreError::from)
    }};
}

impl Tx<'_> {
    /// One page of a search.
    ///
    /// # Errors
    /// Database failures.
    pub fn search(&mut self, query: &SearchQuery) -> Result<Vec<SearchRow>, StoreError> {
        if let Some((conditions, walk_key)) = walkable(query)
            .map(|c| (c, walk_key(query)))
            .filter(|(_, key)| WALK_FAILED.recall(key).is_none())
        {
            let mut common = true;
            for (table, param, cond) in &conditions {
                if !self.rows_at_least(*table, &query.types, param, cond, COMMON_ROWS)? {
                    common = false;
                    break;
                }
            }
            if common {
                if let Some(rows) = self.walk(query, &conditions)? {
                    return Ok(rows);
                }
                WALK_FAILED.remember(walk_key, ());
            }
        }
        // The page is chosen over keys and sort values alone (index-only over
        // `resource_versions_live`); only its rows' content is read, by the outer join.
        let mut sql = Sql::default();
        sql.push("SELECT c.res_type, c.res_id, c.version_id, c.last_updated, c.content");
        for slot in 1..=MAX_SORT_KEYS {
            sql.push(&format!(", p.s{slot}, p.i{slot}, p.f{slot}"));
        }
        sql.push(" FROM (SELECT q.* FROM (SELECT rv.res_type, rv.res_id");
        for slot in 0..MAX_SORT_KEYS {
            let key = query.sort.get(slot);
            for kind in [KeyKind::Text, KeyKind::Int, KeyKind::Float] {
                sql.push(", ");
                match key {
                    Some(key) if key.kind() == kind => sort_value(&mut sql, key),
                    _ => {
                        sql.push(match kind {
                            KeyKind::Text => "CAST(NULL AS TEXT)",
                            KeyKind::Int => "CAST(NULL AS BIGINT)",
                            KeyKind::Float => "CAST(NULL AS DOUBLE PRECISION)",
                        });
                    }
                }
                let name = match kind {
                    KeyKind::Text => "s",
                    KeyKind::Int => "i",
                    KeyKind::Float => "f",
                };
                sql.push(&format!(" AS {name}{}", slot + 1));
            }
        }
        sql.push(" FROM resource_versions rv WHERE ");
        current_of(&mut sql, "rv", &query.types);
        sql.push(" AND ");
        filter(&mut sql, "rv", &query.types, &query.filter);
        sql.push(") q");
        // The sort value columns (`s1`, `i2`...), read from `q` inside and `p` outside.
        let slots: Vec<String> = query
            .sort
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let prefix = match key.kind() {
                    KeyKind::Text => "s",
                    KeyKind::Int => "i",
                    KeyKind::Float => "f",
                };
                format!("{prefix}{}", i + 1)
            })
            .collect();
        let columns: Vec<String> = slots.iter().map(|slot| format!("q.{slot}")).collect();
        let backwards = query.position.as_ref().is_some_and(|p| p.backwards);
        if let Some(position) = &query.position {
            sql.push(" WHERE ");
            keyset(&mut sql, &columns, &query.sort, position);
        }
        sql.push(" ORDER BY ");
        for (column, key) in columns.iter().zip(&query.sort) {
            sql.push(column);
            sql.push(if key.descending != backwards {
                " DESC, "
            } else {
                " ASC, "
            });
        }
        let tail = if backwards { " DESC" } else { " ASC" };
        sql.push(&format!("q.res_type{tail}, q.res_id{tail} LIMIT "));
        sql.bind(Bind::Int(query.limit));
        sql.push(") p JOIN resource_versions c ON c.res_type = p.res_type AND c.res_id = p.res_id AND c.is_current ORDER BY ");
        for (slot, key) in slots.iter().zip(&query.sort) {
            sql.push(&format!("p.{slot}"));
            sql.push(if key.descending != backwards {
                " DESC, "
            } else {
                " ASC, "
            });
        }
        sql.push(&format!("p.res_type{tail}, p.res_id{tail}"));
        let mut rows = load!(&mut *self.conn, sql, SearchRow)?;
        if backwards {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Whether the index rows of `param` in `table` that satisfy `cond` are at least `n`
    /// (an index range scan of at most `n` rows). The answer is kept for
    /// [`COMMON_TTL`]: the common values (a frequent family name, a vaccine code, a date
    /// range) are the ones searched again and again.
    fn rows_at_least(
        &mut self,
        table: Table,
        types: &[String],
        param: &str,
        cond: &Cond,
        n: i64,
    ) -> Result<bool, StoreError> {
        static COMMON: Memo<bool> = Memo::new();
        let key = format!("{table:?}|{types:?}|{param}|{cond:?}|{n}");
        if let Some(common) = COMMON.recall(&key) {
            return Ok(common);
        }
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM {} x WHERE x.res_type IN ",
            table.name()
        ));
        sql.list(types);
        sql.push(" AND x.param = ").text(param);
        condition(&mut sql, cond);
        sql.push(" LIMIT ").bind(Bind::Int(n)).push(") s");
        let rows = load!(&mut *self.conn, sql, Count)?;
        let common = rows.first().is_some_and(|c| c.n >= n);
        COMMON.remember(key, common);
        Ok(common)
    }

    /// A page of a search whose every condition is common (`Patient?name=tran`: a tenth
    /// of the people; `Immunization?date=ge2021-07-01&vaccine-code=208`), in page order
    /// without reading and sorting every match: the type's live resources are walked in
    /// (type, id) order from the page's start, each tested for a row of every condition,
    /// until the page is full. Planners misjudge such searches (a prefix of folded names:
    /// full-name rows are unique, so the statistics miss them; two conditions: taken as
    /// independent) and would join every match for a page of 20. At most [`WALK_WINDOW`]
    /// resources are walked: `None` when they hold less than a page (the matches are rare
    /// or not spread along the id order), and the search is left to the planner.
    fn walk(
        &mut self,
        query: &SearchQuery,
        conditions: &[(Table, &str, &Cond)],
    ) -> Result<Option<Vec<SearchRow>>, StoreError> {
        let backwards = query.position.as_ref().is_some_and(|p| p.backwards);
        let (dir, after) = if backwards {
            (" DESC", " < ")
        } else {
            (" ASC", " > ")
        };
        // The live resources of the window: from the page's start, in page order.
        let window = |sql: &mut Sql| {
            sql.push("SELECT q.res_type, q.res_id FROM resource_versions q WHERE ");
            current_of(sql, "q", &query.types);
            if let Some(position) = &query.position {
                sql.push(&format!(" AND q.res_id{after}"))
                    .text(&position.res_id);
            }
            // One type: ordered by id alone, so that the planner sees the walk already in
            // the page's order (with the type too it sorts the whole window).
            sql.push(&format!(" ORDER BY q.res_id{dir}"));
        };
        let mut sql = Sql::default();
        sql.push("SELECT c.res_type, c.res_id, c.version_id, c.last_updated, c.content");
        no_sort_values(&mut sql);
        sql.push(" FROM (SELECT w.res_type, w.res_id FROM (");
        window(&mut sql);
        sql.push(" LIMIT ").bind(Bind::Int(WALK_WINDOW));
        // EXISTS with an OFFSET stays a test per walked resource (PostgreSQL does not turn
        // it into a join that would read every match).
        sql.push(") w WHERE ");
        for (i, (table, param, cond)) in conditions.iter().enumerate() {
            if i > 0 {
                sql.push(" AND ");
            }
            sql.push(&format!("EXISTS (SELECT 1 FROM {} x WHERE x.res_type = w.res_type AND x.res_id = w.res_id AND x.param = ", table.name()))
                .text(param);
            condition(&mut sql, cond);
            sql.push(" LIMIT 1 OFFSET 0)");
        }
        sql.push(&format!(" ORDER BY w.res_id{dir} LIMIT "));
        sql.bind(Bind::Int(query.limit));
        sql.push(&format!(") p JOIN resource_versions c ON c.res_type = p.res_type AND c.res_id = p.res_id AND c.is_current ORDER BY p.res_type{dir}, p.res_id{dir}"));
        // The walk's plan is its shape, whatever the values: prepared once, never planned
        // again.
        sql.value_sensitive = false;
        let mut rows = load!(&mut *self.conn, sql, SearchRow)?;
        if (rows.len() as i64) < query.limit {
            // Fewer than a page: the end of the data, or a window too short?
            let mut sql = Sql::default();
            sql.push("SELECT e.res_type, e.res_id FROM (");
            window(&mut sql);
            sql.push(" LIMIT 1 OFFSET ")
                .bind(Bind::Int(WALK_WINDOW - 1))
                .push(") e");
            if !load!(&mut *self.conn, sql, ResourceKey)?.is_empty() {
                return Ok(None);
            }
        }
        if backwards {
            rows.reverse();
        }
        Ok(Some(rows))
    }

    /// About how many resources a search matches (`_total=estimate`): PostgreSQL's own
    /// estimate from its planner statistics, without counting; SQLite (small, embedded
    /// databases) counts.
    ///
    /// # Errors
    /// Database failures.
    pub fn search_estimate(
        &mut self,
        types: &[String],
        where_: &Filter,
    ) -> Result<i64, StoreError> {
        if !matches!(&*self.conn, DbConnection::Postgres(_)) {
            return self.search_count(types, where_);
        }
        let mut sql = Sql::default();
        sql.push("EXPLAIN (FORMAT JSON) SELECT 1 FROM resource_versions rv WHERE ");
        current_of(&mut sql, "rv", types);
        sql.push(" AND ");
        filter(&mut sql, "rv", types, where_);
        let rows = load!(&mut *self.conn, sql, Explained)?;
        let rows_of = |plan: &str| -> Option<i64> {
            let json: serde_json::Value = serde_json::from_str(plan).ok()?;
            json.pointer("/0/Plan/Plan Rows")?
                .as_f64()
                .map(|n| n as i64)
        };
        Ok(rows.first().and_then(|r| rows_of(&r.plan)).unwrap_or(0))
    }

    /// How many resources a search matches in all (`_total=accurate`).
    ///
    /// # Errors
    /// Database failures.
    pub fn search_count(&mut self, types: &[String], where_: &Filter) -> Result<i64, StoreError> {
        let mut sql = Sql::default();
        sql.push("SELECT COUNT(*) AS n FROM resource_versions rv WHERE ");
        current_of(&mut sql, "rv", types);
        sql.push(" AND ");
        filter(&mut sql, "rv", types, where_);
        let rows = load!(&mut *self.conn, sql, Count)?;
        Ok(rows.first().map_or(0, |c| c.n))
    }

    /// The local targets of the reference parameters `params` of the given resources
    /// (`_include`), restricted to `target_types` when not empty.
    ///
    /// # Errors
    /// Database failures.
    pub fn reference_targets(
        &mut self,
        sources: &[ResourceKey],
        params: &[String],
        target_types: &[String],
    ) -> Result<Vec<ResourceKey>, StoreError> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push("SELECT DISTINCT r.target_type AS res_type, r.target_id AS res_id FROM search_reference r WHERE r.target_id <> '' AND (");
        keys_in(&mut sql, ("r.res_type", "r.res_id"), sources);
        sql.push(")");
        if !params.is_empty() {
            sql.push(" AND r.param IN ");
            sql.list(params);
        }
        if !target_types.is_empty() {
            sql.push(" AND r.target_type IN ");
            sql.list(target_types);
        }
        load!(&mut *self.conn, sql, ResourceKey)
    }

    /// The `source_type` resources whose reference `param` (any when `None`) points at one
    /// of `targets` (`_revinclude`).
    ///
    /// # Errors
    /// Database failures.
    pub fn referrers(
        &mut self,
        targets: &[ResourceKey],
        source_type: &str,
        param: Option<&str>,
    ) -> Result<Vec<ResourceKey>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push("SELECT DISTINCT r.res_type, r.res_id FROM search_reference r WHERE (");
        keys_in(&mut sql, ("r.target_type", "r.target_id"), targets);
        sql.push(") AND r.res_type = ").text(source_type);
        if let Some(param) = param {
            sql.push(" AND r.param = ").text(param);
        }
        load!(&mut *self.conn, sql, ResourceKey)
    }

    /// The contained resources of `types` satisfying `where_` that the resources
    /// `containers` hold, as (type, index key) pairs in key order (search.html#contained).
    ///
    /// # Errors
    /// Database failures.
    pub fn contained_matching(
        &mut self,
        containers: &[ResourceKey],
        types: &[String],
        where_: &Filter,
    ) -> Result<Vec<ResourceKey>, StoreError> {
        if containers.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push("SELECT c.res_type, c.res_id FROM ");
        contained_of(&mut sql, "c", types);
        sql.push(" WHERE (");
        keys_in(&mut sql, ("c.container_type", "c.container_id"), containers);
        sql.push(") AND ");
        filter(&mut sql, "c", types, where_);
        sql.push(" ORDER BY c.res_type, c.res_id");
        load!(&mut *self.conn, sql, ResourceKey)
    }

    /// Those of `keys` that exist, live or deleted (in no particular order).
    ///
    /// # Errors
    /// Database failures.
    pub fn existing(&mut self, keys: &[ResourceKey]) -> Result<Vec<ResourceKey>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push(
            "SELECT rv.res_type, rv.res_id FROM resource_versions rv WHERE rv.is_current AND (",
        );
        keys_in(&mut sql, ("rv.res_type", "rv.res_id"), keys);
        sql.push(")");
        load!(&mut *self.conn, sql, ResourceKey)
    }

    /// The current, live versions of `keys` (in no particular order).
    ///
    /// # Errors
    /// Database failures.
    pub fn current_many(&mut self, keys: &[ResourceKey]) -> Result<Vec<SearchRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push("SELECT rv.res_type, rv.res_id, rv.version_id, rv.last_updated, rv.content");
        no_sort_values(&mut sql);
        sql.push(" FROM resource_versions rv WHERE rv.is_current AND NOT rv.deleted AND (");
        keys_in(&mut sql, ("rv.res_type", "rv.res_id"), keys);
        sql.push(")");
        load!(&mut *self.conn, sql, SearchRow)
    }
}

/// The sort value columns of a [`SearchRow`], empty: for rows not ordered by `_sort`.
fn no_sort_values(sql: &mut Sql) {
    for slot in 1..=MAX_SORT_KEYS {
        sql.push(&format!(", CAST(NULL AS TEXT) AS s{slot}, CAST(NULL AS BIGINT) AS i{slot}, CAST(NULL AS DOUBLE PRECISION) AS f{slot}"));
    }
}

/// `alias` is a current, live version of one of `types`.
fn current_of(sql: &mut Sql, alias: &str, types: &[String]) {
    sql.push(&format!(
        "{alias}.is_current AND NOT {alias}.deleted AND {alias}.res_type IN "
    ));
    sql.list(types);
}

/// A condition with at least this many index rows is common: a search by common
/// conditions alone walks the type's live resources in page order ([`Tx::walk`]).
const COMMON_ROWS: i64 = 5_000;
/// Most live resources such a walk tests before it gives way to the planner.
const WALK_WINDOW: i64 = 20_000;
/// How long whether a condition is common is known without counting again.
const COMMON_TTL: Duration = Duration::from_secs(60);
/// Most conditions known at once (then forgotten together).
const COMMON_KEPT: usize = 10_000;
/// Most conditions a walked search has.
const WALK_CONDITIONS: usize = 3;

/// Searches whose walk found less than a page in its window (the matches are bunched along
/// the id order, after many that do not match), by their type and filter: for
/// [`COMMON_TTL`] they go to the planner at once instead of walking the window again.
static WALK_FAILED: Memo<()> = Memo::new();

fn walk_key(query: &SearchQuery) -> String {
    format!("{:?}|{:?}", query.types, query.filter)
}

/// What is known about search conditions for [`COMMON_TTL`], by key; at most
/// [`COMMON_KEPT`] keys, then forgotten together.
struct Memo<V>(Mutex<Option<HashMap<String, (Instant, V)>>>);

impl<V: Copy> Memo<V> {
    const fn new() -> Self {
        Self(Mutex::new(None))
    }

    fn recall(&self, key: &str) -> Option<V> {
        let known = self.0.lock().ok()?;
        let (at, value) = known.as_ref()?.get(key)?;
        (at.elapsed() < COMMON_TTL).then_some(*value)
    }

    fn remember(&self, key: String, value: V) {
        if let Ok(mut known) = self.0.lock() {
            let known = known.get_or_insert_with(HashMap::new);
            if known.len() >= COMMON_KEPT {
                known.clear();
            }
            known.insert(key, (Instant::now(), value));
        }
    }
}

/// The conditions of a search of one type by index conditions alone (ANDed: a string
/// prefix, or two to [`WALK_CONDITIONS`] of any kind but `:contains`), in the default
/// page order (no `_sort`).
fn walkable(query: &SearchQuery) -> Option<Vec<(Table, &str, &Cond)>> {
    fn collect<'q>(f: &'q Filter, out: &mut Vec<(Table, &'q str, &'q Cond)>) -> bool {
        match f {
            Filter::And(parts) => parts.iter().all(|p| collect(p, out)),
            // A rare `:contains` would be counted by a scan of every row of its parameter.
            Filter::Index {
                cond: Cond::StringContains(_),
                ..
            } => false,
            Filter::Index { table, param, cond } => {
                out.push((*table, param, cond));
                true
            }
            _ => false,
        }
    }
    if !query.sort.is_empty() || query.types.len() != 1 {
        return None;
    }
    if query
        .position
        .as_ref()
        .is_some_and(|p| p.res_type != query.types[0])
    {
        return None;
    }
    let mut conditions = Vec::new();
    // One condition alone is left to the planner unless it is a string prefix: its
    // statistics judge one token, date or reference well (an identifier lookup costs no
    // count).
    let usable = collect(&query.filter, &mut conditions)
        && match conditions.as_slice() {
            [(_, _, cond)] => matches!(cond, Cond::StringStarts(_)),
            more => (2..=WALK_CONDITIONS).contains(&more.len()),
        };
    usable.then_some(conditions)
}

/// The contained resources of `types` as a table `alias` with the columns filters read:
/// their type and index key, `last_updated` (none: dom-4), and their container's key.
fn contained_of(sql: &mut Sql, alias: &str, types: &[String]) {
    sql.push("(SELECT k.res_type, k.res_id, CAST(NULL AS BIGINT) AS last_updated, k.system AS container_type, k.code AS container_id FROM search_token k WHERE k.res_type IN ");
    sql.list(types);
    // The parameter name is written into the statement (a constant of the code, not a
    // value), so that the planner sees how rare contained resources are and drives this
    // from their rows instead of probing them for every match of the inner conditions.
    sql.push(&format!(" AND k.param = '{CONTAINER_PARAM}') {alias}"));
}

/// `<the contained resources of types> alias WHERE <inner on alias>`.
fn contained_where(sql: &mut Sql, alias: &str, types: &[String], inner: &Filter) {
    contained_of(sql, alias, types);
    sql.push(" WHERE ");
    filter(sql, alias, types, inner);
}

/// `(type_column = ? AND id_column = ?) OR ...`: one of `keys`.
fn keys_in(sql: &mut Sql, (type_column, id_column): (&str, &str), keys: &[ResourceKey]) {
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push(&format!("({type_column} = "))
            .text(&k.res_type)
            .push(&format!(" AND {id_column} = "))
            .text(&k.res_id)
            .push(")");
    }
}

/// The value a sort key orders `rv` by.
fn sort_value(sql: &mut Sql, key: &SortKey) {
    match &key.source {
        SortSource::Id => {
            sql.push("rv.res_id");
        }
        SortSource::LastUpdated => {
            sql.push("rv.last_updated");
        }
        SortSource::Index { table, param } => {
            // A resource without the element sorts last in either direction: after every
            // value ascending, before every value (so after them) descending.
            let d = key.descending;
            let text = || Bind::Text(if d { TEXT_FIRST } else { TEXT_LAST }.into());
            let (column, last) = match table {
                Table::String => ("norm", text()),
                Table::Token => ("code", text()),
                Table::Uri => ("uri", text()),
                Table::Reference => ("target_id", text()),
                Table::Date if d => ("hi", Bind::Int(INT_FIRST)),
                Table::Date => ("lo", Bind::Int(INT_LAST)),
                Table::Number | Table::Quantity if d => ("value", Bind::Float(FLOAT_FIRST)),
                Table::Number | Table::Quantity => ("value", Bind::Float(FLOAT_LAST)),
            };
            let aggregate = if key.descending { "MAX" } else { "MIN" };
            sql.push(&format!(
                "COALESCE((SELECT {aggregate}(x.{column}) FROM {} x WHERE x.res_type = rv.res_type AND x.res_id = rv.res_id AND x.param = ",
                table.name()
            ));
            sql.text(param).push("), ").bind(last).push(")");
        }
    }
}

/// Rows strictly after (or before, paging back) `position` in the sort order.
fn keyset(sql: &mut Sql, columns: &[String], sort: &[SortKey], position: &Position) {
    // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ... OR (all equal AND (type, id) > (t, i))
    let after = |descending: bool| {
        if descending != position.backwards {
            " < "
        } else {
            " > "
        }
    };
    sql.push("(");
    for i in 0..=columns.len() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for (column, key) in columns.iter().zip(&position.keys).take(i) {
            sql.push(column).push(" = ");
            bind_key(sql, key);
            sql.push(" AND ");
        }
        if i < columns.len() {
            sql.push(&columns[i]).push(after(sort[i].descending));
            bind_key(sql, &position.keys[i]);
        } else {
            let op = after(false);
            sql.push(&format!("(q.res_type{op}"))
                .text(&position.res_type)
                .push(" OR (q.res_type = ")
                .text(&position.res_type)
                .push(&format!(" AND q.res_id{op}"))
                .text(&position.res_id)
                .push("))");
        }
        sql.push(")");
    }
    sql.push(")");
}

fn bind_key(sql: &mut Sql, value: &KeyValue) {
    sql.bind(match value {
        KeyValue::Text(s) => Bind::Text(s.clone()),
        KeyValue::Int(i) => Bind::Int(*i),
        KeyValue::Float(f) => Bind::Float(*f),
    });
}

/// `f` holds for `alias` (a `resource_versions` row of one of `types`).
fn filter(sql: &mut Sql, alias: &str, types: &[String], f: &Filter) {
    match f {
        Filter::And(parts) if parts.is_empty() => {
            sql.push("1 = 1");
        }
        Filter::Or(parts) if parts.is_empty() => {
            sql.push("1 = 0");
        }
        Filter::And(parts) | Filter::Or(parts) => {
            let joiner = if matches!(f, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push("(");
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    sql.push(joiner);
                }
                filter(sql, alias, types, part);
            }
            sql.push(")");
        }
        Filter::Not(inner) => {
            sql.push("NOT ");
            filter(sql, alias, types, inner);
        }
        Filter::Id(ids) => {
            sql.push(&format!("{alias}.res_id IN "));
            sql.list(ids);
        }
        Filter::Types(types) => {
            sql.push(&format!("{alias}.res_type IN "));
            sql.list(types);
        }
        Filter::LastUpdated { prefix, lo, hi } => {
            sql.value_sensitive = true;
            let column = format!("{alias}.last_updated");
            compare(
                sql,
                &column,
                &column,
                *prefix,
                Bind::Int(*lo),
                Bind::Int(*hi),
            );
        }
        Filter::Compartment {
            target_type,
            target_id,
            members,
            itself,
        } => {
            if members.is_empty() && !itself {
                sql.push("1 = 0");
                return;
            }
            sql.push(&format!("({alias}.res_type, {alias}.res_id) IN ("));
            if !members.is_empty() {
                sql.push(
                    "SELECT x.res_type, x.res_id FROM search_reference x WHERE x.target_type = ",
                )
                .text(target_type)
                .push(" AND x.target_id = ")
                .text(target_id)
                .push(" AND (x.res_type, x.param) IN (VALUES ");
                for (i, (t, p)) in members.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.push("(").text(t).push(", ").text(p).push(")");
                }
                sql.push(")");
                if *itself {
                    sql.push(" UNION ALL ");
                }
            }
            if *itself {
                sql.push("SELECT ")
                    .text(target_type)
                    .push(", ")
                    .text(target_id);
            }
            sql.push(")");
        }
        Filter::Near { lat, lon, km } => {
            // A box around the point (for the index), then the distance itself.
            sql.value_sensitive = true;
            let x = KM_PER_DEGREE * lat.to_radians().cos().max(0.01);
            let (dlat, dlon) = (km / KM_PER_DEGREE, km / x);
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT a.res_type, a.res_id FROM search_number a JOIN search_number b ON b.res_type = a.res_type AND b.res_id = a.res_id AND b.param = "
            ))
            .text(NEAR_LONGITUDE)
            .push(" WHERE a.res_type IN ");
            sql.list(types);
            sql.push(" AND a.param = ").text(NEAR_LATITUDE);
            sql.push(" AND a.value BETWEEN ")
                .bind(Bind::Float(lat - dlat))
                .push(" AND ")
                .bind(Bind::Float(lat + dlat))
                .push(" AND b.value BETWEEN ")
                .bind(Bind::Float(lon - dlon))
                .push(" AND ")
                .bind(Bind::Float(lon + dlon))
                .push(" AND (a.value - ")
                .bind(Bind::Float(*lat))
                .push(") * (a.value - ")
                .bind(Bind::Float(*lat))
                .push(") * ")
                .bind(Bind::Float(KM_PER_DEGREE * KM_PER_DEGREE))
                .push(" + (b.value - ")
                .bind(Bind::Float(*lon))
                .push(") * (b.value - ")
                .bind(Bind::Float(*lon))
                .push(") * ")
                .bind(Bind::Float(x * x))
                .push(" <= ")
                .bind(Bind::Float(km * km))
                .push(")");
        }
        Filter::Composite { param, parts } => {
            // The first component's rows, each kept when the rows of the same element
            // (`#<k>`, found by rewriting `$0` into `$i`) satisfy the other components.
            let Some(((first_table, first_cond), rest)) = parts.split_first() else {
                sql.push("1 = 0");
                return;
            };
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT x.res_type, x.res_id FROM {} x WHERE x.res_type IN ",
                first_table.name()
            ));
            sql.list(types);
            sql.push(" AND x.param LIKE ")
                .bind(Bind::Text(format!("{param}#%$0")));
            condition(sql, first_cond);
            for (i, (table, cond)) in rest.iter().enumerate() {
                sql.push(" AND (x.res_type, x.res_id, REPLACE(x.param, '$0', ")
                    .bind(Bind::Text(format!("${}", i + 1)))
                    .push(&format!(
                        ")) IN (SELECT x.res_type, x.res_id, x.param FROM {} x WHERE x.res_type IN ",
                        table.name()
                    ));
                sql.list(types);
                sql.push(" AND x.param LIKE ")
                    .bind(Bind::Text(format!("{param}#%${}", i + 1)));
                condition(sql, cond);
                sql.push(")");
            }
            sql.push(")");
        }
        Filter::Index { table, param, cond } => {
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT x.res_type, x.res_id FROM {} x WHERE x.res_type IN ",
                table.name()
            ));
            sql.list(types);
            sql.push(" AND x.param = ").text(param);
            condition(sql, cond);
            sql.push(")");
        }
        Filter::Chain {
            param,
            target_types,
            filter: inner,
        } => {
            let next = format!("{alias}t");
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT r.res_type, r.res_id FROM search_reference r WHERE r.res_type IN "
            ));
            sql.list(types);
            sql.push(" AND r.param = ").text(param);
            sql.push(" AND r.target_type IN ").list(target_types);
            sql.push(&format!(
                " AND (r.target_type, r.target_id) IN (SELECT {next}.res_type, {next}.res_id FROM resource_versions {next} WHERE "
            ));
            current_of(sql, &next, target_types);
            sql.push(" AND ");
            filter(sql, &next, target_types, inner);
            // A chain goes into contained resources too (search.html#contained).
            let contained = format!("{next}c");
            sql.push(&format!(
                " UNION ALL SELECT {contained}.res_type, {contained}.res_id FROM "
            ));
            contained_where(sql, &contained, target_types, inner);
            sql.push("))");
        }
        Filter::Contains {
            types: contained_types,
            filter: inner,
        } => {
            let next = format!("{alias}c");
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT {next}.container_type, {next}.container_id FROM "
            ));
            contained_where(sql, &next, contained_types, inner);
            sql.push(")");
        }
        Filter::Has {
            source_type,
            param,
            filter: inner,
        } => {
            let next = format!("{alias}h");
            let sources = [source_type.clone()];
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT r.target_type, r.target_id FROM search_reference r WHERE r.res_type = "
            ));
            sql.text(source_type).push(" AND r.param = ").text(param);
            sql.push(&format!(
                " AND r.res_id IN (SELECT {next}.res_id FROM resource_versions {next} WHERE "
            ));
            current_of(sql, &next, &sources);
            sql.push(" AND ");
            filter(sql, &next, &sources, inner);
            sql.push("))");
        }
    }
}

/// ` AND <cond on x>`
fn condition(sql: &mut Sql, cond: &Cond) {
    match cond {
        Cond::Any => {}
        Cond::Token { system, code } => {
            if let Some(code) = code {
                sql.push(" AND x.code = ").text(code);
            }
            if let Some(system) = system {
                sql.push(" AND x.system = ").text(system);
            }
        }
        Cond::TokenIn(codes) if codes.is_empty() => {
            sql.push(" AND 1 = 0");
        }
        Cond::TokenIn(codes) => {
            sql.push(" AND (x.system, x.code) IN (VALUES ");
            for (i, (system, code)) in codes.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(").text(system).push(", ").text(code).push(")");
            }
            sql.push(")");
        }
        Cond::StringStarts(prefix) => {
            sql.value_sensitive = true;
            // A prefix is an index range in byte order (C collation).
            sql.push(" AND x.norm >= ")
                .text(prefix)
                .push(" AND x.norm < ")
                .bind(Bind::Text(format!("{prefix}{TEXT_LAST}")));
        }
        Cond::StringExact { norm, exact } => {
            sql.push(" AND x.norm = ")
                .text(norm)
                .push(" AND x.exact = ")
                .text(exact);
        }
        Cond::StringContains(part) => {
            sql.value_sensitive = true;
            sql.push(" AND x.norm LIKE ")
                .bind(Bind::Text(format!("%{}%", escape_like(part))))
                .push(" ESCAPE '\\'");
        }
        Cond::DateRange { prefix, lo, hi } => {
            sql.value_sensitive = true;
            sql.push(" AND ");
            compare(sql, "x.lo", "x.hi", *prefix, Bind::Int(*lo), Bind::Int(*hi));
        }
        Cond::Value {
            prefix,
            lo,
            hi,
            system,
            code,
        } => {
            sql.value_sensitive = true;
            if let Some(code) = code {
                sql.push(" AND x.code = ").text(code);
            }
            if let Some(system) = system {
                sql.push(" AND x.system = ").text(system);
            }
            sql.push(" AND ");
            // search.html#number: `100` stands for [99.5, 100.5), open at the top.
            match prefix {
                Prefix::Eq => {
                    sql.push("(x.value >= ")
                        .bind(Bind::Float(*lo))
                        .push(" AND x.value < ")
                        .bind(Bind::Float(*hi))
                        .push(")");
                }
                Prefix::Ne => {
                    sql.push("(x.value < ")
                        .bind(Bind::Float(*lo))
                        .push(" OR x.value >= ")
                        .bind(Bind::Float(*hi))
                        .push(")");
                }
                _ => compare(
                    sql,
                    "x.value",
                    "x.value",
                    *prefix,
                    Bind::Float(*lo),
                    Bind::Float(*hi),
                ),
            }
        }
        Cond::Target { types, id } => {
            sql.push(" AND x.target_id = ").text(id);
            if !types.is_empty() {
                sql.push(" AND x.target_type IN ").list(types);
            }
        }
        Cond::Url(url) => {
            sql.push(" AND x.url = ").text(url);
        }
        Cond::Uri { value, mode } => match mode {
            UriMode::Equal => {
                sql.push(" AND x.uri = ").text(value);
            }
            UriMode::Below => {
                sql.value_sensitive = true;
                sql.push(" AND x.uri >= ")
                    .text(value)
                    .push(" AND x.uri < ")
                    .bind(Bind::Text(format!("{value}{TEXT_LAST}")));
            }
            UriMode::Above => {
                // Every prefix of the value that ends at a path boundary, and the value.
                let mut prefixes: Vec<String> = value
                    .char_indices()
                    .filter(|(_, c)| *c == '/')
                    .map(|(i, _)| value[..i].to_owned())
                    .filter(|p| p.contains("://") && !p.ends_with(':') && !p.ends_with('/'))
                    .collect();
                prefixes.push(value.clone());
                sql.push(" AND x.uri IN ").list(&prefixes);
            }
        },
    }
}

/// The stored range `[lo_col, hi_col]` against the searched range `[lo, hi]`
/// (search.html#prefix). `ap` is taken as overlapping the searched range.
fn compare(sql: &mut Sql, lo_col: &str, hi_col: &str, prefix: Prefix, lo: Bind, hi: Bind) {
    match prefix {
        Prefix::Eq => {
            // `lo <= hi` holds for every row, so bounding `lo` above as well keeps the same
            // matches and lets the (param, lo) index scan a closed range.
            sql.push(&format!("({lo_col} >= "))
                .bind(lo)
                .push(&format!(" AND {lo_col} <= "))
                .bind(hi.clone())
                .push(&format!(" AND {hi_col} <= "))
                .bind(hi)
                .push(")");
        }
        Prefix::Ne => {
            sql.push(&format!("({lo_col} < "))
                .bind(lo)
                .push(&format!(" OR {hi_col} > "))
                .bind(hi)
                .push(")");
        }
        Prefix::Ap => {
            sql.push(&format!("({hi_col} >= "))
                .bind(lo)
                .push(&format!(" AND {lo_col} <= "))
                .bind(hi)
                .push(")");
        }
        Prefix::Gt => {
            sql.push(&format!("{hi_col} > ")).bind(hi);
        }
        Prefix::Lt => {
            sql.push(&format!("{lo_col} < ")).bind(lo);
        }
        Prefix::Ge => {
            sql.push(&format!("{hi_col} >= ")).bind(lo);
        }
        Prefix::Le => {
            sql.push(&format!("{lo_col} <= ")).bind(hi);
        }
        Prefix::Sa => {
            sql.push(&format!("{lo_col} > ")).bind(hi);
        }
        Prefix::Eb => {
            sql.push(&format!("{hi_col} < ")).bind(lo);
        }
    }
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_apart_from_the_text() {
        let mut sql = Sql::default();
        sql.push("a = ")
            .text("x")
            .push(" AND b = ")
            .bind(Bind::Int(1));
        assert_eq!(sql.text, "a = \u{1} AND b = \u{1}");
        assert_eq!(sql.binds, vec![Bind::Text("x".into()), Bind::Int(1)]);
    }

    #[test]
    fn values_never_enter_the_sql_text() {
        let mut sql = Sql::default();
        let evil = "x'); DROP TABLE resource_versions; --".to_owned();
        filter(
            &mut sql,
            "rv",
            &["Patient".to_owned()],
            &Filter::Index {
                table: Table::String,
                param: evil.clone(),
                cond: Cond::StringContains(evil.clone()),
            },
        );
        assert!(!sql.text.contains("DROP"));
    }
}
