//! The upstream's HTTP/1.1, without I/O: the request head the proxy writes, and the parsing
//! of the answer's head and body framing (RFC 9112) on bytes as they arrive.
//!
//! The upstream is a single configured endpoint and the request is always the proxy's own
//! `POST /`, so this is a small part of HTTP/1.1: no upgrades, no pipelining, no request
//! bodies of unknown length. What it parses it parses strictly, never more leniently than
//! hyper's client (tested differentially on the same bytes, and fuzzed: `fuzz/fuzz_targets/
//! upstream.rs`): an answer it accepts, hyper accepts with the same status, headers and body.
//! Anything else ends the call with 503 and closes the connection.
//!
//! Why not hyper's client: per upstream connection it keeps a dispatch channel (9 KiB), a
//! header buffer (8 KiB) and a read buffer (8 KiB) for the connection's whole life, and a call
//! crosses that channel twice. Here a connection holds no buffer while it waits: a held long
//! poll costs its socket and a few words (`bench/long_polls.py`).

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The most a head (status line and headers) may take.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most headers an answer may have.
pub const MAX_HEADERS: usize = 100;
/// The most a chunk-size line (with extensions) may take.
const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// hyper's client's bounds, so that nothing is read here that it would refuse: chunk
/// extensions over the whole body, the trailer section (CRLFs included), trailer lines.
const MAX_EXTENSION_BYTES: usize = 16 * 1024;
const MAX_TRAILER_BYTES: usize = 16 * 1024;
const MAX_TRAILERS: usize = 100;

/// Why an answer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the answer's head is malformed: {0}")]
    Head(&'static str),
    #[error("the answer's head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("the answer's length is malformed")]
    Length,
    #[error("the answer's chunked body is malformed: {0}")]
    Chunk(&'static str),
    #[error("the connection closed before the answer was complete")]
    Incomplete,
}

/// An answer's head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub body: Framing,
    /// Whether the connection may carry another request once the body has been read.
    pub reusable: bool,
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// After exactly this many bytes (0: no body).
    Length(u64),
    Chunked,
    /// When the upstream closes the connection.
    Close,
}

/// Parses the head at the start of `buf`, consuming it (and any interim 1xx heads before it).
/// `Ok(None)`: more bytes are needed.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Error> {
    // An interim answer that declared a body: the exchange is suspect, the connection is not
    // used again.
    let mut suspect = false;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let length = match response.parse(buf) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                return Err(Error::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Error::Head("too many headers")),
            Err(_) => return Err(Error::Head("not an HTTP/1.x status line and headers")),
        };
        if length > MAX_HEAD_BYTES {
            return Err(Error::HeadTooLarge);
        }
        let code = response.code.unwrap_or_default();
        let status = StatusCode::from_u16(code).map_err(|_| Error::Head("status code"))?;
        if status.is_informational() {
            // Interim answers (100 Continue, 103 Early Hints) come before the real one; a
            // switch of protocols was never asked for.
            if code == 101 {
                return Err(Error::Head("101 Switching Protocols"));
            }
            suspect |= response.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("content-length")
                    || h.name.eq_ignore_ascii_case("transfer-encoding")
            });
            buf.advance(length);
            continue;
        }
        let http11 = response.version == Some(1);
        let mut map = HeaderMap::with_capacity(response.headers.len());
        let mut length_header: Option<u64> = None;
        let mut chunked = false;
        let mut transfer_encoding = false;
        let mut close = !http11;
        // A length given twice, or as a list of equal values: read, but repaired.
        let mut repaired = false;
        for header in response.headers.iter() {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| Error::Head("header name"))?;
            let value =
                HeaderValue::from_bytes(header.value).map_err(|_| Error::Head("header value"))?;
            if name == http::header::CONTENT_LENGTH {
                let n = content_length(header.value)?;
                if length_header.is_some_and(|seen| seen != n) {
                    return Err(Error::Length);
                }
                repaired |= length_header.is_some() || header.value.contains(&b',');
                length_header = Some(n);
            } else if name == http::header::TRANSFER_ENCODING {
                if !http11 {
                    return Err(Error::Head("transfer-encoding in an HTTP/1.0 answer"));
                }
                transfer_encoding = true;
                // Only the last coding says whether the body is chunked.
                chunked = last_token(ascii(header.value)?).eq_ignore_ascii_case(b"chunked");
            } else if name == http::header::CONNECTION {
                for token in ascii(header.value)?.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                        close = false;
                    }
                }
            }
            map.append(name, value);
        }
        buf.advance(length);
        let bodiless = code == 204 || code == 304;
        // A bodiless answer that declares a body may be followed by bytes meant as one: they
        // must never be read as the next call's answer.
        let declared = transfer_encoding || length_header.is_some_and(|n| n > 0);
        let body = if bodiless {
            Framing::Length(0)
        } else if transfer_encoding {
            if chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else {
            match length_header {
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            }
        };
        // A body delimited by close ends the connection; so does a length beside a
        // transfer coding (RFC 9112 §6.3: the coding wins, and the message was suspect), and
        // any answer whose framing was repaired or contradicts its status: HTTP/1.1 cannot
        // tell where a suspect answer ends, so nothing after it is trusted (`pool`).
        let ends_here = close
            || body == Framing::Close
            || (transfer_encoding && length_header.is_some())
            || repaired
            || suspect
            || (bodiless && declared);
        let reusable = !ends_here;
        return Ok(Some(Head {
            status,
            headers: map,
            body,
            reusable,
        }));
    }
}

