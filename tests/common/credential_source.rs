//! Stand-ins on loopback for the places AWS hands a workload its credentials: EC2's instance
//! metadata service (IMDSv2: a session token, the role's name, its credentials) and the
//! container credentials endpoint (ECS task roles, EKS Pod Identity: an authorization token
//! from a file). Both hand out temporary credentials from one [`Ledger`], which issues a new
//! key every `rotate` and keeps every key it issued with when it is valid; a fake upstream
//! verifies the proxy's requests against it ([`Ledger::keys`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// One key the ledger handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_key_id: String,
    pub secret: String,
    pub token: String,
    pub from: SystemTime,
    pub until: SystemTime,
}

/// Temporary credentials, issued anew every `rotate`, each valid for `lifetime`.
pub struct Ledger {
    issued: Mutex<Vec<Issued>>,
    rotate: Duration,
    lifetime: Duration,
    /// While set, the endpoints answer 500.
    down: AtomicBool,
    /// A fixed key handed out instead of rotating ones, if set.
    fixed: Option<(String, String)>,
}

impl Ledger {
    pub fn rotating(rotate: Duration, lifetime: Duration) -> Arc<Ledger> {
        Arc::new(Ledger {
            issued: Mutex::new(Vec::new()),
            rotate,
            lifetime,
            down: AtomicBool::new(false),
            fixed: None,
        })
    }

    /// Always the same key pair (a principal's, say), as temporary credentials for `lifetime`.
    pub fn fixed(key: &str, secret: &str, lifetime: Duration) -> Arc<Ledger> {
        Arc::new(Ledger {
            issued: Mutex::new(Vec::new()),
            rotate: lifetime,
            lifetime,
            down: AtomicBool::new(false),
            fixed: Some((key.to_owned(), secret.to_owned())),
        })
    }

    /// The key to hand out now: the newest, or a new one once it is `rotate` old.
    fn current(&self) -> Issued {
        let now = SystemTime::now();
        let mut issued = self.issued.lock().unwrap();
        if let Some(last) = issued.last() {
            if now.duration_since(last.from).unwrap_or_default() < self.rotate {
                return last.clone();
            }
        }
        let n = issued.len() + 1;
        // Whole seconds: the endpoints write the expiry to the second.
        let from =
            UNIX_EPOCH + Duration::from_secs(now.duration_since(UNIX_EPOCH).unwrap().as_secs());
        let (access_key_id, secret) = match &self.fixed {
            Some((key, secret)) => (key.clone(), secret.clone()),
            None => (format!("ASIASTANDIN{n:09}"), format!("stand-in-secret-{n}")),
        };
        let key = Issued {
            access_key_id,
            secret,
            token: format!("stand-in-session-token-{n}"),
            from,
            until: from + self.lifetime,
        };
        issued.push(key.clone());
        key
    }

    /// Every key handed out so far.
    pub fn issued(&self) -> Vec<Issued> {
        self.issued.lock().unwrap().clone()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The keys a fake upstream accepts: those valid as a request arrives, with their token.
    pub fn keys(self: &Arc<Self>) -> super::UpstreamKeys {
        let ledger = self.clone();
        Arc::new(move |key: &str| {
            let now = SystemTime::now();
            ledger
                .issued
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|k| k.access_key_id == key && k.from <= now && now < k.until)
                .map(|k| (k.secret.clone(), Some(k.token.clone())))
        })
    }
}

fn iso8601(t: SystemTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from(t).format(&format).unwrap()
}

/// The credentials as IMDS and the container endpoint write them.
fn document(key: &Issued) -> String {
    serde_json::json!({
        "Code": "Success",
        "LastUpdated": iso8601(key.from),
        "Type": "AWS-HMAC",
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret,
        "Token": key.token,
        "Expiration": iso8601(key.until),
    })
    .to_string()
}

/// The role name IMDS reports.
pub const INSTANCE_ROLE: &str = "swf-warden-instance";
const IMDS_TOKEN: &str = "stand-in-imds-session-token";
/// Where the container endpoint serves.
pub const CONTAINER_PATH: &str = "/v2/credentials/swf-warden";

/// IMDSv2 and the container credentials endpoint on one loopback port.
pub struct CredentialServer {
    pub addr: SocketAddr,
}

impl CredentialServer {
    /// Serves `ledger`'s keys; the container endpoint wants `authorization` in the
    /// `Authorization` header.
    pub async fn start(ledger: Arc<Ledger>, authorization: &str) -> CredentialServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let authorization = authorization.to_owned();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (ledger, authorization) = (ledger.clone(), authorization.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let answer = serve(&ledger, &authorization, &request);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        CredentialServer { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn serve<B>(ledger: &Ledger, authorization: &str, request: &Request<B>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = |code: u16, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = http::StatusCode::from_u16(code).unwrap();
        response
    };
    if ledger.down.load(Ordering::SeqCst) {
        return status(500, "down".into());
    }
    let path = request.uri().path();
    let imds_ok = header("x-aws-ec2-metadata-token") == IMDS_TOKEN;
    match (request.method().as_str(), path) {
        ("PUT", "/latest/api/token") => {
            if header("x-aws-ec2-metadata-token-ttl-seconds").is_empty() {
                return status(400, "no ttl".into());
            }
            let mut response = status(200, IMDS_TOKEN.into());
            response.headers_mut().insert(
                "x-aws-ec2-metadata-token-ttl-seconds",
                "21600".parse().unwrap(),
            );
            response
        }
        ("GET", "/latest/meta-data/iam/security-credentials/") if imds_ok => {
            status(200, INSTANCE_ROLE.into())
        }
        ("GET", p)
            if imds_ok
                && p == format!("/latest/meta-data/iam/security-credentials/{INSTANCE_ROLE}") =>
        {
            status(200, document(&ledger.current()))
        }
        ("GET", p) if p.starts_with("/latest/") => status(401, "no IMDSv2 token".into()),
        ("GET", CONTAINER_PATH) if header("authorization") == authorization => {
            status(200, document(&ledger.current()))
        }
        ("GET", CONTAINER_PATH) => status(401, "unauthorized".into()),
        _ => status(404, "not found".into()),
    }
}
