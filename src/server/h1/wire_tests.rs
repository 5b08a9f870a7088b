//! The server's reading and writing on an in-memory connection: heads, bodies and answers as
//! bytes on the wire.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;
use tokio::io::AsyncReadExt;

use super::*;

/// An answer's body of unknown length (as an upstream's chunked answer is), in pieces.
struct Pieces(VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.0.pop_front().map(|p| Ok(Frame::data(p))))
    }
}

fn pieces(parts: &[&'static str]) -> http::Response<Pieces> {
    http::Response::new(Pieces(
        parts
            .iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect(),
    ))
}

/// Writes `answer` as the server would to a client of `version`, then closes; what the client
/// reads.
async fn on_the_wire<B>(answer: http::Response<B>, version: Version, close: bool) -> String
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (mut server, mut client) = tokio::io::duplex(1 << 16);
    let _ = write_answer(&mut server, answer, version, close, false).await;
    drop(server);
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn an_answer_of_unknown_length_is_chunked_for_http11_and_close_delimited_for_http10() {
    let wire = on_the_wire(pieces(&["ab", "cde"]), Version::HTTP_11, false).await;
    assert!(wire.contains("transfer-encoding: chunked\r\n"), "{wire}");
    assert!(
        wire.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{wire}"
    );
    assert!(!wire.contains("connection:"), "{wire}");

    // HTTP/1.0 has no chunked coding: the body ends with the connection.
    let wire = on_the_wire(pieces(&["ab", "cde"]), Version::HTTP_10, true).await;
    assert!(!wire.contains("transfer-encoding"), "{wire}");
    assert!(wire.contains("connection: close\r\n"), "{wire}");
    assert!(wire.ends_with("\r\n\r\nabcde"), "{wire}");
}
