//! The answer parser against hyper's client on the same bytes (differential), byte by byte
//! against itself (incremental), and on the hostile answers an upstream could send.

use super::*;
use http_body_util::BodyExt;
use proptest::prelude::*;

use crate::testing::damaged;

/// An answer as read: status, headers in order, body.
type Read = (StatusCode, Vec<(String, Vec<u8>)>, Vec<u8>);

/// What hyper's client makes of `input` as the answer to a `POST /`, followed by the close.
fn hyper_reads(input: &[u8]) -> Result<Read, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = input.to_vec();
    runtime.block_on(async move {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(client))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = server.write_all(&input).await;
            let _ = server.shutdown().await;
            // Keep the read half open until the client is done.
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let request = http::Request::post("/")
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let headers = pairs(response.headers());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok((status, headers, body))
    })
}

fn pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn ours(input: &[u8]) -> Result<Read, Error> {
    read_whole(input).map(|(head, body)| (head.status, pairs(&head.headers), body))
}

/// An answer we accept is one hyper accepts, with the same status, headers and body.
fn agrees(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(mine) = ours(input) {
        let theirs = hyper_reads(input);
        prop_assert_eq!(
            Ok(mine),
            theirs,
            "input: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    Ok(())
}

/// The same answer fed in two pieces, split anywhere, reads as it does whole.
fn incremental(input: &[u8], at: usize) -> Result<(), TestCaseError> {
    let (first, second) = input.split_at(at.min(input.len()));
    let read =
        read_pieces(&[first, second]).map(|(h, b)| (h.status, pairs(&h.headers), b.concat()));
    prop_assert_eq!(read, ours(input));
    Ok(())
}

#[derive(Debug, Clone)]
enum Framed {
    Length,
    WrongLength(u8),
    Chunked {
        pieces: usize,
        ext: bool,
        trailer: bool,
    },
    Close,
}

/// An answer as a server would write it; with `odd`, its headers may also carry a stray
/// length or transfer coding beside the framing's own.
fn answer(odd: bool) -> impl Strategy<Value = Vec<u8>> {
    let version = prop_oneof![4 => Just("HTTP/1.1"), 1 => Just("HTTP/1.0")];
    let status = prop_oneof![
        6 => Just("200 OK"),
        1 => Just("204 No Content"),
        1 => Just("304 Not Modified"),
        2 => Just("400 Bad Request"),
        1 => Just("503 Service Unavailable"),
    ];
    let framed = prop_oneof![
        4 => Just(Framed::Length),
        1 => any::<u8>().prop_map(Framed::WrongLength),
        3 => (1usize..4, any::<bool>(), any::<bool>())
            .prop_map(|(pieces, ext, trailer)| Framed::Chunked { pieces, ext, trailer }),
        1 => Just(Framed::Close),
    ];
    let extra = proptest::collection::vec(
        prop_oneof![
            Just(("connection", "close".to_owned())),
            Just(("connection", "keep-alive".to_owned())),
            Just(("x-amzn-requestid", "7a3c".to_owned())),
            "[a-z][a-z0-9-]{0,8}".prop_map(|v| ("x-extra", v)),
            Just(("content-length", "3".to_owned())),
            Just(("transfer-encoding", "gzip".to_owned())),
        ],
        0..3,
    )
    .prop_map(move |extra| {
        extra
            .into_iter()
            .filter(|(name, _)| odd || !name.starts_with(['c', 't']) || *name == "connection")
            .collect::<Vec<_>>()
    });
    (
        version,
        status,
        framed,
        extra,
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(move |(version, status, framed, extra, body, interim)| {
            // Transfer codings are HTTP/1.1's (an HTTP/1.0 answer with one is refused).
            let framed = match framed {
                Framed::Chunked { .. } if version == "HTTP/1.0" && !odd => Framed::Length,
                framed => framed,
            };
            let mut out = Vec::new();
            if interim.is_some() {
                out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            out.extend_from_slice(format!("{version} {status}\r\n").as_bytes());
            out.extend_from_slice(b"content-type: application/x-amz-json-1.0\r\n");
            for (name, value) in &extra {
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            match &framed {
                Framed::Length => {
                    out.extend_from_slice(
                        format!("content-length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    out.extend_from_slice(&body);
                }
                Framed::WrongLength(n) => {
                    out.extend_from_slice(format!("content-length: {n}\r\n\r\n").as_bytes());
                    out.extend_from_slice(&body);
                }
                Framed::Chunked {
                    pieces,
                    ext,
                    trailer,
                } => {
                    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                    for piece in body.chunks(body.len().div_ceil(*pieces).max(1)) {
                        out.extend_from_slice(format!("{:X}", piece.len()).as_bytes());
                        if *ext {
                            out.extend_from_slice(b";name=value");
                        }
                        out.extend_from_slice(b"\r\n");
                        out.extend_from_slice(piece);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n");
                    if *trailer {
                        out.extend_from_slice(b"x-checksum: abc\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                Framed::Close => {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&body);
                }
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_answers_read_as_hyper_reads_them(input in answer(false)) {
        // Both ways: a well-formed answer hyper reads is one we read.
        let theirs = hyper_reads(&input);
        if theirs.is_ok() {
            prop_assert!(ours(&input).is_ok(), "refused: {:?}", String::from_utf8_lossy(&input));
        }
        agrees(&input)?;
    }

    #[test]
    fn damaged_answers_are_never_read_more_leniently_than_hyper(input in damaged(answer(true))) {
        agrees(&input)?;
    }

    #[test]
    fn an_answer_in_two_pieces_reads_as_one(input in damaged(answer(true)), at in 0usize..400) {
        incremental(&input, at)?;
    }
}

#[test]
fn hostile_answers_are_refused() {
    let cases: &[(&str, &[u8])] = &[
        ("two different lengths", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}x"),
        ("a length list that disagrees", b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\n{}x"),
        ("a signed length", b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\n{}"),
        ("a length past u64", b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n"),
        ("a chunk size past u64", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffffff\r\n"),
        ("a chunk size that is not hex", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2g\r\n{}\r\n0\r\n\r\n"),
        ("a bare LF in the chunk framing", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n"),
        ("chunk data longer than its size", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n"),
        ("a control character in a chunk extension", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a\x01\r\n{}\r\n0\r\n\r\n"),
        ("a malformed trailer", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nno colon\r\n\r\n"),
        ("a space before a header's colon", b"HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\n{}"),
        ("an obsolete folded header", b"HTTP/1.1 200 OK\r\nx-a: b\r\n c\r\ncontent-length: 2\r\n\r\n{}"),
        ("a NUL in a header value", b"HTTP/1.1 200 OK\r\nx-a: b\x00c\r\ncontent-length: 2\r\n\r\n{}"),
        ("a switch of protocols", b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n"),
        ("HTTP/2 in an HTTP/1 status line", b"HTTP/2.0 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
        ("a status of four digits", b"HTTP/1.1 2000 OK\r\ncontent-length: 2\r\n\r\n{}"),
        ("transfer-encoding in HTTP/1.0", b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
        ("a body cut short", b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{}"),
        ("a chunked body cut short", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n"),
        ("a transfer coding that is not ASCII", b"HTTP/1.1 200 OK\r\ntransfer-encoding: \x80, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
        ("a connection header that is not ASCII", b"HTTP/1.0 200 OK\r\nconnection: \x80, keep-alive\r\ncontent-length: 2\r\n\r\n{}"),
    ];
    for (what, input) in cases {
        assert!(ours(input).is_err(), "{what}: read as {:?}", ours(input));
    }
    // hyper's totals over a body: extensions, trailer bytes, trailer lines.
    let chunked =
        |body: String| format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{body}");
    let extensions = chunked(format!(
        "{}0\r\n\r\n",
        format!("1;{}\r\nx\r\n", "a".repeat(4000)).repeat(5)
    ));
    assert_eq!(
        ours(extensions.as_bytes()).unwrap_err(),
        Error::Chunk("chunk extensions over the limit")
    );
    let trailers = chunked(format!("0\r\n{}\r\n", "a: b\r\n".repeat(101)));
    assert_eq!(
        ours(trailers.as_bytes()).unwrap_err(),
        Error::Chunk("too many trailers")
    );
    let long = chunked(format!("0\r\nx: {}\r\n\r\n", "a".repeat(16380)));
    assert_eq!(
        ours(long.as_bytes()).unwrap_err(),
        Error::Chunk("trailers over the limit")
    );
    for input in [&extensions, &trailers, &long] {
        assert!(
            hyper_reads(input.as_bytes()).is_err(),
            "hyper refuses it too"
        );
    }
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}content-length: 0\r\n\r\n",
        "x-a: b\r\n".repeat(MAX_HEADERS)
    );
    assert_eq!(
        ours(many.as_bytes()).unwrap_err(),
        Error::Head("too many headers")
    );
    let huge = format!("HTTP/1.1 200 OK\r\nx-a: {}\r\n", "b".repeat(MAX_HEAD_BYTES));
    assert_eq!(
        parse_head(&mut BytesMut::from(huge.as_bytes())).unwrap_err(),
        Error::HeadTooLarge
    );
}

#[test]
fn framing_and_reuse_follow_the_head() {
    let head = |input: &[u8]| parse_head(&mut BytesMut::from(input)).unwrap().unwrap();
    let h = head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(2), true));
    // A length repaired (a list of equal values, or given twice) is read, and its connection
    // not used again (finding 6 of the second review).
    let h = head(b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(2), false));
    let h = head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(2), false));
    let h = head(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(2), false));
    let h = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Chunked, true));
    let h = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Chunked, false));
    let h = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Close, false));
    let h = head(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Close, false));
    let h = head(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(2), false));
    let h = head(b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(2), true));
    // A bodiless status that declares a body: whatever follows is not the next answer.
    let h = head(b"HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(0), false));
    let h = head(b"HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(0), false));
    let h = head(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
    assert_eq!((h.body, h.reusable), (Framing::Length(0), true));
    let h = head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(
        (h.status, h.reusable),
        (StatusCode::SERVICE_UNAVAILABLE, true)
    );
    let h = head(b"HTTP/1.1 100 Continue\r\ncontent-length: 4\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
    assert_eq!(
        (h.status, h.body, h.reusable),
        (StatusCode::OK, Framing::Length(2), false),
        "an interim answer that declared a body"
    );
    assert!(
        parse_head(&mut BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-len"[..]))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_body_read_in_one_piece_is_done_at_once() {
    let mut buf = BytesMut::from(&b"2;x=y\r\n{}\r\n0\r\nx-t: 1\r\n\r\n"[..]);
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"{}"))
    );
    assert!(
        decoder.is_done(),
        "the last chunk and trailers were consumed with the data"
    );
    assert!(buf.is_empty());
    let mut buf = BytesMut::from(&b"{}"[..]);
    let mut decoder = BodyDecoder::new(Framing::Length(2));
    assert_eq!(decoder.remaining(), Some(2));
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"{}"))
    );
    assert!(decoder.is_done());
    assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::End);
    // A length-delimited body never takes bytes past its end.
    let mut buf = BytesMut::from(&b"{}HTTP"[..]);
    let mut decoder = BodyDecoder::new(Framing::Length(2));
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"{}"))
    );
    assert_eq!(&buf[..], b"HTTP");
}

#[test]
fn the_request_head_is_the_headers_given_and_the_length() {
    let head = request_head(&[("host", b"swf.test"), ("x-amz-target", b"T.Op")], 17);
    assert_eq!(
        head,
        b"POST / HTTP/1.1\r\nhost: swf.test\r\nx-amz-target: T.Op\r\ncontent-length: 17\r\n\r\n"
    );
}

#[test]
fn a_trailers_value_is_trimmed_of_spaces_and_tabs_only() {
    let cases: [(&[u8], &[u8]); 6] = [
        (b" \tab c\t ", b"ab c"),
        (b"ab", b"ab"),
        (b"\t\t", b""),
        (b"", b""),
        // A form feed is no whitespace here (hyper refuses such a value).
        (b"\x0cab\x0c", b"\x0cab\x0c"),
        (b" x", b"x"),
    ];
    for (value, trimmed) in cases {
        assert_eq!(trim_ows(value), trimmed, "{value:?}");
    }
}
