"""simpleflow (a Python SWF framework) runs a workflow through swf-warden unchanged: its
decider and activity worker processes poll, heartbeat, complete and decide in tenant A's
domain, signing as tenant A, and the workflow completes."""

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

from conftest import REGION, TENANTS, client

HERE = Path(__file__).resolve().parent


def heartbeats(proxy):
    """Allowed heartbeats so far, from the proxy's metrics."""
    metrics = urllib.request.urlopen(f"{proxy['admin']}/metrics", timeout=5).read().decode()
    prefix = 'swf_warden_requests_total{operation="RecordActivityTaskHeartbeat",decision="allowed"} '
    return sum(int(line[len(prefix):]) for line in metrics.splitlines() if line.startswith(prefix))


def test_simpleflow_runs_a_heartbeating_workflow_to_completion(proxy, domains):
    t = TENANTS["a"]
    workflow_id = f"wf-simpleflow-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(HERE),
        "AWS_ACCESS_KEY_ID": t["key"],
        "AWS_SECRET_ACCESS_KEY": t["secret"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_SWF": proxy["endpoint"],
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    before = heartbeats(proxy)
    done = subprocess.run(
        [sys.executable, str(HERE / "simpleflow_run.py"), "standalone",
         "--domain", domains["a"], "--workflow-id", workflow_id,
         "--nb-deciders", "1", "--nb-workers", "1", "--heartbeat", "1",
         "--input", json.dumps({"args": [20]}),
         "simpleflow_flow.IncrementThenDouble"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    swf = client(proxy, "a")
    executions = [
        e for e in swf.list_closed_workflow_executions(
            domain=domains["a"], startTimeFilter={"oldestDate": 0},
        )["executionInfos"]
        if e["execution"]["workflowId"] == workflow_id
    ]
    assert [e["closeStatus"] for e in executions] == ["COMPLETED"], executions
    run_id = executions[0]["execution"]["runId"]
    events = swf.get_workflow_execution_history(
        domain=domains["a"], execution={"workflowId": workflow_id, "runId": run_id},
    )["events"]
    completed = [e for e in events if e["eventType"] == "WorkflowExecutionCompleted"]
    assert json.loads(completed[0]["workflowExecutionCompletedEventAttributes"]["result"]) == 42
    assert heartbeats(proxy) > before, "simpleflow's worker heartbeated through the proxy"


def test_a_forked_process_drops_the_connections_it_inherited(proxy, domains):
    """The worker setup's fork hook: after a fork the child holds none of its parent's pooled
    connections (its next call opens its own), and the parent keeps them."""
    import simpleflow_run  # noqa: F401  (registers the hook)

    swf = client(proxy, "a")
    swf.describe_domain(name=domains["a"])
    pools = swf._endpoint.http_session._manager.pools
    assert len(pools) == 1, "the parent holds a kept-alive connection to the proxy"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, str(len(pools)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"0", "the child dropped the inherited connections"
    os.close(read)
    assert len(pools) == 1, "the parent keeps its own"
    swf.describe_domain(name=domains["a"])