/// A framing or reuse header's value, read only if it is visible ASCII (as hyper reads them).
pub(crate) fn ascii(value: &[u8]) -> Result<&[u8], Error> {
    if value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        Ok(value)
    } else {
        Err(Error::Head("a framing header that is not ASCII"))
    }
}

/// A `Content-Length` value: digits only, or a list of equal ones (`5, 5`).
pub(crate) fn content_length(value: &[u8]) -> Result<u64, Error> {
    let mut found: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(Error::Length);
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(Error::Length);
        }
        found = Some(n);
    }
    found.ok_or(Error::Length)
}

pub(crate) fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// What the body decoder has for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// More bytes must be read first.
    NeedMore,
    /// The body is complete.
    End,
}

/// Reads a body as its framing delimits it.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
    /// Chunk-extension bytes, trailer bytes and trailer lines so far.
    extension_bytes: usize,
    trailer_bytes: usize,
    trailers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes left of a length-delimited body, or of the current chunk's data.
    Length(u64),
    /// Until the connection closes.
    Close,
    /// Expecting a chunk-size line.
    ChunkSize,
    /// In a chunk's data: bytes left.
    ChunkData(u64),
    /// Expecting the CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    Done,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        BodyDecoder {
            state,
            extension_bytes: 0,
            trailer_bytes: 0,
            trailers: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The connection has closed: the end of a body delimited by the close, and an
    /// incomplete body otherwise.
    pub fn closed(&mut self) -> Result<(), Error> {
        match self.state {
            State::Close | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(Error::Incomplete),
        }
    }

    /// How many body bytes are left, when that is known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Decodes from the start of `buf`, consuming what it decodes. Framing after the data it
    /// returns (a chunk's CRLF, the last chunk, trailers) is consumed too when already in
    /// `buf`, so `is_done` tells at once that a body read in one piece has ended.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Error> {
        let data = match self.state {
            State::Done => return Ok(Decoded::End),
            State::Close if buf.is_empty() => return Ok(Decoded::NeedMore),
            State::Close => buf.split().freeze(),
            State::Length(n) | State::ChunkData(n) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                let left = n - take as u64;
                self.state = match (self.state, left) {
                    (State::Length(_), 0) => State::Done,
                    (State::Length(_), _) => State::Length(left),
                    (_, 0) => State::ChunkEnd,
                    _ => State::ChunkData(left),
                };
                buf.split_to(take).freeze()
            }
            State::ChunkSize | State::ChunkEnd | State::Trailers => {
                self.framing(buf)?;
                return match self.state {
                    State::Done => Ok(Decoded::End),
                    State::ChunkData(_) => self.decode(buf),
                    _ => Ok(Decoded::NeedMore),
                };
            }
        };
        self.framing(buf)?;
        Ok(Decoded::Data(data))
    }

    /// Consumes the chunked framing at the start of `buf` for as long as it is complete.
    fn framing(&mut self, buf: &mut BytesMut) -> Result<(), Error> {
        loop {
            match self.state {
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(());
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Error::Chunk("no CRLF after a chunk's data"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::ChunkSize => {
                    let Some(line) = line(buf, MAX_CHUNK_LINE_BYTES)? else {
                        return Ok(());
                    };
                    let (size, extension) = chunk_size(&buf[..line])?;
                    self.extension_bytes += extension;
                    if self.extension_bytes >= MAX_EXTENSION_BYTES {
                        return Err(Error::Chunk("chunk extensions over the limit"));
                    }
                    buf.advance(line + 2);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::Trailers => {
                    // Trailer fields are read past, not passed on (as hyper's client does
                    // unless asked): the line must still be a field or the empty line.
                    let Some(end) = line(buf, MAX_TRAILER_BYTES)? else {
                        return Ok(());
                    };
                    self.trailer_bytes += end + 2;
                    if self.trailer_bytes >= MAX_TRAILER_BYTES {
                        return Err(Error::Chunk("trailers over the limit"));
                    }
                    if end == 0 {
                        buf.advance(2);
                        self.state = State::Done;
                        return Ok(());
                    }
                    trailer(&buf[..end])?;
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(Error::Chunk("too many trailers"));
                    }
                    buf.advance(end + 2);
                }
                _ => return Ok(()),
            }
        }
    }
}

