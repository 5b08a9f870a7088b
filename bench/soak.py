#!/usr/bin/env python3
"""A soak with faults (issue 29): tenants work through two swf-warden replicas while a seeded
fault schedule kills, restarts and starves every part; invariants are checked from the outside
afterwards. Jepsen's shape: a workload, a fault schedule, a checker. Loopback only.

Parts, all started here: two replicas of the binary (`SOAK_BIN`, default target/debug/swf-warden)
sharing token keys, policies and a Redis quota store; a recording fake SWF upstream that echoes
each call's nonce; an HTTPS JWKS endpoint for the STS provider; redis-server.

Workload (threads): static tenants `a` and `b` and an STS tenant `c` (a role session for an
OIDC token) send, to either replica, activity and decision polls (the fake upstream holds them a
little and hands out task tokens), heartbeats with the sealed tokens, decisions
(`RespondDecisionTaskCompleted` scheduling an activity), `CountPendingActivityTasks` under a
quota (Redis-shared rate; now and then in bursts that it throttles),
`RespondActivityTaskCompleted` whose permission every reload flips, and calls that must be
refused (another tenant's domain). Every call carries a nonce in a free-form field (details,
identity, task list name, result, execution context) that the upstream records and echoes.

Faults (seeded, printed, replayable with --seed): kill -9 of a replica and its restart; reloads
every few seconds flipping a policy and a quota's rate; Redis stopped, frozen (SIGSTOP) and
restarted; the upstream stopped, slowed, answering 5xx and resetting connections; the audit
file's disk full (RLIMIT_FSIZE set on the running replica with prlimit); a client's clock
skewed; JWKS unavailable.

Invariants (the run fails, exit 1, when one is broken):
- every refusal a client saw has exactly one audit record (by request id), and each replica's
  audit log verifies (`swf-warden audit verify`) with torn lines only from kills;
- the upstream never received a call the policies in force denied: each distinct (principal,
  action, domain, policy version) is re-decided with `swf-warden explain` on a snapshot of
  that version's configuration;
- every call got exactly one answer, and a 200 the echo of its own nonce, or a connection error
  while its replica was down;
- each replica's descriptors and memory return to their baseline once the faults stop;
- no principal's quota admitted more than burst + rate × W + N × L calls in any W = 1 s window
  (N replicas each counting alone, N × (burst + rate × W), where Redis was down).

--break audit removes one refusal's audit record before checking (the checker must fail).

Usage: python3 bench/soak.py [--seconds 60] [--seed 1] [--break audit]
(with botocore importable: tests/e2e/run.sh's virtualenv has it)
"""

import argparse
import base64
import collections
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCOUNT, REGION = "123456789012", "us-east-1"
ISSUER = "https://cluster.soak"
TOKEN_KEY = "soak-token-key-0123456789abcdefghijkl"
SESSION_KEY = "soak-session-key-0123456789abcdefghij"
UPSTREAM_SECRET = "soak-upstream-secret"
TENANTS = {
    "a": {"key": "AKIASOAKTENANTA00001", "secret": "soak-secret-a", "domain": "soak-a"},
    "b": {"key": "AKIASOAKTENANTB00001", "secret": "soak-secret-b", "domain": "soak-b"},
}
STS_DOMAIN = "soak-c"
QUOTA_BURST = 5
QUOTA_RATES = (5, 10)
REPLICAS = 2
FAULTS = ["kill9", "redis-stop", "redis-freeze", "upstream-down", "upstream-slow", "upstream-5xx",
          "upstream-reset", "disk-full", "skew", "jwks-down"]


def log(message):
    print(f"[{time.monotonic() - START:7.2f}] {message}", flush=True)


START = time.monotonic()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------- the fake SWF upstream

