//! The listener over TLS: the AWS SDK for Rust, trusting a test CA, talks to the proxy over
//! HTTPS (HTTP/2 by ALPN where the client offers it) and the full request path works.

mod common;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use common::*;

struct Material {
    _dir: tempfile::TempDir,
    cert_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn material() -> Material {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let cert_pem = certified.cert.pem();
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let acceptor = swf_warden::tls::acceptor(&cert, &key).unwrap();
    Material {
        _dir: dir,
        cert_pem,
        acceptor,
    }
}

fn https_client(proxy: &Proxy, tenant: Tenant, ca_pem: &str) -> aws_sdk_swf::Client {
    let context = TlsContext::builder()
        .with_trust_store(
            TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(ca_pem.as_bytes()),
        )
        .build()
        .unwrap();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    let endpoint = format!("https://127.0.0.1:{}", proxy.addr.port());
    sdk_client(&endpoint, tenant.key, tenant.secret, http)
}

#[tokio::test]
async fn sdk_over_tls_polls_heartbeats_and_is_refused_elsewhere() {
    let m = material();
    let proxy = Proxy::start_tls(m.acceptor.clone()).await;
    let a = https_client(&proxy, TENANT_A, &m.cert_pem);
    let task = activity_poll(&a, "tenant-a", "work").send().await.unwrap();
    assert!(task.task_token().starts_with("sw1."));
    a.record_activity_task_heartbeat()
        .task_token(task.task_token())
        .send()
        .await
        .unwrap();
    let err = describe_refused(&a, "tenant-b").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    assert_eq!(proxy.upstream.count(), 2);
}

#[tokio::test]
async fn plain_http_to_a_tls_listener_gets_no_http_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = material();
    let proxy = Proxy::start_tls(m.acceptor.clone()).await;
    // The listener is up and accepts the connection, but plain HTTP is not TLS: the answer
    // (if any) is a TLS alert, never an HTTP response, and the connection ends.
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the proxy ends the connection")
    .ok();
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "nothing, or a TLS alert record: {answer:?}"
    );
    // The same listener serves TLS clients.
    let a = https_client(&proxy, TENANT_A, &m.cert_pem);
    a.describe_domain().name("tenant-a").send().await.unwrap();
    assert_eq!(proxy.upstream.count(), 1, "only the TLS call was forwarded");
}

/// `aws:SecureTransport` is true over TLS: a statement that allows only over TLS allows there
/// (and the same call over plain HTTP is refused: tests/policy_enforcement.rs).
#[tokio::test]
async fn secure_transport_is_true_over_tls() {
    const OVER_TLS: &str = r#"{"Version": "2012-10-17", "Statement": [
      {"Sid": "OnlyOverTls", "Effect": "Allow", "Action": "swf:ListDomains", "Resource": "*",
       "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
      {"Sid": "NeverOverTls", "Effect": "Allow", "Action": "swf:DescribeDomain", "Resource": "*",
       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}"#;
    let tls_only = "\n[[principal]]\nname = \"tls-only\"\naccess_key_id = \"AKIATLSONLY000000001\"\nsecret_access_key = \"secret-tls-only\"\npolicies = [\"tls-only\"]\n";
    let m = material();
    let proxy = Proxy::start_tls_with(
        |c| c + tls_only,
        &[("tls-only.json", OVER_TLS)],
        m.acceptor.clone(),
    )
    .await;
    let tenant = Tenant {
        name: "tls-only",
        key: "AKIATLSONLY000000001",
        secret: "secret-tls-only",
    };
    let client = https_client(&proxy, tenant, &m.cert_pem);
    client
        .list_domains()
        .registration_status(aws_sdk_swf::types::RegistrationStatus::Registered)
        .send()
        .await
        .expect("allowed over TLS");
    let err = describe_refused(&client, "tenant-a").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    // The listing reads both of the fake upstream's pages (the proxy pages it itself).
    assert_eq!(proxy.upstream.operations(), ["ListDomains", "ListDomains"]);
}

#[test]
fn unusable_tls_material_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let m = material();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, &m.cert_pem).unwrap();
    assert!(matches!(
        swf_warden::tls::acceptor(&empty, &empty),
        Err(swf_warden::tls::TlsError::NoCertificate(_))
    ));
    assert!(matches!(
        swf_warden::tls::acceptor(&cert, &empty),
        Err(swf_warden::tls::TlsError::NoKey(_))
    ));
    assert!(swf_warden::tls::acceptor(&dir.path().join("missing"), &empty).is_err());
}

#[tokio::test]
async fn https_upstream_verified_with_ca_file() {
    // Proxy A serves TLS with a certificate its CA signed; proxy B forwards to A over https,
    // trusting that CA through `ca_file`, signing as a principal A knows.
    let m = material();
    let chained = "\n[[principal]]\nname = \"chained\"\naccess_key_id = \"AKIACHAINED000000001\"\nsecret_access_key = \"chained-secret\"\npolicies = [\"everything\"]\n";
    let a = Proxy::start_tls_configured(|c| c + chained, m.acceptor.clone()).await;
    let ca = a.dir.path().join("ca.pem");
    std::fs::write(&ca, &m.cert_pem).unwrap();
    let endpoint = format!("https://127.0.0.1:{}", a.addr.port());
    let ca_line = format!("ca_file = \"{}\"", ca.display());
    let b = Proxy::start_configured(
        |c| {
            replace_endpoint(&c, &format!("endpoint = \"{endpoint}\"\n{ca_line}"))
                .replace(
                    "access_key_id = \"AKIDUPSTREAM\"",
                    "access_key_id = \"AKIACHAINED000000001\"",
                )
                .replace(
                    "secret_access_key = \"upstream-secret\"",
                    "secret_access_key = \"chained-secret\"",
                )
        },
        &[],
    )
    .await;
    let client = b.client(TENANT_A);
    let task = activity_poll(&client, "tenant-a", "work")
        .send()
        .await
        .unwrap();
    client
        .record_activity_task_heartbeat()
        .task_token(task.task_token())
        .send()
        .await
        .unwrap();
    assert_eq!(b.upstream.count(), 0, "B's own fake upstream is not used");
    let ops = a.upstream.operations();
    assert_eq!(
        ops,
        ["PollForActivityTask", "RecordActivityTaskHeartbeat"],
        "through A, over https"
    );

    // Trust withdrawn: the CA file now holds another CA. After a reload, B's kept-alive
    // connection to A, made under the old trust, is not reused: A is no longer trusted.
    std::fs::write(&ca, material().cert_pem).unwrap();
    b.runtime.reload().unwrap();
    let err = describe_refused(&client, "tenant-a").await;
    assert_eq!(sdk_code(&err), "ServiceUnavailableException");
    assert_eq!(a.upstream.count(), 2, "nothing more reached A");

    // Without the CA, B cannot reach A: the certificate is not trusted.
    let c = Proxy::start_configured(
        |c| {
            replace_endpoint(
                &c,
                &format!("endpoint = \"{endpoint}\"\nconnect_timeout_seconds = 2"),
            )
        },
        &[],
    )
    .await;
    let err = describe_refused(&c.client(TENANT_A), "tenant-a").await;
    assert_eq!(sdk_code(&err), "ServiceUnavailableException");
}
