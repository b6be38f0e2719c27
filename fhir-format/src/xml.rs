//! What an XML body must be before fhirbolt's reader sees it: one root element, nested at
//! most [`MAX_DEPTH`] deep. fhirbolt reads XML recursively, so a few hundred nested
//! elements (30 KB of `<extension url="x">`) overflowed a worker's stack and aborted the
//! whole server; JSON gets the same bound from serde_json's recursion limit (128).

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
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FormatError::general(
                        format!("The XML body nests elements more than {MAX_DEPTH} deep."),
                        format!("Nội dung XML lồng các phần tử sâu quá {MAX_DEPTH} cấp."),
                    ));
                }
            }
            Ok(Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => break,
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
    fn one_root_element() {
        let two = r#"<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>"#;
        assert!(check_shape(two).is_err());
        assert!(check_shape(
            r#"<?xml version="1.0"?><!-- c --><Patient xmlns="http://hl7.org/fhir"/>"#
        )
        .is_ok());
    }
}
