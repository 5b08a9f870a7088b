"""No keys in the pod: boto3 and the AWS CLI get credentials from the proxy's STS through
their standard web-identity provider (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
AWS_ENDPOINT_URL_STS), then work in their namespace's domain through it and are refused in
another's."""

import json
import os
import shutil
import subprocess
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import BIN_DIR, ROLE_ARN, TENANTS, audit_records, service_account_token, web_identity_env
from test_flows import start_and_schedule

A, B = TENANTS["a"]["domain"], TENANTS["b"]["domain"]


def pod_session(monkeypatch, proxy, token_file, session="pod-1"):
    """A boto3 session as a pod has it: nothing but the web-identity environment (for the
    rest of the test: the SDK reads it when it first needs credentials)."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in web_identity_env(proxy, token_file, session).items():
        monkeypatch.setenv(name, value)
    return boto3.session.Session()


def test_boto3_heartbeat_cycle_on_credentials_from_the_proxy(proxy, domains, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(service_account_token(A))
    session = pod_session(monkeypatch, proxy, token_file)
    credentials = session.get_credentials().get_frozen_credentials()
    assert credentials.access_key.startswith("ASIA"), "temporary credentials, from the proxy"
    assert credentials.token, "with a session token"
    swf = session.client("swf", endpoint_url=proxy["endpoint"], config=Config(retries={"max_attempts": 1}))
    wf = f"sts-{uuid.uuid4().hex[:8]}"
    _, token = start_and_schedule(swf, A, wf, task_list=f"workers-{wf}")
    assert swf.record_activity_task_heartbeat(taskToken=token, details="1/2")["cancelRequested"] is False
    swf.respond_activity_task_completed(taskToken=token, result="done")

    with pytest.raises(ClientError) as refused:
        swf.describe_domain(name=B)
    error = refused.value.response["Error"]
    assert error["Code"] == "OperationNotPermittedFault"
    assert "assumed-role/swf-worker/pod-1" in error["Message"], error

    issued = [r for r in audit_records(proxy) if r["decision"] == "issued"]
    assert any(r["issued"]["accessKeyId"] == credentials.access_key for r in issued), issued
    assert all(r["principal"] is None and r["webIdentity"]["subject"].endswith(":swf-worker") for r in issued), issued
    assert credentials.secret_key not in proxy["audit"].read_text()


def test_aws_cli_gets_a_session_and_is_kept_to_its_namespace(proxy, domains, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(service_account_token(B))
    env = web_identity_env(proxy, token_file, session="cli-pod")
    aws = shutil.which("aws", path=str(BIN_DIR)) or "aws"
    run = lambda *args: subprocess.run([aws, "--output", "json", *args], env=env, capture_output=True, text=True, timeout=60)
    who = run("sts", "get-caller-identity")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"].endswith(":assumed-role/swf-worker/cli-pod")
    mine = run("--endpoint-url", proxy["endpoint"], "swf", "describe-domain", "--name", B)
    assert mine.returncode == 0, mine.stderr
    theirs = run("--endpoint-url", proxy["endpoint"], "swf", "describe-domain", "--name", A)
    assert theirs.returncode != 0 and "(OperationNotPermittedFault)" in theirs.stderr, theirs.stderr


def test_a_token_for_another_account_or_expired_gets_no_credentials(proxy, domains, tmp_path, monkeypatch):
    for what, token, code in [
        ("another service account", service_account_token(A, account="default"), "AccessDenied"),
        ("expired", service_account_token(A, exp=1_600_000_000), "ExpiredTokenException"),
        ("another audience", service_account_token(A, aud="sts.amazonaws.com"), "InvalidIdentityToken"),
    ]:
        token_file = tmp_path / "token"
        token_file.write_text(token)
        sts = pod_session(monkeypatch, proxy, token_file).client("sts", endpoint_url=proxy["endpoint"], region_name="us-east-1")
        with pytest.raises(ClientError) as refused:
            sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="pod-1", WebIdentityToken=token)
        assert refused.value.response["Error"]["Code"] == code, (what, refused.value.response)
        request_id = refused.value.response["ResponseMetadata"]["RequestId"]
        records = [r for r in audit_records(proxy) if r["requestId"] == request_id]
        assert records and records[0]["errorCode"] == code, (what, records)
