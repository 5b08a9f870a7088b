#!/usr/bin/env python3
"""A tenant's service while the second security review's attacks run (issue 24, findings 1,
2 and 5), against the release binary, on loopback.

Tenant `good` sends signed heartbeats open loop (examples/fairness.rs, a fixed rate whatever
the answers) for SECONDS, first alone, then while each attack runs:

- idle-slots (finding 1): a stranger keeps every `max_connections` slot with one unsigned
  request per connection, then idles (re-opening whatever the proxy closes);
- admin-fds (finding 2): 1,100 silent connections to the admin port, under a limit of 1,024
  descriptors on the proxy (re-opening whatever is closed);
- sts-forged (finding 5): two connections sending `AssumeRoleWithWebIdentity` with forged
  RS256 signatures under a known `kid` as fast as they are answered;
- sts-1mib (finding 5): two connections sending forms of just under 1 MiB, 150,000
  distinct parameters;
- unsigned: for comparison, two connections sending unsigned SWF calls, the cheapest refusal.

For each: what the tenant sent, the share answered 200 (success), p50 and p99 of the answered
calls (calls never answered within 30 s of the end count as failures, not in the
percentiles), the proxy's descriptors, and the CPU the proxy spent while the tenant ran (in
cores, and per attack step). `BASE_BIN=path` runs the same against another binary (the code before the fixes)
and prints both. nginx `return 200` stands for SWF.

Usage: python3 bench/attacks.py [SECONDS] [RATE]
"""

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import base64

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10
RATE = sys.argv[2] if len(sys.argv) > 2 else "100"
TOKEN_KEY = "bench-token-key-0123456789abcdefghij"
MAX_CONNECTIONS = 256
NOFILE = 1024


def cpu_seconds(pid):
    """User and system CPU of process `pid` so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing on {port}")


def config(work, port, admin, stub):
    jwk = open(os.path.join(ROOT, "tests/fixtures/oidc/rsa-2048.jwk.json")).read()
    with open(os.path.join(work, "jwks.json"), "w") as f:
        f.write('{"keys": [%s]}' % jwk)
    os.makedirs(os.path.join(work, "policies"), exist_ok=True)
    with open(os.path.join(work, "policies", "good.toml"), "w") as f:
        f.write('Version = "2012-10-17"\n[[Statement]]\nEffect = "Allow"\n'
                'Action = "swf:RecordActivityTaskHeartbeat"\n'
                'Resource = "arn:aws:swf:*:123456789012:/domain/good"\n')
    text = f"""[listen]
