//! Policy documents as written: IAM's grammar in TOML or JSON, parsed and validated in one
//! pass so that every error carries its file and line.
//!
//! Validation happens while deserializing (`Statement: TryFrom<RawStatement>`), which is what
//! lets serde_json and toml attach the position of the offending statement to the error.

use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::diag::Diagnostic;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action`/`Resource` or their negations: the patterns, and whether they are negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    pub negated: bool,
    pub patterns: Vec<String>,
}

/// One `Condition` entry as written: operator, key and values (scalars as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// One validated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: Patterns,
    pub resource: Patterns,
    pub conditions: Vec<ConditionEntry>,
    /// 1-based line and column in the document (0 where the format gives none).
    pub line: usize,
    pub column: usize,
}

/// A validated document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// As written; `None` when absent (IAM then assumes 2008-10-17).
    pub version: Option<String>,
    pub statements: Vec<Statement>,
}

impl Document {
    /// The effective version.
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or(DEFAULT_VERSION)
    }

    /// Whether policy variables are enabled (Version 2012-10-17).
    pub fn variables_enabled(&self) -> bool {
        self.version() == "2012-10-17"
    }
}

/// IAM's default when `Version` is absent.
pub const DEFAULT_VERSION: &str = "2008-10-17";

/// IAM's "a value or a list of values". Hand-written rather than `#[serde(untagged)]` so that
/// an error inside the value keeps its own message.
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer};
        use serde::de::{MapAccess, SeqAccess, Visitor};

        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(StrDeserializer::<E>::new(v)).map(OneOrMany::One)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(serde::de::value::BoolDeserializer::<E>::new(v)).map(OneOrMany::One)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(serde::de::value::I64Deserializer::<E>::new(v)).map(OneOrMany::One)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(serde::de::value::U64Deserializer::<E>::new(v)).map(OneOrMany::One)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                T::deserialize(serde::de::value::F64Deserializer::<E>::new(v)).map(OneOrMany::One)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid")]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: String,
    #[serde(rename = "Action")]
    action: Option<OneOrMany<String>>,
    #[serde(rename = "NotAction")]
    not_action: Option<OneOrMany<String>>,
    #[serde(rename = "Resource")]
    resource: Option<OneOrMany<String>>,
    #[serde(rename = "NotResource")]
    not_resource: Option<OneOrMany<String>>,
    #[serde(rename = "Principal")]
    principal: Option<IgnoredAny>,
    #[serde(rename = "NotPrincipal")]
    not_principal: Option<IgnoredAny>,
    #[serde(rename = "Condition")]
    condition: Option<
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, OneOrMany<Scalar>>>,
    >,
}

/// A condition value: IAM accepts strings, numbers and booleans, all compared as text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl TryFrom<RawStatement> for Statement {
    type Error = String;

    fn try_from(raw: RawStatement) -> Result<Statement, String> {
        let sid = raw
            .sid
            .as_deref()
            .map_or(String::new(), |s| format!(" `{s}`"));
        if raw.principal.is_some() || raw.not_principal.is_some() {
            return Err(format!(
                "statement{sid}: identity-based policies must not name a `Principal`; the principal is whoever the policy is attached to"
            ));
        }
        let effect = match raw.effect.as_str() {
            "Allow" => Effect::Allow,
            "Deny" => Effect::Deny,
            other => {
                return Err(format!(
                    "statement{sid}: `Effect` must be \"Allow\" or \"Deny\", not `{other}`"
                ))
            }
        };
        let action = exactly_one(&sid, "Action", raw.action, raw.not_action)?;
        for a in &action.patterns {
            check_action(a).map_err(|e| format!("statement{sid}: {e}"))?;
        }
        let resource = exactly_one(&sid, "Resource", raw.resource, raw.not_resource)?;
        for r in &resource.patterns {
            check_resource(r).map_err(|e| format!("statement{sid}: {e}"))?;
        }
        let mut conditions = Vec::new();
        for (operator, keys) in raw.condition.unwrap_or_default() {
            if keys.is_empty() {
                return Err(format!(
                    "statement{sid}: condition operator `{operator}` names no key"
                ));
            }
            for (key, values) in keys {
                let values = values.into_vec().into_iter().map(|v| v.0).collect();
                conditions.push(ConditionEntry {
                    operator: operator.clone(),
                    key,
                    values,
                });
            }
        }
        Ok(Statement {
            sid: raw.sid,
            effect,
            action,
            resource,
            conditions,
            line: 0,
            column: 0,
        })
    }
}