/// The length of the CRLF-terminated line at the start of `buf`, CRLF excluded; `None` while
/// incomplete. A bare LF or CR is refused.
fn line(buf: &[u8], max: usize) -> Result<Option<usize>, Error> {
    match buf
        .iter()
        .take(max + 2)
        .position(|&b| b == b'\n' || b == b'\r')
    {
        Some(i) if buf.get(i) == Some(&b'\n') => Err(Error::Chunk("bare LF")),
        Some(i) => match buf.get(i + 1) {
            None => Ok(None),
            Some(b'\n') if i <= max => Ok(Some(i)),
            Some(b'\n') => Err(Error::Chunk("line too long")),
            Some(_) => Err(Error::Chunk("bare CR")),
        },
        None if buf.len() > max => Err(Error::Chunk("line too long")),
        None => Ok(None),
    }
}

/// A chunk-size line: hex digits, then optionally `;` and extensions (ignored): the size and
/// the extensions' length.
fn chunk_size(line: &[u8]) -> Result<(u64, usize), Error> {
    let digits = line
        .iter()
        .position(|&b| b == b';')
        .map_or(line, |i| &line[..i]);
    if digits.is_empty() || digits.len() > 15 {
        return Err(Error::Chunk("chunk size"));
    }
    let mut size = 0u64;
    for &b in digits {
        let d = (b as char).to_digit(16).ok_or(Error::Chunk("chunk size"))?;
        size = size * 16 + u64::from(d);
    }
    let extension = &line[digits.len()..];
    if extension
        .iter()
        .any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
    {
        return Err(Error::Chunk("chunk extension"));
    }
    Ok((size, extension.len()))
}

/// `value` without the spaces and tabs around it.
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// A trailer line must be `name: value` with a token name and a visible value.
fn trailer(line: &[u8]) -> Result<(), Error> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::Chunk("trailer"))?;
    let name_ok = colon > 0 && HeaderName::from_bytes(&line[..colon]).is_ok();
    // Only spaces and tabs (HTTP's whitespace) are trimmed, not a form feed: found by the
    // fuzzer, hyper refuses such a trailer.
    let value_ok = HeaderValue::from_bytes(trim_ows(&line[colon + 1..])).is_ok();
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(Error::Chunk("trailer"))
    }
}

/// The request head: `POST / HTTP/1.1` and the given headers, each `name: value`, then
/// `content-length`. Names and values are the proxy's own and checked when built (no CR/LF).
pub fn request_head(headers: &[(&str, &[u8])], content_length: usize) -> Vec<u8> {
    let size = 64
        + headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
    let mut head = Vec::with_capacity(size);
    head.extend_from_slice(b"POST / HTTP/1.1\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"content-length: ");
    head.extend_from_slice(itoa::Buffer::new().format(content_length).as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// Reads a whole answer from `input` followed by the connection's close, as the proxy would
/// (for the fuzzer and the differential tests): the head and the body, or why not.
pub fn read_whole(input: &[u8]) -> Result<(Head, Vec<u8>), Error> {
    let (head, frames) = read_pieces(&[input])?;
    Ok((head, frames.concat()))
}

/// As [`read_whole`], the answer arriving in `pieces` (each read only when the parser asks for
/// more, as the proxy reads the socket), and its body as the data frames the proxy would pass
/// on.
pub fn read_pieces(pieces: &[&[u8]]) -> Result<(Head, Vec<Bytes>), Error> {
    let mut pieces = pieces.iter();
    let mut buf = BytesMut::new();
    let head = loop {
        if let Some(head) = parse_head(&mut buf)? {
            break head;
        }
        buf.extend_from_slice(pieces.next().ok_or(Error::Incomplete)?);
    };
    let mut decoder = BodyDecoder::new(head.body);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(data) => body.push(data),
            Decoded::End => return Ok((head, body)),
            Decoded::NeedMore => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                // All there is has arrived: the connection has closed.
                None => {
                    decoder.closed()?;
                    return Ok((head, body));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
