"""Policy change impact on the audit log of this very run (docs/changing-policies.md): every
other test module has driven boto3, the AWS CLI, simpleflow, the JavaScript SDK and STS
sessions through the proxy by now (this module runs last), and the proxy records allowed calls
with their context. `swf-warden policy replay | diff | suggest` then answer what a candidate
would break or open, checked here against what the log itself says."""

import json
import shutil
import subprocess
import tomllib
from collections import defaultdict

from conftest import ACCOUNT, TENANTS, audit_records, binary, proxy_env

A = TENANTS["a"]["name"]
B = TENANTS["b"]["name"]


def run(*args):
    done = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def replay(config, log, *more):
    code, out, err = run("policy", "replay", "--json", "--samples", "1000", "--config", config, *more, log)
    assert out, err
    return code, json.loads(out)


def calls(records):
    """The log's policy-decided calls as replay counts them: records grouped by request id,
    a call denied if any of its records is."""
    by_id = defaultdict(list)
    for r in records:
        if r.get("principal") and r["decision"] in ("allowed", "throttled", "explicitDeny", "implicitDeny",
                                                     "wouldDeny") and r["action"].startswith("swf:"):
            by_id[r["requestId"]].append(r)
    return by_id


def candidate(proxy, tmp_path, name):
    folder = tmp_path / name
    source = proxy["config"].parent
    shutil.copytree(source / "policies", folder / "policies")
    shutil.copy(source / "config.toml", folder / "config.toml")
    shutil.copy(source / "cluster-jwks.json", folder / "cluster-jwks.json")
    shutil.copytree(source / "keys", folder / "keys")
    return folder


def test_the_configuration_that_recorded_the_log_changes_nothing(proxy, domains):
    records = audit_records(proxy)
    expected = calls(records)
    assert len(expected) >= 50, "the other modules' traffic is on record"
    assert {r["principal"]["name"] for v in expected.values() for r in v} >= {A, B, "swf-worker"}
    code, report = replay(proxy["config"], proxy["audit"], "--fail-on", "any")
    assert code == 0, report
    assert report["calls"] == len(expected), report
    assert report["unchanged"] == report["calls"]
    assert report["notReplayable"]["total"] == 0, report
    decisions = [r for v in expected.values() for r in v if r.get("context", {}).get("decisions")]
    assert decisions, "simpleflow's and boto3's decisions were recorded with their keys"


def test_removing_a_statement_breaks_exactly_the_calls_it_allowed(proxy, domains, tmp_path):
    folder = candidate(proxy, tmp_path, "narrower")
    (folder / "policies" / f"{A}.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": []}))
    records = audit_records(proxy)
    allowed_by_it = {
        rid for rid, rs in calls(records).items()
        if all(r["decision"] in ("allowed", "throttled") for r in rs)
        and rs[0]["principal"]["name"] == A
        and {"policy": A, "sid": "OwnDomain"} in rs[0]["matchedStatements"]
    }
    code, report = replay(folder / "config.toml", proxy["audit"], "--fail-on", "narrowing")
    assert code == 1
    broken = report["allowedToDenied"]
    assert broken["count"] == len(allowed_by_it) > 10, report
    assert broken["bySubject"] == {A: len(allowed_by_it)}
    assert {s["requestId"] for s in broken["samples"]} == allowed_by_it
    for sample in broken["samples"]:
        assert sample["old"]["statements"] == [{"policy": A, "sid": "OwnDomain"}], sample
        assert sample["new"]["decision"] == "implicitDeny"
    assert report["deniedToAllowed"]["count"] == 0


def test_a_wildcard_widens_and_diff_fails_on_it(proxy, domains, tmp_path):
    folder = candidate(proxy, tmp_path, "wider")
    (folder / "policies" / f"{B}.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Everything", "Effect": "Allow", "Action": "swf:*", "Resource": "*"}]}))
    records = audit_records(proxy)
    # Tenant B's calls no policy allowed (the guardrail's explicit denies stay denied).
    refused = {rid for rid, rs in calls(records).items()
               if rs[0]["principal"]["name"] == B and all(r["decision"] == "implicitDeny" for r in rs)}
    assert refused, "the isolation tests left tenant B's refusals on record"
    code, report = replay(folder / "config.toml", proxy["audit"], "--fail-on", "widening")
    assert code == 1
    opened = report["deniedToAllowed"]
    assert opened["count"] == len(refused), report
    assert {s["requestId"] for s in opened["samples"]} == refused
    assert all(s["new"]["statements"] == [{"policy": B, "sid": "Everything"}] for s in opened["samples"])

    code, out, err = run("policy", "diff", "--config", proxy["config"], "--against", folder / "config.toml",
                         "--fail-on", "widening")
    assert code == 1, out + err
    assert f"widening: principal {B} on {TENANTS['a']['domain']}: implicitDeny → allowed" in out, out
    code, out, err = run("policy", "diff", "--json", "--config", proxy["config"], "--against", proxy["config"],
                         "--fail-on", "any")
    assert code == 0 and json.loads(out)["changes"] == [], out + err


def test_records_without_context_are_not_replayable_and_say_why(proxy, domains, tmp_path):
    # Every other record as a proxy without `record_context` (or before it) wrote it.
    out = []
    for line in proxy["audit"].read_text().splitlines():
        record = json.loads(line)
        if record.get("seq", 0) % 2 == 0:
            record.pop("context", None)
        out.append(json.dumps(record))
    old = tmp_path / "old-format.log"
    old.write_text("\n".join(out) + "\n")
    code, report = replay(proxy["config"], old)
    assert code == 0
    missing = report["notReplayable"]
    assert missing["total"] > 0
    assert list(missing["reasons"]) == [next(iter(missing["reasons"]))]
    assert next(iter(missing["reasons"])).startswith("no context")
    assert report["unchanged"] + missing["total"] == report["calls"]


def test_suggest_for_tenant_a_replays_clean_and_grants_only_domains_it_touched(proxy, domains, tmp_path):
    code, policy, report = run("policy", "suggest", "--config", proxy["config"], "--principal", A, proxy["audit"])
    assert code == 0, report
    document = tomllib.loads(policy)
    touched = {r["resource"] for v in calls(audit_records(proxy)).values() for r in v
               if r["principal"]["name"] == A and r["decision"] in ("allowed", "throttled")}
    resources = {res for s in document["Statement"] for res in s["Resource"]}
    assert resources <= touched, (resources, touched)
    assert f"arn:aws:swf:us-east-1:{ACCOUNT}:/domain/{TENANTS['b']['domain']}" not in resources
    assert all("*" not in a for s in document["Statement"] for a in s["Action"])
    assert any("Condition" in s for s in document["Statement"]), "decisions are narrowed to the names seen"

    folder = candidate(proxy, tmp_path, "suggested")
    (folder / "policies" / f"{A}.json").unlink()
    (folder / "policies" / f"{A}.toml").write_text(policy)
    checked = subprocess.run([binary(), "check", "--config", str(folder / "config.toml")],
                             env=proxy_env(), capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    code, replayed = replay(folder / "config.toml", proxy["audit"], "--fail-on", "narrowing")
    assert code == 0, replayed
    assert replayed["allowedToDenied"]["count"] == 0
