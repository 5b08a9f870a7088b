//! Policy variables (`${aws:username}`, `${aws:PrincipalTag/team, 'none'}`) and the escapes
//! `${*}`, `${?}`, `${$}`, in `Resource` and condition values. Only under Version 2012-10-17;
//! under 2008-10-17 the same text is literal.
//!
//! A template resolves to pattern characters in which substituted text is always literal: a
//! user named `*` matches only `*`. A variable that cannot be resolved and has no default
//! makes the whole template match nothing, as in IAM.

use super::context::Context;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `*` (a wildcard only where the operator allows wildcards).
    Star,
    /// `?`
    One,
    Var {
        key: String,
        default: Option<String>,
    },
}

/// A parsed value with wildcards and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// A resolved pattern character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatChar {
    /// Literal text from the policy.
    Lit(char),
    /// Literal text substituted from a variable (never a separator).
    Sub(char),
    Star,
    One,
}

impl PatChar {
    fn literal(self) -> Option<char> {
        match self {
            PatChar::Lit(c) | PatChar::Sub(c) => Some(c),
            _ => None,
        }
    }
}

impl Template {
    /// Parses `text`. With `variables` false (Version 2008-10-17) `${…}` is plain text;
    /// with `wildcards` false (non-`Like` operators) `*` and `?` are plain text.
    pub fn parse(text: &str, variables: bool, wildcards: bool) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unterminated policy variable in `{text}`"))?;
                let inner = &rest[2..end];
                rest = &rest[end + 1..];
                match inner {
                    "*" | "?" | "$" => literal.push_str(inner),
                    _ => {
                        flush(&mut literal, &mut pieces);
                        pieces.push(parse_variable(inner, text)?);
                    }
                }
                continue;
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' if wildcards => {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Star);
                }
                '?' if wildcards => {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::One);
                }
                _ => literal.push(c),
            }
        }
        flush(&mut literal, &mut pieces);
        Ok(Template { pieces })
    }

    /// Whether any variable appears.
    pub fn has_variables(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Var { .. }))
    }

    /// The keys of the variables, as written.
    pub fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var { key, .. } => Some(key.as_str()),
            _ => None,
        })
    }

    /// Resolves variables; `None` when one cannot be resolved and has no default.
    pub fn resolve(&self, ctx: &Context<'_>) -> Option<Vec<PatChar>> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.extend(t.chars().map(PatChar::Lit)),
                Piece::Star => out.push(PatChar::Star),
                Piece::One => out.push(PatChar::One),
                Piece::Var { key, default } => {
                    let value = ctx
                        .get(key)
                        .and_then(|v| v.into_iter().next())
                        .or_else(|| default.clone())?;
                    out.extend(value.chars().map(PatChar::Sub));
                }
            }
        }
        Some(out)
    }

    /// Describes how the variables resolved, for `explain`.
    pub fn describe_variables(&self, ctx: &Context<'_>) -> Vec<String> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var { key, default } => {
                    Some(match ctx.get(key).and_then(|v| v.into_iter().next()) {
                        Some(v) => format!("${{{key}}} = `{v}`"),
                        None => match default {
                            Some(d) => format!("${{{key}}} is absent: default `{d}`"),
                            None => format!("${{{key}}} is absent: matches nothing"),
                        },
                    })
                }
                _ => None,
            })
            .collect()
    }
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Text(std::mem::take(literal)));
    }
}

/// `key` or `key, 'default'`.
fn parse_variable(inner: &str, text: &str) -> Result<Piece, String> {
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default.len() >= 2 && default.starts_with('\'') && default.ends_with('\'');
            if !quoted {
                return Err(format!(
                    "the default of a policy variable must be quoted with ' in `{text}`"
                ));
            }
            (key.trim(), Some(default[1..default.len() - 1].to_owned()))
        }
        None => (inner.trim(), None),
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!(
            "malformed policy variable `${{{inner}}}` in `{text}`"
        ));
    }
    Ok(Piece::Var {
        key: key.to_owned(),
        default,
    })
}

/// Whether `text` matches the resolved pattern (`*` any run, `?` one character).
pub fn matches(pattern: &[PatChar], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match pattern.get(pi) {
            Some(PatChar::Star) => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(PatChar::One) => {
                pi += 1;
                ti += 1;
            }
            Some(p) if p.literal() == Some(t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((resume, consumed)) => {
                    let next = consumed + 1;
                    star = Some((resume, next));
                    pi = resume;
                    ti = next;
                }
                None => return false,
            },
        }
    }
    pattern[pi.min(pattern.len())..]
        .iter()
        .all(|p| *p == PatChar::Star)
}

/// The literal text of a resolved pattern without wildcards.
pub fn literal_text(pattern: &[PatChar]) -> String {
    pattern
        .iter()
        .map(|p| {
            p.literal()
                .unwrap_or(if *p == PatChar::Star { '*' } else { '?' })
        })
        .collect()
}

