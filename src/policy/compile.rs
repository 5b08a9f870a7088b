//! Compiling validated statements for evaluation: actions become a bit set over the action
//! space, resources are split into ARN segments once, conditions and variables are parsed.
//! Statements without conditions or variables compile to the plain, allocation-free path.

use std::path::Path;
use std::sync::Arc;

use super::actions::{self, Action};
use super::condition::Condition;
use super::context::Context;
use super::document::{Document, Effect, Patterns, Pos, Statement};
use super::variables::{self, Template};
use super::wildcard;
use super::StatementRef;
use crate::diag::Diagnostic;

#[derive(Debug)]
pub(super) struct CompiledStatement {
    pub effect: Effect,
    /// Bit `action.index()` is set when the statement applies to it (negation folded in).
    pub actions: u64,
    pub resources: ResourceMatcher,
    pub conditions: Vec<Condition>,
    pub origin: StatementRef,
}

#[derive(Debug)]
pub(super) struct ResourceMatcher {
    pub negated: bool,
    pub patterns: Vec<ResourcePattern>,
}

#[derive(Debug)]
pub(super) enum ResourcePattern {
    /// `*`
    Any,
    /// Six ARN segments; the last keeps its colons.
    Arn(Box<[Segment; 6]>),
    /// An ARN with policy variables, resolved per request.
    Template(Template),
}

#[derive(Debug)]
pub(super) enum Segment {
    Any,
    Literal(String),
    Wildcard(String),
}

impl Segment {
    fn new(pattern: &str) -> Segment {
        if pattern == "*" {
            Segment::Any
        } else if wildcard::is_literal(pattern) {
            Segment::Literal(pattern.to_owned())
        } else {
            Segment::Wildcard(pattern.to_owned())
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Segment::Any => true,
            Segment::Literal(l) => l == text,
            Segment::Wildcard(p) => wildcard::matches(p, text),
        }
    }
}

impl ResourcePattern {
    fn new(pattern: &str, variables: bool) -> Result<ResourcePattern, String> {
        if pattern == "*" {
            return Ok(ResourcePattern::Any);
        }
        let template = Template::parse(pattern, variables, true)?;
        if template.has_variables() || (variables && pattern.contains("${")) {
            return Ok(ResourcePattern::Template(template));
        }
        // The document validator guarantees six segments.
        let mut it = pattern.splitn(6, ':').map(Segment::new);
        let mut next = || it.next().unwrap_or(Segment::Any);
        Ok(ResourcePattern::Arn(Box::new([
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
        ])))
    }

    fn matches(&self, resource: &str, ctx: &Context<'_>) -> bool {
        match self {
            ResourcePattern::Any => true,
            ResourcePattern::Arn(segments) => {
                let mut parts = resource.splitn(6, ':');
                segments
                    .iter()
                    .all(|s| parts.next().is_some_and(|p| s.matches(p)))
            }
            ResourcePattern::Template(t) => {
                let Some(resolved) = t.resolve(ctx) else {
                    return false;
                };
                let segments = variables::arn_segments(&resolved);
                let parts: Vec<&str> = resource.splitn(6, ':').collect();
                segments.len() == 6
                    && parts.len() == 6
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| variables::matches(s, p))
            }
        }
    }
}

impl ResourceMatcher {
    pub fn applies(&self, resource: &str, ctx: &Context<'_>) -> bool {
        self.patterns.iter().any(|p| p.matches(resource, ctx)) != self.negated
    }
}

/// The actions an action list names, as a bit set. Action names are case-insensitive.
pub(super) fn action_bits(actions: &Patterns) -> u64 {
    let patterns: Vec<String> = actions
        .patterns
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let mut bits = 0u64;
    for action in Action::all() {
        let name = action.iam_action().to_ascii_lowercase();
        if patterns.iter().any(|p| wildcard::matches(p, &name)) {
            bits |= 1 << action.index();
        }
    }
    if actions.negated {
        bits = !bits & all_actions();
    }
    bits
}

pub(super) fn all_actions() -> u64 {
    (1u64 << actions::COUNT) - 1
}

/// Compiles every statement of `document`, reporting each bad one with its position.
pub(super) fn compile(
    name: &Arc<str>,
    path: &Path,
    document: &Document,
) -> Result<Vec<CompiledStatement>, Vec<Diagnostic>> {
    let file: Arc<Path> = Arc::from(path);
    let variables = document.variables_enabled();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for s in &document.statements {
        match statement(s, variables) {
            Ok((resources, conditions)) => out.push(CompiledStatement {
                effect: s.effect,
                actions: action_bits(&s.action),
                resources,
                conditions,
                origin: StatementRef {
                    policy: name.clone(),
                    sid: s.sid.as_deref().map(Arc::from),
                    file: file.clone(),
                    line: s.line,
                },
            }),
            Err(found) => errors.extend(
                found
                    .into_iter()
                    .map(|(at, message)| Diagnostic::line_col(path, at.line, at.column, message)),
            ),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Errors found in one statement, each where it is written.
type StatementErrors = Vec<(Pos, String)>;

fn statement(
    s: &Statement,
    variables: bool,
) -> Result<(ResourceMatcher, Vec<Condition>), StatementErrors> {
    let sid = s
        .sid
        .as_deref()
        .map_or(String::new(), |s| format!(" `{s}`"));
    let mut errors = Vec::new();
    let mut patterns = Vec::with_capacity(s.resource.patterns.len());
    for (p, at) in s.resource.patterns.iter().zip(&s.resource.at) {
        match ResourcePattern::new(p, variables) {
            Ok(p) => patterns.push(p),
            Err(e) => errors.push((*at, format!("statement{sid}: {e}"))),
        }
    }
    let mut conditions = Vec::with_capacity(s.conditions.len());
    for c in &s.conditions {
        match Condition::compile(&c.operator, &c.key, &c.values, variables) {
            Ok(c) => conditions.push(c),
            Err(e) => errors.push((c.at, format!("statement{sid}: {e}"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        ResourceMatcher {
            negated: s.resource.negated,
            patterns,
        },
        conditions,
    ))
}
