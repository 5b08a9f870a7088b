//! An answer's head as the proxy's HTTP/1.1 server writes it: the status line, the handler's
//! headers, `date`, the framing the body needs, and `connection` when the connection ends.

use std::cell::RefCell;
use std::time::SystemTime;

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;

/// How an answer's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimit {
    Length(u64),
    Chunked,
    /// By the connection's close (an HTTP/1.0 client, a body of unknown length).
    Close,
}

/// The head for `parts`, delimited as `delimit` says, with `connection` as the server decides
/// it (`close`, or `keep-alive` for an HTTP/1.0 client that asked for it). The framing and
/// `connection` headers the handler set are replaced by the server's own.
pub fn head(parts: &Parts, delimit: Delimit, connection: Option<&str>) -> Vec<u8> {
    let size = 128
        + parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING && name != CONNECTION {
            line(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    match delimit {
        Delimit::Length(n) => line(
            &mut out,
            b"content-length",
            itoa::Buffer::new().format(n).as_bytes(),
        ),
        Delimit::Chunked => line(&mut out, b"transfer-encoding", b"chunked"),
        Delimit::Close => {}
    }
    if !parts.headers.contains_key(DATE) {
        DATE_VALUE.with(|date| line(&mut out, b"date", date.borrow_mut().now().as_bytes()));
    }
    if let Some(connection) = connection {
        line(&mut out, b"connection", connection.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The chunk-size line of a chunk of `len` bytes.
pub fn chunk_line(len: usize) -> Vec<u8> {
    format!("{len:x}\r\n").into_bytes()
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A bare refusal of a head that cannot be read (400 or 431): no body, and the connection
/// closes, as hyper answers such heads.
pub fn bare(status: u16) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Bad Request");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n").into_bytes();
    DATE_VALUE.with(|date| line(&mut out, b"date", date.borrow_mut().now().as_bytes()));
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

thread_local! {
    static DATE_VALUE: RefCell<CachedDate> = RefCell::new(CachedDate::default());
}

/// The `date` value, formatted once a second per thread.
#[derive(Default)]
struct CachedDate {
    second: u64,
    value: String,
}

impl CachedDate {
    fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second || self.value.is_empty() {
            self.second = second;
            self.value = httpdate::fmt_http_date(now);
        }
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time `date` says, checked to lie between `before` and now (to the second).
    fn says_now(date: &str, before: SystemTime) {
        let said = httpdate::parse_http_date(date).expect("an HTTP date");
        let floor = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let said = floor(said);
        assert!(
            floor(before) <= said && said <= floor(SystemTime::now()),
            "{date}"
        );
    }

    #[test]
    fn the_date_is_now_and_a_second_old_value_is_not_kept() {
        let before = SystemTime::now();
        let mut cached = CachedDate::default();
        says_now(cached.now(), before);
        let stale = "Thu, 01 Jan 1970 00:00:05 GMT";
        let mut cached = CachedDate {
            second: 5,
            value: stale.into(),
        };
        let date = cached.now().to_owned();
        assert_ne!(date, stale);
        says_now(&date, before);
    }

    #[test]
    fn a_bare_refusal_carries_the_date() {
        let before = SystemTime::now();
        let bare = String::from_utf8(bare(431)).unwrap();
        let date = bare
            .split("\r\n")
            .find_map(|l| l.strip_prefix("date: "))
            .expect("a date");
        says_now(date, before);
    }

    #[test]
    fn a_head_carries_every_header_however_short_or_long() {
        let long = "v".repeat(300);
        let answer = http::Response::builder()
            .status(200)
            .header("a", "b")
            .header("x-long", &long)
            .body(())
            .unwrap();
        let (parts, ()) = answer.into_parts();
        let head = String::from_utf8(head(&parts, Delimit::Length(2), None)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\na: b\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nx-long: {long}\r\n")), "{head}");
        assert!(head.contains("\r\ncontent-length: 2\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
