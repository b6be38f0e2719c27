//! Filters as SQL: each a semi-join on an index table (or the versions table), chains and
//! `_has` nesting the same shape, contained resources through their container's rows.

use super::paging::TEXT_LAST;
use super::query::{
    Bind, Cond, Filter, RangeTest, ResourceKey, UriMode, CONTAINER_PARAM, NEAR_LATITUDE,
    NEAR_LONGITUDE,
};
use super::sql::Sql;
use crate::store::key;

/// `alias` is a current, live version of one of `types`.
pub(super) fn current_of(sql: &mut Sql, alias: &str, types: &[String]) {
    sql.push(&format!(
        "{alias}.is_current AND NOT {alias}.deleted AND {alias}.res_type IN "
    ));
    sql.list(types);
    sql.deadline_check();
}

/// The contained resources of `types` as a table `alias` with the columns filters read:
/// their type and index key, `last_updated` (none: dom-4), and their container's key.
pub(super) fn contained_of(sql: &mut Sql, alias: &str, types: &[String]) {
    sql.push("(SELECT k.res_type, k.res_id, CAST(NULL AS BIGINT) AS last_updated, k.system AS container_type, k.code AS container_id FROM search_token k WHERE k.res_type IN ");
    sql.list(types);
    // The parameter name is written into the statement (a constant of the code, not a
    // value), so that the planner sees how rare contained resources are and drives this
    // from their rows instead of probing them for every match of the inner conditions.
    sql.push(&format!(" AND k.param = '{CONTAINER_PARAM}') {alias}"));
}

/// `<the contained resources of types> alias WHERE <inner on alias>`.
pub(super) fn contained_where(sql: &mut Sql, alias: &str, types: &[String], inner: &Filter) {
    contained_of(sql, alias, types);
    sql.push(" WHERE ");
    filter(sql, alias, types, inner);
}

