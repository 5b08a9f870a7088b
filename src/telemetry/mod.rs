//! OpenTelemetry traces (SPEC, "Observability"; `[tracing]`).
//!
//! A traced call is a `tracing` span named `call` with children for authentication,
//! authorization, the quotas, the upstream call and the audit write; `tracing-opentelemetry`
//! turns them into OpenTelemetry spans and [`export`] sends them out. Whether a call is
//! traced is decided here, before any span exists: a caller's context (W3C `traceparent`, or
//! AWS X-Ray's `X-Amzn-Trace-Id`) decides for its call, otherwise a draw against
//! `sample_ratio`. A call that is not traced builds no span; with `[tracing]` absent the whole
//! cost is one branch. The forwarded call carries the context of its upstream span (or, not
//! traced, the caller's context unchanged, so that the decision holds downstream).
//!
//! Spans carry the principal, action, domain, decision and status: never a secret, a token
//! or anything of the body.

mod export;

use std::borrow::Cow;
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::OnceLock;

use http::HeaderMap;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every span made for a trace (the only one the OpenTelemetry layer sees).
pub const TARGET: &str = "swf_warden::trace";

/// The trace flag X-Ray's propagator sets for `Sampled=?` or no `Sampled`: not decided.
const DEFERRED: opentelemetry::trace::TraceFlags = opentelemetry::trace::TraceFlags::new(0x02);

/// `[tracing]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The collector's OTLP/HTTP base URL; spans go to `<otlp_endpoint>/v1/traces`.
    pub otlp_endpoint: http::Uri,
    /// The share of calls traced when the caller's context does not decide, 0 to 1.
    pub sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Trusted besides the public roots, for an `https` collector.
    pub ca_file: Option<PathBuf>,
}

/// What tracing needs while the process runs.
struct Tracing {
    provider: SdkTracerProvider,
    /// Both formats, for the traced call's upstream span.
    propagator: TextMapCompositePropagator,
    w3c: TraceContextPropagator,
    xray: XrayPropagator,
    ratio: f64,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

impl Tracing {
    fn new(provider: SdkTracerProvider, ratio: f64) -> Tracing {
        let propagator = TextMapCompositePropagator::new(vec![
            Box::new(XrayPropagator::default()),
            Box::new(TraceContextPropagator::new()),
        ]);
        Tracing {
            provider,
            propagator,
            w3c: TraceContextPropagator::new(),
            xray: XrayPropagator::default(),
            ratio,
        }
    }

    /// The caller's context and the format it came in: a W3C `traceparent` decides, else an
    /// `X-Amzn-Trace-Id`. Only a header in its strict canonical form (`canonical_*`) is
    /// handed to its propagator: the propagators accept more than they check, and log what
    /// they reject; neither reaches the upstream or the log. A header absent costs a lookup.
    fn extract(&self, headers: &HeaderMap) -> Option<(opentelemetry::Context, Format)> {
        let valid = |cx: opentelemetry::Context| cx.span().span_context().is_valid().then_some(cx);
        if let Some(value) = headers.get("traceparent") {
            if canonical_traceparent(value.as_bytes()) {
                if let Some(cx) = valid(self.w3c.extract(&HeaderExtractor(headers))) {
                    return Some((cx, Format::W3c));
                }
            }
        }
        if let Some(value) = headers.get("x-amzn-trace-id") {
            if canonical_xray(value.as_bytes()) {
                if let Some(cx) = valid(self.xray.extract(&HeaderExtractor(headers))) {
                    return Some((cx, Format::Xray));
                }
            }
        }
        None
    }
}

/// The common case of a caller instrumented with a low sampling ratio: a canonical
/// `traceparent` that says not sampled, without `tracestate`. Nothing is recorded for such a
/// call, so no context is built: the trace id is the header's own, and the header (checked,
/// canonical) goes on as it came. Anything else goes through the propagators.
fn unsampled_traceparent(tracing: &'static Tracing, headers: &HeaderMap) -> Option<Trace> {
    let value = headers.get("traceparent")?;
    let bytes = value.as_bytes();
    let flags = u8::from_str_radix(std::str::from_utf8(bytes.get(53..55)?).ok()?, 16).ok()?;
    if !canonical_traceparent(bytes) || flags & 1 == 1 || headers.contains_key("tracestate") {
        return None;
    }
    let mut passed_on = HeaderMap::with_capacity(1);
    passed_on.insert("traceparent", http::HeaderValue::from_bytes(bytes).ok()?);
    Some(Trace {
        tracing: Some(tracing),
        span: None,
        trace_id: Some(std::str::from_utf8(&bytes[3..35]).ok()?.to_owned()),
        passed_on,
    })
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all zero: the only `traceparent` taken.
fn canonical_traceparent(value: &[u8]) -> bool {
    value.len() == 55
        && value.starts_with(b"00-")
        && value[35] == b'-'
        && value[52] == b'-'
        && lower_hex(&value[3..35])
        && lower_hex(&value[36..52])
        && lower_hex(&value[53..55])
        && value[3..35].iter().any(|&b| b != b'0')
        && value[36..52].iter().any(|&b| b != b'0')
}

/// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>[;Sampled=0|1|?]`, lowercase: the only
/// `X-Amzn-Trace-Id` taken (no other field: the propagator would put them in `tracestate`).
fn canonical_xray(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(b"Root=1-") else {
        return false;
    };
    if rest.len() < 57 || rest[8] != b'-' || &rest[33..41] != b";Parent=" {
        return false;
    }
    let ids = lower_hex(&rest[..8]) && lower_hex(&rest[9..33]) && lower_hex(&rest[41..57]);
    ids && matches!(
        &rest[57..],
        b"" | b";Sampled=0" | b";Sampled=1" | b";Sampled=?"
    )
}

fn lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Starts exporting for `settings` and returns the layer that turns the trace's spans into
/// OpenTelemetry spans (filtered to [`TARGET`] by the caller). Once per process.
pub fn init<S>(settings: &Settings) -> Result<impl tracing_subscriber::Layer<S>, String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let provider = export::provider(settings)?;
    let tracer = provider.tracer("swf-warden");
    let tracing = Tracing::new(provider, settings.sample_ratio);
    TRACING
        .set(tracing)
        .map_err(|_| "tracing is already set up".to_owned())?;
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false))
}

