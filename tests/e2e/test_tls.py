"""The proxy's TLS listener with real TLS clients: boto3 verifying a test CA, and curl (HTTP/1.1
and HTTP/2 by ALPN). The certificate is made here with openssl, for 127.0.0.1 only."""

import json
import os
import subprocess
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, TENANTS, binary, free_port, wait_for


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_proxy(moto, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=swf-warden test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    (d / "policies").mkdir()
    t = TENANTS["a"]
    (d / "policies" / "a.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Own", "Effect": "Allow", "Action": "swf:*", "Resource": f"arn:aws:swf:*:{ACCOUNT}:/domain/{t['domain']}"}]}))
    port, admin = free_port(), free_port()
    (d / "config.toml").write_text(f"""
[listen]
address = "127.0.0.1:{port}"
tls_cert = "server.pem"
tls_key = "server.key"
[service]
region = "{REGION}"
account_id = "{ACCOUNT}"
[upstream]
endpoint = "{moto}"
access_key_id = "AKIDUPSTREAM"
secret_access_key = "moto-accepts-anything"
[task_tokens]
keys = [{{ id = "tls", secret = "tls-token-key-0123456789abcdefghijklmn" }}]
[audit]
path = "audit.log"
[admin]
address = "127.0.0.1:{admin}"
[[principal]]
name = "{t['name']}"
access_key_id = "{t['key']}"
secret_access_key = "{t['secret']}"
policies = ["a"]
""")
    log = open(d / "proxy.log", "w")
    process = subprocess.Popen([binary(), "serve", "--config", str(d / "config.toml")], stdout=log, stderr=log)
    try:
        wait_for(f"http://127.0.0.1:{admin}/healthz", process, "swf-warden (TLS)")
        yield {"endpoint": f"https://127.0.0.1:{port}", "ca": str(d / "ca.pem"), "dir": d}
    finally:
        process.terminate()
        process.wait(timeout=30)


def tls_client(proxy, verify):
    t = TENANTS["a"]
    return boto3.client("swf", endpoint_url=proxy["endpoint"], region_name=REGION, verify=verify,
                        aws_access_key_id=t["key"], aws_secret_access_key=t["secret"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def test_boto3_over_tls_with_the_test_ca(tls_proxy, domains):
    swf = tls_client(tls_proxy, tls_proxy["ca"])
    info = swf.describe_domain(name=TENANTS["a"]["domain"])
    assert info["domainInfo"]["name"] == TENANTS["a"]["domain"]
    with pytest.raises(ClientError) as caught:
        swf.describe_domain(name=TENANTS["b"]["domain"])
    assert caught.value.response["Error"]["Code"] == "OperationNotPermittedFault"


@pytest.mark.parametrize("version,alpn", [("--http1.1", "http/1.1"), ("--http2", "h2")])
def test_curl_over_tls(tls_proxy, version, alpn):
    done = subprocess.run(["curl", "-sS", "-v", version, "--cacert", tls_proxy["ca"], "-X", "POST",
                           "-H", "Content-Type: application/x-amz-json-1.0", "--data", "{}", tls_proxy["endpoint"] + "/"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"ALPN: server accepted {alpn}" in done.stderr, done.stderr
    body = json.loads(done.stdout)
    assert body["__type"] == "com.amazon.coral.service#MissingAuthenticationTokenException"
