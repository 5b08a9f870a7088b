//! IAM condition operators, compiled once at load and evaluated against a [`Context`].
//!
//! Semantics follow AWS's IAM reference: several operators in a block, and several keys under
//! one operator, are ANDed; several values for one key are ORed, except for the negated
//! operators, where the request value must match none of them. A key missing from the request
//! fails a positive operator, satisfies a negated one, satisfies anything with `…IfExists`,
//! fails `ForAnyValue:` and satisfies `ForAllValues:`. `Null` tests presence.

use std::net::IpAddr;

use super::context::Context;
use super::variables::{self, Template};

/// The comparison an operator makes, negation aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Ordering),
    Date(Ordering),
    Bool,
    IpAddress,
    Arn,
    Null,
}

/// How numbers and dates compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    AnyValue,
    AllValues,
}

/// A parsed operator name such as `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub kind: Kind,
    pub negated: bool,
    pub if_exists: bool,
    pub set: Option<SetQualifier>,
}

impl Operator {
    /// Parses an operator name (case-insensitive).
    pub fn parse(name: &str) -> Option<Operator> {
        let lower = name.to_ascii_lowercase();
        let (set, rest) = if let Some(r) = lower.strip_prefix("foranyvalue:") {
            (Some(SetQualifier::AnyValue), r)
        } else if let Some(r) = lower.strip_prefix("forallvalues:") {
            (Some(SetQualifier::AllValues), r)
        } else {
            (None, lower.as_str())
        };
        let (rest, if_exists) = match rest.strip_suffix("ifexists") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        use Ordering::*;
        let (kind, negated) = match rest {
            "stringequals" => (Kind::StringEquals, false),
            "stringnotequals" => (Kind::StringEquals, true),
            "stringequalsignorecase" => (Kind::StringEqualsIgnoreCase, false),
            "stringnotequalsignorecase" => (Kind::StringEqualsIgnoreCase, true),
            "stringlike" => (Kind::StringLike, false),
            "stringnotlike" => (Kind::StringLike, true),
            "numericequals" => (Kind::Numeric(Equals), false),
            "numericnotequals" => (Kind::Numeric(Equals), true),
            "numericlessthan" => (Kind::Numeric(LessThan), false),
            "numericlessthanequals" => (Kind::Numeric(LessThanEquals), false),
            "numericgreaterthan" => (Kind::Numeric(GreaterThan), false),
            "numericgreaterthanequals" => (Kind::Numeric(GreaterThanEquals), false),
            "dateequals" => (Kind::Date(Equals), false),
            "datenotequals" => (Kind::Date(Equals), true),
            "datelessthan" => (Kind::Date(LessThan), false),
            "datelessthanequals" => (Kind::Date(LessThanEquals), false),
            "dategreaterthan" => (Kind::Date(GreaterThan), false),
            "dategreaterthanequals" => (Kind::Date(GreaterThanEquals), false),
            "bool" => (Kind::Bool, false),
            "ipaddress" => (Kind::IpAddress, false),
            "notipaddress" => (Kind::IpAddress, true),
            // IAM documents ArnEquals and ArnLike as the same comparison.
            "arnequals" | "arnlike" => (Kind::Arn, false),
            "arnnotequals" | "arnnotlike" => (Kind::Arn, true),
            "null" if !if_exists && set.is_none() => (Kind::Null, false),
            _ => return None,
        };
        Some(Operator {
            kind,
            negated,
            if_exists,
            set,
        })
    }
}

/// One compiled policy value.
#[derive(Debug, Clone)]
enum Expected {
    Text(Template),
    Number(f64),
    /// Milliseconds since the epoch.
    Date(i128),
    Bool(bool),
    Net(IpAddr, u8),
}

/// One `operator: { key: values }` entry.
#[derive(Debug, Clone)]
pub struct Condition {
    pub operator_name: String,
    pub operator: Operator,
    pub key: String,
    values: Vec<Expected>,
    pub raw_values: Vec<String>,
}

