//! The request parser against hyper's server on the same bytes (differential): every case of
//! `tests/hostile.rs`, the request-smuggling vectors, generated requests and damaged ones.
//! A request read here is one hyper's server reads with the same method, target, version,
//! headers and body; here it may only be refused where hyper reads it.

use proptest::prelude::*;

use super::differential::{hyper_reads, read, Read, MAX};
use super::head::{self, read_pieces};
use crate::testing::damaged;

fn ours(input: &[u8]) -> Result<Read, &'static str> {
    read_pieces(&[input], MAX).map(|(head, body)| read(&head.request, &body))
}

/// A request we read is one hyper reads, the same way.
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

const SIGNED: &str = "POST / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: SimpleWorkflowService.DescribeDomain\r\nx-amz-date: 20260101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/swf/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00\r\n";
const BODY: &str = r#"{"name":"tenant-a"}"#;

fn request(extra: &[&str], body: &str) -> Vec<u8> {
    let mut out = SIGNED.to_owned();
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

/// Refused here, and by hyper too.
fn refused_by_both(what: &str, input: &[u8]) {
    assert!(ours(input).is_err(), "{what}: read here");
    assert!(hyper_reads(input).is_err(), "{what}: hyper reads it");
}

/// Read here and by hyper, the same way.
fn read_by_both(what: &str, input: &[u8]) -> Read {
    let mine = ours(input).unwrap_or_else(|e| panic!("{what}: refused here: {e}"));
    assert_eq!(Ok(mine.clone()), hyper_reads(input), "{what}");
    mine
}

#[test]
fn the_cases_of_the_hostile_tests_read_as_hyper_reads_them() {
    let length = format!("content-length: {}", BODY.len());
    // Good requests, by length and chunked, and with the repeated headers the handler refuses.
    let read = read_by_both("by length", &request(&[&length], BODY));
    assert_eq!(read.4, BODY.as_bytes());
    let read = read_by_both(
        "chunked",
        &request(&["transfer-encoding: chunked"], &chunked(BODY)),
    );
    assert_eq!(read.4, BODY.as_bytes());
    for repeated in [
        "authorization: x",
        "x-amz-date: 20260101T000000Z",
        "x-amz-target: SimpleWorkflowService.DeprecateDomain",
        "host: other",
        "content-type: text/plain",
    ] {
        read_by_both(repeated, &request(&[repeated, &length], BODY));
    }
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let input = request(&[&length], BODY);
        let input = [method.as_bytes(), &input[4..]].concat();
        let read = read_by_both(method, &input);
        assert_eq!(read.0, method);
    }
    read_by_both(
        "query-string authentication",
        &[
            b"POST /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00 HTTP/1.1\r\n".as_slice(),
            &request(&[&length], BODY)[17..],
        ]
        .concat(),
    );
    // A coding other than plain chunked is read (the handler refuses it).
    read_by_both(
        "gzip, chunked",
        &request(&["transfer-encoding: gzip, chunked"], &chunked(BODY)),
    );
    // Framing the HTTP layer refuses.
    refused_by_both(
        "two different lengths",
        &request(&[&length, "content-length: 3"], BODY),
    );
    refused_by_both(
        "a coding not ending in chunked",
        &request(&["transfer-encoding: chunked, gzip"], &chunked(BODY)),
    );
    let long = format!("x-long: {}", "a".repeat(64 * 1024));
    refused_by_both("a head over the limit", &request(&[&length, &long], BODY));
    refused_by_both(
        "broken chunks",
        &request(
            &["transfer-encoding: chunked"],
            &format!("{:x}\r\n{BODY}\r\nzz\r\n\r\n", BODY.len()),
        ),
    );
    // Declared larger than what arrives: incomplete (the handler refuses it over the limit
    // before reading).
    refused_by_both(
        "declared 100 MB",
        &request(&["content-length: 100000000"], "{}"),
    );
}

