//! Policy documents as written: IAM's grammar in TOML or JSON, read into a tree with spans
//! (src/policy/spanned.rs) and validated from it, so that every mistake in a file is reported
//! in one run, each at the line and column of the key or value that makes it.

use std::ops::Range;
use std::path::Path;

use super::spanned::{self, Entry, Node, Value};
use crate::diag::Diagnostic;

/// A 1-based line and column in a policy file (`0, 0` where unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

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
    /// Where each pattern is written.
    pub at: Vec<Pos>,
}

/// One `Condition` entry as written: operator, key and values (scalars as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
    /// Where the key is written.
    pub at: Pos,
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
    /// Where `Sid`'s value is written (the statement's position when it has none).
    pub sid_at: Pos,
}

impl Statement {
    /// Where the statement begins.
    pub fn at(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }
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

/// Parses a TOML policy document.
pub fn parse_toml(path: &Path, source: &str) -> Result<Document, Vec<Diagnostic>> {
    into_result(read_toml(path, source))
}

/// Parses an IAM JSON policy document.
pub fn parse_json(path: &Path, source: &str) -> Result<Document, Vec<Diagnostic>> {
    into_result(read_json(path, source))
}

fn into_result(
    (doc, errors): (Option<Document>, Vec<Diagnostic>),
) -> Result<Document, Vec<Diagnostic>> {
    match doc {
        Some(doc) if errors.is_empty() => Ok(doc),
        _ => Err(errors),
    }
}

/// Reads a TOML policy document: every error, in order, and (unless its syntax is broken)
/// what could be read of it: the statements, each without its broken parts (an `Effect` that
/// could not be read stands as `Deny`). That partial document is only for finding further
/// errors (src/policy/mod.rs); a document with errors is never used.
pub fn read_toml(path: &Path, source: &str) -> (Option<Document>, Vec<Diagnostic>) {
    match spanned::from_toml(source) {
        Ok(root) => Reader::new(path, source).document(&root),
        Err(errors) => {
            let mut errors: Vec<Diagnostic> = errors
                .into_iter()
                .map(|(span, message)| Diagnostic::at(path, source, span.start, message))
                .collect();
            errors.sort_by_key(|d| (d.line, d.column));
            (None, errors)
        }
    }
}

/// Reads an IAM JSON policy document, as `read_toml` does.
pub fn read_json(path: &Path, source: &str) -> (Option<Document>, Vec<Diagnostic>) {
    match spanned::from_json(source) {
        Ok(root) => Reader::new(path, source).document(&root),
        Err((line, column, message)) => (
            None,
            vec![Diagnostic::line_col(path, line, column, message)],
        ),
    }
}

const STATEMENT_KEYS: &str =
    "`Sid`, `Effect`, `Action`, `NotAction`, `Resource`, `NotResource` or `Condition`";

/// Validates a document tree, collecting every error with its position.
struct Reader<'a> {
    path: &'a Path,
    source: &'a str,
    lines: crate::diag::LineIndex,
    errors: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, source: &'a str) -> Reader<'a> {
        Reader {
            path,
            source,
            lines: crate::diag::LineIndex::new(source),
            errors: Vec::new(),
        }
    }

    fn pos(&self, span: &Range<usize>) -> Pos {
        let (line, column) = self.lines.line_col(self.source, span.start);
        Pos { line, column }
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = self.lines.line_col(self.source, span.start);
        self.errors
            .push(Diagnostic::line_col(self.path, line, column, message));
    }

    fn document(mut self, root: &Node) -> (Option<Document>, Vec<Diagnostic>) {
        let Value::Table(entries) = &root.value else {
            self.error(
                &root.span,
                "a policy must be an object with `Version` and `Statement`",
            );
            return (None, self.errors);
        };
        let mut version = None;
        let mut statement = None;
        for e in self.unique(entries, "") {
            match e.key.as_str() {
                "Version" => {
                    if let Some(v) = self.string(&e.node, "", "Version") {
                        match check_version(v) {
                            Ok(()) => version = Some(v.to_owned()),
                            Err(m) => self.error(&e.node.span, m),
                        }
                    }
                }
                "Id" => {
                    self.string(&e.node, "", "Id");
                }
                "Statement" => statement = Some(&e.node),
                other => self.error(
                    &e.key_span,
                    format!("unknown field `{other}`, expected `Version`, `Id` or `Statement`"),
                ),
            }
        }
        let statements = match statement {
            None => {
                self.error(&(0..0), "`Statement` is required");
                Vec::new()
            }
            Some(node) => match &node.value {
                Value::Array(items) => items.iter().filter_map(|n| self.statement(n)).collect(),
                Value::Table(_) => self.statement(node).into_iter().collect(),
                _ => {
                    self.error(
                        &node.span,
                        format!(
                            "`Statement` must be a statement or a list of statements, not {}",
                            node.kind()
                        ),
                    );
                    Vec::new()
                }
            },
        };
        self.errors.sort_by_key(|d| (d.line, d.column));
        (
            Some(Document {
                version,
                statements,
            }),
            self.errors,
        )
    }

