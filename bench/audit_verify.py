#!/usr/bin/env python3
"""`swf-warden audit verify` on a large log (issue 26): writes a chained audit log of SIZE MiB
(realistic denial records, the chain computed here with hashlib from the description in
docs/audit-log.md), verifies it with the release binary, and prints lines per second and the
verifier's peak memory (from /proc), which must not grow with the log.

Usage: python3 bench/audit_verify.py [SIZE_MIB ...]   (default: 64 1024)
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_log(path, size):
    log_id = "bench-log"
    prev = hashlib.sha256(f"swf-warden audit genesis {log_id}".encode()).hexdigest()
    record = json.dumps({
        "eventTime": "2026-12-06T16:50:00.123Z", "requestId": "3c90f1fe-6b1d-4c4a-0000-00000000002a",
        "decision": "implicitDeny", "errorCode": "OperationNotPermittedFault", "cause": "OPERATION_NOT_PERMITTED",
        "principal": {"name": "tenant-b-worker", "arn": "arn:aws:iam::123456789012:user/tenant-b-worker",
                      "accessKeyId": "AKIATENANTB000000001"},
        "action": "swf:PollForActivityTask", "resource": "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a",
        "matchedStatements": [], "sourceIp": "127.0.0.1", "userAgent": "aws-sdk-rust/1.3.9",
        "message": "User: arn:aws:iam::123456789012:user/tenant-b-worker is not authorized to perform: "
                   "swf:PollForActivityTask on resource: arn:aws:swf:us-east-1:123456789012:/domain/tenant-a "
                   "because no identity-based policy allows the swf:PollForActivityTask action",
    }, separators=(",", ":"))[1:].encode()
    first = json.dumps({"log": {"id": log_id, "started": "2026-12-06T16:50:00.000Z"}}, separators=(",", ":"))[1:].encode()
    seq, written = 0, 0
    with open(path, "wb", buffering=1 << 20) as f:
        fields = first
        while written < size:
            seq += 1
            line = b'{"seq":%d,"prev":"%s",' % (seq, prev.encode()) + fields
            f.write(line + b"\n")
            written += len(line) + 1
            prev = hashlib.sha256(line).hexdigest()
            fields = record
    return seq


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [64, 1024]
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "swf-warden")
    with tempfile.TemporaryDirectory() as work:
        for mib in sizes:
            path = os.path.join(work, "audit.log")
            lines = write_log(path, mib << 20)
            started = time.monotonic()
            process = subprocess.Popen([binary, "audit", "verify", path], stdout=subprocess.PIPE)
            peak = 0
            while process.poll() is None:
                try:
                    with open(f"/proc/{process.pid}/status") as status:
                        for field in status:
                            if field.startswith("VmHWM:"):
                                peak = max(peak, int(field.split()[1]))
                except OSError:
                    pass
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            out = process.stdout.read().decode()
            assert process.returncode == 0 and out.endswith("intact\n"), out
            print(f"{mib} MiB, {lines:,} lines: verified in {elapsed:.2f} s ({lines / elapsed:,.0f} lines/s, "
                  f"{mib / elapsed:.0f} MiB/s), peak memory {peak / 1024:.1f} MiB")
            os.remove(path)


if __name__ == "__main__":
    main()