address = "127.0.0.1:{port}"
[service]
region = "us-east-1"
account_id = "123456789012"
[upstream]
endpoint = "http://127.0.0.1:{stub}"
access_key_id = "AKIDUPSTREAM"
secret_access_key = "bench-upstream-secret"
[task_tokens]
keys = [{{ id = "bench", secret = "{TOKEN_KEY}" }}]
[audit]
path = "{work}/audit.log"
[admin]
address = "127.0.0.1:{admin}"
[limits]
max_connections = {MAX_CONNECTIONS}
[log]
level = "error"
[sts]
session_keys = [{{ id = "s1", secret = "bench-session-key-0123456789abcdefghij" }}]
[[oidc_provider]]
name = "cluster"
issuer = "https://cluster.test"
audiences = ["swf-warden"]
jwks_file = "jwks.json"
[[role]]
name = "swf-worker"
provider = "cluster"
subjects = ["system:serviceaccount:*:swf-worker"]
policies = ["good"]
[[principal]]
name = "good"
access_key_id = "AKIAGOOD000000000001"
secret_access_key = "bench-good-secret"
policies = ["good"]
"""
    path = os.path.join(work, "config.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Attack:
    """Runs `step` in `workers` processes until stopped (processes, so that Python's lock does
    not throttle the attacker); counts the steps taken."""

    def __init__(self, name, workers, step):
        self.name, self.stop = name, multiprocessing.Event()
        self.steps, self.ready = multiprocessing.Value("l", 0), multiprocessing.Event()
        self.workers = [multiprocessing.Process(target=self.run, args=(step,), daemon=True)
                        for _ in range(workers)]

    def run(self, step):
        state = {}
        while not self.stop.is_set():
            try:
                step(state)
                with self.steps.get_lock():
                    self.steps.value += 1
                self.ready.set()
            except OSError:
                time.sleep(0.01)
        for s in state.get("sockets", []):
            s.close()

    @property
    def count(self):
        return self.steps.value

    def start(self):
        for w in self.workers:
            w.start()

    def end(self):
        self.stop.set()
        for w in self.workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()


def hold(port, n, payload):
    """Keeps `n` connections to `port` open, each having sent `payload`; re-opens closed ones."""

    def step(state):
        sockets = state.setdefault("sockets", [])
        alive = []
        for s in sockets:
            try:
                if s.recv(65536, socket.MSG_DONTWAIT) == b"":
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            alive.append(s)
        deadline = time.time() + 1
        while len(alive) < n and time.time() < deadline:
            s = socket.socket()
            s.settimeout(0.2)
            try:
                s.connect(("127.0.0.1", port))
                if payload:
                    s.sendall(payload)
            except OSError:
                s.close()
                continue
            alive.append(s)
        state["sockets"] = alive
        time.sleep(0.05)

    return step


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_token():
    header = b64(json.dumps({"alg": "RS256", "kid": "rsa-1"}).encode())
    claims = b64(json.dumps({"iss": "https://cluster.test", "aud": "swf-warden",
                             "sub": "system:serviceaccount:a:swf-worker",
                             "exp": int(time.time()) + 3600}).encode())
    return f"{header}.{claims}.{b64(os.urandom(256))}"


def sts_form(token):
    return ("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=pod-1"
            "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fswf-worker"
            f"&WebIdentityToken={token}").encode()


def big_form():
    """A form of just under 1 MiB: 150,000 distinct parameters."""
    names = b"&".join(b"%x" % i for i in range(150_000))
    return b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&" + names


def post_form(port, body, headers="Content-Type: application/x-www-form-urlencoded\r\n"):
    """Sends `body` as a form post (or with other `headers`) and reads the answer, over and
    over: on the same connection while the proxy keeps it, on a new one when it closes it."""

    def step(state):
        s = state.get("conn")
        if s is None:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            state["conn"] = s
            state["sockets"] = [s]
        head = (f"POST / HTTP/1.1\r\nHost: x\r\n{headers}"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        try:
            s.sendall(head + body)
            got = s.recv(65536)
        except OSError:
            got = b""
        if not got or b"connection: close" in got.lower():
            s.close()
            state.pop("conn", None)
            state["sockets"] = []

    return step


def attacks(port, admin):
    garbage = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
    return {
        "none": lambda: None,
        "idle-slots": lambda: [Attack("idle-slots", 1, hold(port, MAX_CONNECTIONS + 16, garbage))],
        "admin-fds": lambda: [Attack("admin-fds", 1, hold(admin, 1100, b""))],
        "sts-forged": lambda: [Attack("forged", 2, post_form(port, sts_form(forged_token())))],
        "sts-1mib": lambda: [Attack("big-form", 2, post_form(port, big_form()))],
        "unsigned": lambda: [Attack("unsigned", 2, post_form(
            port, b"{}", "Content-Type: application/x-amz-json-1.0\r\n"
                         "X-Amz-Target: SimpleWorkflowService.DescribeDomain\r\n"))],
    }


def run(binary, label, stub, fairness):
    rows = []
    for name in ["none", "idle-slots", "admin-fds", "unsigned", "sts-forged", "sts-1mib"]:
        work = tempfile.mkdtemp()
        port, admin = free_port(), free_port()
        path = config(work, port, admin, stub)
        proxy = subprocess.Popen(
            ["bash", "-c", f'ulimit -n {NOFILE} && exec "$0" serve --config "$1"', binary, path],
            stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            started = attacks(port, admin)[name]() or []
            for a in started:
                a.start()
            for a in started:
                a.ready.wait(timeout=10)
            time.sleep(1 if started else 0)
            fds_before = len(os.listdir(f"/proc/{proxy.pid}/fd"))
            cpu_before, wall_before = cpu_seconds(proxy.pid), time.time()
            out = subprocess.run(
                [fairness, str(SECONDS), TOKEN_KEY, f"127.0.0.1:{port}",
                 f"good:AKIAGOOD000000000001:bench-good-secret:good:{RATE}"],
                capture_output=True, text=True, timeout=SECONDS + 60).stdout
            fds = len(os.listdir(f"/proc/{proxy.pid}/fd"))
            cores = (cpu_seconds(proxy.pid) - cpu_before) / (time.time() - wall_before)
            for a in started:
                a.end()
            tally = json.loads(out.strip().splitlines()[-1])
            done = sum(a.count for a in started)
            rows.append((label, name, tally, done))
            print(f"{label:>8} {name:>10}: sent {tally['sent']:>5}, success "
                  f"{100.0 * tally['admitted'] / max(tally['sent'], 1):6.2f} %, p50 "
                  f"{tally['p50_ms']:8.3f} ms, p99 {tally['p99_ms']:8.3f} ms "
                  f"(attack steps: {done}; proxy descriptors {fds_before} -> {fds}; "
                  f"proxy CPU {cores:.2f} cores, "
                  f"{(1e6 * cores / (done / (time.time() - wall_before))) if done else 0:.0f} µs a step)",
                  flush=True)
        finally:
            proxy.send_signal(signal.SIGKILL)
            proxy.wait()
            shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    for tool in ["nginx"]:
        if not shutil.which(tool):
            subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                           "apt-get install -y -qq nginx >/dev/null", shell=True, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--example", "fairness"],
                   cwd=ROOT, check=True)
    fairness = os.path.join(ROOT, "target/release/examples/fairness")
    binary = os.path.join(ROOT, "target/release/swf-warden")
    work = tempfile.mkdtemp()
    stub = free_port()
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{stub};
    location / {{ default_type application/x-amz-json-1.0; return 200 '{{"cancelRequested":false}}'; }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-g", "daemon off;"])
    try:
        wait_port(stub)
        if os.environ.get("BASE_BIN"):
            run(os.environ["BASE_BIN"], "before", stub, fairness)
        run(binary, "after", stub, fairness)
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
