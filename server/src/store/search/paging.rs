//! Pages: the sort values of a row (a missing element sorts last either way) and the
//! keyset condition that continues after (or before) a page's edge.

use super::query::{Bind, KeyValue, Position, SortKey, SortSource, Table, MAX_SORT_KEYS};
use super::sql::Sql;

/// Sort values of resources without the sorted element: after all others ascending.
pub(super) const TEXT_LAST: &str = "\u{10FFFF}";
pub(super) const INT_LAST: i64 = i64::MAX;
pub(super) const FLOAT_LAST: f64 = f64::MAX;
/// The sort values of a missing element in descending order (below every real value; index
/// values are never empty strings).
pub(super) const TEXT_FIRST: &str = "";
pub(super) const INT_FIRST: i64 = i64::MIN;
pub(super) const FLOAT_FIRST: f64 = f64::MIN;

/// The sort value columns of a [`SearchRow`], empty: for rows not ordered by `_sort`.
pub(super) fn no_sort_values(sql: &mut Sql) {
    for slot in 1..=MAX_SORT_KEYS {
        sql.push(&format!(", CAST(NULL AS TEXT) AS s{slot}, CAST(NULL AS BIGINT) AS i{slot}, CAST(NULL AS DOUBLE PRECISION) AS f{slot}"));
    }
}

/// The value a sort key orders `rv` by.
pub(super) fn sort_value(sql: &mut Sql, key: &SortKey) {
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
pub(super) fn keyset(sql: &mut Sql, columns: &[String], sort: &[SortKey], position: &Position) {
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

pub(super) fn bind_key(sql: &mut Sql, value: &KeyValue) {
    sql.bind(match value {
        KeyValue::Text(s) => Bind::Text(s.clone()),
        KeyValue::Int(i) => Bind::Int(*i),
        KeyValue::Float(f) => Bind::Float(*f),
    });
}