fn exactly_one(
    sid: &str,
    element: &str,
    plain: Option<OneOrMany<String>>,
    negated: Option<OneOrMany<String>>,
) -> Result<Patterns, String> {
    let patterns = match (plain, negated) {
        (Some(p), None) => Patterns {
            negated: false,
            patterns: p.into_vec(),
        },
        (None, Some(n)) => Patterns {
            negated: true,
            patterns: n.into_vec(),
        },
        (Some(_), Some(_)) => {
            return Err(format!(
                "statement{sid}: give either `{element}` or `Not{element}`, not both"
            ))
        }
        (None, None) => {
            return Err(format!(
                "statement{sid}: `{element}` or `Not{element}` is required"
            ))
        }
    };
    if patterns.patterns.is_empty() {
        return Err(format!(
            "statement{sid}: `{element}` must not be an empty list"
        ));
    }
    Ok(patterns)
}

/// `*` or `service:pattern`.
fn check_action(action: &str) -> Result<(), String> {
    if action == "*" {
        return Ok(());
    }
    match action.split_once(':') {
        Some((service, name)) if !service.is_empty() && !name.is_empty() && !service.contains(['*', '?']) => Ok(()),
        _ => Err(format!("action `{action}` must be `*` or `service:Action` (for example `swf:PollForActivityTask`)")),
    }
}

/// `*` or an ARN with six segments: `arn:partition:service:region:account:resource`.
fn check_resource(resource: &str) -> Result<(), String> {
    if resource == "*" {
        return Ok(());
    }
    let segments: Vec<&str> = resource.splitn(6, ':').collect();
    if segments.len() != 6 || segments[0] != "arn" || segments[5].is_empty() {
        return Err(format!(
            "resource `{resource}` must be `*` or an ARN `arn:partition:service:region:account:resource`"
        ));
    }
    Ok(())
}

