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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SortSource;
    use proptest::prelude::*;

    fn key(kind: u8) -> SortKey {
        let source = match kind % 3 {
            0 => SortSource::Id,
            1 => SortSource::LastUpdated,
            _ => SortSource::Index {
                table: Table::Number,
                param: "length".into(),
            },
        };
        SortKey {
            source,
            descending: kind.is_multiple_of(2),
        }
    }

    fn value(kind: u8, text: String, int: i64, float: f64) -> KeyValue {
        match kind % 3 {
            0 => KeyValue::Text(text),
            1 => KeyValue::Int(int),
            _ => KeyValue::Float(float),
        }
    }

    proptest! {
        /// A next or previous link continues exactly where its page ended: the cursor
        /// gives back the position it was made from, the sentinels of a missing element
        /// (paging.rs) included.
        #[test]
        fn cursors_round_trip(
            kinds in proptest::collection::vec(0u8..6, 0..=3),
            text in prop_oneof![".*", Just(String::new()), Just("\u{10FFFF}".to_owned())],
            int in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX)],
            float in prop_oneof![-1e12f64..1e12, Just(f64::MIN), Just(f64::MAX)],
            res_id in "[A-Za-z0-9.-]{1,64}",
            backwards: bool,
        ) {
            let sort: Vec<SortKey> = kinds.iter().map(|k| key(*k)).collect();
            let position = Position {
                keys: kinds.iter().map(|k| value(*k, text.clone(), int, float)).collect(),
                res_type: "Patient".into(),
                res_id,
                backwards,
            };
            let cursor = encode_cursor(&position);
            prop_assert_eq!(decode_cursor(&cursor, &sort).ok(), Some(position));
        }
    }

    #[test]
    fn a_cursor_of_another_search_is_refused() {
        let position = Position {
            keys: vec![KeyValue::Int(5)],
            res_type: "Patient".into(),
            res_id: "a".into(),
            backwards: false,
        };
        let cursor = encode_cursor(&position);
        assert!(decode_cursor(&cursor, &[]).is_err(), "fewer sort keys");
        assert!(decode_cursor(&cursor, &[key(2)]).is_err(), "a number key");
        assert!(decode_cursor("not base64!", &[key(1)]).is_err());
    }
}
