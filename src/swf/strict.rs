//! Strict input: a request body parsed and checked against the SWF model in one pass (SPEC,
//! "Strict input").
//!
//! The upstream reads member names its own way (case-insensitively, first or last of two
//! equal keys, with or without Unicode case folding), so a body that could be read two ways
//! must never be forwarded: the proxy would authorize one reading and SWF execute the other.
//! Here every member at every depth must be a modeled member of its shape, spelled exactly,
//! present once, and of the modeled JSON type; anything else is a fatal
//! `SerializationException`. Lengths, enums, ranges and required members are collected as
//! `ValidationException` details, as AWS reports them. Depth is bounded by the model (five
//! levels) and, before that, by serde_json's recursion limit.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::model::{Kind, Model, ShapeId};
use crate::error::excerpt;

/// At most this many validation details are written out; the rest are only counted, so a
/// body of a hundred thousand violations cannot grow the answer and its audit record with it.
const MAX_DETAILS: usize = 10;

/// The validation problems of one body.
#[derive(Debug, Default)]
pub struct Problems {
    /// The first `MAX_DETAILS`, in AWS's wording.
    pub details: Vec<String>,
    /// How many there are in all.
    pub count: usize,
}

impl Problems {
    /// Counts one problem; `detail` renders it only if it will be shown.
    fn push(&mut self, detail: impl FnOnce() -> String) {
        self.count += 1;
        if self.details.len() < MAX_DETAILS {
            self.details.push(detail());
        }
    }
}

/// Parses `bytes` as the input of shape `shape`. On success, returns the value and the
/// validation problems (none when valid).
pub fn parse(
    model: &Model,
    shape: ShapeId,
    bytes: &[u8],
) -> Result<(Value, Problems), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut problems = Problems::default();
    let value = Checked {
        model,
        shape,
        path: &Path::Root,
        problems: &mut problems,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, problems))
}

/// Where a value sits, rendered only when a message needs it, in AWS's form
/// (`decisions.1.member.decisionType`).
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(parent, index) => write!(f, "{parent}.{}.member", index + 1),
        }
    }
}

/// Deserializes one value of `shape` at `path`.
struct Checked<'m, 'p, 'e> {
    model: &'m Model,
    shape: ShapeId,
    path: &'p Path<'p>,
    problems: &'e mut Problems,
}

impl<'de> DeserializeSeed<'de> for Checked<'_, '_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Checked<'_, '_, '_> {
    fn kind(&self) -> &Kind {
        &self.model.shape(self.shape).kind
    }

    /// A value of the wrong JSON type: fatal, as in AWS.
    fn wrong_type<E: de::Error>(&self, found: &str) -> E {
        let expected = match self.kind() {
            Kind::Structure { .. } => "an object",
            Kind::List { .. } => "a list",
            Kind::String { .. } => "a string",
            Kind::Integer { .. } => "an integer",
            Kind::Boolean => "a boolean",
            Kind::Timestamp => "a number of epoch seconds",
        };
        E::custom(format_args!(
            "member '{}' must be {expected}, not {found}",
            self.at()
        ))
    }

    fn at(&self) -> String {
        match self.path {
            Path::Root => "(the request)".to_owned(),
            path => path.to_string(),
        }
    }

    /// Counts one problem; `value` renders the value only if the detail will be shown.
    fn problem(&mut self, value: impl FnOnce() -> String, constraint: fmt::Arguments<'_>) {
        self.problems.count += 1;
        if self.problems.details.len() < MAX_DETAILS {
            self.problems.details.push(format!(
                "Value '{}' at '{}' failed to satisfy constraint: Member must {constraint}",
                value(),
                self.path
            ));
        }
    }

    /// Checks a length against the model's bounds; `shown` renders the value only when a
    /// message needs it.
    fn length(
        &mut self,
        shown: impl Fn() -> String + Copy,
        len: u64,
        min: Option<u64>,
        max: Option<u64>,
    ) {
        if let Some(min) = min.filter(|min| len < *min) {
            self.problem(
                shown,
                format_args!("have length greater than or equal to {min}"),
            );
        }
        if let Some(max) = max.filter(|max| len > *max) {
            self.problem(
                shown,
                format_args!("have length less than or equal to {max}"),
            );
        }
    }

    fn integer<E: de::Error>(mut self, v: i128) -> Result<Value, E> {
        match *self.kind() {
            Kind::Integer { min, max } => {
                if let Some(min) = min.filter(|min| v < i128::from(*min)) {
                    self.problem(
                        || v.to_string(),
                        format_args!("have value greater than or equal to {min}"),
                    );
                }
                if let Some(max) = max.filter(|max| v > i128::from(*max)) {
                    self.problem(
                        || v.to_string(),
                        format_args!("have value less than or equal to {max}"),
                    );
                }
            }
            Kind::Timestamp => {}
            _ => return Err(self.wrong_type("a number")),
        }
        // Within i64 or u64: serde_json gave it as one of them.
        Ok(i64::try_from(v).map_or_else(|_| Value::from(v as u64), Value::from))
    }
}

