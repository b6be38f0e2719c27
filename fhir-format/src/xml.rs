//! What an XML body must be before fhirbolt's reader sees it: one root element, nested at
//! most [`MAX_DEPTH`] deep, and no attributes FHIR XML does not have (xml.html: `value`,
//! `url`, `id` and namespace declarations; the narrative's XHTML has its own, checked by
//! txt-1), which fhirbolt would drop silently. fhirbolt reads XML recursively, so a few hundred nested
//! elements (30 KB of `<extension url="x">`) overflowed a worker's stack and aborted the
//! whole server; JSON gets the same bound from serde_json's recursion limit (128). A DTD or
//! a processing instruction is refused too: entities are how XML bombs and XXE work.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::FormatError;

/// The deepest element nesting accepted, as deep as JSON may nest (serde_json: 128); R4
/// resources of the campaign nest a dozen deep, questionnaires a few dozen.
pub const MAX_DEPTH: usize = 128;

/// Checks nesting depth and the single root without building anything.
pub(crate) fn check_shape(text: &str) -> Result<(), FormatError> {
    let mut reader = Reader::from_str(text);
    let (mut depth, mut roots) = (0usize, 0usize);
    // The depth of the narrative's XHTML `div` while inside it.
    let mut xhtml: Option<usize> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    roots += 1;
                }
                if xhtml.is_none() {
                    if is_xhtml(&e) {
                        xhtml = Some(depth);
                    } else {
                        attributes(&e)?;
                    }
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FormatError::general(
                        format!("The XML body nests elements more than {MAX_DEPTH} deep."),
                        format!("Nội dung XML lồng các phần tử sâu quá {MAX_DEPTH} cấp."),
                    ));
                }
            }
            Ok(Event::Empty(e)) => {
                if depth == 0 {
                    roots += 1;
                }
                if xhtml.is_none() && !is_xhtml(&e) {
                    attributes(&e)?;
                }
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                if xhtml == Some(depth) {
                    xhtml = None;
                }
            }
            Ok(Event::Eof) => break,
            // A DTD declares entities (billion laughs, external files: XXE) and a
            // processing instruction asks the reader to act; FHIR XML has neither.
            Ok(Event::DocType(_)) => {
                return Err(FormatError::general(
                    "The XML body has a document type declaration (DTD); FHIR XML has none.",
                    "Nội dung XML có khai báo kiểu tài liệu (DTD); XML FHIR không có.",
                ))
            }
            Ok(Event::PI(_)) => {
                return Err(FormatError::general(
                    "The XML body has a processing instruction; FHIR XML has none.",
                    "Nội dung XML có chỉ thị xử lý; XML FHIR không có.",
                ))
            }
            Ok(_) => {}
            Err(e) => {
                return Err(FormatError::general(
                    format!("The XML body is not well-formed: {e}."),
                    format!("Nội dung XML không đúng cú pháp: {e}."),
                ))
            }
        }
        if roots > 1 {
            return Err(FormatError::general(
                "The XML body has more than one root element; send one resource.",
                "Nội dung XML có nhiều hơn một phần tử gốc; hãy gửi một tài nguyên.",
            ));
        }
    }
    Ok(())
}

