//! Open-loop load for `bench/fairness.sh` (issue 13): each tenant sends signed
//! `RecordActivityTaskHeartbeat` calls at its own fixed rate, whatever the answers, spread
//! round-robin over one or more proxy replicas; then prints, per tenant, one line of JSON with
//! what was sent, admitted, throttled and refused otherwise, the admitted rate and the latency
//! percentiles of its answers.
//!
//! Usage: fairness SECONDS TOKEN_KEY HOST:PORT[,HOST:PORT…] LABEL:KEY:SECRET:DOMAIN:RATE…

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[path = "../tests/common/sdk_sign.rs"]
mod sdk_sign;

use swf_warden::secret::Secret;
use swf_warden::tokens::{TokenKey, TokenSealer};

/// Calls a tenant may have waiting for an answer; past it, a tick is counted as not sent.
const MAX_OUTSTANDING: usize = 2_048;

/// A request signed for one replica: its host, headers and body.
type Signed = (String, Vec<(String, String)>, Bytes);

struct Tenant {
    label: String,
    rate: f64,
    /// One signed request per replica.
    requests: Vec<Signed>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    not_sent: u64,
    admitted: u64,
    throttled: u64,
    other: u64,
    micros: Vec<u32>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: fairness SECONDS TOKEN_KEY HOST:PORT[,HOST:PORT…] LABEL:KEY:SECRET:DOMAIN:RATE…");
        std::process::exit(64);
    }
    let seconds: f64 = args[1].parse().expect("SECONDS");
    let sealer = TokenSealer::new(vec![TokenKey::new("bench", &Secret::new(args[2].as_str()))]);
    let targets: Vec<&str> = args[3].split(',').collect();
    let tenants: Vec<Tenant> = args[4..]
        .iter()
        .map(|spec| {
            let [label, key, secret, domain, rate] = spec.split(':').collect::<Vec<_>>()[..] else {
                panic!("tenant {spec:?}: LABEL:KEY:SECRET:DOMAIN:RATE");
            };
            let token = sealer.seal(domain, &"AAAAKgAAAAIAAAAAAAAAAkP5XV3k2TMvcH0kA".repeat(16));
            let body = format!(r#"{{"taskToken":"{token}","details":"progress 42%"}}"#);
            let requests = targets
                .iter()
                .map(|host| {
                    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
                        key,
                        secret,
                        region: "us-east-1",
                        service: "swf",
                        time: SystemTime::now(),
                        host,
                        target: "SimpleWorkflowService.RecordActivityTaskHeartbeat",
                        extra: &[],
                        body: body.as_bytes(),
                    });
                    (host.to_string(), headers, Bytes::from(body.clone()))
                })
                .collect();
            Tenant {
                label: label.to_owned(),
                rate: rate.parse().expect("RATE"),
                requests,
            }
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_OUTSTANDING)
            .build_http();
        let duration = Duration::from_secs_f64(seconds);
        let runs: Vec<_> = tenants
            .into_iter()
            .map(|t| tokio::spawn(drive(client.clone(), t, duration)))
            .collect();
        for run in runs {
            let (label, tally) = run.await.unwrap();
            report(&label, tally, seconds);
        }
    });
}

/// Sends `tenant`'s calls at its rate for `duration`, then waits (at most 30 s) for answers.
async fn drive(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    tenant: Tenant,
    duration: Duration,
) -> (String, Tally) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let outstanding = Arc::new(tokio::sync::Semaphore::new(MAX_OUTSTANDING));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / tenant.rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut n = 0usize;
    while Instant::now() < end {
        ticks.tick().await;
        let Ok(permit) = outstanding.clone().try_acquire_owned() else {
            tally.lock().unwrap().not_sent += 1;
            continue;
        };
        let (host, headers, body) = &tenant.requests[n % tenant.requests.len()];
        n += 1;
        let mut request = hyper::Request::post(format!("http://{host}/"));
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(Full::new(body.clone())).unwrap();
        let client = client.clone();
        let tally = tally.clone();
        tally.lock().unwrap().sent += 1;
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = match client.request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.into_body().collect().await.map(|b| b.to_bytes());
                    match (status, body) {
                        (200, Ok(_)) => Outcome::Admitted,
                        (400, Ok(b)) if contains(&b, b"ThrottlingException") => Outcome::Throttled,
                        _ => Outcome::Other,
                    }
                }
                Err(_) => Outcome::Other,
            };
            let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            let mut t = tally.lock().unwrap();
            t.micros.push(micros);
            match outcome {
                Outcome::Admitted => t.admitted += 1,
                Outcome::Throttled => t.throttled += 1,
                Outcome::Other => t.other += 1,
            }
            drop(permit);
        });
    }
    // Every call answered, or 30 s.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        outstanding.acquire_many(MAX_OUTSTANDING as u32),
    )
    .await;
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    (tenant.label, tally)
}

enum Outcome {
    Admitted,
    Throttled,
    Other,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn report(label: &str, mut tally: Tally, seconds: f64) {
    tally.micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if tally.micros.is_empty() {
            return 0.0;
        }
        let i = ((tally.micros.len() as f64 * p).ceil() as usize).clamp(1, tally.micros.len()) - 1;
        f64::from(tally.micros[i]) / 1000.0
    };
    println!(
        "{{\"tenant\":\"{label}\",\"sent\":{},\"not_sent\":{},\"admitted\":{},\"throttled\":{},\"other\":{},\"admitted_per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        tally.sent,
        tally.not_sent,
        tally.admitted,
        tally.throttled,
        tally.other,
        tally.admitted as f64 / seconds,
        pct(0.50),
        pct(0.99),
    );
}
