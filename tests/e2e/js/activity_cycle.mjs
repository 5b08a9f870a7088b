// A whole activity cycle with the AWS SDK for JavaScript v3 through swf-warden, then one call
// with another tenant's task token. Run by tests/e2e/test_js.py, which passes in the
// environment: ENDPOINT, DOMAIN, WORKFLOW_ID, FOREIGN_TOKEN and the tenant's AWS_* credentials.
// Prints one JSON line with what it saw; any unexpected error fails the process.
import {
  SWFClient,
  StartWorkflowExecutionCommand,
  PollForDecisionTaskCommand,
  RespondDecisionTaskCompletedCommand,
  PollForActivityTaskCommand,
  RecordActivityTaskHeartbeatCommand,
  RespondActivityTaskCompletedCommand,
  DescribeWorkflowExecutionCommand,
  OperationNotPermittedFault,
} from "@aws-sdk/client-swf";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const domain = env("DOMAIN");
const workflowId = env("WORKFLOW_ID");
const swf = new SWFClient({ endpoint: env("ENDPOINT"), region: "us-east-1", maxAttempts: 1 });
const deciders = { name: `deciders-${workflowId}` };
const workers = { name: `workers-${workflowId}` };

const { runId } = await swf.send(new StartWorkflowExecutionCommand({
  domain, workflowId, workflowType: { name: "flow", version: "1" }, taskList: deciders,
}));
const first = await swf.send(new PollForDecisionTaskCommand({ domain, taskList: deciders }));
await swf.send(new RespondDecisionTaskCompletedCommand({
  taskToken: first.taskToken,
  decisions: [{
    decisionType: "ScheduleActivityTask",
    scheduleActivityTaskDecisionAttributes: {
      activityType: { name: "work", version: "1" }, activityId: `act-${workflowId}`, taskList: workers,
    },
  }],
}));
const task = await swf.send(new PollForActivityTaskCommand({ domain, taskList: workers }));
const beat = await swf.send(new RecordActivityTaskHeartbeatCommand({ taskToken: task.taskToken, details: "50%" }));
await swf.send(new RespondActivityTaskCompletedCommand({ taskToken: task.taskToken, result: "done" }));
const second = await swf.send(new PollForDecisionTaskCommand({ domain, taskList: deciders }));
await swf.send(new RespondDecisionTaskCompletedCommand({
  taskToken: second.taskToken, decisions: [{ decisionType: "CompleteWorkflowExecution" }],
}));
const described = await swf.send(new DescribeWorkflowExecutionCommand({
  domain, execution: { workflowId, runId },
}));

// Another tenant's task token: refused, as the SDK's modeled exception class.
let foreign = null;
try {
  await swf.send(new RecordActivityTaskHeartbeatCommand({ taskToken: env("FOREIGN_TOKEN") }));
  foreign = { refused: false };
} catch (error) {
  foreign = {
    refused: true,
    modeled: error instanceof OperationNotPermittedFault,
    name: error.name,
    status: error.$metadata?.httpStatusCode,
    requestId: error.$metadata?.requestId,
    message: error.message,
  };
}

console.log(JSON.stringify({
  decisionToken: first.taskToken,
  activityToken: task.taskToken,
  cancelRequested: beat.cancelRequested,
  secondEvents: second.events.map((e) => e.eventType),
  status: described.executionInfo.executionStatus,
  closeStatus: described.executionInfo.closeStatus,
  foreign,
}));
