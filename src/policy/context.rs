//! The request context that conditions and policy variables read: IAM's global keys for the
//! caller, and the SWF keys taken from the request (or the decision) they belong to.
//!
//! Building a `Context` costs nothing but a few references; values are looked up only when a
//! condition or variable asks, so statements without either never pay for them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::actions::Action;

/// The global keys swf-warden supplies (lowercase). `aws:principaltag/…` is a family.
pub const GLOBAL_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:currenttime",
    "aws:epochtime",
    "aws:securetransport",
    "aws:username",
    "aws:userid",
    "aws:principalarn",
    "aws:principaltype",
    "aws:requestedregion",
];

/// Who is calling.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The principal's name: a user's, or for a role session the role's.
    pub name: &'a str,
    /// The ARN messages name: a user's, or a session's assumed-role ARN.
    pub arn: &'a str,
    pub tags: &'a BTreeMap<String, String>,
    /// A role session's particulars; `None` for a user.
    pub session: Option<RoleSession<'a>>,
}

/// A role session as IAM's keys see it.
#[derive(Debug, Clone, Copy)]
pub struct RoleSession<'a> {
    /// The role's ARN (`aws:PrincipalArn`).
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub name: &'a str,
}

/// Everything a condition may ask about one authorization request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub caller: Caller<'a>,
    pub action: Action,
    /// The input members the SWF keys come from: the request's, or the decision's attributes.
    pub input: Option<&'a Map<String, Value>>,
    pub source_ip: Option<IpAddr>,
    pub now: SystemTime,
    pub secure_transport: bool,
    pub region: &'a str,
    /// Values given by hand (`explain --context`, test cases), lowercase keys; they win.
    pub overrides: Option<&'a BTreeMap<String, Vec<String>>>,
}

/// The global keys as IAM writes them, in `GLOBAL_KEYS`' order.
const GLOBAL_NAMES: &[&str] = &[
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SecureTransport",
    "aws:username",
    "aws:userid",
    "aws:PrincipalArn",
    "aws:PrincipalType",
    "aws:RequestedRegion",
];

/// The keys that derive from who the caller is (its name, ARN and type): a replay takes them
/// from the configuration it replays under, not from the record.
pub fn derives_from_caller(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "aws:username" | "aws:userid" | "aws:principalarn" | "aws:principaltype"
    )
}

/// The tag an `aws:PrincipalTag/<tag>` key (prefix in any case) names.
pub fn principal_tag(key: &str) -> Option<&str> {
    let prefix = key.get(..17)?;
    prefix
        .eq_ignore_ascii_case("aws:PrincipalTag/")
        .then(|| &key[17..])
}

/// Whether `key` (any case) is one swf-warden can supply for some action.
pub fn is_known_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if GLOBAL_KEYS.contains(&key.as_str()) {
        return true;
    }
    if let Some(tag) = key.strip_prefix("aws:principaltag/") {
        return !tag.is_empty();
    }
    match key.strip_prefix("swf:") {
        Some(swf) => Action::all().any(|a| a.swf_key(swf).is_some()),
        None => false,
    }
}

/// Whether `action` ever carries `key` (global keys: always).
pub fn action_carries(action: Action, key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    match key.strip_prefix("swf:") {
        Some(swf) => action.swf_key(swf).is_some(),
        None => is_known_key(&key),
    }
}

