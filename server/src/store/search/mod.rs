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

#[macro_use]
mod sql;
mod filter;
mod paging;
mod query;
mod walk;

pub use query::{
    Bind, Cond, Filter, KeyKind, KeyValue, Position, RangeTest, ResourceKey, SearchQuery,
    SearchRow, SortKey, SortSource, Table, UriMode, CONTAINED_PARAM, CONTAINER_PARAM,
    MAX_SORT_KEYS, NEAR_LATITUDE, NEAR_LONGITUDE,
};
pub(super) use walk::SearchMemos;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::queries::Tx;
use super::{DbConnection, StoreError};
use filter::{contained_of, current_of, filter, keys_in};
use paging::{keyset, no_sort_values, sort_value};
use sql::Sql;
use walk::{walk_key, walkable, COMMON_ROWS};

#[derive(QueryableByName)]
struct Explained {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

#[derive(QueryableByName)]
pub(super) struct Count {
    #[diesel(sql_type = BigInt)]
    pub(super) n: i64,
}

impl Tx<'_> {
    /// One page of a search.
    ///
    /// # Errors
    /// Database failures.
    pub fn search(&mut self, query: &SearchQuery) -> Result<Vec<SearchRow>, StoreError> {
        if let Some((conditions, walk_key)) = walkable(query)
            .map(|c| (c, walk_key(query)))
            .filter(|(_, key)| self.memos.walk_failed.recall(key).is_none())
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
                self.memos.walk_failed.remember(walk_key, ());
            }
        }
        self.planned(query)
    }

    /// One page of a search as one statement the database plans (every search that is
    /// not walked).
    fn planned(&mut self, query: &SearchQuery) -> Result<Vec<SearchRow>, StoreError> {
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
        let mut rows = load!(self, sql, SearchRow)?;
        if backwards {
            rows.reverse();
        }
        Ok(rows)
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
        let rows = load!(self, sql, Explained)?;
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
        let rows = load!(self, sql, Count)?;
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
        load!(self, sql, ResourceKey)
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
        load!(self, sql, ResourceKey)
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
        load!(self, sql, ResourceKey)
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
        load!(self, sql, ResourceKey)
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
        load!(self, sql, SearchRow)
    }
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

    /// The walk and the planner's statement give the same pages, forwards and backwards,
    /// for a search by two common conditions over resources whose matches are spread
    /// along the id order (so that the walk is taken, and pages straddle non-matches).
    #[test]
    fn the_walk_returns_the_planners_pages() {
        use crate::store::{IndexRows, NewResourceVersion, NewStringRow, NewTokenRow};
        use crate::store::{Store, StoreOptions};
        let dir = std::env::temp_dir().join(format!("hb-walk-{}", uuid::Uuid::new_v4()));
        let store = Store::open(&StoreOptions {
            url: format!("sqlite://{}/db.sqlite", dir.display()),
            pool_max_size: 1,
            acquire_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::ZERO,
        })
        .expect("open");
        store.migrate().expect("migrate");
        let n = 2 * COMMON_ROWS as usize + 500;
        store
            .write(|tx| -> Result<(), StoreError> {
                let mut versions = Vec::new();
                let mut rows = IndexRows::default();
                for i in 0..n {
                    let id = format!("p{i:05}");
                    versions.push(NewResourceVersion {
                        res_type: "Patient".into(),
                        res_id: id.clone(),
                        version_id: 1,
                        is_current: true,
                        deleted: false,
                        method: "POST".into(),
                        last_updated: i as i64,
                        content: Some(format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#)),
                    });
                    // Two of three are "tran...", every other one is male: both common, a
                    // third of the people match both.
                    let family = if i % 3 == 0 { "le" } else { "tran" };
                    rows.strings.push(NewStringRow {
                        res_type: "Patient".into(),
                        res_id: id.clone(),
                        param: "family".into(),
                        norm: format!("{family}{}", i % 7),
                        exact: family.into(),
                    });
                    rows.tokens.push(NewTokenRow {
                        res_type: "Patient".into(),
                        res_id: id,
                        param: "gender".into(),
                        system: String::new(),
                        code: if i % 2 == 0 { "male" } else { "female" }.into(),
                    });
                }
                for chunk in versions.chunks(1000) {
                    tx.insert_many(chunk)?;
                }
                tx.insert_index(&rows)
            })
            .expect("load");
        let query = |position: Option<Position>| SearchQuery {
            types: vec!["Patient".into()],
            filter: Filter::And(vec![
                Filter::Index {
                    table: Table::String,
                    param: "family".into(),
                    cond: Cond::StringStarts("tran".into()),
                },
                Filter::Index {
                    table: Table::Token,
                    param: "gender".into(),
                    cond: Cond::Token {
                        system: None,
                        code: Some("male".into()),
                    },
                },
            ]),
            sort: Vec::new(),
            position,
            limit: 20,
        };
        let ids = |rows: &[SearchRow]| rows.iter().map(|r| r.res_id.clone()).collect::<Vec<_>>();
        store
            .read(|tx| {
                let mut position = None;
                for page in 0..5 {
                    let q = query(position.clone());
                    let conditions = walkable(&q).expect("a walkable search");
                    let walked = tx.walk(&q, &conditions)?.expect("the walk fills a page");
                    let planned = tx.planned(&q)?;
                    assert_eq!(ids(&walked), ids(&planned), "page {page}");
                    assert_eq!(ids(&tx.search(&q)?), ids(&planned), "page {page} by search");
                    position = walked.last().map(Position::after);
                }
                // And back: before the last page's first row.
                let back = Position {
                    backwards: true,
                    ..Position::after(&tx.planned(&query(position.clone()))?[0])
                };
                let q = query(Some(back));
                let conditions = walkable(&q).expect("a walkable search");
                let walked = tx.walk(&q, &conditions)?.expect("the walk fills a page");
                assert_eq!(ids(&walked), ids(&tx.planned(&q)?), "backwards");
                Ok(())
            })
            .expect("search");
        let _ = std::fs::remove_dir_all(dir);
    }
}
