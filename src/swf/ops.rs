//! The 39 operations of Amazon SWF (API version 2012-01-25) and, for each, where its IAM
//! resource comes from and which top-level members the model marks as required.
//!
//! The table is checked against `swf-2012-01-25.service-2.json` by `tests/operations.rs`.

/// Where an operation's IAM resource comes from (SPEC, "Resources per operation").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceSource {
    /// The `domain` member: `arn:aws:swf:<region>:<account>:/domain/<domain>`.
    Domain,
    /// The `name` member of the domain operations themselves.
    DomainName,
    /// `ListDomains`: every domain, `…:/domain/*`.
    AllDomains,
    /// `resourceArn`, as the caller gave it.
    ResourceArn,
    /// The domain sealed into the task token.
    TaskToken,
}

macro_rules! operations {
    ($($op:ident => $src:ident, [$($req:literal),*];)*) => {
        /// One SWF API operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation { $($op),* }

        impl Operation {
            /// Every operation, in the model's (alphabetical) order.
            pub const ALL: &'static [Operation] = &[$(Operation::$op),*];

            /// The operation's name as it appears in `X-Amz-Target` and IAM actions.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$op => stringify!($op)),* }
            }

            /// The IAM action, `swf:<Name>`.
            pub fn iam_action(self) -> &'static str {
                match self { $(Operation::$op => concat!("swf:", stringify!($op))),* }
            }

            /// Looks an operation up by its exact (case-sensitive) name.
            pub fn from_name(name: &str) -> Option<Operation> {
                match name { $(stringify!($op) => Some(Operation::$op),)* _ => None }
            }

            /// Where the IAM resource of this operation comes from.
            pub fn resource_source(self) -> ResourceSource {
                match self { $(Operation::$op => ResourceSource::$src),* }
            }

            /// Top-level input members the model marks as required.
            pub fn required_members(self) -> &'static [&'static str] {
                match self { $(Operation::$op => &[$($req),*]),* }
            }
        }
    };
}

operations! {
    CountClosedWorkflowExecutions => Domain, ["domain"];
    CountOpenWorkflowExecutions => Domain, ["domain", "startTimeFilter"];
    CountPendingActivityTasks => Domain, ["domain", "taskList"];
    CountPendingDecisionTasks => Domain, ["domain", "taskList"];
    DeleteActivityType => Domain, ["domain", "activityType"];
    DeleteWorkflowType => Domain, ["domain", "workflowType"];
    DeprecateActivityType => Domain, ["domain", "activityType"];
    DeprecateDomain => DomainName, ["name"];
    DeprecateWorkflowType => Domain, ["domain", "workflowType"];
    DescribeActivityType => Domain, ["domain", "activityType"];
    DescribeDomain => DomainName, ["name"];
    DescribeWorkflowExecution => Domain, ["domain", "execution"];
    DescribeWorkflowType => Domain, ["domain", "workflowType"];
    GetWorkflowExecutionHistory => Domain, ["domain", "execution"];
    ListActivityTypes => Domain, ["domain", "registrationStatus"];
    ListClosedWorkflowExecutions => Domain, ["domain"];
    ListDomains => AllDomains, ["registrationStatus"];
    ListOpenWorkflowExecutions => Domain, ["domain", "startTimeFilter"];
    ListTagsForResource => ResourceArn, ["resourceArn"];
    ListWorkflowTypes => Domain, ["domain", "registrationStatus"];
    PollForActivityTask => Domain, ["domain", "taskList"];
    PollForDecisionTask => Domain, ["domain", "taskList"];
    RecordActivityTaskHeartbeat => TaskToken, ["taskToken"];
    RegisterActivityType => Domain, ["domain", "name", "version"];
    RegisterDomain => DomainName, ["name", "workflowExecutionRetentionPeriodInDays"];
    RegisterWorkflowType => Domain, ["domain", "name", "version"];
    RequestCancelWorkflowExecution => Domain, ["domain", "workflowId"];
    RespondActivityTaskCanceled => TaskToken, ["taskToken"];
    RespondActivityTaskCompleted => TaskToken, ["taskToken"];
    RespondActivityTaskFailed => TaskToken, ["taskToken"];
    RespondDecisionTaskCompleted => TaskToken, ["taskToken"];
    SignalWorkflowExecution => Domain, ["domain", "workflowId", "signalName"];
    StartWorkflowExecution => Domain, ["domain", "workflowId", "workflowType"];
    TagResource => ResourceArn, ["resourceArn", "tags"];
    TerminateWorkflowExecution => Domain, ["domain", "workflowId"];
    UndeprecateActivityType => Domain, ["domain", "activityType"];
    UndeprecateDomain => DomainName, ["name"];
    UndeprecateWorkflowType => Domain, ["domain", "workflowType"];
    UntagResource => ResourceArn, ["resourceArn", "tagKeys"];
}

/// The prefix of every SWF `X-Amz-Target` value.
pub const TARGET_PREFIX: &str = "SimpleWorkflowService.";

impl Operation {
    /// Resolves an `X-Amz-Target` header value. Names are case-sensitive, as in AWS.
    pub fn from_target(target: &str) -> Option<Operation> {
        target
            .strip_prefix(TARGET_PREFIX)
            .and_then(Operation::from_name)
    }

    /// A dense index, `0..ALL.len()`, for per-operation bit sets.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the answer carries a task token that the proxy must seal.
    pub fn issues_task_token(self) -> bool {
        matches!(
            self,
            Operation::PollForActivityTask | Operation::PollForDecisionTask
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_exactly() {
        assert_eq!(
            Operation::from_target("SimpleWorkflowService.RecordActivityTaskHeartbeat"),
            Some(Operation::RecordActivityTaskHeartbeat)
        );
        assert_eq!(
            Operation::from_target("SimpleWorkflowService.recordActivityTaskHeartbeat"),
            None
        );
        assert_eq!(Operation::from_target("RecordActivityTaskHeartbeat"), None);
        assert_eq!(Operation::from_target("SimpleWorkflowService."), None);
    }

    #[test]
    fn indices_are_dense() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Operation::from_name(op.name()), Some(*op));
            assert_eq!(op.iam_action(), format!("swf:{}", op.name()));
        }
    }
}