/// The longest the last export may take at shutdown.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends what is queued and stops exporting (at shutdown, within [`SHUTDOWN_WAIT`]).
pub fn shutdown() {
    if let Some(tracing) = TRACING.get() {
        if let Err(e) = tracing.provider.shutdown_with_timeout(SHUTDOWN_WAIT) {
            eprintln!("traces: {e}");
        }
    }
}

/// One call's trace: its span (disabled when not traced), its trace id for log lines, and
/// the caller's context when it decided not to be traced.
#[derive(Default)]
pub struct Trace {
    tracing: Option<&'static Tracing>,
    span: Option<Span>,
    trace_id: Option<String>,
    /// A caller's context that is not sampled: passed on as it came.
    passed_on: HeaderMap,
}

/// Which header a caller's context came in.
#[derive(Clone, Copy)]
enum Format {
    W3c,
    Xray,
}

/// The trace of a call arriving with `headers`: traced or not as its caller's context says,
/// else as the sample ratio draws.
pub fn start(headers: &HeaderMap, request_id: &str) -> Trace {
    let Some(tracing) = TRACING.get() else {
        return Trace::default();
    };
    start_with(tracing, headers, request_id)
}

fn start_with(tracing: &'static Tracing, headers: &HeaderMap, request_id: &str) -> Trace {
    if let Some(trace) = unsampled_traceparent(tracing, headers) {
        return trace;
    }
    let caller = tracing.extract(headers);
    let traced = match &caller {
        // X-Ray's `Sampled=?` (or none): the caller left it to this service.
        Some((cx, _)) if cx.span().span_context().trace_flags() & DEFERRED == DEFERRED => {
            draw(tracing.ratio)
        }
        Some((cx, _)) => cx.span().span_context().is_sampled(),
        None => draw(tracing.ratio),
    };
    // Not traced and no context: nothing to record, nothing to pass on.
    let untraced = |caller: Option<(opentelemetry::Context, Format)>| match caller {
        None => Trace::default(),
        Some((cx, format)) => Trace {
            tracing: Some(tracing),
            span: None,
            trace_id: Some(cx.span().span_context().trace_id().to_string()),
            passed_on: passed_on(headers, &cx, format),
        },
    };
    if !traced {
        return untraced(caller);
    }
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "call",
        otel.name = "SWF",
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "aws-api",
        rpc.service = Empty,
        rpc.method = Empty,
        request_id = %request_id,
        trace_id = Empty,
        principal = Empty,
        action = Empty,
        domain = Empty,
        decision = Empty,
        http.response.status_code = Empty,
    );
    if let Some((cx, _)) = &caller {
        let _ = span.set_parent(cx.clone());
    }
    let built = span.context().span().span_context().clone();
    if !built.is_valid() {
        // No layer took the span (not set up as `init` does): nothing is exported.
        return untraced(caller);
    }
    let trace_id = built.trace_id().to_string();
    span.record("trace_id", trace_id.as_str());
    Trace {
        tracing: Some(tracing),
        span: Some(span),
        trace_id: Some(trace_id),
        passed_on: HeaderMap::new(),
    }
}

