//! Writes a wrk Lua script that sends one signed `RecordActivityTaskHeartbeat` with a sealed
//! task token, for `bench/load.sh`. The signature stays valid for the clock-skew window.
//! Usage: bench_request HOST:PORT ACCESS_KEY SECRET TOKEN_KEY DOMAIN OUT.lua

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
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
    let headers = [
        ("content-type", "application/x-amz-json-1.0"),
        ("host", host.as_str()),
        (
            "x-amz-target",
            "SimpleWorkflowService.RecordActivityTaskHeartbeat",
        ),
    ];
    let identity = Credentials::new(key, secret, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("swf")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let uri = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let mut lua = String::from("wrk.method = \"POST\"\n");
    lua.push_str(&format!("wrk.body = [[{body}]]\n"));
    // wrk sends the Host header itself, from the URL (the signed one for swf-warden's URL).
    for (name, value) in headers
        .iter()
        .copied()
        .chain(instructions.headers())
        .filter(|(n, _)| *n != "host")
    {
        lua.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    std::fs::write(out, lua).expect("write the script");
}
