//! A policy document as a tree of values with the byte span of every key and value, read from
//! TOML or JSON alike, so that validation (src/policy/document.rs) can report every mistake at
//! the line of the key or value that makes it.
//!
//! TOML comes from the `toml` crate's spanned parser. serde_json keeps no spans, so JSON is
//! first checked by serde_json (its syntax errors and their positions are the ones users know)
//! and only then walked here: the walk reads text that is already known to be valid JSON.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One value and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Range<usize>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// A number, boolean or TOML date, as text (IAM compares condition values as text).
    Scalar(String),
    Null,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One key of a table, with its own span, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub node: Node,
}

impl Node {
    /// What the value is, for messages: "a string", "a table", …
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Str(_) => "a string",
            Value::Scalar(_) => "a number or boolean",
            Value::Null => "null",
            Value::Array(_) => "a list",
            Value::Table(_) => "a table",
        }
    }
}

/// A syntax error at a byte range.
pub type SyntaxError = (Range<usize>, String);

/// Parses a TOML document, reporting every syntax error the parser recovers from.
pub fn from_toml(source: &str) -> Result<Node, Vec<SyntaxError>> {
    let (root, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        return Err(errors
            .into_iter()
            .map(|e| (e.span().unwrap_or(0..0), e.message().to_owned()))
            .collect());
    }
    let span = 0..source.len();
    let mut out = Vec::new();
    let table = toml_table(root.into_inner(), &mut out);
    if out.is_empty() {
        Ok(Node { span, value: table })
    } else {
        Err(out)
    }
}

fn toml_table(table: DeTable<'_>, errors: &mut Vec<SyntaxError>) -> Value {
    Value::Table(
        table
            .into_iter()
            .map(|(key, value)| Entry {
                key: key.get_ref().to_string(),
                key_span: key.span(),
                node: toml_node(value, errors),
            })
            .collect(),
    )
}

fn toml_node(value: toml::Spanned<DeValue<'_>>, errors: &mut Vec<SyntaxError>) -> Node {
    let span = value.span();
    let value = match value.into_inner() {
        DeValue::String(s) => Value::Str(s.into_owned()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Scalar(n.to_string()),
            Err(_) => {
                errors.push((span.clone(), format!("integer `{i}` is out of range")));
                Value::Null
            }
        },
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(n) => Value::Scalar(n.to_string()),
            Err(_) => {
                errors.push((span.clone(), format!("`{}` is not a number", f.as_str())));
                Value::Null
            }
        },
        DeValue::Boolean(b) => Value::Scalar(b.to_string()),
        DeValue::Datetime(d) => Value::Scalar(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| toml_node(item, errors))
                .collect(),
        ),
        DeValue::Table(table) => toml_table(table, errors),
    };
    Node { span, value }
}

/// Parses a JSON document. A syntax error is `(line, column, message)` as serde_json reports it.
pub fn from_json(source: &str) -> Result<Node, (usize, usize, String)> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(source) {
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        return Err((e.line(), e.column(), message));
    }
    let mut walk = Json {
        source,
        bytes: source.as_bytes(),
        at: 0,
    };
    Ok(walk.value())
}

/// A walk over text serde_json has accepted: it never meets a syntax error, and every index
/// stays in bounds because every opened string, array and object is closed.
struct Json<'a> {
    source: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Json<'_> {
    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Node {
        self.skip_space();
        let start = self.at;
        let value = match self.bytes.get(self.at) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Value::Str(self.string()),
            _ => self.literal(),
        };
        Node {
            span: start..self.at,
            value,
        }
    }

    /// A string starting at its opening quote; returns its decoded text.
    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        while let Some(&b) = self.bytes.get(self.at) {
            if b == b'"' {
                break;
            }
            self.at += if b == b'\\' { 2 } else { 1 };
        }
        self.at += 1;
        let raw = self.source.get(start..self.at).unwrap_or("\"\"");
        serde_json::from_str(raw).unwrap_or_default()
    }

    /// A number, `true`, `false` or `null`.
    fn literal(&mut self) -> Value {
        let start = self.at;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
        {
            self.at += 1;
        }
        let text = self.source.get(start..self.at).unwrap_or("");
        match text {
            "null" => Value::Null,
            // `true` and `false` are not numbers: `number_text` keeps them as written.
            _ => Value::Scalar(number_text(text)),
        }
    }

    fn array(&mut self) -> Value {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b']') | None => break,
                Some(b',') => self.at += 1,
                _ => items.push(self.value()),
            }
        }
        self.at += 1;
        Value::Array(items)
    }

    fn object(&mut self) -> Value {
        self.at += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b'}') | None => break,
                Some(b',') => self.at += 1,
                _ => {
                    let key_start = self.at;
                    let key = self.string();
                    let key_span = key_start..self.at;
                    self.skip_space();
                    self.at += 1; // the `:`
                    let node = self.value();
                    entries.push(Entry {
                        key,
                        key_span,
                        node,
                    });
                }
            }
        }
        self.at += 1;
        Value::Table(entries)
    }
}

/// A JSON number as IAM compares it: integers as written, others as the shortest decimal.
fn number_text(text: &str) -> String {
    if let Ok(n) = text.parse::<i64>() {
        n.to_string()
    } else if let Ok(n) = text.parse::<u64>() {
        n.to_string()
    } else {
        text.parse::<f64>()
            .map_or(text.to_owned(), |f| f.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Table(t) => t,
            other => panic!("not a table: {other:?}"),
        }
    }

    #[test]
    fn json_keys_and_values_carry_their_spans() {
        let src = "{\n  \"A\": \"x\\\"y\",\n  \"B\": [1, 2.50, true, null, {\"C\": {}}]\n}";
        let root = from_json(src).unwrap();
        let t = table(&root);
        assert_eq!(t[0].key, "A");
        assert_eq!(&src[t[0].key_span.clone()], "\"A\"");
        assert_eq!(t[0].node.value, Value::Str("x\"y".into()));
        assert_eq!(&src[t[0].node.span.clone()], "\"x\\\"y\"");
        let Value::Array(items) = &t[1].node.value else {
            panic!("{:?}", t[1].node)
        };
        let texts: Vec<&str> = items.iter().map(|n| &src[n.span.clone()]).collect();
        assert_eq!(texts, ["1", "2.50", "true", "null", "{\"C\": {}}"]);
        assert_eq!(items[1].value, Value::Scalar("2.5".into()));
        assert_eq!(items[3].value, Value::Null);
        assert_eq!(table(&items[4])[0].key, "C");
    }

    #[test]
    fn json_syntax_errors_keep_serde_json_positions() {
        let (line, column, message) = from_json("{\n \"A\": ,\n}").unwrap_err();
        assert_eq!((line, column), (2, 7));
        assert_eq!(message, "expected value");
    }

    #[test]
    fn toml_values_become_text_and_keep_spans() {
        let src = "a = 0x10\nb = 1.50\n[t]\nc = [\"x\", false]\n";
        let root = from_toml(src).unwrap();
        let t = table(&root);
        assert_eq!(t[0].node.value, Value::Scalar("16".into()));
        assert_eq!(t[1].node.value, Value::Scalar("1.5".into()));
        assert_eq!(&src[t[2].key_span.clone()], "t");
        let Value::Array(items) = &table(&t[2].node)[0].node.value else {
            panic!()
        };
        assert_eq!(&src[items[1].span.clone()], "false");
    }

    #[test]
    fn toml_reports_every_syntax_error() {
        let errors = from_toml("a = \nb = 1\nc = ]\n").unwrap_err();
        assert!(errors.len() >= 2, "{errors:?}");
    }
}