    /// The entries of a table, each key once: a repeated key is an error at its second use.
    fn unique<'e>(&mut self, entries: &'e [Entry], prefix: &str) -> Vec<&'e Entry> {
        let mut seen: Vec<&'e Entry> = Vec::with_capacity(entries.len());
        for e in entries {
            if seen.iter().any(|s| s.key == e.key) {
                self.error(&e.key_span, format!("{prefix}`{}` is given twice", e.key));
            } else {
                seen.push(e);
            }
        }
        seen
    }

    fn string<'n>(&mut self, node: &'n Node, prefix: &str, element: &str) -> Option<&'n str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.error(
                    &node.span,
                    format!("{prefix}`{element}` must be a string, not {}", node.kind()),
                );
                None
            }
        }
    }

    fn statement(&mut self, node: &Node) -> Option<Statement> {
        let Value::Table(entries) = &node.value else {
            self.error(
                &node.span,
                format!("a statement must be a table, not {}", node.kind()),
            );
            return None;
        };
        let at = self.pos(&node.span);
        let sid_entry = entries.iter().find(|e| e.key == "Sid");
        let sid = sid_entry.and_then(|e| match &e.node.value {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        });
        let prefix = match &sid {
            Some(s) => format!("statement `{s}`: "),
            None => "statement: ".to_owned(),
        };
        let sid_at = sid_entry.map_or(at, |e| self.pos(&e.node.span));
        let mut effect = None;
        let mut effect_given = false;
        let (mut action, mut not_action, mut resource, mut not_resource) = (None, None, None, None);
        let mut conditions = Vec::new();
        for e in self.unique(entries, &prefix) {
            match e.key.as_str() {
                "Sid" => {
                    self.string(&e.node, &prefix, "Sid");
                }
                "Effect" => {
                    effect_given = true;
                    effect = match self.string(&e.node, &prefix, "Effect") {
                        Some("Allow") => Some(Effect::Allow),
                        Some("Deny") => Some(Effect::Deny),
                        Some(other) => {
                            self.error(
                                &e.node.span,
                                format!("{prefix}`Effect` must be \"Allow\" or \"Deny\", not `{other}`"),
                            );
                            None
                        }
                        None => None,
                    }
                }
                "Action" => action = Some(e),
                "NotAction" => not_action = Some(e),
                "Resource" => resource = Some(e),
                "NotResource" => not_resource = Some(e),
                "Principal" | "NotPrincipal" => self.error(
                    &e.key_span,
                    format!("{prefix}identity-based policies must not name a `{}`; the principal is whoever the policy is attached to", e.key),
                ),
                "Condition" => conditions = self.conditions(&e.node, &prefix),
                other => self.error(
                    &e.key_span,
                    format!("{prefix}unknown field `{other}`, expected {STATEMENT_KEYS}"),
                ),
            }
        }
        if !effect_given {
            self.error(&node.span, format!("{prefix}`Effect` is required"));
        }
        let action = self.patterns(node, &prefix, "Action", action, not_action, check_action);
        let resource = self.patterns(
            node,
            &prefix,
            "Resource",
            resource,
            not_resource,
            check_resource,
        );
        Some(Statement {
            sid,
            // Only a broken document has no effect here; it is never used but to find errors.
            effect: effect.unwrap_or(Effect::Deny),
            action,
            resource,
            conditions,
            line: at.line,
            column: at.column,
            sid_at,
        })
    }

    /// `Action`/`NotAction` (or `Resource`/`NotResource`): exactly one, each pattern checked.
    fn patterns(
        &mut self,
        statement: &Node,
        prefix: &str,
        element: &str,
        plain: Option<&Entry>,
        negated: Option<&Entry>,
        check: fn(&str) -> Result<(), String>,
    ) -> Patterns {
        let mut patterns = Patterns {
            negated: false,
            patterns: Vec::new(),
            at: Vec::new(),
        };
        let entry = match (plain, negated) {
            (Some(p), None) => p,
            (None, Some(n)) => {
                patterns.negated = true;
                n
            }
            (Some(p), Some(n)) => {
                // Reported at whichever of the two is written second.
                let later = [p, n]
                    .into_iter()
                    .max_by_key(|e| e.key_span.start)
                    .unwrap_or(p);
                self.error(
                    &later.key_span,
                    format!("{prefix}give either `{element}` or `Not{element}`, not both"),
                );
                return patterns;
            }
            (None, None) => {
                self.error(
                    &statement.span,
                    format!("{prefix}`{element}` or `Not{element}` is required"),
                );
                return patterns;
            }
        };
        let name = &entry.key;
        let items: Vec<&Node> = match &entry.node.value {
            Value::Array(items) if items.is_empty() => {
                self.error(
                    &entry.node.span,
                    format!("{prefix}`{name}` must not be an empty list"),
                );
                return patterns;
            }
            Value::Array(items) => items.iter().collect(),
            _ => vec![&entry.node],
        };
        for item in items {
            let Value::Str(text) = &item.value else {
                self.error(
                    &item.span,
                    format!(
                        "{prefix}`{name}` must be a string or a list of strings, not {}",
                        item.kind()
                    ),
                );
                continue;
            };
            if let Err(m) = check(text) {
                self.error(&item.span, format!("{prefix}{m}"));
                continue;
            }
            patterns.patterns.push(text.clone());
            patterns.at.push(self.pos(&item.span));
        }
        patterns
    }

    /// `Condition`: operator → key → a value or a list of values (strings, numbers, booleans).
    fn conditions(&mut self, node: &Node, prefix: &str) -> Vec<ConditionEntry> {
        let mut out = Vec::new();
        let Value::Table(operators) = &node.value else {
            self.error(
                &node.span,
                format!(
                    "{prefix}`Condition` must be a table of operators, not {}",
                    node.kind()
                ),
            );
            return out;
        };
        for op in self.unique(operators, prefix) {
            let Value::Table(keys) = &op.node.value else {
                self.error(
                    &op.node.span,
                    format!(
                        "{prefix}condition operator `{}` must map keys to values, not be {}",
                        op.key,
                        op.node.kind()
                    ),
                );
                continue;
            };
            if keys.is_empty() {
                self.error(
                    &op.key_span,
                    format!("{prefix}condition operator `{}` names no key", op.key),
                );
            }
            for key in self.unique(keys, prefix) {
                let items: Vec<&Node> = match &key.node.value {
                    Value::Array(items) => items.iter().collect(),
                    _ => vec![&key.node],
                };
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match &item.value {
                        Value::Str(s) | Value::Scalar(s) => values.push(s.clone()),
                        _ => self.error(
                            &item.span,
                            format!(
                                "{prefix}condition key `{}`: a value must be a string, number or boolean, not {}",
                                key.key,
                                item.kind()
                            ),
                        ),
                    }
                }
                out.push(ConditionEntry {
                    operator: op.key.clone(),
                    key: key.key.clone(),
                    values,
                    at: self.pos(&key.key_span),
                });
            }
        }
        out
    }
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

