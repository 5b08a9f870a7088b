"""The AWS SDK for JavaScript v3 (@aws-sdk/client-swf, pinned by tests/e2e/js/package-lock.json)
through swf-warden: a whole activity cycle in its tenant's domain, and another tenant's task
token refused as the SDK's modeled `OperationNotPermittedFault`, on record."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, TENANTS, audit_for, client
from test_flows import start_and_schedule

JS = ROOT / "target" / "e2e-js"


def node():
    path = shutil.which("node") or shutil.which("nodejs")
    if path is None or not (JS / "node_modules" / "@aws-sdk" / "client-swf").is_dir():
        pytest.fail("the JS SDK is not installed: run tests/e2e/run.sh (it runs `npm ci` into target/e2e-js)")
    return path


def test_js_sdk_activity_cycle_and_foreign_token(proxy, domains):
    # Tenant B's activity token, for tenant A's SDK to try.
    _, foreign = start_and_schedule(client(proxy, "b"), domains["b"], f"wf-b-{uuid.uuid4().hex[:8]}",
                                    task_list=f"workers-js-{uuid.uuid4().hex[:8]}")
    t = TENANTS["a"]
    workflow = f"wf-js-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "ENDPOINT": proxy["endpoint"],
        "DOMAIN": domains["a"],
        "WORKFLOW_ID": workflow,
        "FOREIGN_TOKEN": foreign,
        "AWS_ACCESS_KEY_ID": t["key"],
        "AWS_SECRET_ACCESS_KEY": t["secret"],
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    script = JS / "activity_cycle.mjs"
    done = subprocess.run([node(), str(script)], env=env, cwd=JS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["decisionToken"].startswith("sw1.") and seen["activityToken"].startswith("sw1.")
    assert seen["cancelRequested"] is False
    assert "ActivityTaskCompleted" in seen["secondEvents"], seen
    assert (seen["status"], seen["closeStatus"]) == ("CLOSED", "COMPLETED"), seen
    refused = seen["foreign"]
    assert refused["refused"] and refused["modeled"], refused
    assert (refused["name"], refused["status"]) == ("OperationNotPermittedFault", 400), refused
    assert f"user/{t['name']}" in refused["message"], refused
    record = audit_for(proxy, refused["requestId"])
    assert record["decision"] in ("implicitDeny", "explicitDeny"), record
    assert record["principal"]["name"] == t["name"], record
