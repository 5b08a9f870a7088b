// One CountPendingDecisionTasks call over the tenant's quota, with the SDK's standard retries
// (3 attempts). Run by tests/e2e/test_quotas.py with ENDPOINT, DOMAIN and the tenant's AWS_*
// credentials. Prints one JSON line: how the SDK classified the refusal and how often it tried.
import { SWFClient, CountPendingDecisionTasksCommand } from "@aws-sdk/client-swf";

const swf = new SWFClient({ endpoint: process.env.ENDPOINT, region: "us-east-1", maxAttempts: 3 });
try {
  await swf.send(new CountPendingDecisionTasksCommand({
    domain: process.env.DOMAIN, taskList: { name: "throttled-js" },
  }));
  console.log(JSON.stringify({ refused: false }));
} catch (e) {
  console.log(JSON.stringify({
    refused: true,
    name: e.name,
    status: e.$metadata?.httpStatusCode,
    attempts: e.$metadata?.attempts,
    totalRetryDelay: e.$metadata?.totalRetryDelay,
    message: e.message,
  }));
}
