"""OpenTelemetry traces end to end (docs/operations.md, "Traces"): boto3 calls carrying a W3C
`traceparent` or an AWS X-Ray `X-Amzn-Trace-Id` go through a proxy exporting to a real OTLP/HTTP
receiver (protobuf decoded with `opentelemetry-proto`), in front of a fake SWF upstream that
records the headers it got. Loopback only."""

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from conftest import ACCOUNT, REGION, TENANTS, binary, free_port, proxy_env, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
XRAY_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
XRAY_PARENT = "53995c3f42cd8ad8"
UPSTREAM_SECRET = "upstream-secret-never-in-a-span"
TOKEN_KEY = "e2e-token-key-0123456789abcdefghijkl"


class Recorder:
    """A loopback HTTP server that keeps what it is sent and answers with `answer(path, body)`."""

    def __init__(self, answer):
        self.requests = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder.lock:
                    recorder.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                content_type, payload = answer(self.path, self.headers, body)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "upstream-request-1")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def taken(self):
        with self.lock:
            return list(self.requests)


UPSTREAM_TOKEN = "upstream-task-token-never-in-a-span"


def swf_answer(path, headers, body):
    if headers.get("X-Amz-Target", "").endswith(".PollForActivityTask"):
        return "application/x-amz-json-1.0", json.dumps({
            "taskToken": UPSTREAM_TOKEN, "activityId": "a", "startedEventId": 1,
            "workflowExecution": {"workflowId": "w", "runId": "r"}, "activityType": {"name": "t", "version": "1"},
        }).encode()
    domain = json.loads(body or b"{}").get("name", "")
    return "application/x-amz-json-1.0", json.dumps({
        "domainInfo": {"name": domain, "status": "REGISTERED"},
        "configuration": {"workflowExecutionRetentionPeriodInDays": "1"},
    }).encode()


def otlp_answer(path, headers, body):
    return "application/x-protobuf", trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """A proxy with `[tracing]` (sample_ratio 0: only callers decide) and its two recorders."""
    folder = tmp_path_factory.mktemp("traced")
    (folder / "policies").mkdir()
    a = TENANTS["a"]
    (folder / "policies" / "a.json").write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "swf:*",
                       "Resource": f"arn:aws:swf:*:{ACCOUNT}:/domain/{a['domain']}"}],
    }))
    upstream, collector = Recorder(swf_answer), Recorder(otlp_answer)
    port, admin = free_port(), free_port()
    (folder / "config.toml").write_text(f"""
[listen]
address = "127.0.0.1:{port}"
[service]
region = "{REGION}"
account_id = "{ACCOUNT}"
[upstream]
endpoint = "{upstream.url}"
access_key_id = "AKIDUPSTREAM"
secret_access_key_env = "E2E_UPSTREAM_SECRET"
[task_tokens]
keys = [{{ id = "e2e", secret_env = "E2E_TOKEN_KEY" }}]
[audit]
path = "audit.log"
[admin]
address = "127.0.0.1:{admin}"
[policies]
dir = "policies"
[tracing]
otlp_endpoint = "{collector.url}"
sample_ratio = 0
[[principal]]
name = "{a['name']}"
access_key_id = "{a['key']}"
secret_access_key_env = "E2E_SECRET_A"
policies = ["a"]
""")
    env = proxy_env()
    env.pop("RUST_LOG")
    env.update(E2E_UPSTREAM_SECRET=UPSTREAM_SECRET, OTEL_BSP_SCHEDULE_DELAY="100")
    log = open(folder / "proxy.log", "w")
    process = subprocess.Popen([binary(), "serve", "--config", str(folder / "config.toml")],
                               env=env, stdout=log, stderr=log)
    state = {"endpoint": f"http://127.0.0.1:{port}", "upstream": upstream, "collector": collector,
             "log": folder / "proxy.log", "process": process}
    try:
        wait_for(f"http://127.0.0.1:{admin}/healthz", process, "swf-warden")
        yield state
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.close()
        upstream.server.shutdown()
        collector.server.shutdown()


def tenant_client(endpoint, header, value):
    """boto3 as tenant A, adding `header: value` to each call before it is signed (as an
    instrumented SDK does)."""
    a = TENANTS["a"]
    swf = boto3.client("swf", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=a["key"],
                       aws_secret_access_key=a["secret"], config=Config(retries={"max_attempts": 1}))

    def add(request, **_):
        request.headers[header] = value

    swf.meta.events.register("before-sign.swf.*", add)
    return swf


def spans_of(collector, trace_id):
    """Every span the collector received, decoded, of `trace_id`."""
    found = []
    for path, headers, body in collector.taken():
        assert path == "/v1/traces"
        assert headers["content-type"] == "application/x-protobuf"
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
            assert service == "swf-warden"
            for scope in resource.scope_spans:
                found += [s for s in scope.spans if s.trace_id.hex() == trace_id]
    return found


def stop(traced):
    """Stops the proxy, which sends what it still holds (bounded: SIGTERM, 30 s)."""
    traced["process"].terminate()
    assert traced["process"].wait(timeout=30) == 0