impl<'de> Visitor<'de> for Checked<'_, '_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of shape {}", self.model.shape(self.shape).name)
    }

    /// `null` stands for an absent member, as in AWS's JSON protocol; a required one is
    /// reported by its structure.
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.kind() {
            Kind::Boolean => Ok(Value::Bool(v)),
            _ => Err(self.wrong_type("a boolean")),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.integer(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.integer(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.kind() {
            Kind::Timestamp => Ok(Value::from(v)),
            _ => Err(self.wrong_type("a fractional number")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.visit_string(v.to_owned())
    }

    fn visit_string<E: de::Error>(mut self, v: String) -> Result<Value, E> {
        let model = self.model;
        let shape = model.shape(self.shape);
        let Kind::String {
            min,
            max,
            values,
            sealed,
        } = &shape.kind
        else {
            return Err(self.wrong_type("a string"));
        };
        if *sealed {
            return Ok(Value::String(v));
        }
        let shown = || excerpt(&v.escape_default().to_string());
        self.length(shown, v.chars().count() as u64, *min, *max);
        if let Some(values) = values.as_ref().filter(|values| !values.contains(&v)) {
            let list = values.join(", ");
            self.problem(shown, format_args!("satisfy enum value set: [{list}]"));
        }
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let Kind::List { member, min, max } = *self.kind() else {
            return Err(self.wrong_type("a list"));
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Checked {
            model: self.model,
            shape: member,
            path: &Path::Item(self.path, items.len()),
            problems: &mut *self.problems,
        })? {
            if item.is_null() {
                // A list holds values; `null` in one means nothing AWS defines.
                return Err(de::Error::custom(format_args!(
                    "member '{}' must not be null",
                    Path::Item(self.path, items.len())
                )));
            }
            items.push(item);
        }
        let len = items.len();
        self.length(|| format!("[{len} items]"), len as u64, min, max);
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let model = self.model;
        let Kind::Structure { members } = &model.shape(self.shape).kind else {
            return Err(self.wrong_type("an object"));
        };
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Some(member) = members.iter().find(|m| m.name == key) else {
                return Err(unknown_member(&key, self.path, members));
            };
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member '{}'",
                    Path::Member(self.path, &key)
                )));
            }
            let value = map.next_value_seed(Checked {
                model: self.model,
                shape: member.shape,
                path: &Path::Member(self.path, &member.name),
                problems: &mut *self.problems,
            })?;
            out.insert(key, value);
        }
        for member in members.iter().filter(|m| m.required) {
            if out.get(&member.name).is_none_or(Value::is_null) {
                let path = Path::Member(self.path, &member.name);
                self.problems.push(|| {
                    format!("Value null at '{path}' failed to satisfy constraint: Member must not be null")
                });
            }
        }
        Ok(Value::Object(out))
    }
}

