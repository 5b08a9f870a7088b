"""Fixtures for the end-to-end suite: moto_server as the SWF upstream, the real swf-warden
binary in front of it, and clients signing as the proxy's tenants. Loopback only."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
# The test identity provider: the checked-in test-only RSA key signs its tokens.
OIDC_FIXTURES = ROOT / "tests" / "fixtures" / "oidc"
OIDC_ISSUER = "https://cluster.e2e"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/swf-worker"

TENANTS = {
    "a": {"name": "tenant-a-worker", "key": "AKIATENANTA000000001", "secret": "tenant-a-e2e-secret", "domain": "e2e-tenant-a"},
    "b": {"name": "tenant-b-worker", "key": "AKIATENANTB000000001", "secret": "tenant-b-e2e-secret", "domain": "e2e-tenant-b"},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, process, what):
    """Polls `url` until it answers; fails early if `process` died. Bounded to 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up at {url}")


def binary():
    path = os.environ.get("SWF_WARDEN_BIN") or str(ROOT / "target" / "debug" / "swf-warden")
    if not Path(path).exists():
        raise RuntimeError(f"build the proxy first (cargo build): {path} is missing")
    return path


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    process = subprocess.Popen([str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        wait_for(f"http://127.0.0.1:{port}/moto-api/", process, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def proxy_env():
    """The environment the proxy's configuration reads its secrets from."""
    env = dict(os.environ, E2E_TOKEN_KEY="e2e-token-key-0123456789abcdefghijkl",
               E2E_SESSION_KEY="e2e-session-key-0123456789abcdefghij", RUST_LOG="warn")
    for k, t in TENANTS.items():
        env[f"E2E_SECRET_{k.upper()}"] = t["secret"]
    return env


@pytest.fixture(scope="session")
def proxy(moto, tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxy")
    (folder / "policies").mkdir()
    for t in TENANTS.values():
        (folder / "policies" / f"{t['name']}.json").write_text(json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "OwnDomain",
                "Effect": "Allow",
                "Action": "swf:*",
                "Resource": f"arn:aws:swf:*:{ACCOUNT}:/domain/{t['domain']}",
            }],
        }))
    (folder / "policies" / "guardrails.toml").write_text(
        'Version = "2012-10-17"\n[[Statement]]\nSid = "NeverTerminate"\nEffect = "Deny"\n'
        'Action = "swf:TerminateWorkflowExecution"\nResource = "*"\n'
    )
    # test_sts.py: one policy for every namespace's sessions.
    (folder / "policies" / "namespace-domains.toml").write_text(
        'Version = "2012-10-17"\n[[Statement]]\nSid = "OwnNamespace"\nEffect = "Allow"\nAction = "swf:*"\n'
        f'Resource = "arn:aws:swf:*:{ACCOUNT}:/domain/${{aws:PrincipalTag/namespace}}"\n'
    )
    jwk = json.loads((OIDC_FIXTURES / "rsa-2048.jwk.json").read_text())
    (folder / "cluster-jwks.json").write_text(json.dumps({"keys": [jwk]}))
    # test_audit_chain.py: checkpoints signed with a key made by `swf-warden audit keygen`.
    subprocess.run([binary(), "audit", "keygen", "--out", str(folder / "keys"), "--id", "e2e"], check=True,
                   capture_output=True, timeout=30)
    port, admin = free_port(), free_port()
    principals = "".join(
        f'\n[[principal]]\nname = "{t["name"]}"\naccess_key_id = "{t["key"]}"\n'
        f'secret_access_key_env = "E2E_SECRET_{k.upper()}"\ngroups = ["tenants"]\npolicies = ["{t["name"]}"]\n'
        for k, t in TENANTS.items()
    )
    (folder / "config.toml").write_text(f"""
[listen]
address = "127.0.0.1:{port}"
[service]
region = "{REGION}"
account_id = "{ACCOUNT}"
[upstream]
endpoint = "{moto}"
access_key_id = "AKIDUPSTREAM"
secret_access_key = "moto-accepts-anything"
[task_tokens]
keys = [{{ id = "e2e", secret_env = "E2E_TOKEN_KEY" }}]
[audit]
path = "audit.log"
include_allowed = true
signing_key_file = "keys/e2e.key"
checkpoint_every = 10
[admin]
address = "127.0.0.1:{admin}"
[policies]
dir = "policies"
[[group]]
name = "tenants"
policies = ["guardrails"]
{principals}
# test_sts.py: pods exchange their service-account tokens for sessions.
[sts]
session_keys = [{{ id = "e2e", secret_env = "E2E_SESSION_KEY" }}]
[[oidc_provider]]
name = "cluster"
issuer = "{OIDC_ISSUER}"
audiences = ["swf-warden"]
jwks_file = "cluster-jwks.json"
[[role]]
name = "swf-worker"
provider = "cluster"
subjects = ["system:serviceaccount:*:swf-worker"]
session_tags = {{ namespace = "kubernetes.io.namespace" }}
groups = ["tenants"]
policies = ["namespace-domains"]
# test_quotas.py: one call each, then throttled (the bucket refills once in 1,000 s).
[[quota]]
name = "counting"
actions = ["swf:CountPendingDecisionTasks"]
groups = ["tenants"]
per = "principal"
rate_per_second = 0.001
burst = 1
""")
    env = proxy_env()
    log = open(folder / "proxy.log", "w")
    process = subprocess.Popen([binary(), "serve", "--config", str(folder / "config.toml")], env=env, stdout=log, stderr=log)
    try:
        wait_for(f"http://127.0.0.1:{admin}/healthz", process, "swf-warden")
        yield {"endpoint": f"http://127.0.0.1:{port}", "audit": folder / "audit.log", "log": folder / "proxy.log",
               "config": folder / "config.toml",
               "admin": f"http://127.0.0.1:{admin}", "public_key": folder / "keys" / "e2e.pub"}
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, "swf-warden stops cleanly on SIGTERM"
        log.close()
        text = (folder / "proxy.log").read_text() + (folder / "audit.log").read_text()
        for t in TENANTS.values():
            assert t["secret"] not in text, "no secret in logs or audit"


