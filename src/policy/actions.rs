//! The IAM action space for SWF: the 39 operations, plus the 13 decision pseudo-actions that
//! SWF authorizes inside `RespondDecisionTaskCompleted` (`swf:ScheduleActivityTask`, …),
//! and `sts:AssumeRole`, which the proxy's STS authorizes on a role's ARN.
//! Each action has a dense index, for the per-statement bit sets, and the SWF condition keys
//! it carries (SWF developer guide, "API summary" of IAM access control).

use crate::swf::Operation;

macro_rules! decisions {
    ($($kind:ident),* $(,)?) => {
        /// A decision type inside `RespondDecisionTaskCompleted` (the model's `DecisionType`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DecisionKind { $($kind),* }

        impl DecisionKind {
            pub const ALL: &'static [DecisionKind] = &[$(DecisionKind::$kind),*];

            pub fn name(self) -> &'static str {
                match self { $(DecisionKind::$kind => stringify!($kind)),* }
            }

            pub fn iam_action(self) -> &'static str {
                match self { $(DecisionKind::$kind => concat!("swf:", stringify!($kind))),* }
            }

            pub fn from_name(name: &str) -> Option<DecisionKind> {
                match name { $(stringify!($kind) => Some(DecisionKind::$kind),)* _ => None }
            }
        }
    };
}

decisions! {
    ScheduleActivityTask,
    ScheduleLambdaFunction,
    RequestCancelActivityTask,
    CompleteWorkflowExecution,
    FailWorkflowExecution,
    CancelWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    RecordMarker,
    StartTimer,
    CancelTimer,
    SignalExternalWorkflowExecution,
    RequestCancelExternalWorkflowExecution,
    StartChildWorkflowExecution,
}

impl DecisionKind {
    /// The member holding this decision's attributes, e.g. `scheduleActivityTaskDecisionAttributes`.
    pub fn attributes_member(self) -> String {
        let name = self.name();
        let mut out = String::with_capacity(name.len() + 18);
        out.push_str(&name[..1].to_ascii_lowercase());
        out.push_str(&name[1..]);
        out.push_str("DecisionAttributes");
        out
    }
}

/// Something a policy can allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Operation(Operation),
    Decision(DecisionKind),
    /// `sts:AssumeRole` on a role's ARN: a principal trading its key for a role session.
    AssumeRole,
}

impl Action {
    /// Every action: operations first, then decisions, then `sts:AssumeRole`.
    pub fn all() -> impl Iterator<Item = Action> {
        Operation::ALL
            .iter()
            .map(|o| Action::Operation(*o))
            .chain(DecisionKind::ALL.iter().map(|d| Action::Decision(*d)))
            .chain(std::iter::once(Action::AssumeRole))
    }

    /// Dense index: operations `0..39`, decisions after them, `sts:AssumeRole` last.
    pub fn index(self) -> usize {
        match self {
            Action::Operation(op) => op.index(),
            Action::Decision(d) => Operation::ALL.len() + d as usize,
            Action::AssumeRole => Operation::ALL.len() + DecisionKind::ALL.len(),
        }
    }

    /// `swf:<Name>`, or `sts:AssumeRole`.
    pub fn iam_action(self) -> &'static str {
        match self {
            Action::Operation(op) => op.iam_action(),
            Action::Decision(d) => d.iam_action(),
            Action::AssumeRole => "sts:AssumeRole",
        }
    }

    /// The SWF condition keys (without `swf:`) this action carries, each the exact path of
    /// modeled member names it is read from.
    pub fn swf_keys(self) -> &'static [&'static str] {
        use DecisionKind as D;
        use Operation as O;
        const TASK_LIST: &[&str] = &["taskList.name"];
        const ACTIVITY_TYPE: &[&str] = &["activityType.name", "activityType.version"];
        const WORKFLOW_TYPE: &[&str] = &["workflowType.name", "workflowType.version"];
        const FILTERS: &[&str] = &["tagFilter.tag", "typeFilter.name", "typeFilter.version"];
        const REGISTER: &[&str] = &["defaultTaskList.name", "name", "version"];
        const START: &[&str] = &[
            "tagList.member.0",
            "tagList.member.1",
            "tagList.member.2",
            "tagList.member.3",
            "tagList.member.4",
            "taskList.name",
            "workflowType.name",
            "workflowType.version",
        ];
        const CONTINUE_AS_NEW: &[&str] = &[
            "tagList.member.0",
            "tagList.member.1",
            "tagList.member.2",
            "tagList.member.3",
            "tagList.member.4",
            "taskList.name",
            "workflowType.version",
        ];
        const SCHEDULE: &[&str] = &["activityType.name", "activityType.version", "taskList.name"];
        match self {
            Action::Operation(op) => match op {
                O::CountPendingActivityTasks
                | O::CountPendingDecisionTasks
                | O::PollForActivityTask
                | O::PollForDecisionTask => TASK_LIST,
                O::DeprecateActivityType
                | O::DescribeActivityType
                | O::UndeprecateActivityType
                | O::DeleteActivityType => ACTIVITY_TYPE,
                O::DeprecateWorkflowType
                | O::DescribeWorkflowType
                | O::UndeprecateWorkflowType
                | O::DeleteWorkflowType => WORKFLOW_TYPE,
                O::CountClosedWorkflowExecutions
                | O::CountOpenWorkflowExecutions
                | O::ListClosedWorkflowExecutions
                | O::ListOpenWorkflowExecutions => FILTERS,
                O::RegisterActivityType | O::RegisterWorkflowType => REGISTER,
                O::StartWorkflowExecution => START,
                _ => &[],
            },
            Action::Decision(d) => match d {
                D::ScheduleActivityTask => SCHEDULE,
                D::StartChildWorkflowExecution => START,
                D::ContinueAsNewWorkflowExecution => CONTINUE_AS_NEW,
                _ => &[],
            },
            Action::AssumeRole => &[],
        }
    }
}

