"""Complete SWF flows through swf-warden on a real backend (moto), with boto3 and the AWS
CLI, for two tenants: each works in its own domain and is refused, and audited, in the other."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, TENANTS, audit_for, aws_cli, client

A, B = TENANTS["a"]["domain"], TENANTS["b"]["domain"]


def arn(domain):
    return f"arn:aws:swf:us-east-1:{ACCOUNT}:/domain/{domain}"


def refused(proxy, call, code="OperationNotPermittedFault"):
    """Runs `call`, expects `code`, returns the matching audit record."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["Error"]["Code"] == code, response
    return audit_for(proxy, response["ResponseMetadata"]["RequestId"])


def start_and_schedule(swf, domain, workflow_id, task_list="workers"):
    """Starts a workflow, answers its first decision task by scheduling an activity, and
    returns the sealed decision and activity task tokens."""
    # A decider task list per workflow, so tasks left by other tests never interfere.
    swf.start_workflow_execution(domain=domain, workflowId=workflow_id, workflowType={"name": "flow", "version": "1"},
                                 taskList={"name": f"deciders-{workflow_id}"})
    decision = swf.poll_for_decision_task(domain=domain, taskList={"name": f"deciders-{workflow_id}"})
    assert decision["taskToken"].startswith("sw1."), "decision tokens are sealed"
    assert decision["workflowExecution"]["workflowId"] == workflow_id
    swf.respond_decision_task_completed(taskToken=decision["taskToken"], decisions=[{
        "decisionType": "ScheduleActivityTask",
        "scheduleActivityTaskDecisionAttributes": {
            "activityType": {"name": "work", "version": "1"},
            "activityId": f"act-{workflow_id}",
            "taskList": {"name": task_list},
        },
    }])
    activity = swf.poll_for_activity_task(domain=domain, taskList={"name": task_list})
    assert activity["taskToken"].startswith("sw1."), "activity tokens are sealed"
    assert activity["activityId"] == f"act-{workflow_id}"
    return decision["taskToken"], activity["taskToken"]


@pytest.mark.parametrize("tenant", ["a", "b"])
def test_boto3_complete_flow(proxy, domains, tenant):
    swf = client(proxy, tenant)
    domain = domains[tenant]
    wf = f"wf-{uuid.uuid4().hex[:8]}"
    _, token = start_and_schedule(swf, domain, wf, task_list=f"workers-{wf}")
    beat = swf.record_activity_task_heartbeat(taskToken=token, details="50%")
    assert beat["cancelRequested"] is False
    swf.respond_activity_task_completed(taskToken=token, result="done")
    decision = swf.poll_for_decision_task(domain=domain, taskList={"name": f"deciders-{wf}"})
    types = [e["eventType"] for e in decision["events"]]
    assert "ActivityTaskCompleted" in types, types
    swf.respond_decision_task_completed(taskToken=decision["taskToken"], decisions=[{"decisionType": "CompleteWorkflowExecution"}])
    info = swf.describe_workflow_execution(domain=domain, execution={"workflowId": wf, "runId": decision["workflowExecution"]["runId"]})
    assert info["executionInfo"]["executionStatus"] == "CLOSED"


