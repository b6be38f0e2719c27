//! The walk: a search by common conditions alone reads the type's live resources in page
//! order and tests each, instead of joining every match (docs/SEARCH.md, "How a page is
//! found"), with what it learnt about the data kept for a while.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::filter::{condition, current_of};
use super::paging::no_sort_values;
use super::query::{Bind, Cond, Filter, ResourceKey, SearchQuery, SearchRow, Table};
use super::sql::Sql;
use super::Count;
use crate::store::queries::Tx;
use crate::store::StoreError;

/// A condition with at least this many index rows is common: a search by common
/// conditions alone walks the type's live resources in page order ([`Tx::walk`]).
pub(super) const COMMON_ROWS: i64 = 5_000;
/// Most live resources such a walk tests before it gives way to the planner.
pub(super) const WALK_WINDOW: i64 = 20_000;
/// How long whether a condition is common is known without counting again.
pub(super) const COMMON_TTL: Duration = Duration::from_secs(60);
/// Most conditions known at once (then forgotten together).
pub(super) const COMMON_KEPT: usize = 10_000;
/// Most conditions a walked search has.
pub(super) const WALK_CONDITIONS: usize = 3;

/// What searches have learnt about one store, owned by the store (not the process), so
/// that two stores in one process share nothing: the statement shapes worth caching, and
/// for [`COMMON_TTL`] what the walk found about the data.
pub(in crate::store) struct SearchMemos {
    /// The store's statement timeout (zero: none): a search statement that fails after
    /// running this long was ended by it.
    pub(super) statement_timeout: Duration,
    /// The statement texts cached so far (at most [`MAX_CACHED_SHAPES`]).
    pub(super) shapes: Mutex<HashSet<u64>>,
    /// Whether a condition is common ([`COMMON_ROWS`] index rows or more).
    pub(super) common: Memo<bool>,
    /// Searches whose walk found less than a page in its window (the matches are bunched
    /// along the id order, after many that do not match), by their type and filter: they
    /// go to the planner at once instead of walking the window again.
    pub(super) walk_failed: Memo<()>,
}

impl SearchMemos {
    pub(in crate::store) fn new(statement_timeout: Duration) -> Self {
        Self {
            statement_timeout,
            shapes: Mutex::default(),
            common: Memo::default(),
            walk_failed: Memo::default(),
        }
    }
}

pub(super) fn walk_key(query: &SearchQuery) -> String {
    format!("{:?}|{:?}", query.types, query.filter)
}

/// What is known about search conditions for [`COMMON_TTL`], by key; at most
/// [`COMMON_KEPT`] keys, then forgotten together.
pub(super) struct Memo<V>(Mutex<Option<HashMap<String, (Instant, V)>>>);

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<V: Copy> Memo<V> {
    pub(super) fn recall(&self, key: &str) -> Option<V> {
        let known = self.0.lock().ok()?;
        let (at, value) = known.as_ref()?.get(key)?;
        (at.elapsed() < COMMON_TTL).then_some(*value)
    }

    pub(super) fn remember(&self, key: String, value: V) {
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
pub(super) fn walkable(query: &SearchQuery) -> Option<Vec<(Table, &str, &Cond)>> {
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

impl Tx<'_> {
    /// Whether the index rows of `param` in `table` that satisfy `cond` are at least `n`
    /// (an index range scan of at most `n` rows). The answer is kept for
    /// [`COMMON_TTL`]: the common values (a frequent family name, a vaccine code, a date
    /// range) are the ones searched again and again.
    pub(super) fn rows_at_least(
        &mut self,
        table: Table,
        types: &[String],
        param: &str,
        cond: &Cond,
        n: i64,
    ) -> Result<bool, StoreError> {
        let key = format!("{table:?}|{types:?}|{param}|{cond:?}|{n}");
        if let Some(common) = self.memos.common.recall(&key) {
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
        let rows = load!(self, sql, Count)?;
        let common = rows.first().is_some_and(|c| c.n >= n);
        self.memos.common.remember(key, common);
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
    pub(super) fn walk(
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
        let mut rows = load!(self, sql, SearchRow)?;
        if (rows.len() as i64) < query.limit {
            // Fewer than a page: the end of the data, or a window too short?
            let mut sql = Sql::default();
            sql.push("SELECT e.res_type, e.res_id FROM (");
            window(&mut sql);
            sql.push(" LIMIT 1 OFFSET ")
                .bind(Bind::Int(WALK_WINDOW - 1))
                .push(") e");
            if !load!(self, sql, ResourceKey)?.is_empty() {
                return Ok(None);
            }
        }
        if backwards {
            rows.reverse();
        }
        Ok(Some(rows))
    }
}
