//! A hand-written HTTP/1.1 upstream on loopback that counts connections and requests and can
//! misbehave on purpose (close connections, drop requests, hold answers).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the raw upstream treats its connections.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// Keep-alive, `Content-Length` answers.
    KeepAlive,
    /// Keep-alive, chunked answers.
    Chunked,
    /// Answers, then closes the connection without saying so.
    CloseSilently,
    /// Answers with `Connection: close` (as moto does), then closes.
    ConnectionClose,
    /// Answers the first request of each connection; reads the second and closes unanswered.
    DropSecond,
    /// Keep-alive, but holds every answer until [`RawUpstream::release`].
    Hold,
}

/// A hand-written HTTP/1.1 upstream on loopback that counts connections and requests.
pub struct RawUpstream {
    pub addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Tells idle connections to close.
    close_idle: Arc<tokio::sync::Notify>,
    closed: Arc<AtomicUsize>,
    released: Arc<tokio::sync::Semaphore>,
}

impl RawUpstream {
    pub async fn start(mode: Mode) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let close_idle = Arc::new(tokio::sync::Notify::new());
        let closed = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(tokio::sync::Semaphore::new(0));
        let (c, r, n, d, h) = (
            connections.clone(),
            requests.clone(),
            close_idle.clone(),
            closed.clone(),
            released.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (r, n, d, h) = (r.clone(), n.clone(), d.clone(), h.clone());
                tokio::spawn(async move {
                    serve(stream, mode, r, n, h).await;
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        RawUpstream {
            addr,
            connections,
            requests,
            close_idle,
            closed,
            released,
        }
    }

    /// Lets `n` held answers go (in `Hold` mode).
    pub fn release(&self, n: usize) {
        self.released.add_permits(n);
    }

    /// Closes every idle connection, as an upstream's keep-alive timeout would, and returns
    /// once they are closed.
    pub async fn close_idle(&self) {
        self.close_idle.notify_waiters();
        while self.closed.load(Ordering::SeqCst) < self.connections() {
            tokio::task::yield_now().await;
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections that have ended (either side closed them).
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    mode: Mode,
    requests: Arc<AtomicUsize>,
    close_idle: Arc<tokio::sync::Notify>,
    released: Arc<tokio::sync::Semaphore>,
) {
    let mut buf = Vec::new();
    for nth in 1.. {
        let closing = close_idle.notified();
        tokio::select! {
            read = read_request(&mut stream, &mut buf) => if !read { return },
            () = closing => return,
        }
        requests.fetch_add(1, Ordering::SeqCst);
        if mode == Mode::DropSecond && nth == 2 {
            return;
        }
        if mode == Mode::Hold {
            match released.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
        }
        let body = r#"{"domainInfo":{"name":"tenant-a","status":"REGISTERED"},"configuration":{"workflowExecutionRetentionPeriodInDays":"1"}}"#;
        let answer = match mode {
            Mode::Chunked => {
                let (a, b) = body.split_at(10);
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: raw-{nth}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
            _ => {
                let close = if mode == Mode::ConnectionClose {
                    "connection: close\r\n"
                } else {
                    ""
                };
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: raw-{nth}\r\n{close}content-length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if matches!(mode, Mode::CloseSilently | Mode::ConnectionClose) {
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body) into `buf`, leaving any bytes after it.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = request.parse(buf) {
            let length: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + length {
                buf.drain(..head + length);
                return true;
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
