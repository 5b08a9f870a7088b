//! Sampling and propagation, with the spans collected in memory through the same
//! `tracing-opentelemetry` layer the proxy installs.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Keeps what it is given.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// Runs `f` with a tracer sampling at `ratio` whose spans end up in the returned list.
fn with_tracing<T>(ratio: f64, f: impl FnOnce(&'static Tracing) -> T) -> (T, Vec<SpanData>) {
    let collected = Collected::default();
    // As `export::provider` builds it.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .with_sampler(export::OwnSpans)
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let tracing: &'static Tracing = Box::leak(Box::new(Tracing::new(provider, ratio)));
    let subscriber = tracing_subscriber::registry().with(layer);
    let result = tracing::subscriber::with_default(subscriber, || f(tracing));
    let spans = collected.0.lock().unwrap().clone();
    (result, spans)
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().unwrap());
    }
    map
}

fn traceparent(flags: &str) -> String {
    format!("00-{TRACE}-{CALLER_SPAN}-{flags}")
}

/// A traced call's whole path: `call` with its steps and the upstream span, whose context
/// goes out in the forwarded headers.
fn traced_call(tracing: &'static Tracing, incoming: &HeaderMap) -> (Trace, HeaderMap) {
    let trace = start_with(tracing, incoming, "req-1");
    drop(trace.child("authenticate").entered());
    let (upstream, outgoing) = trace.upstream("RecordActivityTaskHeartbeat");
    drop(upstream);
    let outgoing = outgoing.into_owned();
    trace.finish(Ended {
        request_id: "req-1",
        operation: Some("RecordActivityTaskHeartbeat"),
        principal: Some("tenant-a"),
        action: Some("swf:RecordActivityTaskHeartbeat"),
        domain: Some("team-a"),
        decision: "allowed",
        status: 200,
        service: "SWF",
    });
    (trace, outgoing)
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[test]
fn a_sampled_caller_context_is_continued_and_passed_to_the_upstream() {
    let incoming = headers(&[("traceparent", &traceparent("01"))]);
    let ((id, outgoing), spans) = with_tracing(0.0, |t| {
        let (trace, outgoing) = traced_call(t, &incoming);
        assert!(trace.traced());
        (trace.trace_id().map(str::to_owned), outgoing)
    });
    assert_eq!(id.as_deref(), Some(TRACE));
    let call = spans
        .iter()
        .find(|s| {
            s.name == "SWF RecordActivityTaskHeartbeat"
                && s.span_kind == opentelemetry::trace::SpanKind::Server
        })
        .expect("the call's span");
    assert_eq!(
        call.span_context.trace_id(),
        TraceId::from_hex(TRACE).unwrap()
    );
    assert_eq!(call.parent_span_id, SpanId::from_hex(CALLER_SPAN).unwrap());
    assert_eq!(attribute(call, "principal").as_deref(), Some("tenant-a"));
    assert_eq!(attribute(call, "domain").as_deref(), Some("team-a"));
    assert_eq!(attribute(call, "decision").as_deref(), Some("allowed"));
    let upstream = spans
        .iter()
        .find(|s| s.span_kind == opentelemetry::trace::SpanKind::Client)
        .expect("the upstream span");
    assert_eq!(upstream.parent_span_id, call.span_context.span_id());
    let step = spans
        .iter()
        .find(|s| s.name == "authenticate")
        .expect("a step");
    assert_eq!(step.parent_span_id, call.span_context.span_id());
    // The upstream sees the proxy's upstream span as its parent, sampled.
    let sent = outgoing["traceparent"].to_str().unwrap();
    assert_eq!(
        sent,
        format!("00-{TRACE}-{}-01", upstream.span_context.span_id())
    );
    assert!(outgoing.contains_key("x-amzn-trace-id"));
}

#[test]
fn a_caller_that_is_not_sampled_is_not_traced_and_its_context_goes_on_unchanged() {
    let incoming = headers(&[("traceparent", &traceparent("00"))]);
    let ((traced, id, outgoing), spans) = with_tracing(1.0, |t| {
        let trace = start_with(t, &incoming, "req-1");
        let (_, outgoing) = trace.upstream("PollForActivityTask");
        let outgoing = outgoing.into_owned();
        (
            trace.traced(),
            trace.trace_id().map(str::to_owned),
            outgoing,
        )
    });
    assert!(!traced);
    assert!(spans.is_empty(), "{spans:?}");
    assert_eq!(
        id.as_deref(),
        Some(TRACE),
        "the log lines still name the trace"
    );
    assert_eq!(outgoing["traceparent"], traceparent("00").as_str());
    assert_eq!(outgoing.len(), 1);

    // X-Ray's header likewise, in its own format only; a W3C `tracestate` rides along only
    // where the propagator kept it.
    let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
    let with_state = headers(&[
        ("traceparent", &traceparent("00")),
        ("tracestate", "vendor=opaque"),
    ]);
    let bad_state = headers(&[
        ("traceparent", &traceparent("00")),
        ("tracestate", "not a state"),
    ]);
    let ((from_xray, kept, dropped), spans) = with_tracing(1.0, |t| {
        let sent = |incoming: &HeaderMap| {
            let trace = start_with(t, incoming, "r");
            assert!(!trace.traced());
            let sent = trace.upstream("PollForActivityTask").1.into_owned();
            sent
        };
        (
            sent(&headers(&[("x-amzn-trace-id", xray)])),
            sent(&with_state),
            sent(&bad_state),
        )
    });
    assert!(spans.is_empty());
    assert_eq!(from_xray["x-amzn-trace-id"], xray);
    assert!(!from_xray.contains_key("traceparent"));
    assert_eq!(kept["tracestate"], "vendor=opaque");
    assert!(!dropped.contains_key("tracestate"), "{dropped:?}");
}

#[test]
fn an_x_ray_caller_is_continued() {
    let incoming = headers(&[(
        "x-amzn-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )]);
    let ((id, outgoing), spans) = with_tracing(0.0, |t| {
        let (trace, outgoing) = traced_call(t, &incoming);
        (trace.trace_id().map(str::to_owned), outgoing)
    });
    assert_eq!(id.as_deref(), Some("5759e988bd862e3fe1be46a994272793"));
    let call = spans
        .iter()
        .find(|s| s.span_kind == opentelemetry::trace::SpanKind::Server)
        .expect("the call's span");
    assert_eq!(
        call.parent_span_id,
        SpanId::from_hex("53995c3f42cd8ad8").unwrap()
    );
    let xray = outgoing["x-amzn-trace-id"].to_str().unwrap();
    assert!(
        xray.starts_with("Root=1-5759e988-bd862e3fe1be46a994272793;Parent="),
        "{xray}"
    );
    assert!(xray.ends_with(";Sampled=1"), "{xray}");
}

#[test]
fn without_a_caller_context_the_ratio_decides() {
    let none = HeaderMap::new();
    let (traced, spans) = with_tracing(0.0, |t| start_with(t, &none, "r").traced());
    assert!(!traced);
    assert!(spans.is_empty());
    let ((traced, id, outgoing), spans) = with_tracing(1.0, |t| {
        let (trace, outgoing) = traced_call(t, &none);
        (
            trace.traced(),
            trace.trace_id().map(str::to_owned),
            outgoing,
        )
    });
    assert!(traced);
    let call = spans
        .iter()
        .find(|s| s.span_kind == opentelemetry::trace::SpanKind::Server)
        .expect("a root span");
    assert_eq!(call.parent_span_id, SpanId::INVALID);
    assert_eq!(id, Some(call.span_context.trace_id().to_string()));
    assert!(outgoing.contains_key("traceparent"));
}

/// What the propagators would accept beyond the canonical forms (extra fields, short or
/// signed ids, uppercase, unknown X-Ray fields) is neither followed nor passed on: nothing a
/// caller wrote reaches the upstream unless it is exactly a context.
#[test]
fn a_caller_context_not_in_its_canonical_form_counts_as_none() {
    let bad: [(&str, &str); 13] = [
        (
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ),
        (
            "traceparent",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "traceparent",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-anything-at-all",
        ),
        ("traceparent", "00-1-1-01"),
        (
            "traceparent",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        ),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;a.b=1",
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Lineage=x:1",
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;junk;Parent=53995c3f42cd8ad8",
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759E988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ),
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ),
    ];
    // Each `traceparent` also as not sampled (`-00`): the path that passes a header on as it came.
    let unsampled: Vec<(&str, String)> = bad
        .iter()
        .filter(|(name, value)| *name == "traceparent" && value.contains("-01"))
        .map(|(name, value)| (*name, value.replacen("-01", "-00", 1)))
        .collect();
    let all = bad
        .iter()
        .map(|(name, value)| (*name, value.to_string()))
        .chain(unsampled);
    for (name, value) in all {
        let incoming = headers(&[(name, &value)]);
        let ((traced, id, sent), spans) = with_tracing(0.0, |t| {
            let trace = start_with(t, &incoming, "r");
            let sent = trace.upstream("PollForActivityTask").1.into_owned();
            (trace.traced(), trace.trace_id().map(str::to_owned), sent)
        });
        assert!(!traced, "{value}");
        assert!(spans.is_empty(), "{value}");
        assert_eq!(id, None, "{value}");
        assert!(sent.is_empty(), "{value}: {sent:?}");
    }
}

/// The canonical forms, byte by byte: what is taken, and the nearest things that are not.
#[test]
fn the_canonical_forms_are_exact() {
    let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert!(canonical_traceparent(w3c.as_bytes()));
    assert!(canonical_traceparent(w3c.replace("-01", "-00").as_bytes()));
    for bad in [
        w3c.replacen("00-", "01-", 1),
        w3c.replacen('-', "_", 1),
        w3c.replace("-00f0", "_00f0"),
        w3c.replace("b7-01", "b7_01"),
        w3c.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
        w3c.replace("00f067aa0ba902b7", &"0".repeat(16)),
        w3c.replace("-01", "-0g"),
        w3c[..54].to_owned(),
    ] {
        assert!(!canonical_traceparent(bad.as_bytes()), "{bad}");
    }
    let root = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8";
    assert!(canonical_xray(root.as_bytes()), "without Sampled");
    for sampled in ["0", "1", "?"] {
        assert!(canonical_xray(
            format!("{root};Sampled={sampled}").as_bytes()
        ));
    }
    for bad in [
        root.replace(";Parent=", ";Parenx="),
        root.replace("5759e988-", "5759e988_"),
        root.replace("Root=1-", "Root=2-"),
        root[..root.len() - 1].to_owned(),
        root.replace("5759e988", "5759e98g"),
        root.replace("bd862e3f", "bd862e3g"),
        root.replace("53995c3f", "53995c3g"),
        format!("{root};Sampled=2"),
        format!("{root};Self=1-5759e988-bd862e3fe1be46a994272793"),
    ] {
        assert!(!canonical_xray(bad.as_bytes()), "{bad}");
    }
}

/// X-Ray's `Sampled=?` leaves the decision to this service: the ratio draws, and a call
/// drawn continues the caller's trace.
#[test]
fn an_x_ray_caller_that_defers_is_sampled_at_the_ratio() {
    let deferred = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?";
    let incoming = headers(&[("x-amzn-trace-id", deferred)]);
    let (traced, spans) = with_tracing(1.0, |t| start_with(t, &incoming, "r").traced());
    assert!(traced);
    let call = spans.first().expect("the call's span");
    assert_eq!(
        call.parent_span_id,
        SpanId::from_hex("53995c3f42cd8ad8").unwrap()
    );
    let ((traced, sent), spans) = with_tracing(0.0, |t| {
        let trace = start_with(t, &incoming, "r");
        let sent = trace.upstream("PollForActivityTask").1.into_owned();
        (trace.traced(), sent)
    });
    assert!(!traced);
    assert!(spans.is_empty());
    assert_eq!(sent["x-amzn-trace-id"], deferred);
}

#[test]
fn the_ratio_is_kept_roughly() {
    let traced = (0..20_000).filter(|_| draw(0.25)).count();
    // 5,000 expected; the standard deviation is about 61.
    assert!((4_500..5_500).contains(&traced), "{traced}");
    assert!(!(0..1_000).any(|_| draw(0.0)));
    assert!((0..1_000).all(|_| draw(1.0)));
}

#[test]
fn without_tracing_nothing_is_traced_or_sent() {
    let incoming = headers(&[("traceparent", &traceparent("01"))]);
    let trace = start(&incoming, "r");
    assert!(!trace.traced());
    assert_eq!(trace.trace_id(), None);
    let (span, outgoing) = trace.upstream("ListDomains");
    assert!(span.is_none());
    assert!(outgoing.is_empty());
}

/// A span that is not a traced call's (a dependency's, let through at `debug`) is not
/// exported as a trace of its own.
#[test]
fn only_the_traced_calls_spans_are_exported() {
    let incoming = headers(&[("traceparent", &traceparent("01"))]);
    let (_, spans) = with_tracing(0.0, |t| {
        drop(tracing::info_span!("a_dependency_s_span").entered());
        drop(start_with(t, &incoming, "r"));
    });
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].span_kind, opentelemetry::trace::SpanKind::Server);
}
