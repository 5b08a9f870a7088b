//! A client's HTTP/1.1 request head, without I/O: the request line and headers parsed with
//! `httparse` (hyper's server parses with the same crate and settings), and the body's
//! framing decided as RFC 9112 §6 says. Never more lenient than hyper's server: a head read
//! here is one hyper reads with the same method, target, headers and framing (tested
//! differentially in `tests`, and fuzzed: `fuzz/fuzz_targets/request_head.rs`).

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use crate::forward::h1::{ascii, content_length, last_token, BodyDecoder, Decoded, Framing};

/// hyper's server's bound on the headers of a request.
pub const MAX_HEADERS: usize = 100;

/// A head that cannot be read as one request: answered with a bare status, and the
/// connection closes (SPEC, "Strict input").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// 400, or 431 for a head over the limit.
    pub status: u16,
    pub why: &'static str,
}

impl Refusal {
    fn malformed(why: &'static str) -> Refusal {
        Refusal { status: 400, why }
    }

    const TOO_LARGE: Refusal = Refusal {
        status: 431,
        why: "the request head is larger than max_header_bytes",
    };
}

/// A request head read whole.
#[derive(Debug)]
pub struct Head {
    /// Method, target, version and headers (a `Content-Length` beside a transfer coding
    /// removed, as RFC 9112 says).
    pub request: Request<()>,
    /// How the body is delimited: a length (0 for none) or chunked.
    pub body: Framing,
    /// Whether the connection may carry another request after this one's answer.
    pub keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1): the client waits for an interim answer.
    pub expect_continue: bool,
}

/// Parses the head at the start of `buf`, consuming it; `Ok(None)`: more bytes are needed.
/// `max`: the most bytes a head may take. Header values share the head's bytes (no copy).
pub fn parse(buf: &mut BytesMut, max: usize) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let length = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() >= max => return Err(Refusal::TOO_LARGE),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TOO_LARGE),
        Err(_) => {
            return Err(Refusal::malformed(
                "not an HTTP/1.x request line and headers",
            ))
        }
    };
    if length > max {
        return Err(Refusal::TOO_LARGE);
    }
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refusal::malformed("the method"))?;
    let target = parsed.path.unwrap_or_default();
    // Where each header lies in the head, so that its value can share the head's bytes.
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    let mut places = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
    let count = parsed.headers.len();
    for (place, header) in places.iter_mut().zip(parsed.headers.iter()) {
        let name = header.name.as_bytes();
        *place = (
            offset(name),
            name.len(),
            offset(header.value),
            header.value.len(),
        );
    }
    let target = (offset(target.as_bytes()), target.len());
    let head = buf.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| Refusal::malformed("the request target"))?;

    let mut map = HeaderMap::with_capacity(count);
    let mut length_header: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut close = version == Version::HTTP_10;
    let mut expect_continue = false;
    for &(name_at, name_len, value_at, value_len) in &places[..count] {
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_len])
            .map_err(|_| Refusal::malformed("a header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len))
            .map_err(|_| Refusal::malformed("a header value"))?;
        let bytes = value.as_bytes();
        if name == CONTENT_LENGTH {
            // Digits only: hyper's server refuses a list, even of equal values.
            let n = content_length(bytes)
                .ok()
                .filter(|_| !bytes.contains(&b','))
                .ok_or(Refusal::malformed("Content-Length"))?;
            match length_header {
                Some(seen) if seen != n => {
                    return Err(Refusal::malformed("two different Content-Length values"))
                }
                // The same length again is kept once, as hyper keeps it.
                Some(_) => continue,
                None => length_header = Some(n),
            }
        } else if name == TRANSFER_ENCODING {
            if version == Version::HTTP_10 {
                return Err(Refusal::malformed(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            transfer_encoding = true;
            // Only the last coding says whether the body is chunked.
            let value = ascii(bytes).map_err(|_| Refusal::malformed("Transfer-Encoding"))?;
            chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
        } else if name == CONNECTION {
            let value = ascii(bytes).map_err(|_| Refusal::malformed("Connection"))?;
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == Version::HTTP_10 {
                    close = false;
                }
            }
        } else if name == EXPECT {
            expect_continue =
                version == Version::HTTP_11 && bytes.eq_ignore_ascii_case(b"100-continue");
        }
        map.append(name, value);
    }
    let body = if transfer_encoding {
        if !chunked {
            return Err(Refusal::malformed(
                "a Transfer-Encoding not ending in chunked",
            ));
        }
        // The coding wins over a length beside it (RFC 9112 §6.3), and such a request was
        // suspect: nothing after it on the connection is read.
        if length_header.is_some() {
            // Rebuilt rather than `remove`d, which would move the last header into its place:
            // the other headers keep the order they came in.
            let mut kept = HeaderMap::with_capacity(map.len());
            for (name, value) in map.iter().filter(|(name, _)| *name != CONTENT_LENGTH) {
                kept.append(name.clone(), value.clone());
            }
            map = kept;
            close = true;
        }
        Framing::Chunked
    } else {
        Framing::Length(length_header.unwrap_or(0))
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = map;
    Ok(Some(Head {
        request,
        body,
        keep_alive: !close,
        expect_continue,
    }))
}

/// Reads one request from `input` arriving in `pieces` and then the connection's close, as
/// the server would (for the fuzzer and the differential tests): its head and whole body, or
/// why not. Each piece is read only when the parser asks for more.
pub fn read_pieces(pieces: &[&[u8]], max: usize) -> Result<(Head, Bytes), &'static str> {
    let mut pieces = pieces.iter();
    let mut buf = BytesMut::new();
    let head = loop {
        if let Some(head) = parse(&mut buf, max).map_err(|r| r.why)? {
            break head;
        }
        buf.extend_from_slice(pieces.next().ok_or("the head is incomplete")?);
    };
    let mut decoder = BodyDecoder::new(head.body);
    let mut body = BytesMut::new();
    loop {
        match decoder.decode(&mut buf).map_err(|_| "the body's framing")? {
            Decoded::Data(data) => body.extend_from_slice(&data),
            Decoded::End => return Ok((head, body.freeze())),
            Decoded::NeedMore => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => return Err("the body is incomplete"),
            },
        }
    }
}
