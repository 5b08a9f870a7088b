#!/usr/bin/env python3
"""Memory of N concurrent long polls held open through swf-warden and through HAProxy, over
HTTP/1.1 (as every supported SDK polls: one connection per poll) and over cleartext HTTP/2,
in one run (default 10,000 polls each).

Starts a stub SWF upstream that holds every PollForActivityTask until told to answer; then,
for each protocol, starts swf-warden (release build, its defaults: access log on, `info`;
`h2c = true` for the HTTP/2 run) and HAProxy (plain pass-through; `proto h2` on its listener
for the HTTP/2 run) afresh in front of it, and runs examples/long_poll_client, which sends N
signed polls at once (HTTP/1.1: N connections; HTTP/2: 100 streams per connection). When the
upstream holds all N, the proxy's resident memory (VmRSS) is read from /proc; then the
upstream answers and the client counts the answers: through swf-warden each must carry a
sealed token, through HAProxy the upstream's own. The file-descriptor limit is raised for
the N client and N upstream connections (past the hard limit where the process may). Loopback only.
Usage: cargo build --release --example long_poll_client && python3 bench/long_polls.py [N] [h1|h2]...
  SWF_WARDEN_BIN: the binary to measure (default target/release/swf-warden).
  HEAPTRACK=DIR: run swf-warden under heaptrack (a build with `--features system-allocator`),
  its profile written in DIR, to name what a held poll keeps (see docs/operations.md).
"""

import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
ARGS = sys.argv[1:]
N = int(ARGS.pop(0)) if ARGS and ARGS[0].isdigit() else 10_000
PROTOCOLS = ARGS or ["h1", "h2"]
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


async def hold(name, proto, upstream, pid, port, marker):
    """Holds N polls over `proto` through the proxy listening on `port` (process `pid`);
    returns whether every poll was held and answered, and the memory per poll in KiB."""
    upstream.held, upstream.release = 0, asyncio.Event()
    await wait_for_port(port)
    await asyncio.sleep(1)
    baseline = rss_kib(pid)
    client_bin = str(ROOT / "target" / "release" / "examples" / "long_poll_client")
    client = await asyncio.create_subprocess_exec(client_bin, proto, f"127.0.0.1:{port}", str(N), KEY, SECRET,
                                                  marker, stdout=asyncio.subprocess.PIPE)
    started = time.monotonic()
    while upstream.held < N and time.monotonic() - started < 180 and client.returncode is None:
        await asyncio.sleep(0.2)
    held = upstream.held
    await asyncio.sleep(2)
    at_peak = rss_kib(pid)
    upstream.release.set()
    out, _ = await client.communicate()
    ok = int(out.decode().strip() or 0)
    per_poll = (at_peak - baseline) / max(held, 1)
    print(f"{name} over {LABEL[proto]}: {held} of {N} long polls held; RSS idle {baseline / 1024:.1f} MiB, "
          f"with the polls in flight {at_peak / 1024:.1f} MiB: {per_poll:.1f} KiB per poll "
          f"(its client connection or stream and its upstream connection included); "
          f"{ok} of {N} answered with {marker!r}", flush=True)
    return held == N and ok == N, per_poll


LABEL = {"h1": "HTTP/1.1", "h2": "HTTP/2 (h2c)"}


async def wait_for_port(port):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.1)


def haproxy_config(d, proto, port, up_port, fds):
    # The connections need file descriptors: the limit is given, not derived from maxconn.
    path = d / f"haproxy-{proto}.cfg"
    bind = " proto h2" if proto == "h2" else ""
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
  bind 127.0.0.1:{port}{bind}
  default_backend stub
backend stub
  server s1 127.0.0.1:{up_port}
""")
    return path


def warden_config(d, proto, port, up_port):
    path = d / f"config-{proto}.toml"
    path.write_text(f"""
[listen]
address = "127.0.0.1:{port}"
h2c = {"true" if proto == "h2" else "false"}
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
path = "{d / 'audit.log'}"
[limits]
max_connections = {2 * N + 100}
header_read_timeout_seconds = 600
idle_timeout_seconds = 600
[[principal]]
name = "bench"
access_key_id = "{KEY}"
secret_access_key_env = "BENCH_SECRET"
policies = ["bench"]
""")
    return path


async def measure(proto, upstream, up_port, d, fds):
    """One protocol, both proxies started afresh; returns (ok, swf-warden KiB, HAProxy KiB)."""
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))
    port, ha_port = free_port(), free_port()
    binary = os.environ.get("SWF_WARDEN_BIN", str(ROOT / "target" / "release" / "swf-warden"))
    env = dict(os.environ, BENCH_UPSTREAM="x", BENCH_TOKEN="bench-token-key-0123456789abcdefghij",
               BENCH_SECRET=SECRET)
    command = [binary, "serve", "--config", str(warden_config(d, proto, port, up_port))]
    if os.environ.get("HEAPTRACK"):
        command = ["heaptrack", "-o", str(Path(os.environ["HEAPTRACK"]) / f"swf-warden-{proto}")] + command
    proxy = subprocess.Popen(command, env=env, preexec_fn=limit, cwd=d, stderr=open(d / f"stderr-{proto}", "wb"))
    haproxy = None
    try:
        await wait_for_port(port)
        pid = proxy.pid
        if os.environ.get("HEAPTRACK"):
            pid = int(subprocess.check_output(["pgrep", "-P", str(proxy.pid), "-f", " serve --config "]).split()[0])
        warden_ok, warden_kib = await hold("swf-warden", proto, upstream, pid, port, "sw1.")
        os.kill(pid, signal.SIGTERM)  # the proxy itself, not heaptrack's script
        proxy.wait(timeout=300)
        haproxy = subprocess.Popen(["haproxy", "-db", "-q", "-f", str(haproxy_config(d, proto, ha_port, up_port, fds))],
                                   preexec_fn=limit)
        haproxy_ok, haproxy_kib = await hold("HAProxy pass-through", proto, upstream, haproxy.pid, ha_port,
                                             "UPSTREAM-TOKEN-")
        if haproxy.poll() is not None:
            print(f"HAProxy exited ({haproxy.returncode}): see its messages above")
            return False, warden_kib, haproxy_kib
        return warden_ok and haproxy_ok, warden_kib, haproxy_kib
    finally:
        for p in (proxy, haproxy):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=300)


async def main():
    # N client connections, N upstream ones, and the spare: as root the hard limit may rise.
    fds = max(4 * N + 1000, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))
    except (ValueError, OSError):
        fds = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))
    if not shutil.which("haproxy"):
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy",
                       shell=True, check=True, stdout=subprocess.DEVNULL)
    upstream = Upstream()
    up_port = free_port()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", up_port, backlog=4096)
    d = Path(tempfile.mkdtemp())
    (d / "policies").mkdir()
    (d / "policies" / "bench.toml").write_text('Version = "2012-10-17"\n[[Statement]]\nEffect = "Allow"\nAction = "swf:*"\nResource = "*"\n')
    results = {}
    try:
        for proto in PROTOCOLS:
            results[proto] = await measure(proto, upstream, up_port, d, fds)
    finally:
        server.close()
    print(f"\nmemory per held poll ({N} polls), KiB | swf-warden | HAProxy | ratio")
    for proto, (ok, warden, haproxy) in results.items():
        print(f"{LABEL[proto]} | {warden:.1f} | {haproxy:.1f} | {warden / max(haproxy, 0.1):.2f}"
              f"{'' if ok else ' (NOT every poll held and answered)'}")
    return 0 if all(ok for ok, _, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
