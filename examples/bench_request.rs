//! Writes a wrk Lua script that sends one signed `RecordActivityTaskHeartbeat` with a sealed
//! task token, for `bench/load.sh`. The signature stays valid for the clock-skew window.
//! Usage: bench_request HOST:PORT ACCESS_KEY SECRET TOKEN_KEY DOMAIN OUT.lua
//! With `BENCH_SESSION_ROLE=ROLE`, it signs instead with a session of ROLE issued under the
//! session key SECRET (as the proxy's `[sts] session_keys` holds it, id `bench`), sending and
//! signing its `x-amz-security-token`; ACCESS_KEY is then unused.

use std::time::SystemTime;

#[path = "../tests/common/sdk_sign.rs"]
mod sdk_sign;

use swf_warden::secret::Secret;
use swf_warden::tokens::{TokenKey, TokenSealer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, key, secret, token_key, domain, out] = &args[..] else {
        eprintln!("usage: bench_request HOST:PORT ACCESS_KEY SECRET TOKEN_KEY DOMAIN OUT.lua");
        std::process::exit(64);
    };
    let sealer = TokenSealer::new(vec![TokenKey::new(
        "bench",
        &Secret::new(token_key.as_str()),
    )]);
    // An upstream-sized token (SWF's are several hundred characters).
    let token = sealer.seal(domain, &"AAAAKgAAAAIAAAAAAAAAAkP5XV3k2TMvcH0kA".repeat(16));
    let body = format!(r#"{{"taskToken":"{token}","details":"progress 42%"}}"#);
    let session = std::env::var("BENCH_SESSION_ROLE").ok().map(|role| {
        let keys = swf_warden::sts::session::SessionKeys::new(&[(
            "bench".to_owned(),
            Secret::new(secret.as_str()),
        )]);
        keys.issue(&swf_warden::sts::session::Session {
            role,
            name: "bench-pod".into(),
            expires: SystemTime::now() + std::time::Duration::from_secs(3600),
            issued: SystemTime::now(),
            tags: [("namespace".to_owned(), domain.clone())].into(),
        })
    });
    let (key, secret) = match &session {
        Some(s) => (s.access_key_id.as_str(), s.secret_access_key.expose()),
        None => (key.as_str(), secret.as_str()),
    };
    let extra: Vec<(&str, &str)> = session
        .iter()
        .map(|s| ("x-amz-security-token", s.session_token.as_str()))
        .collect();
    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
        key,
        secret,
        region: "us-east-1",
        service: "swf",
        time: SystemTime::now(),
        host,
        target: "SimpleWorkflowService.RecordActivityTaskHeartbeat",
        extra: &extra,
        body: body.as_bytes(),
    });
    let mut lua = String::from("wrk.method = \"POST\"\n");
    lua.push_str(&format!("wrk.body = [[{body}]]\n"));
    // wrk sends the Host header itself, from the URL (the signed one for swf-warden's URL).
    for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
        lua.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    std::fs::write(out, lua).expect("write the script");
}
