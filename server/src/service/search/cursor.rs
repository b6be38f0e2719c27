//! Paging cursors (search.html#paging): the sort keys, type and id of a page's edge, opaque
//! to the client, checked against the search they continue.

use super::*;

/// The cursor of a page edge: after the last row, or (paging back) before the first.
pub(super) fn edge(row: &SearchRow, sort: &[SortKey], backwards: bool) -> Position {
    Position {
        keys: row.keys(sort),
        res_type: row.res_type.clone(),
        res_id: row.res_id.clone(),
        backwards,
    }
}

pub(super) fn encode_cursor(position: &Position) -> String {
    let keys: Vec<Value> = position
        .keys
        .iter()
        .map(|k| match k {
            KeyValue::Text(s) => json!(s),
            KeyValue::Int(i) => json!(i.to_string()),
            KeyValue::Float(f) => json!(f),
        })
        .collect();
    let value =
        json!({"k": keys, "t": position.res_type, "i": position.res_id, "b": position.backwards});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

pub(super) fn decode_cursor(cursor: &str, sort: &[SortKey]) -> Result<Position, ServiceError> {
    let bad = || {
        ServiceError::at(
            ErrorCode::Cursor,
            "_cursor",
            "The paging cursor is not valid for this search.",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let keys = value.get("k").and_then(Value::as_array).ok_or_else(bad)?;
    if keys.len() != sort.len() {
        return Err(bad());
    }
    let keys = keys
        .iter()
        .zip(sort)
        .map(|(k, s)| match s.kind() {
            KeyKind::Text => k.as_str().map(|s| KeyValue::Text(s.to_owned())),
            KeyKind::Int => k.as_str().and_then(|s| s.parse().ok()).map(KeyValue::Int),
            KeyKind::Float => k.as_f64().map(KeyValue::Float),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(Position {
        keys,
        res_type: value
            .get("t")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned(),
        res_id: value
            .get("i")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned(),
        backwards: value.get("b").and_then(Value::as_bool).ok_or_else(bad)?,
    })
}
