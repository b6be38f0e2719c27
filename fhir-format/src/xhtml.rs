//! The narrative rules of R4 (narrative.html#xhtml; invariants txt-1 and txt-2 of
//! `Narrative.div`): XHTML in one `div` of the XHTML namespace, holding only the basic
//! formatting elements of HTML 4.0 (chapters 7-11 except section 9.4, and 15), `a` and
//! `img`, with no scripts, event attributes or script URLs; and some content. An app that
//! shows `text.div` (and every one does) must never receive a script from here.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Why a narrative breaks txt-1 or txt-2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarrativeProblem {
    /// `txt-1` or `txt-2`.
    pub rule: &'static str,
    pub message: String,
    pub message_vi: String,
}

/// The elements a narrative may use.
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "b",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
];

const XHTML: &[u8] = b"http://www.w3.org/1999/xhtml";

/// Checks a `Narrative.div`.
///
/// # Errors
/// The first problem found.
pub fn check_narrative(div: &str) -> Result<(), NarrativeProblem> {
    let txt1 = |en: String, vi: String| NarrativeProblem {
        rule: "txt-1",
        message: format!("{en} (txt-1)."),
        message_vi: format!("{vi} (txt-1)."),
    };
    let mut reader = Reader::from_str(div);
    let (mut depth, mut roots, mut content) = (0usize, 0usize, false);
    loop {
        let event = reader.read_event().map_err(|e| {
            txt1(
                format!("The narrative is not well-formed XHTML: {e}"),
                format!("Phần mô tả không phải XHTML đúng cú pháp: {e}"),
            )
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 {
                    roots += 1;
                    let namespaced = e
                        .attributes()
                        .flatten()
                        .any(|a| a.key.as_ref() == b"xmlns" && a.value.as_ref() == XHTML);
                    if e.name().as_ref() != b"div" || !namespaced || roots > 1 {
                        return Err(txt1(
                            "The narrative is one <div xmlns=\"http://www.w3.org/1999/xhtml\"> element".into(),
                            "Phần mô tả là một phần tử <div xmlns=\"http://www.w3.org/1999/xhtml\">".into(),
                        ));
                    }
                }
                element(e).map_err(|(en, vi)| txt1(en, vi))?;
                if e.name().as_ref() == b"img" {
                    content = true;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if depth > crate::xml::MAX_DEPTH {
                        return Err(txt1(
                            format!(
                                "The narrative nests elements more than {} deep",
                                crate::xml::MAX_DEPTH
                            ),
                            format!(
                                "Phần mô tả lồng các phần tử sâu quá {} cấp",
                                crate::xml::MAX_DEPTH
                            ),
                        ));
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(ref t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(txt1(
                        "The narrative has text outside its <div>".into(),
                        "Phần mô tả có văn bản nằm ngoài <div>".into(),
                    ));
                }
                content |= !t.iter().all(u8::is_ascii_whitespace);
            }
            Event::CData(_) => content = true,
            Event::DocType(_) | Event::PI(_) => {
                return Err(txt1(
                    "The narrative may not hold a DOCTYPE or processing instruction".into(),
                    "Phần mô tả không được chứa DOCTYPE hay chỉ thị xử lý".into(),
                ))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth > 0 {
        return Err(txt1(
            "The narrative is not well-formed XHTML: an element is not closed".into(),
            "Phần mô tả không phải XHTML đúng cú pháp: có phần tử chưa đóng".into(),
        ));
    }
    if roots == 0 {
        return Err(txt1(
            "The narrative is one <div xmlns=\"http://www.w3.org/1999/xhtml\"> element".into(),
            "Phần mô tả là một phần tử <div xmlns=\"http://www.w3.org/1999/xhtml\">".into(),
        ));
    }
    if !content {
        return Err(NarrativeProblem {
            rule: "txt-2",
            message: "The narrative has no content: no text and no image (txt-2).".into(),
            message_vi: "Phần mô tả không có nội dung: không có chữ, không có hình (txt-2).".into(),
        });
    }
    Ok(())
}

/// One element: allowed, without event attributes or script URLs.
fn element(e: &BytesStart<'_>) -> Result<(), (String, String)> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    if !ELEMENTS.contains(&name.as_str()) {
        return Err((
            format!("<{name}> is not allowed in a narrative (scripts, forms, frames, objects and style sheets are not)"),
            format!("Không được dùng <{name}> trong phần mô tả (không được có script, form, frame, object hay stylesheet)"),
        ));
    }
    for attribute in e.attributes() {
        let attribute = attribute.map_err(|err| {
            (
                format!("<{name}> has a malformed attribute: {err}"),
                format!("<{name}> có thuộc tính sai cú pháp: {err}"),
            )
        })?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).to_ascii_lowercase();
        let value = String::from_utf8_lossy(attribute.value.as_ref()).to_ascii_lowercase();
        let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let scripted = key.starts_with("on")
            || (matches!(
                key.as_str(),
                "href" | "src" | "style" | "background" | "action"
            ) && ["javascript:", "vbscript:", "data:text", "expression("]
                .iter()
                .any(|s| value.contains(s)));
        if scripted {
            return Err((
                format!("<{name}> has the attribute '{key}', which could run a script"),
                format!("<{name}> có thuộc tính '{key}' có thể chạy script"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"<div xmlns="http://www.w3.org/1999/xhtml">"#;

    #[test]
    fn narratives_as_r4_allows_them() {
        for good in [
            format!(
                "{OPEN}<p>Nguyễn Văn An, <b>1990</b></p><table><tr><td>x</td></tr></table></div>"
            ),
            format!(
                r#"{OPEN}<a href="https://moh.gov.vn">link</a><img src="\#pic" alt="x"/></div>"#
            ),
            format!(r#"{OPEN}<span style="color: red">đỏ</span></div>"#),
        ] {
            assert_eq!(check_narrative(&good), Ok(()), "{good}");
        }
    }

    #[test]
    fn scripts_and_broken_narratives_are_refused() {
        let rule = |div: &str| check_narrative(div).map_err(|p| p.rule);
        assert_eq!(
            rule(&format!("{OPEN}<script>alert(1)</script></div>")),
            Err("txt-1")
        );
        assert_eq!(
            rule(&format!(
                r#"{OPEN}<img src="x" onerror="alert(1)"/>x</div>"#
            )),
            Err("txt-1")
        );
        assert_eq!(
            rule(&format!(
                r#"{OPEN}<a href=" JavaScript:alert(1)">x</a></div>"#
            )),
            Err("txt-1")
        );
        assert_eq!(
            rule(&format!("{OPEN}<iframe src=\"https://x\"/>x</div>")),
            Err("txt-1")
        );
        assert_eq!(rule("<div>unclosed"), Err("txt-1"));
        assert_eq!(rule(&format!("{OPEN}unclosed")), Err("txt-1"));
        assert_eq!(rule("<div>no namespace</div>"), Err("txt-1"));
        assert_eq!(rule(&format!("{OPEN}a</div><div>b</div>")), Err("txt-1"));
        assert_eq!(rule(&format!("{OPEN}  </div>")), Err("txt-2"));
    }
}