/// The headers a caller's context came in, for the upstream: the header itself when it is in
/// its canonical form (checked by `extract`), with W3C's `tracestate` as the propagator read
/// it (its members checked, written again), never bytes the propagator did not check. Copied,
/// so that a held call keeps no part of the caller's request head.
fn passed_on(headers: &HeaderMap, cx: &opentelemetry::Context, format: Format) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(2);
    let name = match format {
        Format::W3c => "traceparent",
        Format::Xray => "x-amzn-trace-id",
    };
    if let Some(value) = headers
        .get(name)
        .and_then(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok())
    {
        out.insert(name, value);
    }
    if let Format::W3c = format {
        let state = cx.span().span_context().trace_state().header();
        if let Ok(value) = http::HeaderValue::from_str(&state) {
            if !state.is_empty() {
                out.insert("tracestate", value);
            }
        }
    }
    out
}

/// True with probability `ratio` (a per-thread xorshift generator seeded from the OS: no
/// system call per draw).
fn draw(ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    let x = STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    });
    // The top 53 bits as a fraction in [0, 1).
    ((x >> 11) as f64 / (1u64 << 53) as f64) < ratio
}

impl Trace {
    /// Whether this call is traced (its spans exported).
    pub fn traced(&self) -> bool {
        self.span.is_some()
    }

    /// The trace id for log lines, when the call has a trace (traced, or its caller's).
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// The call's span; disabled when the call is not traced.
    pub fn span(&self) -> Span {
        self.span.clone().unwrap_or_else(Span::none)
    }

    /// A child span of the call named `name` (`authenticate`, `authorize`, `quotas`,
    /// `audit`); disabled when the call is not traced.
    pub fn child(&self, name: &'static str) -> Span {
        match &self.span {
            Some(call) => {
                tracing::info_span!(target: TARGET, parent: call, "step", otel.name = name)
            }
            None => Span::none(),
        }
    }

    /// The upstream call's span (a client span) and the headers the forwarded call carries:
    /// its context, or the caller's as it came when the call is not traced.
    pub fn upstream(&self, operation: &str) -> (Span, Cow<'_, HeaderMap>) {
        let Some(tracing) = self.tracing else {
            return (Span::none(), Cow::Borrowed(&self.passed_on));
        };
        match &self.span {
            Some(call) => {
                let span = tracing::info_span!(
                    target: TARGET,
                    parent: call,
                    "upstream",
                    otel.name = format!("SWF {operation}"),
                    otel.kind = "client",
                    rpc.system = "aws-api",
                    rpc.service = "SWF",
                    rpc.method = operation,
                    http.response.status_code = Empty,
                );
                let cx = span.context();
                let mut headers = HeaderMap::new();
                tracing
                    .propagator
                    .inject_context(&cx, &mut HeaderInjector(&mut headers));
                (span, Cow::Owned(headers))
            }
            None => (Span::none(), Cow::Borrowed(&self.passed_on)),
        }
    }

    /// Records on the call's span what the call was and how it ended.
    pub fn finish(&self, outcome: Ended<'_>) {
        let Some(span) = &self.span else {
            return;
        };
        // The span was built when the call began (for its trace id): renamed in place.
        let name = match outcome.operation {
            Some(operation) => {
                span.record("rpc.method", operation);
                format!("{} {operation}", outcome.service)
            }
            None => outcome.service.to_owned(),
        };
        span.context().span().update_name(name);
        span.record("rpc.service", outcome.service);
        for (field, value) in [
            ("principal", outcome.principal),
            ("action", outcome.action),
            ("domain", outcome.domain),
        ] {
            if let Some(value) = value {
                span.record(field, value);
            }
        }
        span.record("request_id", outcome.request_id);
        span.record("decision", outcome.decision);
        span.record("http.response.status_code", i64::from(outcome.status));
        if outcome.status >= 500 {
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// How a traced call ended, for [`Trace::finish`].
pub struct Ended<'a> {
    /// The upstream's, once it answered.
    pub request_id: &'a str,
    pub operation: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub action: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub decision: &'a str,
    pub status: u16,
    /// `SWF`, or `STS` for a call to the proxy's STS.
    pub service: &'a str,
}

#[cfg(test)]
mod tests;