@pytest.mark.parametrize("me,other", [("a", "b"), ("b", "a")])
def test_isolation_both_ways(proxy, domains, me, other):
    mine, theirs = client(proxy, me), client(proxy, other)
    target = domains[other]
    wf = f"wf-{uuid.uuid4().hex[:8]}"
    _, their_token = start_and_schedule(theirs, target, wf, task_list=f"workers-{wf}")
    me_name = TENANTS[me]["name"]

    calls = {
        "DescribeDomain": lambda: mine.describe_domain(name=target),
        "PollForActivityTask": lambda: mine.poll_for_activity_task(domain=target, taskList={"name": "workers"}),
        "StartWorkflowExecution": lambda: mine.start_workflow_execution(domain=target, workflowId="intruder", workflowType={"name": "flow", "version": "1"}),
        "RecordActivityTaskHeartbeat": lambda: mine.record_activity_task_heartbeat(taskToken=their_token),
        "RespondActivityTaskCompleted": lambda: mine.respond_activity_task_completed(taskToken=their_token, result="stolen"),
    }
    for action, call in calls.items():
        record = refused(proxy, call)
        assert record["decision"] == "implicitDeny", record
        assert record["cause"] == "OPERATION_NOT_PERMITTED"
        assert record["action"] == f"swf:{action}"
        assert record["resource"] == arn(target)
        assert record["principal"]["name"] == me_name
        assert record["principal"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/{me_name}"
        assert record["sourceIp"] == "127.0.0.1"
        assert "Boto3" in record["userAgent"] or "botocore" in record["userAgent"]
        assert record["message"].startswith(f"User: arn:aws:iam::{ACCOUNT}:user/{me_name} is not authorized to perform: swf:{action} on resource: {arn(target)}")
        assert their_token not in json.dumps(record), "no whole token in the audit log"
    # The owner's token still works: the refusals changed nothing upstream.
    theirs.record_activity_task_heartbeat(taskToken=their_token)
    theirs.respond_activity_task_completed(taskToken=their_token, result="done")


def test_tampered_and_unsealed_tokens(proxy, domains):
    swf = client(proxy, "a")
    wf = f"wf-{uuid.uuid4().hex[:8]}"
    _, token = start_and_schedule(swf, A, wf, task_list=f"workers-{wf}")
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for bad in (flipped, token[:-6], "AAAA-not-sealed"):
        record = refused(proxy, lambda: swf.record_activity_task_heartbeat(taskToken=bad))
        assert record["decision"] == "invalidRequest"
        assert record["cause"] == "OPERATION_NOT_PERMITTED"
        assert len(record["taskTokenFingerprint"]) == 12
    swf.respond_activity_task_completed(taskToken=token, result="done")


def test_guardrail_deny_beats_allow(proxy, domains):
    swf = client(proxy, "a")
    wf = f"wf-{uuid.uuid4().hex[:8]}"
    swf.start_workflow_execution(domain=A, workflowId=wf, workflowType={"name": "flow", "version": "1"})
    record = refused(proxy, lambda: swf.terminate_workflow_execution(domain=A, workflowId=wf))
    assert record["decision"] == "explicitDeny"
    assert record["matchedStatements"] == [{"policy": "guardrails", "sid": "NeverTerminate"}]


def test_authentication_and_validation_errors(proxy, domains):
    wrong = client(proxy, "a")
    wrong._request_signer._credentials.secret_key = "wrong"
    record = refused(proxy, lambda: wrong.list_domains(registrationStatus="REGISTERED"), "InvalidSignatureException")
    assert record["decision"] == "authFailed" and record["principal"] is None

    import boto3
    unknown = boto3.client("swf", endpoint_url=proxy["endpoint"], region_name="us-east-1",
                           aws_access_key_id="AKIAUNKNOWN000000001", aws_secret_access_key="x")
    refused(proxy, lambda: unknown.list_domains(registrationStatus="REGISTERED"), "UnrecognizedClientException")

    swf = client(proxy, "a")
    record = refused(proxy, lambda: swf.describe_domain(name="e2e:tenant-a"), "ValidationException")
    assert record["decision"] == "invalidRequest" and "resource" not in record


def test_aws_cli_flow_and_refusals(proxy, domains):
    wf = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = aws_cli(proxy, "a", "swf", "start-workflow-execution", "--domain", A, "--workflow-id", wf,
                             "--workflow-type", "name=flow,version=1", "--task-list", f"name=deciders-{wf}")
    assert code == 0, err
    code, out, err = aws_cli(proxy, "a", "swf", "poll-for-decision-task", "--domain", A, "--task-list", f"name=deciders-{wf}")
    assert code == 0, err
    decision = json.loads(out)["taskToken"]
    assert decision.startswith("sw1.")
    decisions = json.dumps([{"decisionType": "ScheduleActivityTask", "scheduleActivityTaskDecisionAttributes": {
        "activityType": {"name": "work", "version": "1"}, "activityId": f"act-{wf}", "taskList": {"name": f"workers-{wf}"}}}])
    code, _, err = aws_cli(proxy, "a", "swf", "respond-decision-task-completed", "--task-token", decision, "--decisions", decisions)
    assert code == 0, err
    code, out, err = aws_cli(proxy, "a", "swf", "poll-for-activity-task", "--domain", A, "--task-list", f"name=workers-{wf}")
    assert code == 0, err
    token = json.loads(out)["taskToken"]
    code, out, err = aws_cli(proxy, "a", "swf", "record-activity-task-heartbeat", "--task-token", token, "--details", "half")
    assert code == 0 and json.loads(out)["cancelRequested"] is False, err

    # Tenant B, through the CLI, with A's token and on A's domain.
    code, _, err = aws_cli(proxy, "b", "swf", "record-activity-task-heartbeat", "--task-token", token)
    assert code != 0 and "(OperationNotPermittedFault)" in err, err
    code, _, err = aws_cli(proxy, "b", "swf", "describe-domain", "--name", A)
    assert code != 0 and "(OperationNotPermittedFault)" in err and "because no identity-based policy allows" in err, err

    code, _, err = aws_cli(proxy, "a", "swf", "respond-activity-task-completed", "--task-token", token, "--result", "done")
    assert code == 0, err