#[test]
fn smuggling_vectors_are_refused_or_read_as_hyper_reads_them() {
    let length = format!("content-length: {}", BODY.len());
    let smuggled = "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";
    let behind = format!("{}{smuggled}", chunked(BODY));
    // Content-Length and Transfer-Encoding, both orders: the coding wins, the length goes,
    // the connection ends after the answer; the request behind is never the body.
    for order in [
        [length.as_str(), "transfer-encoding: chunked"],
        ["transfer-encoding: chunked", length.as_str()],
    ] {
        let input = request(&order, &behind);
        let read = read_by_both("CL+TE", &input);
        assert_eq!(read.4, BODY.as_bytes());
        let mut buf = bytes::BytesMut::from(&input[..]);
        let head = head::parse(&mut buf, MAX).unwrap().unwrap();
        assert!(
            !head.keep_alive,
            "the connection ends after a CL+TE request"
        );
        assert!(!head.request.headers().contains_key("content-length"));
    }
    // The length's removal keeps the other headers in the order they came.
    let input = request(
        &[&length, "transfer-encoding: chunked", "x-after: 1"],
        &chunked(BODY),
    );
    read_by_both("CL+TE, a header after", &input);
    let mut buf = bytes::BytesMut::from(&input[..]);
    let head = head::parse(&mut buf, MAX).unwrap().unwrap();
    let names: Vec<&str> = head.request.headers().keys().map(|n| n.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["transfer-encoding", "x-after"]);
    // Transfer-Encoding twice: the last coding of the last header decides.
    read_by_both(
        "TE twice, chunked last",
        &request(
            &["transfer-encoding: gzip", "transfer-encoding: chunked"],
            &chunked(BODY),
        ),
    );
    refused_by_both(
        "TE twice, chunked first",
        &request(
            &["transfer-encoding: chunked", "transfer-encoding: gzip"],
            &chunked(BODY),
        ),
    );
    // Whitespace around the coding is trimmed (by httparse and here), never part of it.
    for te in [
        "transfer-encoding: \tchunked",
        "transfer-encoding: chunked\t",
        "transfer-encoding:chunked",
    ] {
        read_by_both(te, &request(&[te], &chunked(BODY)));
    }
    // A header name with whitespace before the colon, obs-fold, bare CR: not a head.
    for bad in [
        "transfer-encoding : chunked",
        "x-folded: a\r\n b",
        "x-cr: a\rb",
    ] {
        refused_by_both(bad, &request(&[bad, &length], BODY));
    }
    // Signs, spaces and lists in Content-Length.
    for bad in [
        "content-length: +19",
        "content-length: -19",
        "content-length: 1 9",
        "content-length: 0x13",
        "content-length: 19, 20",
        "content-length: 19, 19",
        "content-length: ",
    ] {
        refused_by_both(bad, &request(&[bad], BODY));
    }
    read_by_both("the same length twice", &request(&[&length, &length], BODY));
    // Chunk sizes past 64 bits, or with signs; a bare LF after the size or the data.
    for bad in [
        format!("1{}\r\nx\r\n0\r\n\r\n", "0".repeat(16)),
        "fffffffffffffffff\r\nx\r\n0\r\n\r\n".to_owned(),
        "+13\r\nx\r\n0\r\n\r\n".to_owned(),
        "-1\r\nx\r\n0\r\n\r\n".to_owned(),
        format!("{:x}\n{BODY}\r\n0\r\n\r\n", BODY.len()),
        format!("{:x}\r\n{BODY}\n0\r\n\r\n", BODY.len()),
    ] {
        let input = request(&["transfer-encoding: chunked"], &bad);
        assert!(ours(&input).is_err(), "{bad:?}: read here");
        agrees(&input).unwrap();
    }
    // A trailer whose value ends in a form feed (found by the fuzzer: read here, refused by
    // hyper; only spaces and tabs are trimmed now).
    let input = request(
        &["transfer-encoding: chunked"],
        "0;ext\r\nx-t: v\x0c \r\n\r\n",
    );
    refused_by_both("a form feed in a trailer", &input);
    // Transfer-Encoding in an HTTP/1.0 request.
    let input = request(&["transfer-encoding: chunked"], &chunked(BODY));
    let input = [&SIGNED.as_bytes()[..9], b"1.0", &input[12..]].concat();
    refused_by_both("TE in HTTP/1.0", &input);
    // Bare LF line endings in the head are read by both (httparse accepts them).
    let bare = request(&[&length], BODY);
    let bare = String::from_utf8(bare).unwrap().replace("\r\n", "\n");
    read_by_both("bare LF", bare.as_bytes());
}