/// The elements of a FHIR XML document in document order, each as its dotted path
/// (`Patient.name.given`), leaving out the narrative's XHTML.
fn element_paths(text: &str) -> Vec<String> {
    let mut reader = Reader::from_str(text);
    let (mut stack, mut paths) = (Vec::<String>::new(), Vec::new());
    let mut xhtml: Option<usize> = None;
    loop {
        let (start, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (Some(e), false),
            Ok(Event::Empty(e)) => (Some(e), true),
            Ok(Event::End(_)) => {
                stack.pop();
                if xhtml == Some(stack.len()) {
                    xhtml = None;
                }
                (None, false)
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => (None, false),
        };
        let Some(e) = start else { continue };
        if xhtml.is_none() {
            let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            let path = match stack.last() {
                Some(parent) => format!("{parent}.{name}"),
                None => name,
            };
            paths.push(path.clone());
            if is_xhtml(&e) && !empty {
                xhtml = Some(stack.len());
            }
            if !empty {
                stack.push(path);
            }
        } else if !empty {
            stack.push(String::new());
        }
    }
    paths
}

/// xml.html: "Elements must always appear in the order documented". `canonical` is what
/// the R4 model writes for what was read from `text`; their elements must come in the same
/// order.
pub(crate) fn check_order(text: &str, canonical: &str) -> Result<(), FormatError> {
    let (sent, model) = (element_paths(text), element_paths(canonical));
    let Some(at) = sent.iter().zip(&model).position(|(a, b)| a != b) else {
        return Ok(());
    };
    let (found, expected) = (&sent[at], &model[at]);
    if model[at..].contains(found) {
        Err(FormatError::general(
            format!(
                "The XML elements are out of order: '{found}' comes before '{expected}', which FHIR R4 puts first (xml.html: elements appear in the documented order)."
            ),
            format!(
                "Các phần tử XML sai thứ tự: '{found}' đứng trước '{expected}', trong khi FHIR R4 đặt '{expected}' trước."
            ),
        ))
    } else {
        Err(FormatError::general(
            format!("The XML element '{found}' is not read as FHIR R4."),
            format!("Phần tử XML '{found}' không được đọc như FHIR R4."),
        ))
    }
}

/// An element in the XHTML namespace (the narrative's `div`).
fn is_xhtml(e: &quick_xml::events::BytesStart<'_>) -> bool {
    e.attributes()
        .flatten()
        .any(|a| a.key.as_ref() == b"xmlns" && a.value.as_ref() == b"http://www.w3.org/1999/xhtml")
}

/// The attributes of a FHIR XML element: `value`, `url`, `id`, namespace declarations
/// (and `xsi:` schema hints).
fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Result<(), FormatError> {
    // FHIR's element names are ASCII letters and digits (with a namespace prefix).
    let name = e.name();
    let name = name.as_ref();
    if name.is_empty()
        || !name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'))
    {
        let shown = String::from_utf8_lossy(name).escape_debug().to_string();
        return Err(FormatError::general(
            format!("The XML element name '{shown}' is not a FHIR element name."),
            format!("Tên phần tử XML '{shown}' không phải tên phần tử FHIR."),
        ));
    }
    for attribute in e.attributes() {
        let attribute = attribute.map_err(|err| {
            FormatError::general(
                format!("The XML body is not well-formed: {err}."),
                format!("Nội dung XML không đúng cú pháp: {err}."),
            )
        })?;
        let key = attribute.key.as_ref();
        // `xsi:schemaLocation`: a schema hint some tools write, harmless.
        if !(matches!(key, b"value" | b"url" | b"id")
            || key.starts_with(b"xmlns")
            || key.starts_with(b"xsi:"))
        {
            let (key, name) = (
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            );
            return Err(FormatError::general(
                format!("<{name}> has the attribute '{key}', which FHIR XML does not have (xml.html: value, url, id)."),
                format!("<{name}> có thuộc tính '{key}' không có trong FHIR XML (xml.html: value, url, id)."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        let mut xml = String::from(r#"<Patient xmlns="http://hl7.org/fhir">"#);
        for _ in 0..depth {
            xml.push_str(r#"<extension url="http://x">"#);
        }
        for _ in 0..depth {
            xml.push_str("</extension>");
        }
        xml.push_str("</Patient>");
        xml
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        assert!(check_shape(&nested(MAX_DEPTH - 1)).is_ok());
        for depth in [MAX_DEPTH, 700, 10_000, 100_000] {
            let e = check_shape(&nested(depth)).expect_err("too deep");
            assert!(e.message.contains("128 deep"), "{depth}: {}", e.message);
            // The whole parse says the same, and nothing overflows.
            let e = crate::parse_xml(nested(depth).as_bytes()).expect_err("too deep");
            assert!(e.message.contains("128 deep"), "{depth}: {}", e.message);
        }
    }

    #[test]
    fn only_fhir_attributes_outside_the_narrative() {
        let ok = r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><extension url="http://x"><valueString value="a"/></extension><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p class="x" style="color:red">a</p></div></text><name id="n1"><family value="An"/></name></Patient>"#;
        assert!(check_shape(ok).is_ok());
        let bad =
            r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male" secret="1"/></Patient>"#;
        let e = check_shape(bad).expect_err("unknown attribute");
        assert!(e.message.contains("'secret'"), "{}", e.message);
        assert!(check_shape(r#"<Patient xmlns="http://hl7.org/fhir" foo="1"/>"#).is_err());
    }

    #[test]
    fn one_root_element() {
        let two = r#"<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>"#;
        assert!(check_shape(two).is_err());
        assert!(check_shape(
            r#"<?xml version="1.0"?><!-- c --><Patient xmlns="http://hl7.org/fhir"/>"#
        )
        .is_ok());
    }

    #[test]
    fn elements_in_the_documented_order() {
        let ordered = r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>b</p><b>a</b></div></text><active value="true"/><name><family value="An"/><given value="B"/><given value="C"/></name><gender value="male"/></Patient>"#;
        crate::parse_xml(ordered.as_bytes()).expect("in order");
        let swapped = r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><active value="true"/></Patient>"#;
        let e = crate::parse_xml(swapped.as_bytes()).expect_err("out of order");
        assert!(
            e.message
                .contains("'Patient.gender' comes before 'Patient.active'"),
            "{}",
            e.message
        );
        let nested = r#"<Patient xmlns="http://hl7.org/fhir"><name><given value="B"/><family value="An"/></name></Patient>"#;
        let e = crate::parse_xml(nested.as_bytes()).expect_err("out of order");
        assert!(e.message.contains("'Patient.name.given'"), "{}", e.message);
    }

    #[test]
    fn no_dtd_entities_or_processing_instructions() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&lol2;"/></name></Patient>"#;
        let xxe = r#"<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>"#;
        for dtd in [laughs, xxe] {
            let e = crate::parse_xml(dtd.as_bytes()).expect_err("a DTD");
            assert!(e.message.contains("DTD"), "{}", e.message);
        }
        let pi = r#"<?xml-stylesheet href="x.xsl"?><Patient xmlns="http://hl7.org/fhir"/>"#;
        assert!(check_shape(pi).is_err());
        // An entity that no DTD declares is not expanded either.
        let undeclared =
            r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>"#;
        assert!(crate::parse_xml(undeclared.as_bytes()).is_err());
    }
}