fn check_version(version: Option<String>) -> Result<Option<String>, String> {
    match version.as_deref() {
        None | Some("2012-10-17") | Some("2008-10-17") => Ok(version),
        Some(other) => Err(format!(
            "`Version` must be \"2012-10-17\" or \"2008-10-17\", not `{other}`"
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDocument {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    _id: Option<String>,
    #[serde(rename = "Statement")]
    statement: Vec<toml::Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDocument {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    _id: Option<String>,
    #[serde(rename = "Statement")]
    statement: OneOrMany<StatementDe>,
}

/// Deserializes and validates in one step, so errors carry positions.
#[derive(Deserialize)]
#[serde(try_from = "RawStatement")]
struct StatementDe(Statement);

impl TryFrom<RawStatement> for StatementDe {
    type Error = String;
    fn try_from(raw: RawStatement) -> Result<Self, String> {
        Statement::try_from(raw).map(StatementDe)
    }
}

/// Parses a TOML policy document.
pub fn parse_toml(path: &Path, source: &str) -> Result<Document, Diagnostic> {
    let doc: TomlDocument = toml::from_str(source).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        Diagnostic::at(path, source, offset, e.message().to_owned())
    })?;
    let version = check_version(doc.version).map_err(|m| Diagnostic::at(path, source, 0, m))?;
    // Each statement is validated on its own so that an error points at its `[[Statement]]`.
    let mut statements = Vec::with_capacity(doc.statement.len());
    for table in doc.statement {
        let span = table.span();
        let mut st = toml::Value::Table(table.into_inner())
            .try_into::<StatementDe>()
            .map_err(|e| Diagnostic::at(path, source, span.start, e.message().to_owned()))?
            .0;
        (st.line, st.column) = crate::diag::line_col(source, span.start);
        statements.push(st);
    }
    Ok(Document {
        version,
        statements,
    })
}

/// Parses an IAM JSON policy document. Statement lines are found by scanning for each
/// statement object's opening brace, since serde_json keeps no spans.
pub fn parse_json(path: &Path, source: &str) -> Result<Document, Diagnostic> {
    let doc: JsonDocument = serde_json::from_str(source).map_err(|e| {
        Diagnostic::line_col(path, e.line(), e.column(), strip_position(&e.to_string()))
    })?;
    let version = check_version(doc.version).map_err(|m| Diagnostic::at(path, source, 0, m))?;
    let lines = statement_lines(source);
    let statements = doc
        .statement
        .into_vec()
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut st = s.0;
            (st.line, st.column) = lines.get(i).copied().unwrap_or((0, 0));
            st
        })
        .collect();
    Ok(Document {
        version,
        statements,
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Lines of the objects directly inside the top-level `"Statement"` value (one object or an
/// array of them). Runs only on JSON that serde_json has already accepted, so it needs to
/// understand strings and nesting and nothing more.
fn statement_lines(source: &str) -> Vec<(usize, usize)> {
    let bytes = source.as_bytes();
    let mut lines = Vec::new();
    let mut depth = 0usize;
    // The last string seen directly in the top-level object (a key, or a value).
    let mut last_string: Option<&str> = None;
    // The depth just inside the `Statement` array, while the scan is in it.
    let mut array_depth: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 {
                    last_string = source.get(start..i);
                }
            }
            open @ (b'{' | b'[') => {
                if depth == 1 && last_string == Some("Statement") {
                    if open == b'{' {
                        lines.push(crate::diag::line_col(source, i));
                    } else {
                        array_depth = Some(depth + 1);
                    }
                    last_string = None;
                } else if open == b'{' && array_depth == Some(depth) {
                    lines.push(crate::diag::line_col(source, i));
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if array_depth.is_some_and(|d| depth < d) {
                    array_depth = None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("p.toml")
    }

    const TOML: &str = r#"Version = "2012-10-17"

[[Statement]]
Sid = "Work"
Effect = "Allow"
Action = ["swf:PollForActivityTask", "swf:RespondActivityTask*"]
Resource = "arn:aws:swf:*:123456789012:/domain/tenant-a"

[[Statement]]
Effect = "Deny"
NotAction = "swf:Describe*"
NotResource = ["arn:aws:swf:*:123456789012:/domain/tenant-a"]
"#;

    #[test]
    fn parses_toml_with_lines() {
        let d = parse_toml(p(), TOML).unwrap();
        assert_eq!(d.version(), "2012-10-17");
        assert_eq!(d.statements.len(), 2);
        let (a, b) = (&d.statements[0], &d.statements[1]);
        assert_eq!(a.sid.as_deref(), Some("Work"));
        assert_eq!(a.effect, Effect::Allow);
        assert_eq!(a.action.patterns.len(), 2);
        assert!(!a.action.negated && b.action.negated && b.resource.negated);
        assert_eq!(a.line, 3);
        assert_eq!(b.line, 9);
    }

    #[test]
    fn parses_iam_json_with_lines() {
        let src = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "A",
      "Effect": "Allow",
      "Action": "swf:*",
      "Resource": "*"
    },
    {"Effect": "Deny", "Action": ["swf:TerminateWorkflowExecution"], "Resource": "*"}
  ]
}"#;
        let d = parse_json(Path::new("p.json"), src).unwrap();
        assert_eq!(d.statements.len(), 2);
        assert_eq!(d.statements[0].line, 4);
        assert_eq!(d.statements[1].line, 10);
        let single = r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#;
        let d = parse_json(Path::new("p.json"), single).unwrap();
        assert_eq!(d.version(), DEFAULT_VERSION);
        assert_eq!(d.version, None);
        assert_eq!(d.statements[0].line, 1);
    }

    #[test]
    fn refuses_with_file_and_line() {
        let bad = TOML.replace("Effect = \"Deny\"", "Effect = \"deny\"");
        let err = parse_toml(p(), &bad).unwrap_err();
        assert!(err.message.contains("`Effect` must be"), "{}", err.message);
        assert_eq!(err.line, 9, "{err}");

        let json = "{\n\"Statement\": [\n{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\",\n \"Condition\": {\"Bool\": {\"aws:SecureTransport\": [\"true\", {}]}}}]}";
        let err = parse_json(Path::new("p.json"), json).unwrap_err();
        assert!(
            err.message.contains("a string, number or boolean"),
            "{}",
            err.message
        );
        assert_eq!(err.line, 4);
    }

    #[test]
    fn conditions_are_read_in_both_formats() {
        let json = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringLike": {"swf:taskList.name": ["a-*", "b-*"]}, "Bool": {"aws:SecureTransport": true},
                          "NumericLessThan": {"aws:EpochTime": 5}}}}"#;
        let d = parse_json(Path::new("p.json"), json).unwrap();
        let c = &d.statements[0].conditions;
        assert_eq!(c.len(), 3);
        assert!(c
            .iter()
            .any(|e| e.operator == "Bool" && e.values == ["true"]));
        assert!(c
            .iter()
            .any(|e| e.operator == "NumericLessThan" && e.values == ["5"]));
        assert!(c
            .iter()
            .any(|e| e.key == "swf:taskList.name" && e.values == ["a-*", "b-*"]));
        let toml = "[[Statement]]\nEffect = \"Allow\"\nAction = \"*\"\nResource = \"*\"\n[Statement.Condition.StringEquals]\n\"aws:username\" = \"alice\"\n";
        let d = parse_toml(p(), toml).unwrap();
        assert_eq!(d.statements[0].conditions[0].values, ["alice"]);
        let empty = r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Bool": {}}}}"#;
        assert!(parse_json(Path::new("p.json"), empty).is_err());
    }

    #[test]
    fn refuses_invalid_statements() {
        let cases = [
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}"#,
                "not both",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "is required",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
                "is required",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:swf:*"}]}"#,
                "must be `*` or an ARN",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"PollForActivityTask","Resource":"*"}]}"#,
                "service:Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#,
                "empty list",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
                "Principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Extra":1}]}"#,
                "unknown field",
            ),
            (
                r#"{"Version":"2020-01-01","Statement":[]}"#,
                "`Version` must be",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}],"Statement2":1}"#,
                "unknown field",
            ),
        ];
        for (src, expected) in cases {
            let err = parse_json(Path::new("p.json"), src).unwrap_err();
            assert!(err.message.contains(expected), "{src}: {}", err.message);
        }
    }
}