impl Context<'_> {
    /// Every condition key the request presents, by the names IAM writes them with, and its
    /// values: the global keys, the caller's tags (`aws:PrincipalTag/…`), and the SWF keys
    /// its action carries that the input holds (what an audit record's `context` keeps, so
    /// that the decision can be made again later).
    pub fn presented(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for (key, name) in GLOBAL_KEYS.iter().zip(GLOBAL_NAMES) {
            if let Some(values) = self.get_lowercase(key) {
                out.insert((*name).to_owned(), values);
            }
        }
        for tag in self.caller.tags.keys() {
            let name = format!("aws:PrincipalTag/{tag}");
            if let Some(values) = self.get(&name) {
                out.insert(name, values);
            }
        }
        out.append(&mut self.presented_swf());
        out
    }

    /// The SWF keys the action carries that the input holds, by their IAM names.
    pub fn presented_swf(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for key in self.action.swf_keys() {
            let name = format!("swf:{key}");
            if let Some(values) = self.get(&name) {
                out.insert(name, values);
            }
        }
        out
    }

    /// The values of `key` (case-insensitive), or `None` when the request does not carry it.
    pub fn get(&self, key: &str) -> Option<Vec<String>> {
        self.get_lowercase(&key.to_ascii_lowercase())
    }

    /// `get` of a key already in lowercase.
    fn get_lowercase(&self, key: &str) -> Option<Vec<String>> {
        if let Some(values) = self.overrides.and_then(|o| o.get(key)) {
            return Some(values.clone());
        }
        let one = |v: String| Some(vec![v]);
        match key {
            "aws:sourceip" => self.source_ip.and_then(|ip| one(ip.to_string())),
            "aws:currenttime" => one(crate::audit::rfc3339(self.now)),
            "aws:epochtime" => one(self
                .now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string()),
            "aws:securetransport" => one(self.secure_transport.to_string()),
            // IAM's keys for role sessions: no user name, `role:session` as the user id
            // (the role's name stands for its unique id), the role as the principal.
            "aws:username" => match self.caller.session {
                None => one(self.caller.name.to_owned()),
                Some(_) => None,
            },
            "aws:userid" => match self.caller.session {
                None => one(self.caller.name.to_owned()),
                Some(s) => one(format!("{}:{}", self.caller.name, s.name)),
            },
            "aws:principalarn" => match self.caller.session {
                None => one(self.caller.arn.to_owned()),
                Some(s) => one(s.role_arn.to_owned()),
            },
            "aws:principaltype" => match self.caller.session {
                None => one("User".to_owned()),
                Some(_) => one("AssumedRole".to_owned()),
            },
            "aws:requestedregion" => one(self.region.to_owned()),
            _ => {
                if let Some(tag) = key.strip_prefix("aws:principaltag/") {
                    // Tag keys are case-insensitive in IAM.
                    return self
                        .caller
                        .tags
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                        .and_then(|(_, v)| one(v.clone()));
                }
                let swf = key.strip_prefix("swf:")?;
                let path = self.action.swf_key(swf)?;
                lookup(self.input?, path).map(|v| vec![v])
            }
        }
    }
}

