//! What observability costs a call in the default configuration: the access line (formatted
//! and appended to the buffer its thread writes out), and with `[tracing]` configured, a call
//! that is not sampled (no caller context, or a caller's that says not sampled) and one that
//! is. A process of its own: it installs the global subscriber as `serve` does.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use swf_warden::access::{self, Line};
use swf_warden::audit::Outcome;
use swf_warden::telemetry::{self, Settings, Trace};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn setup() {
    // As `serve` sets it up: `info`, the trace target let through, the export layer on.
    access::writer::init_to(Box::new(std::io::sink()), false);
    let settings = Settings {
        // Nothing listens there: exports fail off the request path, as a down collector's do.
        otlp_endpoint: "http://127.0.0.1:9".parse().unwrap(),
        sample_ratio: 0.0,
        service_name: "swf-warden".into(),
        ca_file: None,
    };
    let filter = tracing_subscriber::EnvFilter::new("info")
        .add_directive(format!("{}=info", telemetry::TARGET).parse().unwrap());
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(telemetry::init(&settings).unwrap())
        .init();
}

/// What the handler asks of a call's trace, whether or not it is traced.
fn call_path(headers: &HeaderMap) -> Trace {
    let trace = telemetry::start(headers, "9e4a1f0c-0000-4000-8000-000000000001");
    drop(trace.child("authenticate").entered());
    drop(trace.child("authorize").entered());
    drop(trace.child("quotas"));
    let (upstream, outgoing) = trace.upstream("RecordActivityTaskHeartbeat");
    drop((upstream, outgoing));
    drop(trace.child("audit").entered());
    if trace.traced() {
        trace.finish(telemetry::Ended {
            request_id: "9e4a1f0c-0000-4000-8000-000000000001",
            operation: Some("RecordActivityTaskHeartbeat"),
            principal: Some("tenant-1"),
            action: Some("swf:RecordActivityTaskHeartbeat"),
            domain: Some("team-a"),
            decision: "allowed",
            status: 200,
            service: "SWF",
        });
    }
    trace
}

fn observability(c: &mut Criterion) {
    setup();
    c.bench_function("access/line", |b| {
        b.iter(|| {
            access::log(&Line {
                request_id: "9e4a1f0c-0000-4000-8000-000000000001",
                principal: Some("tenant-1"),
                operation: Some("RecordActivityTaskHeartbeat"),
                resource: Some("arn:aws:swf:us-east-1:123456789012:/domain/team-a"),
                decision: Outcome::Allowed,
                status: 200,
                upstream_time: Duration::from_micros(1_250),
                proxy_time: Duration::from_micros(48),
                trace_id: None,
            })
        })
    });
    let none = HeaderMap::new();
    c.bench_function("trace/not_sampled", |b| b.iter(|| call_path(&none)));
    let mut not_sampled = HeaderMap::new();
    not_sampled.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
            .parse()
            .unwrap(),
    );
    c.bench_function("trace/not_sampled_by_the_caller", |b| {
        b.iter(|| call_path(&not_sampled))
    });
    let mut sampled = HeaderMap::new();
    sampled.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    c.bench_function("trace/sampled", |b| b.iter(|| call_path(&sampled)));
}

criterion_group!(benches, observability);
criterion_main!(benches);
