#!/usr/bin/env python3
"""`swf-warden policy replay` on a large log (issue 27): writes an audit log of COUNT records
shaped as the proxy writes them with `include_allowed` and `record_context` (heartbeats,
polls, decision-task completions carrying decisions, starts, denials across tenants, and
role sessions with their tags), replays it under config.example.toml with the release
binary, and prints records per second on one core and the replayer's peak memory (from
/proc), which must not grow with the log.

Usage: python3 bench/replay.py [COUNT ...]   (default: 100000 1000000)
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCOUNT = "123456789012"


def arn(domain):
    return f"arn:aws:swf:us-east-1:{ACCOUNT}:/domain/{domain}"


def principal(name):
    return {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accessKeyId": "AKIATENANTA000000001"}


def keys(name, tags, now, extra=None):
    out = {
        "aws:CurrentTime": [now], "aws:EpochTime": ["1796577765"],
        "aws:PrincipalArn": [f"arn:aws:iam::{ACCOUNT}:user/{name}"], "aws:PrincipalType": ["User"],
        "aws:RequestedRegion": ["us-east-1"], "aws:SecureTransport": ["false"], "aws:SourceIp": ["127.0.0.1"],
        "aws:userid": [name], "aws:username": [name],
    }
    out.update({f"aws:PrincipalTag/{k}": [v] for k, v in tags.items()})
    out.update(extra or {})
    return out


def templates():
    """(fraction, record) pairs: what a busy multi-tenant log holds."""
    now = "2026-12-06T17:22:45.920Z"
    a, b = "tenant-a-worker", "tenant-b-worker"
    allowed = [{"policy": "tenant-a", "sid": "OwnDomain"}]
    base = {"eventTime": now, "sourceIp": "127.0.0.1", "userAgent": "aws-sdk-java/2.29.0 ua/2.1"}
    heartbeat = dict(base, decision="allowed", principal=principal(a), action="swf:RecordActivityTaskHeartbeat",
                     resource=arn("tenant-a"), matchedStatements=allowed, taskTokenFingerprint="7575003a0c86",
                     context={"keys": keys(a, {"team": "a"}, now)})
    poll = dict(base, decision="allowed", principal=principal(a), action="swf:PollForActivityTask",
                resource=arn("tenant-a"), matchedStatements=allowed,
                context={"keys": keys(a, {"team": "a"}, now, {"swf:taskList.name": ["workers"]})})
    decide = dict(base, decision="allowed", principal=principal(a), action="swf:RespondDecisionTaskCompleted",
                  resource=arn("tenant-a"), matchedStatements=allowed, taskTokenFingerprint="d5556a1c356f",
                  context={"keys": keys(a, {"team": "a"}, now), "decisions": [
                      {"action": "swf:ScheduleActivityTask", "resource": arn("tenant-a"),
                       "keys": {"swf:activityType.name": ["work"], "swf:activityType.version": ["1"],
                                "swf:taskList.name": ["workers"]}},
                      {"action": "swf:StartTimer", "resource": arn("tenant-a"), "keys": {}}]})
    start = dict(base, decision="allowed", principal=principal(a), action="swf:StartWorkflowExecution",
                 resource=arn("tenant-a"), matchedStatements=allowed,
                 context={"keys": keys(a, {"team": "a"}, now, {
                     "swf:workflowType.name": ["flow"], "swf:workflowType.version": ["1"],
                     "swf:taskList.name": ["deciders"], "swf:tagList.member.0": ["nightly"]})})
    denied = dict(base, decision="implicitDeny", errorCode="OperationNotPermittedFault",
                  cause="OPERATION_NOT_PERMITTED", principal=principal(b), action="swf:PollForActivityTask",
                  resource=arn("tenant-a"), matchedStatements=[],
                  message="User: arn:aws:iam::123456789012:user/tenant-b-worker is not authorized to perform: "
                          "swf:PollForActivityTask on resource: arn:aws:swf:us-east-1:123456789012:/domain/"
                          "tenant-a because no identity-based policy allows the swf:PollForActivityTask action",
                  context={"keys": keys(b, {"team": "b"}, now, {"swf:taskList.name": ["workers"]})})
    terminate = dict(denied, decision="explicitDeny", principal=principal(a),
                     action="swf:TerminateWorkflowExecution",
                     matchedStatements=[{"policy": "guardrails", "sid": "NeverTerminate"}],
                     context={"keys": keys(a, {"team": "a"}, now)})
    return [(0.55, heartbeat), (0.2, poll), (0.12, decide), (0.05, start), (0.06, denied), (0.02, terminate)]


def write_log(path, count):
    mix = templates()
    lines = []
    for fraction, record in mix:
        lines.extend([record] * int(fraction * 100))
    seq = 0
    with open(path, "w", buffering=1 << 20) as f:
        while seq < count:
            for record in lines:
                if seq >= count:
                    break
                seq += 1
                record = dict(record, seq=seq, requestId=f"bench-{seq:012d}")
                f.write(json.dumps(record, separators=(",", ":")))
                f.write("\n")


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    counts = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "swf-warden")
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            log = os.path.join(tmp, "audit.log")
            write_log(log, count)
            size = os.path.getsize(log)
            started = time.monotonic()
            # One core: the replay is single-threaded; taskset makes sure of it.
            p = subprocess.Popen(["taskset", "-c", "0", binary, "policy", "replay", "--json", "--config",
                                  os.path.join(ROOT, "config.example.toml"), log],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            peak = 0
            while p.poll() is None:
                peak = max(peak, peak_kib(p.pid))
                time.sleep(0.02)
            out = p.stdout.read()
            elapsed = time.monotonic() - started
            report = json.loads(out)
            assert report["calls"] == count, report
            print(f"{count:>9} records ({size / 2**20:.0f} MiB): {elapsed:.2f} s, "
                  f"{count / elapsed:,.0f} records/s, peak memory {peak / 1024:.1f} MiB; "
                  f"unchanged {report['unchanged']}, allowed→denied {report['allowedToDenied']['count']}, "
                  f"denied→allowed {report['deniedToAllowed']['count']}, "
                  f"not replayable {report['notReplayable']['total']}")
            os.remove(log)


if __name__ == "__main__":
    main()