/// Follows a modeled key path such as `taskList.name` or `tagList.member.2` through the input,
/// by exact member names: a member that differs in case is another member (and strict input
/// refuses it before any condition runs). Strings and numbers are values; anything else is
/// absent.
fn lookup(input: &Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut current = input.get(first)?;
    while let Some(part) = parts.next() {
        current = if part == "member" {
            let index: usize = parts.next()?.parse().ok()?;
            current.as_array()?.get(index)?
        } else {
            current.as_object()?.get(part)?
        };
    }
    match current {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swf::Operation;
    use serde_json::json;

    fn context<'a>(
        action: Action,
        input: Option<&'a Map<String, Value>>,
        tags: &'a BTreeMap<String, String>,
    ) -> Context<'a> {
        Context {
            caller: Caller {
                name: "alice",
                arn: "arn:aws:iam::123456789012:user/alice",
                tags,
                session: None,
            },
            action,
            input,
            source_ip: Some("127.0.0.1".parse().unwrap()),
            now: UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            secure_transport: false,
            region: "us-east-1",
            overrides: None,
        }
    }

    #[test]
    fn global_keys() {
        let tags = BTreeMap::from([("Team".to_owned(), "a".to_owned())]);
        let c = context(Action::Operation(Operation::ListDomains), None, &tags);
        assert_eq!(c.get("aws:username"), Some(vec!["alice".into()]));
        assert_eq!(c.get("AWS:SourceIp"), Some(vec!["127.0.0.1".into()]));
        assert_eq!(c.get("aws:EpochTime"), Some(vec!["1700000000".into()]));
        assert_eq!(
            c.get("aws:CurrentTime"),
            Some(vec!["2023-11-14T22:13:20.000Z".into()])
        );
        assert_eq!(c.get("aws:SecureTransport"), Some(vec!["false".into()]));
        assert_eq!(c.get("aws:RequestedRegion"), Some(vec!["us-east-1".into()]));
        assert_eq!(c.get("aws:PrincipalTag/team"), Some(vec!["a".into()]));
        assert_eq!(c.get("aws:PrincipalTag/other"), None);
        assert_eq!(c.get("aws:MultiFactorAuthPresent"), None);
    }

    #[test]
    fn swf_keys_only_on_actions_that_carry_them() {
        let input = json!({"domain": "d", "taskList": {"name": "work"}, "tagList": ["x", "y"],
                           "workflowType": {"name": "flow", "version": "1"}});
        let input = input.as_object().unwrap();
        let tags = BTreeMap::new();
        let start = context(
            Action::Operation(Operation::StartWorkflowExecution),
            Some(input),
            &tags,
        );
        assert_eq!(start.get("swf:taskList.name"), Some(vec!["work".into()]));
        assert_eq!(start.get("swf:tagList.member.1"), Some(vec!["y".into()]));
        assert_eq!(start.get("swf:tagList.member.2"), None);
        assert_eq!(
            start.get("swf:workflowType.version"),
            Some(vec!["1".into()])
        );
        let poll = context(
            Action::Operation(Operation::RecordActivityTaskHeartbeat),
            Some(input),
            &tags,
        );
        assert_eq!(
            poll.get("swf:taskList.name"),
            None,
            "heartbeats carry no task list key"
        );
    }

    #[test]
    fn swf_keys_read_exact_member_names() {
        // Strict input refuses such a body before any condition runs; the lookup itself never
        // takes a case variant for the modeled member either.
        let input = json!({"TaskList": {"name": "public"}, "taskList": {"Name": "public"}});
        let tags = BTreeMap::new();
        let poll = context(
            Action::Operation(Operation::PollForActivityTask),
            Some(input.as_object().unwrap()),
            &tags,
        );
        assert_eq!(poll.get("swf:taskList.name"), None);
        let input = json!({"TaskList": {"name": "public"}, "taskList": {"name": "private"}});
        let poll = Context {
            input: Some(input.as_object().unwrap()),
            ..poll
        };
        assert_eq!(poll.get("SWF:TASKLIST.NAME"), Some(vec!["private".into()]));
        // Strings and numbers are values; anything else is absent.
        for (name, value) in [
            (json!(7), Some(vec!["7".to_owned()])),
            (json!(true), None),
            (json!({"x": 1}), None),
        ] {
            let input = json!({"taskList": {"name": name}});
            let poll = Context {
                input: Some(input.as_object().unwrap()),
                ..poll
            };
            assert_eq!(poll.get("swf:taskList.name"), value, "{input}");
        }
    }

    #[test]
    fn presented_keys_are_every_key_the_request_carries_by_iam_names() {
        for (key, name) in GLOBAL_KEYS.iter().zip(GLOBAL_NAMES) {
            assert_eq!(*key, name.to_ascii_lowercase());
        }
        assert_eq!(GLOBAL_KEYS.len(), GLOBAL_NAMES.len());
        let tags = BTreeMap::from([("Team".to_owned(), "a".to_owned())]);
        let input = json!({"taskList": {"name": "work"}, "domain": "d"});
        let c = context(
            Action::Operation(Operation::PollForActivityTask),
            Some(input.as_object().unwrap()),
            &tags,
        );
        let presented = c.presented();
        let names: Vec<&str> = presented.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "aws:CurrentTime",
                "aws:EpochTime",
                "aws:PrincipalArn",
                "aws:PrincipalTag/Team",
                "aws:PrincipalType",
                "aws:RequestedRegion",
                "aws:SecureTransport",
                "aws:SourceIp",
                "aws:userid",
                "aws:username",
                "swf:taskList.name",
            ]
        );
        // Each value is what a condition on the key reads.
        for (name, values) in &presented {
            assert_eq!(c.get(name).as_ref(), Some(values), "{name}");
        }
        assert!(
            principal_tag("AWS:principaltag/Team") == Some("Team")
                && principal_tag("aws:x").is_none()
        );
        assert!(derives_from_caller("AWS:UserName") && !derives_from_caller("aws:SourceIp"));
    }

    #[test]
    fn known_keys() {
        assert!(is_known_key("swf:taskList.name") && is_known_key("aws:PrincipalTag/x"));
        assert!(
            !is_known_key("swf:nothing")
                && !is_known_key("aws:MultiFactorAuthPresent")
                && !is_known_key("aws:PrincipalTag/")
        );
        assert!(action_carries(
            Action::Operation(Operation::PollForActivityTask),
            "swf:tasklist.name"
        ));
        assert!(!action_carries(
            Action::Operation(Operation::RecordActivityTaskHeartbeat),
            "swf:taskList.name"
        ));
    }
}