#[derive(Debug, Clone)]
enum Framed {
    Length,
    Chunked {
        pieces: usize,
        ext: bool,
        trailer: bool,
    },
    None,
}

/// A request as a client would write it; with `odd`, stray framing and connection headers.
fn request_strategy(odd: bool) -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![6 => Just("POST"), 1 => Just("GET"), 1 => Just("PUT")];
    let version = prop_oneof![5 => Just("HTTP/1.1"), 1 => Just("HTTP/1.0")];
    let target = prop_oneof![
        6 => Just("/"),
        1 => Just("/?a=b"),
        1 => Just("http://127.0.0.1/"),
        1 => Just("*"),
    ];
    let framed = prop_oneof![
        4 => Just(Framed::Length),
        3 => (1usize..4, any::<bool>(), any::<bool>())
            .prop_map(|(pieces, ext, trailer)| Framed::Chunked { pieces, ext, trailer }),
        1 => Just(Framed::None),
    ];
    let extra = proptest::collection::vec(
        prop_oneof![
            Just("connection: close".to_owned()),
            Just("connection: keep-alive".to_owned()),
            Just("expect: 100-continue".to_owned()),
            Just("user-agent: aws-sdk-js/3.0".to_owned()),
            "x-[a-z]{1,8}: [ -~]{0,16}",
        ],
        0..4,
    );
    let stray = if odd {
        proptest::collection::vec(
            prop_oneof![
                Just("content-length: 3".to_owned()),
                Just("transfer-encoding: chunked".to_owned()),
                Just("transfer-encoding: gzip".to_owned()),
            ],
            0..2,
        )
        .boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let body = proptest::collection::vec(any::<u8>(), 0..64);
    (method, version, target, framed, extra, stray, body).prop_map(
        |(method, version, target, framed, extra, stray, body)| {
            let mut out =
                format!("{method} {target} {version}\r\nhost: 127.0.0.1\r\n").into_bytes();
            let mut line = |l: &str| {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(b"\r\n");
            };
            for l in extra.iter().chain(stray.iter()) {
                line(l);
            }
            match &framed {
                Framed::Length => line(&format!("content-length: {}", body.len())),
                Framed::Chunked { .. } => line("transfer-encoding: chunked"),
                Framed::None => {}
            }
            out.extend_from_slice(b"\r\n");
            match framed {
                Framed::Length => out.extend_from_slice(&body),
                Framed::Chunked {
                    pieces,
                    ext,
                    trailer,
                } => {
                    for piece in body.chunks((body.len() / pieces).max(1)) {
                        out.extend_from_slice(format!("{:x}", piece.len()).as_bytes());
                        if ext {
                            out.extend_from_slice(b";name=value");
                        }
                        out.extend_from_slice(b"\r\n");
                        out.extend_from_slice(piece);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n");
                    if trailer {
                        out.extend_from_slice(b"x-trailer: t\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                Framed::None => {}
            }
            out
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_requests_read_as_hyper_reads_them(input in request_strategy(false)) {
        // Both ways: a well-formed request hyper reads is one we read.
        if hyper_reads(&input).is_ok() {
            prop_assert!(ours(&input).is_ok(), "refused: {:?}", String::from_utf8_lossy(&input));
        }
        agrees(&input)?;
    }

    #[test]
    fn damaged_requests_are_never_read_more_leniently_than_hyper(input in damaged(request_strategy(true))) {
        agrees(&input)?;
    }

    #[test]
    fn a_request_in_two_pieces_reads_as_one(input in damaged(request_strategy(true)), at in 0usize..400) {
        let (first, second) = input.split_at(at.min(input.len()));
        let pieces = read_pieces(&[first, second], MAX).map(|(h, b)| read(&h.request, &b));
        prop_assert_eq!(pieces, ours(&input));
    }
}
