#!/usr/bin/env python3
"""Memory of N concurrent long polls held open through swf-warden and through HAProxy
(default 10,000 each, one after the other, in one run).

Starts a stub SWF upstream that holds every PollForActivityTask until told to answer, starts
swf-warden (release build) and HAProxy (plain pass-through, `proto h2` on its listener) in
front of it, and for each runs examples/long_poll_client, which sends N signed polls at once
over cleartext HTTP/2 (100 streams per connection, so the client side needs few sockets and
each proxy's file descriptors go to the N upstream connections; swf-warden has `h2c = true`
and `max_connections` sized for them; HAProxy gets the process's file limit). When the upstream
holds all N, the proxy's resident memory (VmRSS) is read from /proc; then the upstream
answers and the client counts the answers: through swf-warden each must carry a sealed token,
through HAProxy the upstream's own. Loopback only.
Usage: cargo build --release --example long_poll_client && python3 bench/long_polls.py [N]
"""

import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
KEY, SECRET = "AKIABENCH00000000001", "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Upstream:
    """Holds polls until `release` is set, then answers each with a task."""

    def __init__(self):
        self.held = 0
        self.release = asyncio.Event()

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.held += 1
                await self.release.wait()
                body = json.dumps({"taskToken": "UPSTREAM-TOKEN-" + "x" * 400, "activityId": "a", "startedEventId": 1,
                                   "workflowExecution": {"workflowId": "w", "runId": "r"},
                                   "activityType": {"name": "t", "version": "1"}}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def hold(name, upstream, pid, port, marker):
    """Holds N polls through the proxy listening on `port` (process `pid`); returns whether
    every poll was held and answered, printing what the proxy's memory did meanwhile."""
    upstream.held, upstream.release = 0, asyncio.Event()
    await wait_for_port(port)
    baseline = rss_kib(pid)
    client_bin = str(ROOT / "target" / "release" / "examples" / "long_poll_client")
    client = await asyncio.create_subprocess_exec(client_bin, f"127.0.0.1:{port}", str(N), KEY, SECRET, marker,
                                                  stdout=asyncio.subprocess.PIPE)
    started = time.monotonic()
    while upstream.held < N and time.monotonic() - started < 120 and client.returncode is None:
        await asyncio.sleep(0.2)
    held = upstream.held
    await asyncio.sleep(1)
    at_peak = rss_kib(pid)
    upstream.release.set()
    out, _ = await client.communicate()
    ok = int(out.decode().strip() or 0)
    per_poll = (at_peak - baseline) / max(held, 1)
    print(f"{name}: {held} of {N} long polls held; RSS idle {baseline / 1024:.1f} MiB, "
          f"with the polls in flight {at_peak / 1024:.1f} MiB: {per_poll:.1f} KiB per poll "
          f"(its client stream and upstream connection included); {ok} of {N} answered with {marker!r}")
    return held == N and ok == N, per_poll


async def wait_for_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.1)


def haproxy_config(d, port, up_port, fds):
    # The N upstream connections need file descriptors: the limit is given (the hard limit),
    # not derived from maxconn, which would ask for more than this machine allows.
    path = d / "haproxy.cfg"
    path.write_text(f"""global
  maxconn {(fds - 1000) // 2}
  ulimit-n {fds}
defaults
  mode http
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  option http-keep-alive
frontend in
  bind 127.0.0.1:{port} proto h2
  default_backend stub
backend stub
  server s1 127.0.0.1:{up_port}
""")
    return path


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    raise_limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not shutil.which("haproxy"):
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy",
                       shell=True, check=True, stdout=subprocess.DEVNULL)
    upstream = Upstream()
    up_port, port, ha_port = free_port(), free_port(), free_port()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", up_port, backlog=N)
    d = Path(tempfile.mkdtemp())
    (d / "policies").mkdir()
    (d / "policies" / "bench.toml").write_text('Version = "2012-10-17"\n[[Statement]]\nEffect = "Allow"\nAction = "swf:*"\nResource = "*"\n')
    (d / "config.toml").write_text(f"""
[listen]
address = "127.0.0.1:{port}"
h2c = true
[service]
region = "us-east-1"
account_id = "123456789012"
[upstream]
endpoint = "http://127.0.0.1:{up_port}"
access_key_id = "AKIDUPSTREAM"
secret_access_key_env = "BENCH_UPSTREAM"
poll_timeout_seconds = 600
[task_tokens]
keys = [{{ id = "b", secret_env = "BENCH_TOKEN" }}]
[audit]
path = "audit.log"
[limits]
max_connections = {N + 100}
header_read_timeout_seconds = 600
[log]
level = "warn"
[[principal]]
name = "bench"
access_key_id = "{KEY}"
secret_access_key_env = "BENCH_SECRET"
policies = ["bench"]
""")
    binary = os.environ.get("SWF_WARDEN_BIN", str(ROOT / "target" / "release" / "swf-warden"))
    env = dict(os.environ, BENCH_UPSTREAM="x", BENCH_TOKEN="bench-token-key-0123456789abcdefghij", BENCH_SECRET=SECRET)
    proxy = subprocess.Popen([binary, "serve", "--config", str(d / "config.toml")], env=env, preexec_fn=raise_limit)
    haproxy = subprocess.Popen(["haproxy", "-db", "-q", "-f", str(haproxy_config(d, ha_port, up_port, hard))],
                               preexec_fn=raise_limit)
    try:
        warden_ok, warden_kib = await hold("swf-warden", upstream, proxy.pid, port, "sw1.")
        if haproxy.poll() is not None:
            print(f"HAProxy exited ({haproxy.returncode}): see its messages above")
            return 1
        haproxy_ok, haproxy_kib = await hold("HAProxy pass-through", upstream, haproxy.pid, ha_port, "UPSTREAM-TOKEN-")
        print(f"memory per held poll, swf-warden / HAProxy: {warden_kib / max(haproxy_kib, 0.1):.2f}")
        return 0 if warden_ok and haproxy_ok else 1
    finally:
        for p in (proxy, haproxy):
            p.terminate()
            p.wait(timeout=120)
        server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
