//! Client requests as the proxy's HTTP/1.1 server reads them (`src/server/h1/head.rs`), from
//! a client that sends any bytes. The first input byte picks where the rest is cut in two:
//! the request arrives in two reads. Asserts:
//! - nothing panics, and reading ends (every step consumes bytes or asks for more);
//! - read in two pieces, a request reads exactly as it does whole (head, body, or refusal);
//! - a body never holds more bytes than arrived;
//! - a request read here is one hyper's HTTP/1.1 server reads the same way: method, target,
//!   version, headers and body (never more lenient than hyper).
#![no_main]

use libfuzzer_sys::fuzz_target;
use swf_warden::server::h1::head;

#[path = "../../src/server/h1/differential.rs"]
mod differential;
use differential::{hyper_reads, read, MAX};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let whole = head::read_pieces(&[input], MAX).map(|(h, b)| read(&h.request, &b));
    let at = usize::from(cut) * input.len() / 255;
    let (first, second) = input.split_at(at);
    let pieces = head::read_pieces(&[first, second], MAX).map(|(h, b)| read(&h.request, &b));
    assert_eq!(pieces, whole, "cut at {at}");
    if let Ok(mine) = whole {
        assert!(mine.4.len() <= input.len());
        assert_eq!(Ok(mine), hyper_reads(input), "hyper reads it otherwise");
    }
});
