#!/usr/bin/env python3
"""Memory of N concurrent long polls held open through swf-warden (default 10,000).

Starts a stub SWF upstream that holds every PollForActivityTask until told to answer, starts
swf-warden in front of it, opens N client connections each sending a signed poll, waits until
the upstream holds all N, and reads the proxy's resident memory (VmRSS) from /proc. Then the
upstream answers them all and the script checks every client got a sealed task token.
Loopback only. Usage: python3 bench/long_polls.py [N] (needs botocore; the e2e venv has it).
"""

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def signed_poll(port):
    body = json.dumps({"domain": "bench", "taskList": {"name": "work"}})
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "SimpleWorkflowService.PollForActivityTask",
    })
    SigV4Auth(Credentials(KEY, SECRET), "swf", "us-east-1").add_auth(req)
    head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    for k, v in req.headers.items():
        if k.lower() != "host":
            head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body.encode()


async def client(port, payload, results):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:"))
        body = json.loads(await reader.readexactly(length))
        results.append(head.startswith(b"HTTP/1.1 200") and body.get("taskToken", "").startswith("sw1."))
        writer.close()
    except Exception as e:  # counted as a failure
        results.append(False)


async def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (200_000, 200_000))
    upstream = Upstream()
    up_port, port = free_port(), free_port()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", up_port, backlog=N)
    d = Path(tempfile.mkdtemp())
    (d / "policies").mkdir()
    (d / "policies" / "bench.toml").write_text('Version = "2012-10-17"\n[[Statement]]\nEffect = "Allow"\nAction = "swf:*"\nResource = "*"\n')
    (d / "config.toml").write_text(f"""
[listen]
address = "127.0.0.1:{port}"
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
    proxy = subprocess.Popen([binary, "serve", "--config", str(d / "config.toml")], env=env,
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (200_000, 200_000)))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        baseline = rss_kib(proxy.pid)
        payloads = [signed_poll(port) for _ in range(N)]
        results = []
        tasks = [asyncio.create_task(client(port, p, results)) for p in payloads]
        started = time.monotonic()
        while upstream.held < N and time.monotonic() - started < 120:
            await asyncio.sleep(0.2)
        held = upstream.held
        at_peak = rss_kib(proxy.pid)
        upstream.release.set()
        await asyncio.gather(*tasks)
        ok = sum(results)
        print(f"long polls held open through swf-warden: {held} of {N}")
        print(f"proxy RSS: idle {baseline / 1024:.1f} MiB, with {held} polls in flight {at_peak / 1024:.1f} MiB "
              f"({(at_peak - baseline) / max(held, 1):.1f} KiB per poll, client and upstream connections included)")
        print(f"answers with a sealed task token: {ok} of {N}")
        return 0 if held == N and ok == N else 1
    finally:
        proxy.terminate()
        proxy.wait(timeout=120)
        server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