impl Action {
    /// The modeled path of the SWF condition key `key` (without `swf:`, any case), if this
    /// action carries it. Condition keys are case-insensitive in IAM; the members they read
    /// are not.
    pub fn swf_key(self, key: &str) -> Option<&'static str> {
        self.swf_keys()
            .iter()
            .copied()
            .find(|k| k.eq_ignore_ascii_case(key))
    }
}

/// How many actions there are (fits the 64-bit sets).
pub const COUNT: usize = 39 + 13 + 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_fit_a_u64() {
        let all: Vec<Action> = Action::all().collect();
        assert_eq!(all.len(), COUNT);
        const { assert!(COUNT <= 64) };
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.index(), i);
            assert_eq!(
                Action::all()
                    .filter(|b| b.iam_action() == a.iam_action())
                    .count(),
                1
            );
        }
    }

    #[test]
    fn attribute_members_follow_the_model() {
        assert_eq!(
            DecisionKind::ScheduleActivityTask.attributes_member(),
            "scheduleActivityTaskDecisionAttributes"
        );
    }

    #[test]
    fn keys_per_action() {
        assert!(Action::Operation(Operation::RecordActivityTaskHeartbeat)
            .swf_keys()
            .is_empty());
        assert_eq!(
            Action::Operation(Operation::PollForActivityTask).swf_keys(),
            ["taskList.name"]
        );
        assert!(Action::Decision(DecisionKind::ScheduleActivityTask)
            .swf_keys()
            .contains(&"activityType.name"));
    }

    /// Every action's SWF condition keys, as the SWF Developer Guide lists them ("API
    /// summary": which parameters each action's keys constrain); an action not named here
    /// carries none.
    #[test]
    fn every_action_carries_the_documented_keys() {
        use DecisionKind as D;
        use Operation as O;
        let tags = [
            "tagList.member.0",
            "tagList.member.1",
            "tagList.member.2",
            "tagList.member.3",
            "tagList.member.4",
        ];
        let with_tags = |rest: &[&'static str]| -> Vec<&'static str> {
            let mut keys: Vec<&str> = tags.to_vec();
            keys.extend_from_slice(rest);
            keys
        };
        let mut expected: Vec<(Action, Vec<&str>)> = Vec::new();
        for op in [
            O::CountPendingActivityTasks,
            O::CountPendingDecisionTasks,
            O::PollForActivityTask,
            O::PollForDecisionTask,
        ] {
            expected.push((Action::Operation(op), vec!["taskList.name"]));
        }
        for op in [
            O::DeprecateActivityType,
            O::DescribeActivityType,
            O::UndeprecateActivityType,
            O::DeleteActivityType,
        ] {
            expected.push((
                Action::Operation(op),
                vec!["activityType.name", "activityType.version"],
            ));
        }
        for op in [
            O::DeprecateWorkflowType,
            O::DescribeWorkflowType,
            O::UndeprecateWorkflowType,
            O::DeleteWorkflowType,
        ] {
            expected.push((
                Action::Operation(op),
                vec!["workflowType.name", "workflowType.version"],
            ));
        }
        for op in [
            O::CountClosedWorkflowExecutions,
            O::CountOpenWorkflowExecutions,
            O::ListClosedWorkflowExecutions,
            O::ListOpenWorkflowExecutions,
        ] {
            expected.push((
                Action::Operation(op),
                vec!["tagFilter.tag", "typeFilter.name", "typeFilter.version"],
            ));
        }
        for op in [O::RegisterActivityType, O::RegisterWorkflowType] {
            expected.push((
                Action::Operation(op),
                vec!["defaultTaskList.name", "name", "version"],
            ));
        }
        let start = with_tags(&["taskList.name", "workflowType.name", "workflowType.version"]);
        expected.push((Action::Operation(O::StartWorkflowExecution), start.clone()));
        expected.push((Action::Decision(D::StartChildWorkflowExecution), start));
        expected.push((
            Action::Decision(D::ContinueAsNewWorkflowExecution),
            with_tags(&["taskList.name", "workflowType.version"]),
        ));
        expected.push((
            Action::Decision(D::ScheduleActivityTask),
            vec!["activityType.name", "activityType.version", "taskList.name"],
        ));
        for action in Action::all() {
            let want = expected
                .iter()
                .find(|(a, _)| *a == action)
                .map_or(&[][..], |(_, keys)| keys.as_slice());
            assert_eq!(action.swf_keys(), want, "{action:?}");
        }
    }
}