impl Condition {
    /// Compiles an entry; `variables` is whether policy variables are enabled (2012-10-17).
    pub fn compile(
        operator_name: &str,
        key: &str,
        raw: &[String],
        variables: bool,
    ) -> Result<Condition, String> {
        let operator = Operator::parse(operator_name)
            .ok_or_else(|| format!("unknown condition operator `{operator_name}`"))?;
        if raw.is_empty() {
            return Err(format!(
                "condition `{operator_name}` on `{key}` has no value"
            ));
        }
        let values = raw
            .iter()
            .map(|v| expected(operator, v, variables))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{operator_name}` on `{key}`: {e}"))?;
        Ok(Condition {
            operator_name: operator_name.to_owned(),
            operator,
            key: key.to_owned(),
            values,
            raw_values: raw.to_vec(),
        })
    }

    /// Evaluates the entry against the request.
    pub fn evaluate(&self, ctx: &Context<'_>) -> bool {
        let request = ctx.get(&self.key).filter(|v| !v.is_empty());
        let op = self.operator;
        if op.kind == Kind::Null {
            let want_absent = matches!(self.values.first(), Some(Expected::Bool(true)));
            return request.is_none() == want_absent;
        }
        let Some(values) = request else {
            return op.if_exists
                || match op.set {
                    Some(SetQualifier::AllValues) => true,
                    Some(SetQualifier::AnyValue) => false,
                    None => op.negated,
                };
        };
        let one = |v: &String| {
            let matched = self.values.iter().any(|e| positive(op.kind, e, v, ctx));
            matched != op.negated
        };
        match op.set {
            Some(SetQualifier::AllValues) => values.iter().all(one),
            _ => values.iter().any(one),
        }
    }

    /// A line for `explain`: the request's values and the result.
    pub fn describe(&self, ctx: &Context<'_>) -> String {
        let request = match ctx.get(&self.key) {
            Some(v) => format!("{v:?}"),
            None => "absent".to_owned(),
        };
        let mut line = format!(
            "{} {} {:?}: request {} -> {}",
            self.operator_name,
            self.key,
            self.raw_values,
            request,
            if self.evaluate(ctx) { "true" } else { "false" }
        );
        for v in &self.values {
            if let Expected::Text(t) = v {
                for d in t.describe_variables(ctx) {
                    line.push_str(&format!("; {d}"));
                }
            }
        }
        line
    }
}

fn expected(op: Operator, raw: &str, variables: bool) -> Result<Expected, String> {
    Ok(match op.kind {
        Kind::StringEquals | Kind::StringEqualsIgnoreCase => {
            Expected::Text(Template::parse(raw, variables, false)?)
        }
        Kind::StringLike | Kind::Arn => Expected::Text(Template::parse(raw, variables, true)?),
        Kind::Numeric(_) => Expected::Number(
            raw.trim()
                .parse()
                .map_err(|_| format!("`{raw}` is not a number"))?,
        ),
        Kind::Date(_) => Expected::Date(
            parse_date(raw)
                .ok_or_else(|| format!("`{raw}` is not a date (ISO 8601 or epoch seconds)"))?,
        ),
        Kind::Bool | Kind::Null => Expected::Bool(match raw.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(format!("`{raw}` is not `true` or `false`")),
        }),
        Kind::IpAddress => {
            let (ip, bits) = parse_cidr(raw)
                .ok_or_else(|| format!("`{raw}` is not an IP address or CIDR block"))?;
            Expected::Net(ip, bits)
        }
    })
}

fn positive(kind: Kind, expected: &Expected, value: &str, ctx: &Context<'_>) -> bool {
    match (kind, expected) {
        (Kind::StringEquals, Expected::Text(t)) => t
            .resolve(ctx)
            .is_some_and(|p| variables::literal_text(&p) == value),
        (Kind::StringEqualsIgnoreCase, Expected::Text(t)) => t
            .resolve(ctx)
            .is_some_and(|p| variables::literal_text(&p).to_lowercase() == value.to_lowercase()),
        (Kind::StringLike, Expected::Text(t)) => t
            .resolve(ctx)
            .is_some_and(|p| variables::matches(&p, value)),
        (Kind::Arn, Expected::Text(t)) => t.resolve(ctx).is_some_and(|p| arn_matches(&p, value)),
        (Kind::Numeric(order), Expected::Number(n)) => value
            .trim()
            .parse::<f64>()
            .is_ok_and(|v| compare(order, v, *n)),
        (Kind::Date(order), Expected::Date(d)) => {
            parse_date(value).is_some_and(|v| compare(order, v, *d))
        }
        (Kind::Bool, Expected::Bool(b)) => {
            value.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        (Kind::IpAddress, Expected::Net(net, bits)) => value
            .parse::<IpAddr>()
            .is_ok_and(|ip| in_network(ip, *net, *bits)),
        _ => false,
    }
}

fn compare<T: PartialOrd>(order: Ordering, value: T, expected: T) -> bool {
    match order {
        Ordering::Equals => value == expected,
        Ordering::LessThan => value < expected,
        Ordering::LessThanEquals => value <= expected,
        Ordering::GreaterThan => value > expected,
        Ordering::GreaterThanEquals => value >= expected,
    }
}

/// ARN comparison: six colon-separated segments, wildcards within a segment.
fn arn_matches(pattern: &[variables::PatChar], value: &str) -> bool {
    let segments = variables::arn_segments(pattern);
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if segments.len() != 6 || parts.len() != 6 {
        return segments.len() == 1 && segments[0] == [variables::PatChar::Star];
    }
    segments
        .iter()
        .zip(&parts)
        .all(|(s, p)| variables::matches(s, p))
}

/// ISO 8601 (`2026-01-01`, `2026-01-01T00:00:00Z`, with fractions or offsets) or epoch seconds,
/// as milliseconds since the epoch.
pub fn parse_date(raw: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<i64>() {
        return Some(i128::from(secs) * 1000);
    }
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() / 1_000_000);
    }
    let date = time::Date::parse(
        raw,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000)
}

fn parse_cidr(raw: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = match raw.trim().split_once('/') {
        Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?),
        None => {
            let ip: IpAddr = raw.trim().parse().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
            None => return false,
        },
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    ip >> shift == net >> shift
}

#[cfg(test)]
mod tests;