/// `(type_column = ? AND id_column = ?) OR ...`: one of `keys`.
pub(super) fn keys_in(sql: &mut Sql, (type_column, id_column): (&str, &str), keys: &[ResourceKey]) {
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

/// `f` holds for `alias` (a `resource_versions` row of one of `types`).
pub(super) fn filter(sql: &mut Sql, alias: &str, types: &[String], f: &Filter) {
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
        Filter::LastUpdated(test) => {
            sql.value_sensitive = true;
            let column = format!("{alias}.last_updated");
            compare(sql, &column, &column, test.map(Bind::Int));
        }
        Filter::Compartment {
            target_type,
            target_ids,
            members,
            itself,
        } => {
            if (members.is_empty() && !itself) || target_ids.is_empty() {
                sql.push("1 = 0");
                return;
            }
            sql.push(&format!("({alias}.res_type, {alias}.res_id) IN ("));
            if !members.is_empty() {
                sql.push(
                    "SELECT x.res_type, x.res_id FROM search_reference x WHERE x.target_type = ",
                )
                .text(target_type);
                match target_ids.as_slice() {
                    [one] => {
                        sql.push(" AND x.target_id = ").text(one);
                    }
                    many => {
                        sql.push(" AND x.target_id IN ").list(many);
                    }
                }
                sql.push(" AND (x.res_type, x.param) IN (VALUES ");
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
                for (i, id) in target_ids.iter().enumerate() {
                    if i > 0 {
                        sql.push(" UNION ALL ");
                    }
                    sql.push("SELECT ").text(target_type).push(", ").text(id);
                }
            }
            sql.push(")");
        }
        Filter::Near {
            latitude,
            longitude,
            center: (lat, lon),
            scale: (ky, kx),
            limit,
        } => {
            // The box (for the index), then the distance itself.
            sql.value_sensitive = true;
            sql.push(&format!(
                "({alias}.res_type, {alias}.res_id) IN (SELECT a.res_type, a.res_id FROM search_number a JOIN search_number b ON b.res_type = a.res_type AND b.res_id = a.res_id AND b.param = "
            ))
            .text(NEAR_LONGITUDE)
            .push(" WHERE a.res_type IN ");
            sql.list(types);
            sql.push(" AND a.param = ").text(NEAR_LATITUDE);
            sql.push(" AND a.value BETWEEN ")
                .bind(Bind::Float(latitude.0))
                .push(" AND ")
                .bind(Bind::Float(latitude.1))
                .push(" AND b.value BETWEEN ")
                .bind(Bind::Float(longitude.0))
                .push(" AND ")
                .bind(Bind::Float(longitude.1))
                .push(" AND (a.value - ")
                .bind(Bind::Float(*lat))
                .push(") * (a.value - ")
                .bind(Bind::Float(*lat))
                .push(") * ")
                .bind(Bind::Float(ky * ky))
                .push(" + (b.value - ")
                .bind(Bind::Float(*lon))
                .push(") * (b.value - ")
                .bind(Bind::Float(*lon))
                .push(") * ")
                .bind(Bind::Float(kx * kx))
                .push(" <= ")
                .bind(Bind::Float(limit * limit))
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
pub(super) fn condition(sql: &mut Sql, cond: &Cond) {
    sql.deadline_check();
    match cond {
        Cond::Any => {}
        Cond::Token { system, code } => {
            if let Some(code) = code {
                sql.push(" AND x.code = ").text(&key::exact(code));
            }
            if let Some(system) = system {
                sql.push(" AND x.system = ").text(&key::exact(system));
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
                sql.push("(")
                    .text(&key::exact(system))
                    .push(", ")
                    .text(&key::exact(code))
                    .push(")");
            }
            sql.push(")");
        }
        Cond::StringStarts(prefix) => {
            sql.value_sensitive = true;
            let prefix = key::prefix(prefix);
            // A prefix is an index range in byte order (C collation).
            sql.push(" AND x.norm >= ")
                .text(prefix)
                .push(" AND x.norm < ")
                .bind(Bind::Text(format!("{prefix}{TEXT_LAST}")));
        }
        Cond::StringExact { norm, exact } => {
            sql.push(" AND x.norm = ")
                .text(&key::exact(norm))
                .push(" AND x.exact = ")
                .text(exact);
        }
        Cond::StringContains(part) => {
            sql.value_sensitive = true;
            sql.push(" AND x.norm LIKE ")
                .bind(Bind::Text(format!("%{}%", escape_like(part))))
                .push(" ESCAPE '\\'");
        }
        Cond::DateRange(test) => {
            sql.value_sensitive = true;
            sql.push(" AND ");
            compare(sql, "x.lo", "x.hi", test.map(Bind::Int));
        }
        Cond::Value { test, system, code } => {
            sql.value_sensitive = true;
            if let Some(code) = code {
                sql.push(" AND x.code = ").text(&key::exact(code));
            }
            if let Some(system) = system {
                sql.push(" AND x.system = ").text(&key::exact(system));
            }
            sql.push(" AND ");
            compare(sql, "x.value", "x.value", test.map(Bind::Float));
        }
        Cond::Target { types, id } => {
            sql.push(" AND x.target_id = ").text(id);
            if !types.is_empty() {
                sql.push(" AND x.target_type IN ").list(types);
            }
        }
        Cond::Url(url) => {
            sql.push(" AND x.url = ").text(&key::exact(url));
        }
        Cond::Uri { value, mode } => match mode {
            UriMode::Equal => {
                sql.push(" AND x.uri = ").text(&key::exact(value));
            }
            UriMode::Below => {
                sql.value_sensitive = true;
                let value = key::prefix(value);
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
                let prefixes: Vec<String> = prefixes
                    .iter()
                    .map(|p| key::exact(p).into_owned())
                    .collect();
                sql.push(" AND x.uri IN ").list(&prefixes);
            }
        },
    }
}

/// The stored range `[lo_col, hi_col]` (the same column for a point) under `test`.
pub(super) fn compare(sql: &mut Sql, lo_col: &str, hi_col: &str, test: RangeTest<Bind>) {
    use RangeTest as R;
    match test {
        R::Within(a, b) => {
            // `lo <= hi` holds for every row, so bounding `lo` above as well keeps the same
            // matches and lets the (param, lo) index scan a closed range.
            sql.push(&format!("({lo_col} >= "))
                .bind(a)
                .push(&format!(" AND {lo_col} <= "))
                .bind(b.clone())
                .push(&format!(" AND {hi_col} <= "))
                .bind(b)
                .push(")");
        }
        R::Outside(a, b) => {
            sql.push(&format!("({lo_col} < "))
                .bind(a)
                .push(&format!(" OR {hi_col} > "))
                .bind(b)
                .push(")");
        }
        R::WithinHalfOpen(a, b) => {
            sql.push(&format!("({lo_col} >= "))
                .bind(a)
                .push(&format!(" AND {lo_col} < "))
                .bind(b)
                .push(")");
        }
        R::OutsideHalfOpen(a, b) => {
            sql.push(&format!("({lo_col} < "))
                .bind(a)
                .push(&format!(" OR {lo_col} >= "))
                .bind(b)
                .push(")");
        }
        R::Overlaps(a, b) => {
            sql.push(&format!("({hi_col} >= "))
                .bind(a)
                .push(&format!(" AND {lo_col} <= "))
                .bind(b)
                .push(")");
        }
        R::EndsAfter(x) => {
            sql.push(&format!("{hi_col} > ")).bind(x);
        }
        R::EndsAtOrAfter(x) => {
            sql.push(&format!("{hi_col} >= ")).bind(x);
        }
        R::StartsBefore(x) => {
            sql.push(&format!("{lo_col} < ")).bind(x);
        }
        R::StartsAtOrBefore(x) => {
            sql.push(&format!("{lo_col} <= ")).bind(x);
        }
        R::StartsAfter(x) => {
            sql.push(&format!("{lo_col} > ")).bind(x);
        }
        R::EndsBefore(x) => {
            sql.push(&format!("{hi_col} < ")).bind(x);
        }
    }
}

pub(super) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