def client(proxy, tenant):
    t = TENANTS[tenant]
    return boto3.client(
        "swf",
        endpoint_url=proxy["endpoint"],
        region_name=REGION,
        aws_access_key_id=t["key"],
        aws_secret_access_key=t["secret"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def swf_a(proxy):
    return client(proxy, "a")


@pytest.fixture
def swf_b(proxy):
    return client(proxy, "b")


@pytest.fixture(scope="session")
def domains(proxy):
    """Each tenant registers its domain and types through the proxy."""
    for tenant in ("a", "b"):
        domain = TENANTS[tenant]["domain"]
        swf = client(proxy, tenant)
        swf.register_domain(name=domain, workflowExecutionRetentionPeriodInDays="1")
        swf.register_workflow_type(
            domain=domain, name="flow", version="1",
            defaultTaskList={"name": "deciders"}, defaultChildPolicy="TERMINATE",
            defaultExecutionStartToCloseTimeout="600", defaultTaskStartToCloseTimeout="60",
        )
        swf.register_activity_type(
            domain=domain, name="work", version="1", defaultTaskList={"name": "workers"},
            defaultTaskStartToCloseTimeout="600", defaultTaskHeartbeatTimeout="120",
            defaultTaskScheduleToStartTimeout="600", defaultTaskScheduleToCloseTimeout="900",
        )
    return {"a": TENANTS["a"]["domain"], "b": TENANTS["b"]["domain"]}


def audit_records(proxy):
    """The records (lines with a `decision`: not the log's first line, nor checkpoints)."""
    path = proxy["audit"]
    if not path.exists():
        return []
    lines = (json.loads(line) for line in path.read_text().splitlines())
    return [r for r in lines if "decision" in r]


def audit_for(proxy, request_id):
    matches = [r for r in audit_records(proxy) if r["requestId"] == request_id]
    assert len(matches) == 1, f"exactly one audit record for {request_id}"
    return matches[0]


def aws_cli(proxy, tenant, *args):
    """Runs the AWS CLI as `tenant` against the proxy; returns (exit code, stdout, stderr)."""
    t = TENANTS[tenant]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": t["key"],
        "AWS_SECRET_ACCESS_KEY": t["secret"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
    }
    aws = shutil.which("aws", path=str(BIN_DIR)) or "aws"
    done = subprocess.run([aws, "--endpoint-url", proxy["endpoint"], "--output", "json", *args], env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def service_account_token(namespace, account="swf-worker", **changes):
    """A projected service-account token for `account` in `namespace`, signed RS256 with the
    test provider's key (by openssl), with `changes` applied to its claims."""
    now = int(time.time())
    claims = {
        "iss": OIDC_ISSUER, "aud": ["swf-warden"], "sub": f"system:serviceaccount:{namespace}:{account}",
        "iat": now, "nbf": now, "exp": now + 3600,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": account}},
    }
    claims.update(changes)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(OIDC_FIXTURES / "rsa-2048.pem")],
                               input=signing_input.encode(), capture_output=True, check=True, timeout=30).stdout
    return signing_input + "." + b64(signature)


def web_identity_env(proxy, token_file, session="pod-1"):
    """The environment a Kubernetes pod's SDK finds: a role, a token file, the STS endpoint
    (the proxy), and no key anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ROLE_ARN": ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_SESSION_NAME": session,
        "AWS_ENDPOINT_URL_STS": proxy["endpoint"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env