class Upstream:
    """Records every call (its nonce, operation, time) and answers it, as `mode` says: ok,
    slow (2 s late), 5xx, reset (the connection closed without an answer) or down (not
    listening)."""

    def __init__(self):
        self.port = free_port()
        self.mode = "ok"
        self.received = []  # (monotonic time, operation, nonce)
        self.lock = threading.Lock()
        self.server = None
        self.start()

    def start(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                op = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    data = {}
                nonce = nonce_of(op, data)
                with upstream.lock:
                    upstream.received.append((time.monotonic(), op, nonce))
                mode = upstream.mode
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    return
                if mode == "slow":
                    time.sleep(2)
                if mode == "5xx":
                    self.answer(500, {"__type": "com.amazon.coral.service#InternalFailure", "echo": nonce})
                    return
                if op == "PollForActivityTask":
                    time.sleep(random.random() * 0.2)
                    self.answer(200, {"taskToken": f"up-{nonce}", "activityId": "act", "startedEventId": 1,
                                      "workflowExecution": {"workflowId": "w", "runId": "r"},
                                      "activityType": {"name": "t", "version": "1"}, "echo": nonce})
                elif op == "PollForDecisionTask":
                    time.sleep(random.random() * 0.2)
                    self.answer(200, {"taskToken": f"upd-{nonce}", "startedEventId": 3, "previousStartedEventId": 0,
                                      "workflowExecution": {"workflowId": "w", "runId": "r"},
                                      "workflowType": {"name": "flow", "version": "1"}, "events": [], "echo": nonce})
                elif op == "CountPendingActivityTasks":
                    self.answer(200, {"count": 0, "truncated": False, "echo": nonce})
                elif op == "RecordActivityTaskHeartbeat":
                    self.answer(200, {"cancelRequested": False, "echo": nonce})
                else:
                    self.answer(200, {"echo": nonce})

            def answer(self, status, value):
                payload = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", f"up-{random.getrandbits(64):016x}")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the proxy closing a connection it gave up on (slow mode) is no news

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def nonce_of(op, data):
    """The nonce a call carries in its free-form field."""
    if op == "RecordActivityTaskHeartbeat":
        return data.get("details")
    if op == "PollForActivityTask":
        return data.get("identity")
    if op == "CountPendingActivityTasks":
        return data.get("taskList", {}).get("name")
    if op == "RespondActivityTaskCompleted":
        return data.get("result")
    if op == "PollForDecisionTask":
        return data.get("identity")
    if op == "RespondDecisionTaskCompleted":
        return data.get("executionContext")
    return None


# ---------------------------------------------------------------- the JWKS endpoint (HTTPS)

class Jwks:
    """The identity provider's key set over HTTPS (a CA made here), or 503 when `down`."""

    def __init__(self, work):
        self.down = False
        self.port = free_port()
        openssl = lambda *a: subprocess.run(["openssl", *a], cwd=work, check=True, capture_output=True)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=soak CA",
                "-keyout", "ca.key", "-out", "ca.pem")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "jwks.key",
                "-out", "jwks.csr")
        with open(os.path.join(work, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", "jwks.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", "jwks.pem")
        jwk = json.load(open(os.path.join(ROOT, "tests/fixtures/oidc/rsa-2048.jwk.json")))
        body = json.dumps({"keys": [jwk]}).encode()
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, payload = (503, b"down") if jwks.down else (200, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(work, "jwks.pem"), os.path.join(work, "jwks.key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()


def web_identity_token(namespace):
    """A service-account token for `namespace`, RS256 with the test provider's key."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": ["swf-warden"], "sub": f"system:serviceaccount:{namespace}:worker",
              "iat": now, "nbf": now, "exp": now + 3600, "kubernetes.io": {"namespace": namespace}}
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}).encode()) + "." + b64(
        json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign",
                                os.path.join(ROOT, "tests/fixtures/oidc/rsa-2048.pem")],
                               input=signing_input.encode(), capture_output=True, check=True, timeout=30).stdout
    return signing_input + "." + b64(signature)


# ---------------------------------------------------------------- configuration and policies

def policy(effect, action, domain):
    return (f'Version = "2012-10-17"\n[[Statement]]\nEffect = "{effect}"\nAction = {json.dumps(action)}\n'
            f'Resource = "arn:aws:swf:*:{ACCOUNT}:/domain/{domain}"\n')


BASE_ACTIONS = ["swf:PollForActivityTask", "swf:RecordActivityTaskHeartbeat", "swf:CountPendingActivityTasks",
                "swf:PollForDecisionTask", "swf:RespondDecisionTaskCompleted", "swf:ScheduleActivityTask"]


class Setup:
    """The files both replicas read; `version(v)` writes policy version `v` (the flipped
    permission and the quota's rate) and keeps a snapshot of it for the checker."""

    def __init__(self, work, upstream, jwks, redis_port):
        self.work = work
        self.ports = [(free_port(), free_port()) for _ in range(REPLICAS)]
        os.makedirs(os.path.join(work, "policies"))
        for name, t in TENANTS.items():
            self.write(f"policies/tenant-{name}.toml", policy("Allow", BASE_ACTIONS, t["domain"]))
        self.write("policies/namespace.toml", policy("Allow", BASE_ACTIONS, "${aws:PrincipalTag/namespace}"))
        subprocess.run([BIN, "audit", "keygen", "--out", os.path.join(work, "keys"), "--id", "soak"], check=True,
                       capture_output=True, timeout=30)
        self.upstream, self.jwks, self.redis_port = upstream, jwks, redis_port
        self.versions = {}
        self.digests = {}  # version → digest of its policies (what a decision depends on)
        self.version(0)

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    def config(self, i, v):
        port, admin = self.ports[i]
        principals = "".join(
            f'\n[[principal]]\nname = "tenant-{n}"\naccess_key_id = "{t["key"]}"\n'
            f'secret_access_key_env = "SOAK_SECRET_{n.upper()}"\ngroups = ["tenants"]\npolicies = ["tenant-{n}"]\n'
            for n, t in TENANTS.items())
        return f"""
[listen]
address = "127.0.0.1:{port}"
[service]
region = "{REGION}"
account_id = "{ACCOUNT}"
[upstream]
endpoint = "http://127.0.0.1:{self.upstream.port}"
access_key_id = "AKIDUPSTREAM"
secret_access_key_env = "SOAK_UPSTREAM_SECRET"
timeout_seconds = 5
[task_tokens]
keys = [{{ id = "soak", secret_env = "SOAK_TOKEN_KEY" }}]
[audit]
path = "audit-{i}.log"
signing_key_file = "keys/soak.key"
key_id = "soak"
checkpoint_every = 100
unauthenticated_per_second = 100000
[admin]
address = "127.0.0.1:{admin}"
[policies]
dir = "policies"
[log]
level = "warn"
[[group]]
name = "tenants"
policies = ["flipped"]
{principals}
[[quota]]
name = "counting"
actions = ["swf:CountPendingActivityTasks"]
groups = ["tenants"]
per = "principal"
rate_per_second = {QUOTA_RATES[v % 2]}
burst = {QUOTA_BURST}
[quota_store]
backend = "redis"
url_env = "SOAK_REDIS_URL"
timeout_ms = 100
[sts]
session_keys = [{{ id = "soak", secret_env = "SOAK_SESSION_KEY" }}]
[[oidc_provider]]
name = "cluster"
issuer = "{ISSUER}"
audiences = ["swf-warden"]
jwks_url = "https://127.0.0.1:{self.jwks.port}/jwks"
ca_file = "ca.pem"
[[role]]
name = "worker"
provider = "cluster"
subjects = ["system:serviceaccount:*:worker"]
session_tags = {{ namespace = "kubernetes.io.namespace" }}
groups = ["tenants"]
policies = ["namespace"]
"""

    def version(self, v):
        """Writes version `v`: RespondActivityTaskCompleted allowed (even) or denied (odd) on
        every soak domain, the quota at QUOTA_RATES[v % 2]. Replicas reload on the change."""
        flipped = policy("Allow" if v % 2 == 0 else "Deny", "swf:RespondActivityTaskCompleted", "soak-*")
        snapshot = os.path.join(self.work, f"v{v}")
        os.makedirs(os.path.join(snapshot, "policies"))
        for name in os.listdir(os.path.join(self.work, "policies")):
            shutil.copy(os.path.join(self.work, "policies", name), os.path.join(snapshot, "policies"))
        with open(os.path.join(snapshot, "policies", "flipped.toml"), "w") as f:
            f.write(flipped)
        digest = hashlib.sha256()
        for name in sorted(os.listdir(os.path.join(snapshot, "policies"))):
            digest.update(name.encode() + b"\0" + open(os.path.join(snapshot, "policies", name), "rb").read())
        self.digests[v] = digest.hexdigest()
        for name in ("keys", "ca.pem"):
            src = os.path.join(self.work, name)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(snapshot, name))
        with open(os.path.join(snapshot, "config.toml"), "w") as f:
            f.write(self.config(0, v))
        self.write("policies/flipped.toml", flipped)
        for i in range(REPLICAS):
            self.write(f"config-{i}.toml", self.config(i, v))
        self.versions[v] = snapshot


def proxy_env(redis_port):
    env = dict(os.environ, SOAK_TOKEN_KEY=TOKEN_KEY, SOAK_SESSION_KEY=SESSION_KEY,
               SOAK_UPSTREAM_SECRET=UPSTREAM_SECRET, SOAK_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    env.pop("RUST_LOG", None)
    for n, t in TENANTS.items():
        env[f"SOAK_SECRET_{n.upper()}"] = t["secret"]
    return env


class Replica:
    """One swf-warden process, restartable; `down` spans are recorded for the checker."""

    def __init__(self, i, setup):
        self.i, self.setup = i, setup
        self.port, self.admin = setup.ports[i]
        self.process = None
        self.down_spans = []  # (from, to) monotonic
        self.baseline = None
        self.start()

    def start(self):
        # Signals are the proxy's once its ports are bound (it installs its handlers first);
        # a SIGHUP before that ends it, as it would any process: reloads wait for `ready`.
        self.ready = False
        errors = open(os.path.join(self.setup.work, f"replica-{self.i}.err"), "a")
        self.process = subprocess.Popen([BIN, "serve", "--config", os.path.join(self.setup.work, f"config-{self.i}.toml")],
                                        cwd=self.setup.work, env=proxy_env(self.setup.redis_port),
                                        stdout=errors, stderr=errors)
        if not wait_port(self.admin):
            state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
            raise SystemExit(f"replica {self.i} did not start within 30 s ({state}; see replica-{self.i}.err)")
        self.ready = True

    def kill9(self):
        self.ready = False
        self.process.kill()
        self.process.wait()
        return time.monotonic()

    def resources(self):
        """(descriptors, resident KiB) now."""
        pid = self.process.pid
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
        return fds, rss

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=60)
        return self.process.returncode


# ---------------------------------------------------------------- clients

class Skewed(SigV4Auth):
    """SigV4 with the client's clock `skew` seconds off (botocore's add_auth otherwise)."""

    def __init__(self, credentials, skew):
        super().__init__(credentials, "swf", REGION)
        self.skew = skew

    def add_auth(self, request):
        moment = time.gmtime(time.time() + self.skew)
        request.context["timestamp"] = time.strftime("%Y%m%dT%H%M%SZ", moment)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


Call = collections.namedtuple("Call", "nonce tenant principal op domain kind replica sent answered status code "
                                      "request_id echo_ok conn_error version_sent")


def send(port, headers, body, timeout=75):
    """(status, headers, body) of one POST on a new connection, or raises OSError."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


class Tenant:
    """A tenant's credentials: a static key, or an STS session renewed through a replica."""

    def __init__(self, name, key=None, secret=None, domain=None):
        self.name, self.domain = name, domain
        self.credentials = Credentials(key, secret) if key else None
        self.principal = f"tenant-{name}" if key else None
        self.tokens = collections.deque(maxlen=8)  # sealed activity task tokens from polls
        self.decision_tokens = collections.deque(maxlen=8)  # sealed decision task tokens

    def sign(self, port, op, body, skew):
        request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body, headers={
            "X-Amz-Target": f"SimpleWorkflowService.{op}", "Content-Type": "application/x-amz-json-1.0"})
        Skewed(self.credentials, skew).add_auth(request)
        return dict(request.headers.items())


def assume_role(port, namespace):
    """(Credentials, principal name) of a session for `namespace`'s token, or raises."""
    form = ("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
            f"{ACCOUNT}%3Arole%2Fworker&RoleSessionName={namespace}&WebIdentityToken={web_identity_token(namespace)}")
    status, headers, body = send(port, {"Content-Type": "application/x-www-form-urlencoded"}, form.encode(), 10)
    text = body.decode(errors="replace")
    if status != 200:
        raise RuntimeError(f"AssumeRoleWithWebIdentity: {status} {text[:200]}")
    field = lambda name: re.search(f"<{name}>([^<]*)</{name}>", text).group(1)
    return Credentials(field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken")), status, headers


# ---------------------------------------------------------------- the run

class Soak:
    def __init__(self, seconds, seed, work, kinds):
        self.seconds, self.seed, self.work, self.kinds = seconds, seed, work, kinds
        self.rng = random.Random(seed)
        self.calls = []
        self.calls_lock = threading.Lock()
        self.stop = threading.Event()
        self.skew = {}  # tenant → seconds, while a skew fault runs
        self.version = 0
        self.version_spans = [(0, time.monotonic(), None)]  # (version, from, to)
        self.version_lock = threading.Lock()
        self.redis_spans = []  # when Redis could not answer
        self.faults = collections.Counter()
        self.samples = []  # (fault, replica, baseline, (descriptors, resident KiB) after it)
        self.redis_port = free_port()
        self.redis = None
        self.start_redis()
        self.upstream = Upstream()
        self.jwks = Jwks(work)
        self.setup = Setup(work, self.upstream, self.jwks, self.redis_port)
        self.replicas = [Replica(i, self.setup) for i in range(REPLICAS)]
        self.tenants = [Tenant(n, t["key"], t["secret"], t["domain"]) for n, t in TENANTS.items()]
        self.tenants.append(Tenant("c", domain=STS_DOMAIN))

    def start_redis(self):
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        if not wait_port(self.redis_port):
            raise SystemExit("redis-server did not start")

    # -------------------------------------------------------- workload

    def record(self, **fields):
        with self.calls_lock:
            self.calls.append(Call(**fields))

    def call(self, tenant, replica, op, body, kind, nonce, domain):
        """One call through `replica`, recorded whatever happens."""
        skew = self.skew.get(tenant.name, 0)
        payload = json.dumps(body).encode()
        sent, version = time.monotonic(), self.version
        status, headers, answer, conn_error = None, {}, b"", None
        try:
            status, headers, answer = send(replica.port, tenant.sign(replica.port, op, payload, skew), payload)
        except (OSError, http.client.HTTPException) as e:  # a kill mid-answer: no status line, or a cut body
            conn_error = repr(e)
        code, echo_ok = None, None
        if status is not None:
            try:
                value = json.loads(answer or b"{}")
            except ValueError:
                value = {}
            code = value.get("__type", "").rpartition("#")[2] or None
            echo_ok = value.get("echo") == nonce if status == 200 else None
            if status == 200 and value.get("taskToken"):
                (tenant.tokens if op == "PollForActivityTask" else tenant.decision_tokens).append(value["taskToken"])
        self.record(nonce=nonce, tenant=tenant.name, principal=tenant.principal, op=op, domain=domain, kind=kind,
                    replica=replica.i, sent=sent, answered=time.monotonic(), status=status, code=code,
                    request_id=headers.get("x-amzn-requestid"), echo_ok=echo_ok, conn_error=conn_error,
                    version_sent=version)
        return status

    def renew_session(self, tenant, rng):
        replica = rng.choice(self.replicas)
        sent = time.monotonic()
        try:
            credentials, status, headers = assume_role(replica.port, STS_DOMAIN)
            tenant.credentials, tenant.principal = credentials, f"worker/{STS_DOMAIN}"
            tenant.tokens.clear()
            tenant.decision_tokens.clear()
        except (OSError, http.client.HTTPException, RuntimeError, AttributeError) as e:
            self.record(nonce=None, tenant=tenant.name, principal=None, op="AssumeRoleWithWebIdentity",
                        domain=None, kind="sts", replica=replica.i, sent=sent, answered=time.monotonic(),
                        status=None, code=str(e)[:80], request_id=None, echo_ok=None, conn_error=repr(e),
                        version_sent=self.version)

    def worker(self, tenant, index):
        rng = random.Random(f"{self.seed}-{tenant.name}-{index}")
        other = [t.domain for t in self.tenants if t.domain != tenant.domain]
        renewed = 0
        n = 0
        while not self.stop.is_set():
            if tenant.credentials is None or (tenant.name == "c" and time.monotonic() - renewed > 15):
                self.renew_session(tenant, rng)
                renewed = time.monotonic()
                if tenant.credentials is None:
                    time.sleep(0.2)
                    continue
            n += 1
            nonce = f"{tenant.name}{index}-{n}-{rng.getrandbits(32):08x}"
            replica = rng.choice(self.replicas)
            roll = rng.random()
            domain = tenant.domain
            if roll < 0.12 or not tenant.tokens:
                self.call(tenant, replica, "PollForActivityTask",
                          {"domain": domain, "taskList": {"name": "work"}, "identity": nonce},
                          "allowed", nonce, domain)
            elif roll < 0.42:
                self.call(tenant, replica, "RecordActivityTaskHeartbeat",
                          {"taskToken": rng.choice(list(tenant.tokens)), "details": nonce}, "allowed", nonce, domain)
            elif roll < 0.50 or (roll < 0.58 and not tenant.decision_tokens):
                self.call(tenant, replica, "PollForDecisionTask",
                          {"domain": domain, "taskList": {"name": "deciders"}, "identity": nonce},
                          "allowed", nonce, domain)
            elif roll < 0.58:
                self.call(tenant, replica, "RespondDecisionTaskCompleted", {
                    "taskToken": rng.choice(list(tenant.decision_tokens)), "executionContext": nonce,
                    "decisions": [{"decisionType": "ScheduleActivityTask", "scheduleActivityTaskDecisionAttributes": {
                        "activityType": {"name": "t", "version": "1"}, "activityId": nonce[-8:],
                        "taskList": {"name": "work"}}}]}, "allowed", nonce, domain)
            elif roll < 0.73:
                # Now and then a burst, which the quota throttles.
                for k in range(8 if rng.random() < 0.1 else 1):
                    burst = f"{nonce}-{k}"
                    self.call(tenant, replica, "CountPendingActivityTasks",
                              {"domain": domain, "taskList": {"name": burst}}, "quota", burst, domain)
            elif roll < 0.85:
                self.call(tenant, replica, "RespondActivityTaskCompleted",
                          {"taskToken": rng.choice(list(tenant.tokens)), "result": nonce}, "flipped", nonce, domain)
            else:
                target = rng.choice(other)
                self.call(tenant, replica, "PollForActivityTask",
                          {"domain": target, "taskList": {"name": "work"}, "identity": nonce},
                          "refused", nonce, target)
            time.sleep(rng.random() * 0.01)

    # -------------------------------------------------------- faults

    def schedule(self):
        """The seeded fault schedule: (start offset, kind, duration, target)."""
        plan, t = [], 3.0
        kinds = list(self.kinds)
        while t < self.seconds - 6:
            if not kinds:
                kinds = list(self.kinds)
                self.rng.shuffle(kinds)
            kind = kinds.pop()
            plan.append((round(t, 2), kind, round(self.rng.uniform(0.5, 2.0), 2), self.rng.randrange(REPLICAS)))
            t += self.rng.uniform(1.5, 3.0)
        return plan

    def inject(self, kind, duration, target):
        self.faults[kind] += 1
        replica = self.replicas[target]
        if kind == "kill9":
            down = replica.kill9()
            time.sleep(duration)
            replica.baseline = None
            replica.start()
            restarted = time.monotonic()
            replica.down_spans.append((down, restarted))
            # The files may have changed while it was starting (a reload it missed): it is told
            # now, and until that reload is done the versions that ended meanwhile stay possible.
            replica.process.send_signal(signal.SIGHUP)
            with self.version_lock:
                self.version_spans = [(v, b, max(t, restarted + 2) if t is not None and t >= down else t)
                                      for v, b, t in self.version_spans]
            self.settle_baseline(replica)
        elif kind == "redis-stop":
            began = time.monotonic()
            self.redis.kill()
            self.redis.wait()
            time.sleep(duration)
            self.start_redis()
            self.redis_spans.append((began, time.monotonic() + 1))
        elif kind == "redis-freeze":
            began = time.monotonic()
            self.redis.send_signal(signal.SIGSTOP)
            time.sleep(duration)
            self.redis.send_signal(signal.SIGCONT)
            self.redis_spans.append((began, time.monotonic() + 1))
        elif kind == "upstream-down":
            self.upstream.stop()
            time.sleep(duration)
            self.upstream.start()
        elif kind.startswith("upstream-"):
            self.upstream.mode = kind.split("-", 1)[1]
            time.sleep(duration)
            self.upstream.mode = "ok"
        elif kind == "disk-full":
            pid = replica.process.pid
            size = os.path.getsize(os.path.join(self.work, f"audit-{target}.log"))
            # The soft limit only: lifting it again needs no privilege.
            subprocess.run(["prlimit", f"--pid={pid}", f"--fsize={size}:unlimited"], check=True)
            time.sleep(duration)
            if replica.process.poll() is None:
                subprocess.run(["prlimit", f"--pid={pid}", "--fsize=unlimited:unlimited"], check=True)
        elif kind == "skew":
            tenant = self.tenants[target % len(TENANTS)].name
            self.skew[tenant] = 1800
            time.sleep(duration)
            self.skew.pop(tenant, None)
        elif kind == "jwks-down":
            self.jwks.down = True
            time.sleep(duration)
            self.jwks.down = False

    def reloader(self):
        """A new policy version every 2 to 4 s (the flipped permission, the quota's rate)."""
        rng = random.Random(f"{self.seed}-reload")
        while not self.stop.wait(rng.uniform(2, 4)):
            began = time.monotonic()
            self.version += 1
            self.setup.version(self.version)
            for r in self.replicas:
                if r.ready and r.process.poll() is None:
                    r.process.send_signal(signal.SIGHUP)
            # Until each replica has reloaded, either version may be in force.
            with self.version_lock:
                last = self.version_spans[-1]
                self.version_spans[-1] = (last[0], last[1], time.monotonic() + 2)
                self.version_spans.append((self.version, began, None))
            self.faults["reload"] += 1

    def run(self):
        plan = self.schedule()
        log(f"seed {self.seed}: {len(plan)} faults over {self.seconds:.0f} s")
        for offset, kind, duration, target in plan:
            log(f"  at {offset:6.2f} s: {kind} for {duration} s (replica/tenant {target})")
        time.sleep(1)
        for r in self.replicas:
            r.baseline = r.resources()
        threads = [threading.Thread(target=self.worker, args=(t, k), daemon=True)
                   for t in self.tenants for k in range(2)]
        threads.append(threading.Thread(target=self.reloader, daemon=True))
        began = time.monotonic()
        for thread in threads:
            thread.start()
        previous = None
        for offset, kind, duration, target in plan:
            delay = began + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if previous:
                self.sample(previous)
            log(f"fault {kind} ({duration} s, {target})")
            self.inject(kind, duration, target)
            previous = kind
        if previous:
            time.sleep(1)
            self.sample(previous)
        remaining = began + self.seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=90)
        self.version_spans[-1] = (self.version_spans[-1][0], self.version_spans[-1][1], time.monotonic())

    def sample(self, after):
        """Each replica's descriptors and memory once the fault `after` is over (before the next
        one), for the checker."""
        for r in self.replicas:
            if r.process.poll() is None and r.baseline is not None:
                self.samples.append((after, r.i, r.baseline, r.resources()))

    def settle_baseline(self, replica):
        """A restarted replica's baseline, taken once it has served a while."""
        def take():
            if replica.process.poll() is None:
                replica.baseline = replica.resources()
        threading.Timer(2.5, take).start()


# ---------------------------------------------------------------- the checker

REFUSALS = {"OperationNotPermittedFault", "ThrottlingException", "LimitExceededFault", "InvalidSignatureException",
            "IncompleteSignatureException", "MissingAuthenticationTokenException", "UnrecognizedClientException",
            "SerializationException", "ValidationException", "UnknownOperationException"}


class Checker:
    def __init__(self, soak, broken):
        self.soak, self.broken = soak, broken
        self.violations = []
        self.decisions = {}

    def fail(self, message):
        if len(self.violations) < 50:
            print(f"VIOLATION: {message}", flush=True)
        self.violations.append(message)

    def audit_records(self):
        records = collections.Counter()
        for i in range(REPLICAS):
            with open(os.path.join(self.soak.work, f"audit-{i}.log"), errors="replace") as f:
                for line in f:
                    try:
                        value = json.loads(line)
                    except ValueError:
                        continue  # a torn line (the verifier judges it)
                    if value.get("requestId"):
                        records[value["requestId"]] += 1
        return records

    def refusals_on_record(self):
        records = self.audit_records()
        refusals = [c for c in self.soak.calls if c.status and c.status != 200 and c.code in REFUSALS]
        if self.broken == "audit" and refusals:
            del records[refusals[len(refusals) // 2].request_id]  # as if one write had been skipped
        for c in refusals:
            if records.get(c.request_id, 0) != 1:
                self.fail(f"refusal {c.code} of {c.op} by {c.tenant} (request {c.request_id}) has "
                          f"{records.get(c.request_id, 0)} audit records")
        return len(refusals), sum(records.values())

    def audit_verifies(self):
        for i, replica in enumerate(self.soak.replicas):
            kills = sum(1 for _ in replica.down_spans)
            done = subprocess.run([BIN, "audit", "verify", "--public-key",
                                   f"soak={os.path.join(self.soak.work, 'keys', 'soak.pub')}", "--json",
                                   os.path.join(self.soak.work, f"audit-{i}.log")],
                                  capture_output=True, text=True, timeout=300)
            try:
                report = json.loads(done.stdout)
            except ValueError:
                self.fail(f"audit verify of replica {i}: {done.stdout[-300:]} {done.stderr[-300:]}")
                continue
            if done.returncode != 0 or not report.get("intact"):
                self.fail(f"audit log of replica {i} does not verify: {json.dumps(report.get('failure'))}")
            torn = len(report.get("torn", []))
            if torn > kills:
                self.fail(f"audit log of replica {i}: {torn} torn lines for {kills} kills")
            log(f"audit log {i}: {report.get('lines')} lines, {report.get('checkpoints')} checkpoints, "
                f"{torn} torn (kills: {kills}), intact: {report.get('intact')}")

    def decide(self, call, version):
        """Whether `version`'s policies allow `call`, by `swf-warden explain` (cached by the
        policies' content: versions differ only in what the reloads flip)."""
        key = (call.tenant, call.op, call.domain, self.soak.setup.digests[version])
        if key not in self.decisions:
            who = (["--role", "worker", "--tag", f"namespace={STS_DOMAIN}"] if call.tenant == "c"
                   else ["--principal", f"tenant-{call.tenant}"])
            done = subprocess.run([BIN, "explain", "--config",
                                   os.path.join(self.soak.setup.versions[version], "config.toml"), *who,
                                   "--action", f"swf:{call.op}", "--domain", call.domain],
                                  capture_output=True, text=True, timeout=60, env=proxy_env(self.soak.redis_port))
            decision = re.search(r"^decision: (\w+)", done.stdout, re.M)
            if decision is None:
                raise SystemExit(f"explain failed: {done.stdout[-300:]} {done.stderr[-300:]}")
            self.decisions[key] = decision.group(1) == "allowed"
        return self.decisions[key]

    def versions_between(self, start, end):
        return [v for v, began, to in self.soak.version_spans if began <= end and (to is None or to >= start)]

    def forwarded_only_when_allowed(self):
        by_nonce = {c.nonce: c for c in self.soak.calls if c.nonce}
        for at, op, nonce in self.soak.upstream.received:
            call = by_nonce.get(nonce)
            if call is None:
                self.fail(f"the upstream received {op} with nonce {nonce!r} nobody sent")
                continue
            versions = self.versions_between(call.sent, at)
            if not any(self.decide(call, v) for v in versions):
                self.fail(f"the upstream received {op} of {call.tenant} on {call.domain} ({call.kind}), which "
                          f"versions {versions} deny")

    def answers(self):
        for c in self.soak.calls:
            if c.kind == "sts":
                continue
            if c.status == 200 and not c.echo_ok:
                self.fail(f"{c.op} by {c.tenant} answered 200 without its own nonce {c.nonce}")
            if c.status is None:
                spans = self.soak.replicas[c.replica].down_spans
                if not any(c.sent <= to + 0.5 and c.answered >= began - 0.5 for began, to in spans):
                    self.fail(f"{c.op} by {c.tenant} to replica {c.replica} got no answer outside a kill: "
                              f"{c.conn_error}")

    def resources(self):
        worst = 0
        for after, i, (base_fds, base_rss), (fds, rss) in self.soak.samples:
            worst = max(worst, fds - base_fds)
            if fds > base_fds + 24 or rss > base_rss * 1.5 + 32 * 1024:
                self.fail(f"after {after}, replica {i} holds {fds} descriptors and {rss} KiB "
                          f"(baseline {base_fds}, {base_rss} KiB)")
        log(f"resources sampled after each fault: {len(self.soak.samples)} samples, at most {worst} "
            f"descriptors over the baseline")
        for r in self.soak.replicas:
            errors = open(os.path.join(self.soak.work, f"replica-{r.i}.err"), errors="replace").read()
            if "panicked" in errors:
                self.fail(f"replica {r.i} panicked: {errors[errors.index('panicked'):][:300]}")
            if r.process.poll() is not None:
                self.fail(f"replica {r.i} exited with {r.process.returncode} (see replica-{r.i}.err)")
                continue
            fds, rss = r.resources()
            base_fds, base_rss = r.baseline or (fds, rss)
            log(f"replica {r.i}: descriptors {base_fds} → {fds}, resident {base_rss // 1024} → {rss // 1024} MiB")
            if fds > base_fds + 24:
                self.fail(f"replica {r.i} holds {fds} descriptors after the faults, {base_fds} before")
            if rss > base_rss * 1.5 + 32 * 1024:
                self.fail(f"replica {r.i} holds {rss} KiB after the faults, {base_rss} KiB before")

    def quota_bound(self):
        by_nonce = {c.nonce: c for c in self.soak.calls if c.nonce}
        admitted = collections.defaultdict(list)
        for at, op, nonce in self.soak.upstream.received:
            if op == "CountPendingActivityTasks" and nonce in by_nonce:
                admitted[by_nonce[nonce].tenant].append(at)
        rate, lease = max(QUOTA_RATES), 1
        shared = QUOTA_BURST + rate + REPLICAS * lease
        alone = REPLICAS * (QUOTA_BURST + rate) + REPLICAS * lease
        worst = 0
        for tenant, times in admitted.items():
            times.sort()
            j = 0
            for i, start in enumerate(times):
                while times[j] < start - 1.0:
                    j += 1
                count = i - j + 1
                redis_down = any(began - 1 <= start <= to + 1 for began, to in self.soak.redis_spans)
                bound = alone if redis_down else shared
                worst = max(worst, count)
                if count > bound:
                    self.fail(f"quota `counting` admitted {count} calls of {tenant} within 1 s at {start:.2f} "
                              f"(bound {bound})")
        return worst, shared

    def check(self):
        self.answers()
        refusals, records = self.refusals_on_record()
        self.audit_verifies()
        self.forwarded_only_when_allowed()
        self.resources()
        worst, bound = self.quota_bound()
        return refusals, records, worst, bound


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--break", dest="broken", choices=["audit"])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help="the fault kinds to inject, comma-separated (default: all)")
    args = parser.parse_args()
    for tool in ("redis-server", "openssl", "prlimit"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    kinds = args.faults.split(",")
    unknown = set(kinds) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown fault kinds: {sorted(unknown)}")
    work = tempfile.mkdtemp(prefix="soak-")
    soak = Soak(args.seconds, args.seed, work, kinds)
    try:
        soak.run()
        time.sleep(3)  # the faults are over: let connections and leases settle
        checker = Checker(soak, args.broken)
        refusals, records, worst, bound = checker.check()
    finally:
        codes = [r.stop() for r in soak.replicas]
        soak.redis.kill()
    statuses = collections.Counter(c.status or "conn-error" for c in soak.calls)
    log(f"calls: {len(soak.calls)} ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items(), key=str))}); "
        f"upstream received {len(soak.upstream.received)}; refusals {refusals}, audit records {records}")
    by_op = collections.Counter(c.op for c in soak.calls)
    ok = collections.Counter(c.op for c in soak.calls if c.status == 200)
    log(f"by operation (answered 200): {', '.join(f'{op} {n} ({ok[op]})' for op, n in sorted(by_op.items()))}")
    log(f"faults: {', '.join(f'{k} {v}' for k, v in sorted(soak.faults.items()))}")
    log(f"quota: at most {worst} admitted in 1 s (bound {bound}); policy versions: {soak.version + 1}")
    if any(code != 0 for code in codes):
        checker.fail(f"replicas exited with {codes} on SIGTERM")
    if checker.violations:
        log(f"{len(checker.violations)} invariant violation(s); work folder kept: {work}")
        sys.exit(1)
    log("every invariant held")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


BIN = os.environ.get("SOAK_BIN") or os.path.join(ROOT, "target", "debug", "swf-warden")

if __name__ == "__main__":
    main()
