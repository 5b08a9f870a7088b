//! Getting spans out: the OpenTelemetry SDK's tracer provider with its batch processor (a
//! thread of its own, a bounded queue that drops rather than waits), exporting OTLP/HTTP
//! protobuf to `<otlp_endpoint>/v1/traces` through the proxy's own HTTP client
//! (`forward::fetch`, rustls with the public roots plus `ca_file`), run on a one-thread tokio
//! runtime of its own so that an export never runs on, or waits for, a worker.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample};
use opentelemetry_sdk::Resource;

use super::Settings;
use crate::forward::fetch::Fetcher;

/// The longest one export may take (connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest collector answer read (an OTLP answer is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The exporter's HTTP client: one URL, its own runtime.
#[derive(Debug)]
struct OtlpClient {
    fetcher: std::sync::Arc<Fetcher>,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let fetcher = self.fetcher.clone();
        // Spawned on the exporter's runtime and awaited from whatever polls this (the batch
        // processor's thread blocks on it).
        let (status, answer) = self
            .runtime
            .spawn(async move { fetcher.post(&parts.headers, body, MAX_ANSWER_BYTES).await })
            .await??;
        let mut response = http::Response::new(answer);
        *response.status_mut() = status;
        Ok(response)
    }
}

/// The tracer provider for `settings`, with the runtime its exports run on.
pub fn provider(settings: &Settings) -> Result<SdkTracerProvider, String> {
    let traces = format!(
        "{}/v1/traces",
        settings.otlp_endpoint.to_string().trim_end_matches('/')
    );
    let url: http::Uri = traces.parse().map_err(|e| format!("`{traces}`: {e}"))?;
    let https = url.scheme_str() == Some("https");
    let roots = match (&settings.ca_file, https) {
        (_, false) => None,
        (Some(path), true) => Some(crate::tls::certificates(path).map_err(|e| e.to_string())?),
        (None, true) => Some(Vec::new()),
    };
    let fetcher = Fetcher::new(&url, roots, EXPORT_TIMEOUT).map_err(|e| e.to_string())?;
    let runtime = exporter_runtime()?;
    let client = OtlpClient {
        fetcher: std::sync::Arc::new(fetcher),
        runtime,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(traces)
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // Whether a call is traced is decided before its span exists (`super::start`).
        .with_sampler(OwnSpans)
        .with_resource(resource)
        .build())
}

/// The sampler: a traced call's span (the only server span: whether the call is traced was
/// decided before it was made) and the spans inside one; nothing else. A dependency's span
/// outside a traced call (one `RUST_LOG=debug` lets through the log filter) is dropped.
#[derive(Debug, Clone)]
pub(super) struct OwnSpans;

impl ShouldSample for OwnSpans {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let inside = parent.is_some_and(|cx| {
            let parent = cx.span().span_context().clone();
            parent.is_valid() && !parent.is_remote() && parent.is_sampled()
        });
        let decision = if *kind == SpanKind::Server || inside {
            SamplingDecision::RecordAndSample
        } else {
            SamplingDecision::Drop
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

/// A one-thread tokio runtime on a thread of its own, for the exports.
fn exporter_runtime() -> Result<tokio::runtime::Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("trace exporter runtime: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("trace-export".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("trace exporter thread: {e}"))?;
    Ok(handle)
}
