//! The words of `_text` (the narrative) and `_content` (the whole resource), search.html
//! #text and #content: what a resource says, folded as strings are (`fold.rs`) and cut
//! into words, so that `_content=nguyen hue` finds a resource whose text holds words
//! starting with both. Each is ONE string row per resource, its distinct words between
//! spaces (` tran thi binh `), searched with `LIKE '% word%'`: a row per word made the
//! string index three times larger (bench/README.md).

use serde_json::Value;

use super::fold;

/// Longest word list kept per resource and parameter, in bytes (the first words, in
/// document order; a B-tree entry must stay well under a page).
pub const WORD_LIST_BYTES: usize = 1000;

/// The folded words of `text` (letters and digits; at least 2 characters), distinct, in
/// order of first appearance.
pub fn words(text: &str) -> Vec<String> {
    let folded = fold::fold(text);
    let mut out: Vec<String> = Vec::new();
    for word in folded.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().count() >= 2 && !out.iter().any(|w| w == word) {
            out.push(word.to_owned());
        }
    }
    out
}

/// The text of an XHTML narrative `div`: tags dropped, the common entities decoded.
pub fn narrative(div: &str) -> String {
    let mut text = String::with_capacity(div.len());
    let mut in_tag = false;
    for c in div.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The words of the whole resource: every string value but ids, references, URLs,
/// systems, binary data and metadata; the narrative as text.
pub fn content(resource: &Value) -> Vec<String> {
    let mut text = String::new();
    collect(resource, &mut text);
    words(&text)
}

/// `words` as the row a search matches with `% word`: ` w1 w2 ... ` (a space before and
/// after each word), at most [`WORD_LIST_BYTES`]; `None` when there are none.
pub fn word_list(words: &[String]) -> Option<String> {
    if words.is_empty() {
        return None;
    }
    let mut list = String::from(" ");
    for word in words {
        if list.len() + word.len() + 1 > WORD_LIST_BYTES {
            break;
        }
        list.push_str(word);
        list.push(' ');
    }
    Some(list)
}

fn collect(value: &Value, text: &mut String) {
    match value {
        Value::Object(o) => {
            for (key, v) in o {
                match key.as_str() {
                    "id" | "reference" | "url" | "system" | "meta" | "data" | "resourceType"
                    | "fullUrl" => {}
                    "div" => {
                        if let Some(div) = v.as_str() {
                            text.push_str(&narrative(div));
                            text.push(' ');
                        }
                    }
                    k if k.starts_with('_') => {}
                    _ => collect(v, text),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, text)),
        Value::String(s) if !s.contains("://") && !s.starts_with("urn:") => {
            text.push_str(s);
            text.push(' ');
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_are_folded_distinct_and_in_order() {
        assert_eq!(
            words("Nguyễn Văn An, nguyen-van; Đà Nẵng x"),
            ["nguyen", "van", "an", "da", "nang"]
        );
    }

    #[test]
    fn word_lists_are_space_delimited_and_bounded() {
        assert_eq!(
            word_list(&words("Trần Thị Bình")).unwrap(),
            " tran thi binh "
        );
        assert_eq!(word_list(&[]), None);
        let many: Vec<String> = (0..1000).map(|i| format!("word{i}")).collect();
        assert!(word_list(&many).unwrap().len() <= WORD_LIST_BYTES);
    }

    #[test]
    fn narrative_drops_tags_and_decodes_entities() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Tiêm <b>mũi 2</b> &amp; theo dõi</p></div>"#;
        assert_eq!(words(&narrative(div)), ["tiem", "mui", "theo", "doi"]);
    }

    #[test]
    fn content_skips_ids_references_and_urls() {
        let p = json!({"resourceType": "Patient", "id": "secretid",
            "meta": {"versionId": "7"},
            "identifier": [{"system": "https://cccd.gov.vn", "value": "001090012345"}],
            "name": [{"family": "Trần", "given": ["Thị", "Bình"]}],
            "managingOrganization": {"reference": "Organization/org1", "display": "Bệnh viện Bạch Mai"},
            "photo": [{"url": "http://example.org/x.png"}]});
        assert_eq!(
            content(&p),
            [
                "001090012345",
                "tran",
                "thi",
                "binh",
                "benh",
                "vien",
                "bach",
                "mai"
            ]
        );
    }
}