/// Splits a resolved ARN pattern into its six segments at the policy's own colons.
pub fn arn_segments(pattern: &[PatChar]) -> Vec<&[PatChar]> {
    let mut segments = Vec::with_capacity(6);
    let mut start = 0;
    for (i, p) in pattern.iter().enumerate() {
        if segments.len() == 5 {
            break;
        }
        if *p == PatChar::Lit(':') {
            segments.push(&pattern[start..i]);
            start = i + 1;
        }
    }
    segments.push(&pattern[start..]);
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::actions::Action;
    use crate::policy::context::Caller;
    use crate::swf::Operation;
    use std::collections::BTreeMap;

    fn with_ctx<R>(f: impl FnOnce(&Context<'_>) -> R) -> R {
        let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
        let ctx = Context {
            caller: Caller {
                name: "alice",
                arn: "arn:aws:iam::1:user/alice",
                tags: &tags,
                session: None,
            },
            action: Action::Operation(Operation::ListDomains),
            input: None,
            source_ip: None,
            now: std::time::SystemTime::UNIX_EPOCH,
            secure_transport: true,
            region: "us-east-1",
            overrides: None,
        };
        f(&ctx)
    }

    fn resolved(text: &str) -> Option<String> {
        let t = Template::parse(text, true, true).unwrap();
        with_ctx(|c| t.resolve(c).map(|p| literal_text(&p)))
    }

    #[test]
    fn variables_resolve() {
        assert_eq!(
            resolved("/domain/${aws:username}-*").as_deref(),
            Some("/domain/alice-*")
        );
        assert_eq!(resolved("${aws:PrincipalTag/team}").as_deref(), Some("a"));
        assert_eq!(
            resolved("${aws:PrincipalTag/other, 'none'}").as_deref(),
            Some("none")
        );
        assert_eq!(
            resolved("${aws:PrincipalTag/other}"),
            None,
            "unresolved matches nothing"
        );
        assert_eq!(resolved("a${*}b${?}c${$}").as_deref(), Some("a*b?c$"));
    }

    #[test]
    fn substituted_and_escaped_text_is_literal() {
        let t = Template::parse("a${*}", true, true).unwrap();
        let p = with_ctx(|c| t.resolve(c)).unwrap();
        assert!(matches(&p, "a*"));
        assert!(!matches(&p, "abc"), "an escaped star is no wildcard");
        let wild = Template::parse("a*", true, true).unwrap();
        let p = with_ctx(|c| wild.resolve(c)).unwrap();
        assert!(matches(&p, "abc"));
    }

    fn pattern(text: &str, wildcards: bool) -> Vec<PatChar> {
        let t = Template::parse(text, true, wildcards).unwrap();
        with_ctx(|c| t.resolve(c)).unwrap()
    }

    #[test]
    fn wildcards_only_where_asked_for() {
        let wild = pattern("a*b?", true);
        assert!(matches(&wild, "aXYbZ") && matches(&wild, "ab?"));
        assert!(!matches(&wild, "ab"), "`?` is exactly one character");
        let plain = pattern("a*b?", false);
        assert!(matches(&plain, "a*b?"));
        assert!(!matches(&plain, "aXYbZ") && !matches(&plain, "a*bZ") && !matches(&plain, "aXb?"));
    }

    #[test]
    fn resolved_patterns_match_like_iam() {
        let yes = [
            ("a?c", "abc"),
            ("a?c", "a€c"),
            ("*c", "abc"),
            ("a*c", "abbbc"),
            ("a*", "a"),
            ("ab**", "ab"),
            ("${aws:username}-?", "alice-1"),
        ];
        for (p, t) in yes {
            assert!(matches(&pattern(p, true), t), "{p} ~ {t}");
        }
        let no = [
            ("a?", "a"),
            ("a?c", "ac"),
            ("a*c", "abcd"),
            ("ab", "abc"),
            ("*c", "cb"),
        ];
        for (p, t) in no {
            assert!(!matches(&pattern(p, true), t), "{p} !~ {t}");
        }
    }

    #[test]
    fn variables_are_listed() {
        let t = Template::parse(
            "/d/${aws:username}-${aws:PrincipalTag/team, 'x'}*",
            true,
            true,
        )
        .unwrap();
        assert!(t.has_variables());
        assert_eq!(
            t.variable_keys().collect::<Vec<_>>(),
            ["aws:username", "aws:PrincipalTag/team"]
        );
        let none = Template::parse("/d/a*", true, true).unwrap();
        assert!(!none.has_variables());
        assert_eq!(none.variable_keys().count(), 0);
    }

    #[test]
    fn version_2008_keeps_text_literal() {
        let t = Template::parse("${aws:username}", false, true).unwrap();
        assert!(!t.has_variables());
        let p = with_ctx(|c| t.resolve(c)).unwrap();
        assert!(matches(&p, "${aws:username}"));
    }

    #[test]
    fn malformed_variables_are_errors() {
        assert!(Template::parse("${aws:username", true, true).is_err());
        assert!(Template::parse("${}", true, true).is_err());
        assert!(Template::parse("${aws:x, none}", true, true).is_err());
        for unquoted in ["'", "'a", "a'"] {
            let text = format!("${{aws:x, {unquoted}}}");
            assert!(Template::parse(&text, true, true).is_err(), "{text}");
        }
        assert_eq!(resolved("${aws:PrincipalTag/x, ''}").as_deref(), Some(""));
    }

    #[test]
    fn arn_segments_split_at_policy_colons_only() {
        let t = Template::parse("arn:aws:swf:*:1:/domain/${aws:username}", true, true).unwrap();
        let p = with_ctx(|c| t.resolve(c)).unwrap();
        let segments = arn_segments(&p);
        assert_eq!(segments.len(), 6);
        assert_eq!(literal_text(segments[5]), "/domain/alice");
    }
}
