//! Decisions for `RespondDecisionTaskCompleted`, built with the AWS SDK's types, and a
//! decision task's token from the fake upstream.

use aws_sdk_swf::types::{
    ActivityType, CompleteWorkflowExecutionDecisionAttributes, Decision, DecisionType,
    ScheduleActivityTaskDecisionAttributes, TaskList,
};

/// Schedules the activity type `name` (version 1).
pub fn schedule(name: &str) -> Decision {
    Decision::builder()
        .decision_type(DecisionType::ScheduleActivityTask)
        .schedule_activity_task_decision_attributes(
            ScheduleActivityTaskDecisionAttributes::builder()
                .activity_type(
                    ActivityType::builder()
                        .name(name)
                        .version("1")
                        .build()
                        .unwrap(),
                )
                .activity_id(format!("act-{name}"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Completes the workflow.
pub fn complete() -> Decision {
    Decision::builder()
        .decision_type(DecisionType::CompleteWorkflowExecution)
        .complete_workflow_execution_decision_attributes(
            CompleteWorkflowExecutionDecisionAttributes::builder()
                .result("ok")
                .build(),
        )
        .build()
        .unwrap()
}

/// A decision task's token on tenant-a's task list `deciders`.
pub async fn decision_token(client: &aws_sdk_swf::Client) -> String {
    let task = client
        .poll_for_decision_task()
        .domain("tenant-a")
        .task_list(TaskList::builder().name("deciders").build().unwrap())
        .send()
        .await
        .unwrap();
    task.task_token().to_owned()
}
