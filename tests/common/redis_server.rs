//! A real `redis-server` (Debian's package; `.ci/run` installs it) on a free loopback port,
//! with no persistence, stopped when dropped; and a listener that accepts connections and
//! never answers, to stand for a Redis that hangs.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` (or `$REDIS_SERVER`) on a free port and waits (at most 10 s)
    /// until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_on(super::free_port())
    }

    /// Starts on `port` (to bring a stopped server back at the same address).
    pub fn start_on(port: u16) -> RedisServer {
        let program = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{program}` ({e}): install Debian's redis-server, as .ci/run does")
            });
        let server = RedisServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.query(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends one command and returns the first line of the answer, or `None` when the
    /// server cannot be reached.
    pub fn query(&self, args: &[&str]) -> Option<String> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut command = format!("*{}\r\n", args.len());
        for a in args {
            command.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(command.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }

    /// The keys matching `pattern` (an array answer, read whole).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let command = format!("*2\r\n$4\r\nKEYS\r\n${}\r\n{pattern}\r\n", pattern.len());
        stream.write_all(command.as_bytes()).unwrap();
        let mut lines = BufReader::new(stream).lines();
        let head = lines.next().unwrap().unwrap();
        let n: usize = head.strip_prefix('*').expect("an array").parse().unwrap();
        let mut keys: Vec<String> = (0..n)
            .map(|_| {
                lines.next().unwrap().unwrap(); // $len
                lines.next().unwrap().unwrap()
            })
            .collect();
        keys.sort();
        keys
    }

    /// Stops the server and waits until it has exited.
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback listener that accepts connections, reads what is sent and never answers.
pub async fn silent_listener() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            held.push(tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            }));
        }
    });
    (port, task)
}
