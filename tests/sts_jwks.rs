//! An identity provider's keys fetched from `jwks_url` over verified TLS: fetched when first
//! needed, refetched on an unknown `kid` at most once per interval (random kids do not turn
//! the proxy into a request amplifier), new keys picked up, the last keys served while the
//! provider is down, and refused once they are older than the bound.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::oidc::*;
use common::*;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A key set served over HTTPS, counting requests; `None` answers 503.
struct JwksServer {
    addr: std::net::SocketAddr,
    ca: std::path::PathBuf,
    jwks: Arc<Mutex<Option<String>>>,
    hits: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl JwksServer {
    async fn start() -> JwksServer {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = (
            dir.path().join("server.pem"),
            dir.path().join("server.key"),
            dir.path().join("ca.pem"),
        );
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&ca, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let acceptor = swf_warden::tls::acceptor(&cert, &key).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let jwks = Arc::new(Mutex::new(Some(
            std::fs::read_to_string(jwks_path()).unwrap(),
        )));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, served, counted) =
                    (acceptor.clone(), served.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |_request| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let body = served.lock().unwrap().clone();
                        async move {
                            let mut response = Response::new(Full::new(Bytes::from(
                                body.clone().unwrap_or_default(),
                            )));
                            if body.is_none() {
                                *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        JwksServer {
            addr,
            ca,
            jwks,
            hits,
            _dir: dir,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A proxy whose provider fetches its keys from `server`, trusting the CA in `ca`, with
/// `settings` for the fetches.
async fn proxy_fetching_from(server: &JwksServer, ca: &std::path::Path, settings: &str) -> Proxy {
    proxy_fetching_at(server.addr, ca, settings).await
}

/// A proxy whose provider fetches its keys from `addr`.
async fn proxy_fetching_at(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    settings: &str,
) -> Proxy {
    let url = format!(
        "jwks_url = \"https://{addr}/openid/v1/jwks\"\nca_file = \"{}\"\n{settings}",
        ca.display()
    );
    // These tests verify tokens in loops: no ration of sessions gets in their way.
    let config = sts_config().replace(
        "max_duration_seconds = 7200",
        "max_duration_seconds = 7200\nissues_per_minute = 1000000\nissue_burst = 1000000",
    );
    let file_line = config
        .lines()
        .find(|l| l.starts_with("jwks_file"))
        .unwrap()
        .to_owned();
    Proxy::start_configured(
        |c| c + &config.replace(&file_line, &url),
        &[NAMESPACE_POLICY],
    )
    .await
}

async fn assume_code(proxy: &Proxy, token: &str) -> Option<String> {
    let (status, xml) = send_xml(assume_request(
        proxy.addr,
        &[
            ("RoleArn", ROLE_ARN),
            ("RoleSessionName", "pod-1"),
            ("WebIdentityToken", token),
        ],
    ))
    .await;
    (status != 200).then(|| xml_field(&xml, "Code").unwrap_or_default())
}

#[tokio::test]
async fn random_kids_cost_no_more_than_one_fetch_per_interval_and_stale_keys_are_served() {
    let server = JwksServer::start().await;
    let proxy =
        proxy_fetching_from(&server, &server.ca, "jwks_refetch_interval_seconds = 3600").await;
    assert_eq!(server.hits(), 0, "nothing is fetched before it is needed");
    assert_eq!(assume_code(&proxy, &token("tenant-a")).await, None);
    assert_eq!(server.hits(), 1);
    for i in 0..20 {
        let forged = sign_token(
            &claims("tenant-a", "swf-worker"),
            Some(&format!("random-{i}")),
        );
        assert_eq!(
            assume_code(&proxy, &forged).await.as_deref(),
            Some("InvalidIdentityToken")
        );
    }
    assert_eq!(
        server.hits(),
        1,
        "twenty unknown kids within the interval of the last fetch: no request"
    );

    // The provider down: the keys fetched last are still used, also after a reload.
    *server.jwks.lock().unwrap() = None;
    assert_eq!(assume_code(&proxy, &token("tenant-a")).await, None);
    proxy.runtime.reload().unwrap();
    assert_eq!(assume_code(&proxy, &token("tenant-a")).await, None);
    assert_eq!(server.hits(), 1, "a reload fetches nothing it has");
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn a_new_key_is_picked_up_on_its_first_token() {
    let server = JwksServer::start().await;
    let proxy = proxy_fetching_from(&server, &server.ca, "jwks_refetch_interval_seconds = 1").await;
    assert_eq!(assume_code(&proxy, &token("tenant-a")).await, None);
    // The provider rotates: the same key under a new id.
    let rotated = std::fs::read_to_string(jwks_path())
        .unwrap()
        .replace("\"rsa-1\"", "\"rsa-2\"");
    *server.jwks.lock().unwrap() = Some(rotated);
    let fresh = sign_token(&claims("tenant-a", "swf-worker"), Some("rsa-2"));
    let mut code = assume_code(&proxy, &fresh).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while code.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key was never fetched: {code:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        code = assume_code(&proxy, &fresh).await;
    }
    assert!(server.hits() >= 2);
}

#[tokio::test]
async fn keys_older_than_the_bound_are_not_used() {
    let server = JwksServer::start().await;
    let proxy = proxy_fetching_from(
        &server,
        &server.ca,
        "jwks_refetch_interval_seconds = 1\njwks_refresh_seconds = 1\njwks_max_stale_seconds = 1",
    )
    .await;
    assert_eq!(assume_code(&proxy, &token("tenant-a")).await, None);
    *server.jwks.lock().unwrap() = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match assume_code(&proxy, &token("tenant-a")).await.as_deref() {
            Some("IDPCommunicationError") => break,
            None => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stale keys were used past the bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_untrusted_certificate_yields_no_keys() {
    let server = JwksServer::start().await;
    let other = JwksServer::start().await;
    // Trusting another CA than the server's.
    let proxy = proxy_fetching_from(&server, &other.ca, "").await;
    assert_eq!(
        assume_code(&proxy, &token("tenant-a")).await.as_deref(),
        Some("IDPCommunicationError")
    );
    assert_eq!(server.hits(), 0, "no request over an unverified connection");
}

/// Finding 5 of the second review: a token whose provider's key set was being fetched from a
/// provider that hung held its call (and its connection's slot) for the fetch's whole
/// timeout (10 s). A call now waits for a fetch a bounded time (`oidc::FETCH_WAIT`, 2 s) and
/// is answered `IDPCommunicationError`; the fetch itself goes on, for the calls after it.
#[tokio::test]
async fn a_call_waits_for_a_hung_key_set_fetch_a_bounded_time() {
    let server = JwksServer::start().await;
    // Accepts connections and never says a word: not even the TLS handshake.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hung.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hung.accept().await {
            held.push(stream);
        }
    });
    let proxy = proxy_fetching_at(addr, &server.ca, "").await;
    for kid in ["rsa-1", "rsa-unknown"] {
        let token = sign_token(&claims("tenant-a", "swf-worker"), Some(kid));
        let answered = tokio::time::timeout(
            std::time::Duration::from_secs(6),
            assume_code(&proxy, &token),
        )
        .await
        .expect("answered well before the fetch's own timeout");
        assert_eq!(answered.as_deref(), Some("IDPCommunicationError"), "{kid}");
    }
    assert_eq!(proxy.upstream.count(), 0);
}
