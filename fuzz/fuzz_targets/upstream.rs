//! The upstream's answers as `src/forward/h1.rs` parses them, from an upstream that sends any
//! bytes. The first input byte picks where the rest is cut in two: the answer arrives in two
//! reads. Asserts:
//! - nothing panics, and parsing ends (every step consumes bytes or asks for more);
//! - read in two pieces, an answer reads exactly as it does whole (head, body, or refusal);
//! - a body never holds more bytes than arrived, a length-delimited body exactly its length;
//!   a body data frame is never empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swf_warden::forward::h1::{self, Framing};

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
    let (first, second) = input.split_at(at);
    let (head, frames) = h1::read_pieces(&[first, second])?;
    assert!(frames.iter().all(|f| !f.is_empty()), "an empty data frame");
    Ok((head, frames.concat()))
}
