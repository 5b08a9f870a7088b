"""Quotas as the real SDKs see them (SPEC, "Fair share"): a call over its tenant's rate is
answered `ThrottlingException`, which boto3, the AWS CLI and the JS SDK each classify as
throttling and retry (3 attempts, with the SDKs' backoff); every attempt is refused by the
proxy, on record with the quota's name, and none reaches moto.

The proxy's configuration (conftest.py) gives each tenant one `CountPendingDecisionTasks`
in 1,000 s: each test spends what may be left, then makes the call under test."""

import json
import os
import subprocess

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

import shutil

from conftest import BIN_DIR, REGION, TENANTS, audit_records, client
from test_js import JS, node


def throttled(proxy, tenant):
    """The proxy's `throttled` records for `tenant` under the `counting` quota."""
    name = TENANTS[tenant]["name"]
    return [r for r in audit_records(proxy)
            if r["decision"] == "throttled" and r["principal"]["name"] == name and r["quota"] == "counting"]


def spend(proxy, domains, tenant):
    """Spends the tenant's one token if it is still there (with no retry)."""
    try:
        client(proxy, tenant).count_pending_decision_tasks(domain=domains[tenant], taskList={"name": "spend"})
    except botocore.exceptions.ClientError:
        pass


def test_boto3_retries_a_throttled_call_then_raises_throttling(proxy, domains):
    spend(proxy, domains, "a")
    before = len(throttled(proxy, "a"))
    t = TENANTS["a"]
    swf = boto3.client("swf", endpoint_url=proxy["endpoint"], region_name=REGION,
                       aws_access_key_id=t["key"], aws_secret_access_key=t["secret"],
                       config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        swf.count_pending_decision_tasks(domain=domains["a"], taskList={"name": "throttled"})
    response = info.value.response
    assert response["Error"]["Code"] == "ThrottlingException", response
    assert response["Error"]["Message"] == "Rate exceeded", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RetryAttempts"] == 2, "botocore retries throttling"
    records = throttled(proxy, "a")[before:]
    assert len(records) == 3, records
    assert response["ResponseMetadata"]["RequestId"] == records[-1]["requestId"]
    assert all(r["errorCode"] == "ThrottlingException" for r in records), records


def test_aws_cli_standard_retries_try_three_times(proxy, domains):
    spend(proxy, domains, "b")
    before = len(throttled(proxy, "b"))
    t = TENANTS["b"]
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": t["key"], "AWS_SECRET_ACCESS_KEY": t["secret"],
        "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_MAX_ATTEMPTS": "3", "AWS_RETRY_MODE": "standard",
    }
    aws = shutil.which("aws", path=str(BIN_DIR)) or "aws"
    done = subprocess.run([aws, "--endpoint-url", proxy["endpoint"], "swf", "count-pending-decision-tasks",
                           "--domain", domains["b"], "--task-list", "name=throttled"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ThrottlingException" in done.stderr and "reached max retries: 2" in done.stderr, done.stderr
    assert len(throttled(proxy, "b")[before:]) == 3


def test_js_sdk_classifies_throttling_and_retries_with_backoff(proxy, domains):
    spend(proxy, domains, "a")
    before = len(throttled(proxy, "a"))
    t = TENANTS["a"]
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
        "ENDPOINT": proxy["endpoint"], "DOMAIN": domains["a"],
        "AWS_ACCESS_KEY_ID": t["key"], "AWS_SECRET_ACCESS_KEY": t["secret"],
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    done = subprocess.run([node(), str(JS / "throttled.mjs")], env=env, cwd=JS,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["refused"], seen
    assert (seen["name"], seen["status"], seen["message"]) == ("ThrottlingException", 400, "Rate exceeded"), seen
    # The SDK retries it as throttling (its name is in the SDK's list), after a delay.
    assert seen["attempts"] == 3 and seen["totalRetryDelay"] > 0, seen
    assert len(throttled(proxy, "a")[before:]) == 3