/// `*` or an ARN with six segments: `arn:partition:service:region:account:resource`, with no
/// wildcard in the service segment (IAM refuses one there).
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
    if segments[2].contains(['*', '?']) {
        return Err(format!(
            "resource `{resource}`: the service segment of an ARN cannot hold a wildcard (IAM refuses it); write `swf`"
        ));
    }
    Ok(())
}

fn check_version(version: &str) -> Result<(), String> {
    match version {
        "2012-10-17" | "2008-10-17" => Ok(()),
        other => Err(format!(
            "`Version` must be \"2012-10-17\" or \"2008-10-17\", not `{other}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("p.toml")
    }

    /// The one error of a document that must fail with exactly one.
    fn only(parsed: Result<Document, Vec<Diagnostic>>) -> Diagnostic {
        let errors = parsed.unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    /// `(line, message)` of every error, in order.
    fn lines(parsed: Result<Document, Vec<Diagnostic>>) -> Vec<(usize, String)> {
        parsed
            .unwrap_err()
            .into_iter()
            .map(|d| (d.line, d.message))
            .collect()
    }

    #[test]
    fn every_mistake_in_a_toml_policy_is_reported_at_its_own_line() {
        let src = r#"Version = "2012-10-17"
Colour = "blue"

[[Statement]]
Sid = "Broken"
Effect = "Alow"
Action = ["swf:PollForActivityTask", "PollForDecisionTask"]
Resource = "arn:aws:sw*:*:123456789012:/domain/a"
Principal = "*"

[[Statement]]
Effect = "Allow"
Action = "swf:*"
Resource = "*"
Condition = { Bool = { "aws:SecureTransport" = [true, { a = 1 }] } }
"#;
        let found = lines(parse_toml(p(), src));
        let at: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(at, [2, 6, 7, 8, 9, 15], "{found:#?}");
        assert!(found[0].1.contains("unknown field `Colour`"), "{found:#?}");
        assert!(found[1].1.contains("`Effect` must be"), "{found:#?}");
        assert!(found[2].1.contains("`PollForDecisionTask`"), "{found:#?}");
        assert!(found[3].1.contains("service segment"), "{found:#?}");
        assert!(found[4].1.contains("`Principal`"), "{found:#?}");
        assert!(found[5].1.contains("a value must be"), "{found:#?}");
    }

    #[test]
    fn an_element_and_its_negation_are_refused_at_the_second() {
        for (first, second) in [("Action", "NotAction"), ("NotAction", "Action")] {
            let src = format!(
                "[[Statement]]\nEffect = \"Deny\"\n{first} = \"swf:*\"\nResource = \"*\"\n{second} = \"swf:Poll*\"\n"
            );
            let err = only(parse_toml(p(), &src));
            assert_eq!(
                (err.line, err.column),
                (5, 1),
                "{first} then {second}: {err}"
            );
            assert!(err.message.contains("not both"), "{err}");
        }
    }

    #[test]
    fn every_mistake_in_a_json_policy_is_reported_at_its_own_line() {
        let src = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Broken",
      "Effect": "Alow",
      "Action": ["swf:PollForActivityTask",
                 "PollForDecisionTask"],
      "Resource": "arn:aws:*:*:123456789012:/domain/a",
      "Resource": "*",
      "Condition": {"Bool": {}}
    },
    {"Effect": "Allow", "Action": "swf:*", "NotAction": "swf:Poll*", "Resource": "*"}
  ]
}"#;
        let found = lines(parse_json(Path::new("p.json"), src));
        let at: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(at, [6, 8, 9, 10, 11, 13], "{found:#?}");
        assert!(found[3].1.contains("given twice"), "{found:#?}");
        assert!(found[4].1.contains("names no key"), "{found:#?}");
        assert!(found[5].1.contains("not both"), "{found:#?}");
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
        let err = only(parse_toml(p(), &bad));
        assert!(err.message.contains("`Effect` must be"), "{}", err.message);
        assert_eq!((err.line, err.column), (10, 10), "{err}");

        let json = "{\n\"Statement\": [\n{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\",\n \"Condition\": {\"Bool\": {\"aws:SecureTransport\": [\"true\", {}]}}}]}";
        let err = only(parse_json(Path::new("p.json"), json));
        assert!(
            err.message.contains("a string, number or boolean")
                && err.message.ends_with(", not a table"),
            "{}",
            err.message
        );
        assert_eq!((err.line, err.column), (4, 57), "{err}");
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
                r#"{"Statement":[{"Effect":"Allow","Action":":Poll","Resource":"*"}]}"#,
                "service:Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"swf:","Resource":"*"}]}"#,
                "service:Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"sw*:Poll","Resource":"*"}]}"#,
                "service:Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:swf:us-east-1:1:"}]}"#,
                "must be `*` or an ARN",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"urn:aws:swf:us-east-1:1:/d"}]}"#,
                "must be `*` or an ARN",
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
            let err = only(parse_json(Path::new("p.json"), src));
            assert!(err.message.contains(expected), "{src}: {}", err.message);
        }
    }
}