def attributes(span):
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def test_traced_calls_show_their_whole_path_with_the_right_parents(traced):
    a = TENANTS["a"]
    w3c = tenant_client(traced["endpoint"], "traceparent", f"00-{TRACE}-{CALLER_SPAN}-01")
    w3c.describe_domain(name=a["domain"])
    xray = tenant_client(traced["endpoint"], "X-Amzn-Trace-Id",
                         f"Root={XRAY_ROOT};Parent={XRAY_PARENT};Sampled=1")
    xray.describe_domain(name=a["domain"])
    # Refused: tenant A may not describe B's domain; traced all the same, nothing forwarded.
    denied_trace = "0af7651916cd43dd8448eb211c80319c"
    denied = tenant_client(traced["endpoint"], "traceparent", f"00-{denied_trace}-b7ad6b7169203331-01")
    with pytest.raises(denied.exceptions.OperationNotPermittedFault):
        denied.describe_domain(name=TENANTS["b"]["domain"])
    # Not sampled by the caller, and no context at all (ratio 0): no spans.
    quiet_trace = "11111111111111111111111111111111"
    tenant_client(traced["endpoint"], "traceparent", f"00-{quiet_trace}-2222222222222222-00").describe_domain(
        name=a["domain"])
    tenant_client(traced["endpoint"], "user-agent-extra", "none").describe_domain(name=a["domain"])
    # A traced poll: its upstream span covers reading the answer and sealing its token.
    poll_trace = "5d7e3f0a9b8c4d2e1f0a9b8c7d6e5f4a"
    poll = tenant_client(traced["endpoint"], "traceparent", f"00-{poll_trace}-1a2b3c4d5e6f7a8b-01")
    task = poll.poll_for_activity_task(domain=a["domain"], taskList={"name": "work"})
    assert task["taskToken"] != UPSTREAM_TOKEN, "the caller gets the sealed token"
    stop(traced)

    upstream = traced["upstream"].taken()
    assert len(upstream) == 5, "the refused call was not forwarded"
    w3c_up, xray_up, quiet_up, plain_up, poll_up = (headers for _, headers, _ in upstream)

    # W3C: the call's span continues the caller's trace, its steps hang under it, and the
    # upstream got the upstream span as its parent.
    spans = spans_of(traced["collector"], TRACE)
    by_name = {s.name: s for s in spans}
    call = by_name["SWF DescribeDomain"]
    assert call.parent_span_id.hex() == CALLER_SPAN
    assert call.kind == call.SPAN_KIND_SERVER
    for step in ("authenticate", "authorize", "quotas"):
        assert by_name[step].parent_span_id == call.span_id, step
    client_spans = [s for s in spans if s.kind == s.SPAN_KIND_CLIENT]
    assert len(client_spans) == 1
    upstream_span = client_spans[0]
    assert upstream_span.parent_span_id == call.span_id
    assert w3c_up["traceparent"] == f"00-{TRACE}-{upstream_span.span_id.hex()}-01"
    fields = attributes(call)
    assert fields["principal"] == a["name"]
    assert fields["action"] == "swf:DescribeDomain"
    assert fields["domain"] == a["domain"]
    assert fields["decision"] == "allowed"
    assert fields["http.response.status_code"] == 200
    assert fields["request_id"] == "upstream-request-1"

    # X-Ray: the same, in X-Ray's header.
    xray_spans = spans_of(traced["collector"], XRAY_ROOT[2:].replace("-", ""))
    xray_call = next(s for s in xray_spans if s.kind == s.SPAN_KIND_SERVER)
    assert xray_call.parent_span_id.hex() == XRAY_PARENT
    xray_upstream = next(s for s in xray_spans if s.kind == s.SPAN_KIND_CLIENT)
    assert xray_up["x-amzn-trace-id"] == f"Root={XRAY_ROOT};Parent={xray_upstream.span_id.hex()};Sampled=1"

    # The refusal: its span says so, with the audit write under it and no upstream span.
    refused = spans_of(traced["collector"], denied_trace)
    refused_call = next(s for s in refused if s.kind == s.SPAN_KIND_SERVER)
    assert attributes(refused_call)["decision"] == "implicitDeny"
    assert attributes(refused_call)["http.response.status_code"] == 400
    assert any(s.name == "audit" and s.parent_span_id == refused_call.span_id for s in refused)
    assert not any(s.kind == s.SPAN_KIND_CLIENT for s in refused)

    # Not traced: nothing exported; a caller's decision goes on unchanged.
    assert spans_of(traced["collector"], quiet_trace) == []
    assert quiet_up["traceparent"] == f"00-{quiet_trace}-2222222222222222-00"
    assert "traceparent" not in plain_up and "x-amzn-trace-id" not in plain_up

    poll_spans = spans_of(traced["collector"], poll_trace)
    poll_upstream = next(s for s in poll_spans if s.kind == s.SPAN_KIND_CLIENT)
    assert poll_up["traceparent"] == f"00-{poll_trace}-{poll_upstream.span_id.hex()}-01"
    assert attributes(next(s for s in poll_spans if s.kind == s.SPAN_KIND_SERVER))["decision"] == "allowed"

    # No secret, signature or token in any span; the log lines name the trace.
    exported = b"".join(body for _, _, body in traced["collector"].taken())
    for secret in (a["secret"], UPSTREAM_SECRET, TOKEN_KEY, UPSTREAM_TOKEN, task["taskToken"], "Signature=",
                   "taskToken"):
        assert secret.encode() not in exported, secret
    log = traced["log"].read_text()
    assert f"trace_id={TRACE}" in log
    assert f"trace_id={quiet_trace}" in log
