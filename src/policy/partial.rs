//! Partial evaluation, for `policy diff` and `policy suggest`: the decision a policy set makes
//! for a subject, an action and a resource *before* any request is seen. Conditions on what
//! the subject is (its name, ARN, type, region, and a static principal's tags) are decided
//! here, exactly as `evaluate` decides them; conditions on anything a request brings (its
//! source, time, transport, SWF keys, a session's tags) leave the decision open: conditional,
//! named with its keys.

use std::collections::BTreeSet;

use super::condition::Condition;
use super::context::Context;
use super::document::Effect;
use super::{DecisionKind, PolicySet, StatementRef};

/// What a subject may do with an action on a resource, before the request is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
    /// Allowed or not depending on the request: the condition keys it depends on, and each
    /// deciding statement's effect and conditions (what two sets are compared by).
    Conditional {
        keys: BTreeSet<String>,
        conditions: BTreeSet<String>,
    },
}

impl Reach {
    /// `allowed`, `explicitDeny`, `implicitDeny` or `conditional`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reach::Allowed => DecisionKind::Allowed.as_str(),
            Reach::ExplicitDeny => DecisionKind::ExplicitDeny.as_str(),
            Reach::ImplicitDeny => DecisionKind::ImplicitDeny.as_str(),
            Reach::Conditional { .. } => "conditional",
        }
    }

    /// 0 denied, 1 conditional, 2 allowed: a change up the scale widens access.
    pub fn rank(&self) -> u8 {
        match self {
            Reach::ExplicitDeny | Reach::ImplicitDeny => 0,
            Reach::Conditional { .. } => 1,
            Reach::Allowed => 2,
        }
    }
}

/// A partial decision and the statements behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    pub reach: Reach,
    pub statements: Vec<StatementRef>,
}

impl PolicySet {
    /// IAM's evaluation with the request unknown: `fixed(key)` says whether a condition key's
    /// value is known from `ctx` already (the caller's own keys), so that its condition is
    /// decided now; any other condition leaves its statement's effect open.
    pub fn reach(
        &self,
        resource: &str,
        ctx: &Context<'_>,
        fixed: impl Fn(&str) -> bool,
    ) -> Partial {
        let bit = 1u64 << ctx.action.index();
        let (mut allows, mut denies) = (Vec::new(), Vec::new());
        let (mut open_allows, mut open_denies) = (Vec::new(), Vec::new());
        self.index().candidates(resource, |p, s| {
            let statement = &self.policies[p].compiled[s];
            if statement.actions & bit == 0 || !statement.resources.applies(resource, ctx) {
                return;
            }
            let (known, open): (Vec<_>, Vec<_>) =
                statement.conditions.iter().partition(|c| fixed(&c.key));
            if !known.iter().all(|c| c.evaluate(ctx)) {
                return;
            }
            let effect = statement.effect;
            match (effect, open.is_empty()) {
                (Effect::Deny, true) => denies.push(statement.origin.clone()),
                (Effect::Allow, true) => allows.push(statement.origin.clone()),
                (Effect::Deny, false) => {
                    open_denies.push((statement.origin.clone(), describe("Deny", &open), open));
                }
                (Effect::Allow, false) => {
                    open_allows.push((statement.origin.clone(), describe("Allow", &open), open));
                }
            }
        });
        let conditional = |open: &[&Open<'_>]| {
            let mut keys = BTreeSet::new();
            let mut conditions = BTreeSet::new();
            let mut statements = Vec::new();
            for (origin, text, open) in open {
                keys.extend(open.iter().map(|c| c.key.clone()));
                conditions.insert(text.clone());
                statements.push(origin.clone());
            }
            Partial {
                reach: Reach::Conditional { keys, conditions },
                statements,
            }
        };
        if !denies.is_empty() {
            Partial {
                reach: Reach::ExplicitDeny,
                statements: denies,
            }
        } else if !allows.is_empty() {
            if open_denies.is_empty() {
                Partial {
                    reach: Reach::Allowed,
                    statements: allows,
                }
            } else {
                conditional(&open_denies.iter().collect::<Vec<_>>())
            }
        } else if !open_allows.is_empty() {
            conditional(&open_allows.iter().chain(&open_denies).collect::<Vec<_>>())
        } else {
            // No allow, however the request turns out: a conditional deny changes nothing.
            Partial {
                reach: Reach::ImplicitDeny,
                statements: Vec::new(),
            }
        }
    }
}

/// A statement whose effect depends on the request: where it is, its effect and conditions
/// as text, and the conditions.
type Open<'a> = (StatementRef, String, Vec<&'a Condition>);

/// A statement's effect and its open conditions, as text that is equal for equal conditions
/// whatever the statement is called.
fn describe(effect: &str, open: &[&Condition]) -> String {
    let mut parts: Vec<String> = open
        .iter()
        .map(|c| {
            format!(
                "{} {} {:?}",
                c.operator_name,
                c.key.to_ascii_lowercase(),
                c.raw_values
            )
        })
        .collect();
    parts.sort();
    format!("{effect} if {}", parts.join(" and "))
}
