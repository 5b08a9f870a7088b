//! The statement index: evaluation looks only at the statements that can match a resource.
//!
//! A statement whose every resource pattern is an ARN with a literal resource part (the sixth
//! segment, e.g. `/domain/tenant-a`) is filed under those literals; every other statement
//! (`*`, wildcards or variables in the resource part, `NotResource`) is checked for every
//! request. With many tenants, each owning a few statements on its own domain, a decision
//! looks at one tenant's statements plus the shared ones, whatever the total.

use std::collections::HashMap;
use std::sync::Arc;

use super::compile::{ResourcePattern, Segment};
use super::Policy;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// Resource part → (policy, statement) positions, in set order.
    by_resource: HashMap<Box<str>, Vec<(u32, u32)>>,
    /// Statements every request must be checked against.
    always: Vec<(u32, u32)>,
}

impl Index {
    pub fn build(policies: &[Arc<Policy>]) -> Index {
        let mut index = Index::default();
        for (p, policy) in policies.iter().enumerate() {
            for (s, statement) in policy.compiled.iter().enumerate() {
                let at = (p as u32, s as u32);
                let literals: Option<Vec<&str>> = if statement.resources.negated {
                    None
                } else {
                    statement
                        .resources
                        .patterns
                        .iter()
                        .map(|pattern| match pattern {
                            ResourcePattern::Arn(segments) => match &segments[5] {
                                Segment::Literal(l) => Some(l.as_str()),
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect()
                };
                match literals {
                    Some(literals) => {
                        for literal in literals {
                            let list = index.by_resource.entry(literal.into()).or_default();
                            if list.last() != Some(&at) {
                                list.push(at);
                            }
                        }
                    }
                    None => index.always.push(at),
                }
            }
        }
        index
    }

    /// Calls `f` with every statement that may match `resource`, in set order.
    pub fn candidates(&self, resource: &str, mut f: impl FnMut(usize, usize)) {
        let filed = resource
            .splitn(6, ':')
            .nth(5)
            .and_then(|part| self.by_resource.get(part))
            .map_or(&[][..], Vec::as_slice);
        // Merge the two sorted lists so the matched statements keep the set's order.
        let (mut a, mut b) = (self.always.iter().peekable(), filed.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(&(p, s)) = next {
                f(p as usize, s as usize);
            }
        }
    }
}
