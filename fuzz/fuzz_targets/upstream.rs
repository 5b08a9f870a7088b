//! The upstream's answers as `src/forward/h1.rs` parses them, from an upstream that sends any
//! bytes. The first input byte picks where the rest is cut in two: the answer arrives in two
//! reads. Asserts:
//! - nothing panics, and parsing ends (every step consumes bytes or asks for more);
//! - read in two pieces, an answer reads exactly as it does whole (head, body, or refusal);
//! - a body never holds more bytes than arrived, a length-delimited body exactly its length;
//!   a body data frame is never empty.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use swf_warden::forward::h1::{self, BodyDecoder, Decoded, Framing};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let whole = h1::read_whole(input);
    if let Ok((head, body)) = &whole {
        assert!(body.len() <= input.len());
        if let Framing::Length(n) = head.body {
            assert_eq!(body.len() as u64, n);
        }
    }
    let at = usize::from(cut) * input.len() / 255;
    assert_eq!(summary(&in_two(input, at)), summary(&whole), "cut at {at}");
});

type Read = Result<(h1::Head, Vec<u8>), h1::Error>;

fn summary(read: &Read) -> Result<(u16, Vec<(String, Vec<u8>)>, &Vec<u8>), &h1::Error> {
    read.as_ref().map(|(head, body)| {
        let headers = head
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        (head.status.as_u16(), headers, body)
    })
}

fn in_two(input: &[u8], at: usize) -> Read {
    let mut buf = BytesMut::from(&input[..at]);
    let mut rest = Some(&input[at..]);
    let head = loop {
        if let Some(head) = h1::parse_head(&mut buf)? {
            break head;
        }
        match rest.take() {
            Some(more) => buf.extend_from_slice(more),
            None => return Err(h1::Error::Incomplete),
        }
    };
    let mut decoder = BodyDecoder::new(head.body);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(data) => {
                assert!(!data.is_empty(), "an empty data frame");
                body.extend_from_slice(&data);
            }
            Decoded::End => return Ok((head, body)),
            Decoded::NeedMore => match rest.take() {
                Some(more) => buf.extend_from_slice(more),
                None => {
                    decoder.closed()?;
                    return Ok((head, body));
                }
            },
        }
    }
}
