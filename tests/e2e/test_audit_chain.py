"""The audit log checked by a third party from the docs' description alone (docs/audit-log.md,
"Audit integrity"): the chain with Python's hashlib, the checkpoints' Ed25519 signatures with the
`cryptography` package, never with swf-warden's own code; then the same log through
`swf-warden audit verify`, which agrees."""

import base64
import hashlib
import json
import subprocess

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from conftest import binary


def test_a_third_party_verifies_the_chain_and_the_checkpoints(proxy, swf_a, domains):
    # Refusals (each one a record) until a checkpoint is due (every 10 lines).
    for _ in range(12):
        try:
            swf_a.describe_domain(name=domains["b"])
            raise AssertionError("tenant A described tenant B's domain")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "OperationNotPermittedFault"
    raw = proxy["audit"].read_bytes()
    lines = raw.split(b"\n")
    assert lines[-1] == b"", "the file ends with a whole line"
    lines = lines[:-1]
    public_key = load_pem_public_key(proxy["public_key"].read_bytes())

    first = json.loads(lines[0])
    log_id = first["log"]["id"]
    assert first["seq"] == 1
    assert first["prev"] == hashlib.sha256(f"swf-warden audit genesis {log_id}".encode()).hexdigest()
    checkpoints = 0
    for before, line in zip(lines, lines[1:]):
        previous, current = json.loads(before), json.loads(line)
        assert current["seq"] == previous["seq"] + 1
        assert current["prev"] == hashlib.sha256(before).hexdigest(), f"line {current['seq']} follows the line before"
        checkpoint = current.get("checkpoint")
        if checkpoint:
            assert checkpoint["log"] == log_id
            assert checkpoint["covers"] == current["seq"] - 1
            text = (f"swf-warden audit checkpoint v1\nlog: {log_id}\ncovers: {checkpoint['covers']}\n"
                    f"hash: {current['prev']}\ntime: {checkpoint['time']}\n")
            # Raises InvalidSignature if it does not verify.
            public_key.verify(base64.b64decode(checkpoint["signature"]), text.encode())
            checkpoints += 1
    assert checkpoints >= 1, "a checkpoint was written and verified"

    # swf-warden's own verifier says the same of the same bytes.
    copy = proxy["audit"].parent / "audit-copy.log"
    copy.write_bytes(raw)
    done = subprocess.run([binary(), "audit", "verify", "--json", f"--public-key=e2e={proxy['public_key']}", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["intact"] and report["log"] == log_id and report["checkpoints"] == checkpoints

    # One changed byte, and both disagree with the log.
    tampered = bytearray(raw)
    at = raw.index(b"OperationNotPermittedFault")
    tampered[at] = ord("X")
    copy.write_bytes(bytes(tampered))
    done = subprocess.run([binary(), "audit", "verify", "--json", f"--public-key=e2e={proxy['public_key']}", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert json.loads(done.stdout)["failure"]["kind"] == "changed"