/// A member the shape does not define, naming the modeled one it imitates, if any.
fn unknown_member<E: de::Error>(key: &str, path: &Path<'_>, members: &[super::model::Member]) -> E {
    let folded = fold(key);
    let shown = excerpt(&key.escape_default().to_string());
    let at = match path {
        Path::Root => String::new(),
        path => format!(" in '{path}'"),
    };
    match members.iter().find(|m| fold(&m.name) == folded) {
        Some(m) => E::custom(format_args!(
            "unknown member '{shown}'{at}: member names are case-sensitive, and the modeled one is '{}'",
            m.name
        )),
        None => E::custom(format_args!("unknown member '{shown}'{at}")),
    }
}

/// A caseless form for messages only (never for matching): Unicode lowercase with the
/// dotless and long-s variants folded as a lax reader might fold them.
fn fold(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ı' => 'i',
            'ſ' => 's',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swf::Operation;

    fn check(op: Operation, body: &str) -> Result<(Value, Vec<String>), String> {
        let model = Model::get();
        parse(model, model.input(op), body.as_bytes())
            .map(|(value, problems)| (value, problems.details))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_modeled_body_passes_unchanged() {
        let body = r#"{"domain":"d","taskList":{"name":"t"},"identity":"w"}"#;
        let (value, problems) = check(Operation::PollForActivityTask, body).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(value, serde_json::from_str::<Value>(body).unwrap());
    }

    #[test]
    fn decoy_members_are_refused_at_every_depth() {
        for (op, body, decoy) in [
            (
                Operation::PollForDecisionTask,
                r#"{"domain":"tenant-c","taskList":{"name":"private-tl"},"TaskList":{"name":"public-tl"}}"#,
                "'TaskList'",
            ),
            (
                Operation::PollForDecisionTask,
                r#"{"domain":"d","taskList":{"name":"private","Name":"public"}}"#,
                "'Name' in 'taskList'",
            ),
            (
                Operation::PollForActivityTask,
                r#"{"doma\u0131n":"b","domain":"a","taskList":{"name":"t"}}"#,
                "'doma\\u{131}n'",
            ),
            (
                Operation::PollForActivityTask,
                r#"{"domain":"a","ta\u017fkList":{"name":"x"},"taskList":{"name":"t"}}"#,
                "'ta\\u{17f}kList'",
            ),
            (
                Operation::StartWorkflowExecution,
                r#"{"domain":"d","workflowId":"w","workflowType":{"name":"a","version":"1","Name":"b"}}"#,
                "'Name' in 'workflowType'",
            ),
            (
                Operation::StartWorkflowExecution,
                r#"{"domain":"d","workflowId":"w","workflowType":{"name":"a","version":"1"},"tagList":["a"],"TagList":["b"]}"#,
                "'TagList'",
            ),
            (
                Operation::RespondDecisionTaskCompleted,
                r#"{"taskToken":"t","decisions":[{"decisionType":"ScheduleActivityTask","scheduleActivityTaskDecisionAttributes":{"activityType":{"name":"a","version":"1"},"activityId":"i","taskList":{"name":"private"},"TaskList":{"name":"public"}}}]}"#,
                "'TaskList' in 'decisions.1.member.scheduleActivityTaskDecisionAttributes'",
            ),
        ] {
            let err = check(op, body).unwrap_err();
            assert!(
                err.contains(&format!("unknown member {decoy}")),
                "{body}: {err}"
            );
        }
    }

    #[test]
    fn a_case_variant_names_the_modeled_member() {
        let err = check(Operation::DescribeDomain, r#"{"Name":"d"}"#).unwrap_err();
        assert!(err.contains("the modeled one is 'name'"), "{err}");
        for (body, modeled) in [
            (r#"{"domain":"d","TASKLIST":{"name":"t"}}"#, "'taskList'"),
            (r#"{"taskList":{"name":"t"},"doma\u0131n":"d"}"#, "'domain'"),
            (
                r#"{"domain":"d","taskList":{"name":"t"},"Identity":"w"}"#,
                "'identity'",
            ),
        ] {
            let err = check(Operation::PollForActivityTask, body).unwrap_err();
            assert!(
                err.contains(&format!("the modeled one is {modeled}")),
                "{body}: {err}"
            );
        }
        // A member that imitates none is only unknown.
        let err = check(
            Operation::PollForActivityTask,
            r#"{"domain":"d","extra":1}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("unknown member 'extra'"), "{err}");
        assert!(!err.contains("modeled"), "{err}");
    }

    #[test]
    fn booleans_are_accepted_where_modeled() {
        for reverse in ["true", "false"] {
            let body = format!(r#"{{"registrationStatus":"REGISTERED","reverseOrder":{reverse}}}"#);
            let (value, problems) = check(Operation::ListDomains, &body).unwrap();
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(value["reverseOrder"], reverse == "true");
        }
    }

    #[test]
    fn wrong_types_and_duplicates_are_fatal() {
        for body in [
            r#"{"domain":5,"taskList":{"name":"t"}}"#,
            r#"{"domain":"d","taskList":"t"}"#,
            r#"{"domain":"d","taskList":{"name":["t"]}}"#,
            r#"{"domain":"d","taskList":{"name":"t"},"identity":true}"#,
            r#"{"domain":"d","domain":"d","taskList":{"name":"t"}}"#,
            r#"{"domain":"d","taskList":{"name":"t","name":"u"}}"#,
            r#"[]"#,
        ] {
            assert!(
                check(Operation::PollForActivityTask, body).is_err(),
                "{body}"
            );
        }
        assert!(check(
            Operation::RespondDecisionTaskCompleted,
            r#"{"taskToken":"t","decisions":[null]}"#
        )
        .is_err());
        assert!(check(
            Operation::ListDomains,
            r#"{"registrationStatus":"REGISTERED","maximumPageSize":1.5}"#
        )
        .is_err());
        assert!(check(
            Operation::ListDomains,
            r#"{"registrationStatus":"REGISTERED","reverseOrder":"true"}"#
        )
        .is_err());
    }

    #[test]
    fn lengths_enums_ranges_and_required_members_are_validation_problems() {
        let (_, problems) = check(
            Operation::ListDomains,
            r#"{"registrationStatus":"registered","maximumPageSize":1001}"#,
        )
        .unwrap();
        assert_eq!(
            problems,
            [
                "Value 'registered' at 'registrationStatus' failed to satisfy constraint: Member must satisfy enum value set: [REGISTERED, DEPRECATED]",
                "Value '1001' at 'maximumPageSize' failed to satisfy constraint: Member must have value less than or equal to 1000",
            ]
        );
        let long = "x".repeat(257);
        let (_, problems) = check(
            Operation::PollForActivityTask,
            &format!(r#"{{"domain":"{long}","taskList":{{}}}}"#),
        )
        .unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].ends_with("Member must have length less than or equal to 256"));
        assert_eq!(
            problems[1],
            "Value null at 'taskList.name' failed to satisfy constraint: Member must not be null"
        );
        let (_, problems) = check(
            Operation::StartWorkflowExecution,
            r#"{"domain":"d","workflowId":"w","workflowType":{"name":"a","version":"1"},"tagList":["1","2","3","4","5","6"]}"#,
        )
        .unwrap();
        assert_eq!(problems, ["Value '[6 items]' at 'tagList' failed to satisfy constraint: Member must have length less than or equal to 5"]);
        let (_, problems) = check(
            Operation::RespondDecisionTaskCompleted,
            r#"{"taskToken":"t","decisions":[{"decisionType":"StartTimer"},{}]}"#,
        )
        .unwrap();
        assert_eq!(
            problems,
            ["Value null at 'decisions.2.member.decisionType' failed to satisfy constraint: Member must not be null"]
        );
    }

    /// A wrong type names where it is: the member's path, or the request itself.
    #[test]
    fn a_wrong_type_names_its_place() {
        let err = check(Operation::PollForActivityTask, r#"{"domain":5}"#).unwrap_err();
        assert!(
            err.contains("member 'domain' must be a string, not"),
            "{err}"
        );
        let err = check(Operation::PollForActivityTask, "[]").unwrap_err();
        assert!(
            err.contains("member '(the request)' must be an object"),
            "{err}"
        );
    }

    /// Every problem is counted; the first ten are described.
    #[test]
    fn problems_past_ten_are_counted_not_described() {
        let model = Model::get();
        let shape = model.input(Operation::RespondDecisionTaskCompleted);
        for n in [1, 9, 10, 11, 12] {
            let decisions = vec!["{}"; n].join(",");
            let body = format!(r#"{{"taskToken":"t","decisions":[{decisions}]}}"#);
            let (_, problems) = parse(model, shape, body.as_bytes()).unwrap();
            assert_eq!(problems.count, n);
            assert_eq!(problems.details.len(), n.min(MAX_DETAILS));
            // The same for problems with a value (an enum here), counted and described alike.
            let decisions = vec![r#"{"decisionType":"Bogus"}"#; n].join(",");
            let body = format!(r#"{{"taskToken":"t","decisions":[{decisions}]}}"#);
            let (_, problems) = parse(model, shape, body.as_bytes()).unwrap();
            assert_eq!(problems.count, n);
            assert_eq!(problems.details.len(), n.min(MAX_DETAILS));
            assert!(
                problems.details[0].contains("Value 'Bogus'"),
                "{:?}",
                problems.details
            );
        }
    }

    /// Number ranges are inclusive at both bounds (a page size is 0 to 1000).
    #[test]
    fn the_bounds_of_a_range_are_allowed() {
        let page = |size: i64| {
            let body = format!(r#"{{"registrationStatus":"REGISTERED","maximumPageSize":{size}}}"#);
            check(Operation::ListDomains, &body).unwrap().1
        };
        assert_eq!(page(0), Vec::<String>::new());
        assert_eq!(page(1000), Vec::<String>::new());
        assert_eq!(page(-1), ["Value '-1' at 'maximumPageSize' failed to satisfy constraint: Member must have value greater than or equal to 0"]);
        assert_eq!(page(1001).len(), 1);
    }

    /// Lengths are inclusive at both bounds.
    #[test]
    fn the_bounds_of_a_length_are_allowed() {
        for len in [1, 256] {
            let body = format!(
                r#"{{"domain":"{}","taskList":{{"name":"t"}}}}"#,
                "x".repeat(len)
            );
            let (_, problems) = check(Operation::PollForActivityTask, &body).unwrap();
            assert!(problems.is_empty(), "{len}: {problems:?}");
        }
        let (_, problems) = check(
            Operation::PollForActivityTask,
            r#"{"domain":"","taskList":{"name":"t"}}"#,
        )
        .unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].ends_with("have length greater than or equal to 1"));
    }

    #[test]
    fn the_task_token_is_not_held_to_the_upstream_length() {
        let token = "s".repeat(2000);
        let (_, problems) = check(
            Operation::RecordActivityTaskHeartbeat,
            &format!(r#"{{"taskToken":"{token}"}}"#),
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn timestamps_are_numbers() {
        let ok = r#"{"domain":"d","startTimeFilter":{"oldestDate":1700000000.5}}"#;
        assert!(check(Operation::CountOpenWorkflowExecutions, ok).is_ok());
        let whole = r#"{"domain":"d","startTimeFilter":{"oldestDate":1700000000}}"#;
        assert!(check(Operation::CountOpenWorkflowExecutions, whole).is_ok());
        let bad = r#"{"domain":"d","startTimeFilter":{"oldestDate":"2023-11-14"}}"#;
        assert!(check(Operation::CountOpenWorkflowExecutions, bad).is_err());
    }
}
