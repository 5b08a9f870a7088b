//! The AWS SDK for Rust with no key anywhere: its default credential chain finds
//! `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanges the token with the proxy's STS
//! (`AWS_ENDPOINT_URL_STS`) and completes a poll and heartbeat through the proxy on the
//! credentials it got, kept to its namespace's domain. Its own test binary: it sets the
//! process environment, as a pod's is.

mod common;

use aws_credential_types::provider::ProvideCredentials;
use common::oidc::*;
use common::*;

#[tokio::test]
async fn the_rust_sdk_gets_credentials_from_the_proxy_through_its_web_identity_provider() {
    let proxy = Proxy::start_configured(|c| c + &sts_config(), &[NAMESPACE_POLICY]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token("tenant-a")).unwrap();
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        std::env::remove_var(name);
    }
    for (name, value) in [
        ("AWS_ROLE_ARN", ROLE_ARN.to_owned()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_ROLE_SESSION_NAME", "rust-pod".to_owned()),
        ("AWS_ENDPOINT_URL_STS", proxy.endpoint()),
        ("AWS_ENDPOINT_URL_SWF", proxy.endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ] {
        std::env::set_var(name, value);
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .load()
        .await;
    let credentials = config
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .expect("credentials from the proxy");
    assert!(credentials.access_key_id().starts_with("ASIA"));
    assert!(credentials.session_token().is_some());

    let swf = aws_sdk_swf::Client::new(&config);
    let task = poll_token(&swf, "tenant-a", "work").await;
    swf.record_activity_task_heartbeat()
        .task_token(&task)
        .details("1/2")
        .send()
        .await
        .expect("a heartbeat in its namespace's domain");
    let err = describe_refused(&swf, "tenant-b").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    assert_eq!(
        proxy.upstream.operations(),
        ["PollForActivityTask", "RecordActivityTaskHeartbeat"]
    );
    let issued: Vec<_> = proxy
        .audit()
        .into_iter()
        .filter(|r| r["decision"] == "issued")
        .collect();
    // The credentials asked for above, and the SWF client's own cached ones.
    assert!(!issued.is_empty());
    for record in &issued {
        assert_eq!(
            record["issued"]["arn"],
            "arn:aws:sts::123456789012:assumed-role/swf-worker/rust-pod"
        );
        assert_eq!(
            record["webIdentity"]["subject"],
            "system:serviceaccount:tenant-a:swf-worker"
        );
    }
    assert!(issued
        .iter()
        .any(|r| r["issued"]["accessKeyId"] == credentials.access_key_id()));
}
