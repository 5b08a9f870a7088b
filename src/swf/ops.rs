//! The 39 operations of Amazon SWF (API version 2012-01-25) and, for each, where its IAM
//! resource comes from. Their members are the model's (`model`, `strict`).
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
    ($($op:ident => $src:ident;)*) => {
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
        }
    };
}

operations! {
    CountClosedWorkflowExecutions => Domain;
    CountOpenWorkflowExecutions => Domain;
    CountPendingActivityTasks => Domain;
    CountPendingDecisionTasks => Domain;
    DeleteActivityType => Domain;
    DeleteWorkflowType => Domain;
    DeprecateActivityType => Domain;
    DeprecateDomain => DomainName;
    DeprecateWorkflowType => Domain;
    DescribeActivityType => Domain;
    DescribeDomain => DomainName;
    DescribeWorkflowExecution => Domain;
    DescribeWorkflowType => Domain;
    GetWorkflowExecutionHistory => Domain;
    ListActivityTypes => Domain;
    ListClosedWorkflowExecutions => Domain;
    ListDomains => AllDomains;
    ListOpenWorkflowExecutions => Domain;
    ListTagsForResource => ResourceArn;
    ListWorkflowTypes => Domain;
    PollForActivityTask => Domain;
    PollForDecisionTask => Domain;
    RecordActivityTaskHeartbeat => TaskToken;
    RegisterActivityType => Domain;
    RegisterDomain => DomainName;
    RegisterWorkflowType => Domain;
    RequestCancelWorkflowExecution => Domain;
    RespondActivityTaskCanceled => TaskToken;
    RespondActivityTaskCompleted => TaskToken;
    RespondActivityTaskFailed => TaskToken;
    RespondDecisionTaskCompleted => TaskToken;
    SignalWorkflowExecution => Domain;
    StartWorkflowExecution => Domain;
    TagResource => ResourceArn;
    TerminateWorkflowExecution => Domain;
    UndeprecateActivityType => Domain;
    UndeprecateDomain => DomainName;
    UndeprecateWorkflowType => Domain;
    UntagResource => ResourceArn;
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

    /// Whether the model lists `LimitExceededFault` among the operation's errors (the
    /// refusal for a call over a quota's `max_in_flight`; `ThrottlingException` elsewhere).
    pub fn may_exceed_limits(self) -> bool {
        matches!(
            self,
            Operation::ListTagsForResource
                | Operation::PollForActivityTask
                | Operation::PollForDecisionTask
                | Operation::RegisterActivityType
                | Operation::RegisterDomain
                | Operation::RegisterWorkflowType
                | Operation::StartWorkflowExecution
                | Operation::TagResource
                | Operation::UntagResource
        )
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
    fn only_the_polls_issue_task_tokens() {
        let issuing: Vec<Operation> = Operation::ALL
            .iter()
            .copied()
            .filter(|op| op.issues_task_token())
            .collect();
        assert_eq!(
            issuing,
            [
                Operation::PollForActivityTask,
                Operation::PollForDecisionTask
            ]
        );
    }

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
