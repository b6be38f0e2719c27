//! The answers actix-http's HTTP/1.1 parser gives on its own, before a request reaches the
//! App: a request line or header it cannot read (400: a bad Content-Length, Content-Length
//! with Transfer-Encoding, no colon, HTTP/9.9, a raw UTF-8 byte in the URL), a head over its
//! 96 headers or 128 KB (431), a head that does not arrive in time (408). actix-http writes
//! them with an empty body and offers no hook to change them. Every connection's writes go
//! through [`Wire`], which replaces such an answer, as it is written, by the same status
//! with an OperationOutcome (http.html#2.21.0.5: errors come with one): `HB-HTTP`,
//! `HB-HEAD-TOO-LARGE`, `HB-HEAD-TIMEOUT`.
//!
//! Such an answer is recognised by its shape: a bare head (nothing after it) with
//! `content-length: 0` and no Content-Type, a 400, 408 or 431. Every answer of the App has
//! an OperationOutcome body with its Content-Type, so none is taken for one.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::service::ErrorCode;

use super::error::ApiError;

/// A connection whose parser-made error answers carry an OperationOutcome.
pub struct Wire<T> {
    io: T,
    /// The answer written in place of the parser's, and how much of it is out.
    pending: Vec<u8>,
    sent: usize,
}

impl<T> Wire<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> Wire<T> {
    /// Writes out what is left of the replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Wire<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Wire<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        if let Some(answer) = replacement(buf) {
            this.pending = answer;
            // What cannot go out now goes out on the flush or shutdown that follows.
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The answer to write instead of `buf`, when `buf` is one the parser made.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    // Cheap tests first: this runs on every write of every response.
    if buf.len() > 512 || !(buf.starts_with(b"HTTP/1.1 ") || buf.starts_with(b"HTTP/1.0 ")) {
        return None;
    }
    let (code, message) = match buf.get(9..12)? {
        b"400" => (
            ErrorCode::Http,
            "The request is not valid HTTP/1.1: its request line, a header or its framing (Content-Length, Transfer-Encoding) could not be read; characters outside ASCII in the URL must be percent-encoded.",
        ),
        b"431" => (
            ErrorCode::HeadTooLarge,
            "The request's head is too large: at most 96 headers and 128 KB for the request line and headers together.",
        ),
        b"408" => (
            ErrorCode::HeadTimeout,
            "The request's head did not arrive in time.",
        ),
        _ => return None,
    };
    let head = std::str::from_utf8(buf).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let named = |h: &str, name: &str| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    };
    let empty = headers.iter().any(|h| {
        named(h, "content-length") && h.split_once(':').is_some_and(|(_, v)| v.trim() == "0")
    });
    if !empty || headers.iter().any(|h| named(h, "content-type")) {
        return None;
    }
    let body = serde_json::to_vec(&ApiError::new(code, message).outcome()).ok()?;
    let mut answer = format!("{status_line}\r\n");
    for h in headers.iter().filter(|h| !named(h, "content-length")) {
        answer.push_str(h);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!(
        "content-type: application/fhir+json; charset=utf-8\r\ncontent-length: {}\r\n\r\n",
        body.len()
    ));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parsers_empty_answers_get_an_outcome() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Fri, 04 Dec 2026 05:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(bare).expect("replaced")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let outcome: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(
            outcome["issue"][0]["details"]["coding"][0]["code"],
            "HB-HTTP"
        );
        let large = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(replacement(large).unwrap())
            .unwrap()
            .contains("HB-HEAD-TOO-LARGE"));
    }

    #[test]
    fn answers_of_the_app_are_left_alone() {
        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\ncontent-type: application/fhir+json\r\n\r\n";
        assert!(replacement(app).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nx";
        assert!(replacement(with_body).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(ok).is_none());
    }
}
