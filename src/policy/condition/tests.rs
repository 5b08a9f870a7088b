//! Operator semantics, one rule per test.

use super::*;
use crate::policy::actions::Action;
use crate::policy::context::Caller;
use crate::swf::Operation;
use std::collections::BTreeMap;

fn eval(op: &str, key: &str, values: &[&str], overrides: &[(&str, &[&str])]) -> bool {
    let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
    let condition = Condition::compile(op, key, &values, true).unwrap();
    with_ctx(overrides, |ctx| condition.evaluate(ctx))
}

/// Runs `f` with alice's context, `overrides` standing for keys the request carries.
fn with_ctx<R>(overrides: &[(&str, &[&str])], f: impl FnOnce(&Context<'_>) -> R) -> R {
    let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
    let overrides: BTreeMap<String, Vec<String>> = overrides
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    let ctx = Context {
        caller: Caller {
            name: "alice",
            arn: "arn:aws:iam::123456789012:user/alice",
            tags: &tags,
            session: None,
        },
        action: Action::Operation(Operation::PollForActivityTask),
        input: None,
        source_ip: Some("10.1.2.3".parse().unwrap()),
        now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        secure_transport: true,
        region: "us-east-1",
        overrides: Some(&overrides),
    };
    f(&ctx)
}

#[test]
fn string_operators() {
    assert!(eval("StringEquals", "aws:username", &["bob", "alice"], &[]));
    assert!(!eval("StringEquals", "aws:username", &["Alice"], &[]));
    assert!(eval(
        "StringEqualsIgnoreCase",
        "aws:username",
        &["ALICE"],
        &[]
    ));
    assert!(eval(
        "StringNotEquals",
        "aws:username",
        &["bob", "carol"],
        &[]
    ));
    assert!(
        !eval("StringNotEquals", "aws:username", &["bob", "alice"], &[]),
        "negated: none may match"
    );
    assert!(eval("StringLike", "aws:username", &["al*"], &[]));
    assert!(
        !eval("StringEquals", "aws:username", &["al*"], &[]),
        "no wildcards outside Like"
    );
    assert!(eval("StringNotLike", "aws:username", &["b*"], &[]));
    assert!(eval(
        "StringNotEqualsIgnoreCase",
        "aws:username",
        &["BOB"],
        &[]
    ));
}

#[test]
fn missing_keys() {
    assert!(!eval("StringEquals", "aws:PrincipalTag/none", &["x"], &[]));
    assert!(eval(
        "StringNotEquals",
        "aws:PrincipalTag/none",
        &["x"],
        &[]
    ));
    assert!(eval(
        "StringEqualsIfExists",
        "aws:PrincipalTag/none",
        &["x"],
        &[]
    ));
    assert!(
        !eval("StringEqualsIfExists", "aws:PrincipalTag/team", &["x"], &[]),
        "present: compared"
    );
    assert!(eval("Null", "aws:PrincipalTag/none", &["true"], &[]));
    assert!(!eval("Null", "aws:PrincipalTag/team", &["true"], &[]));
    assert!(eval("Null", "aws:PrincipalTag/team", &["false"], &[]));
    assert!(!eval(
        "ForAnyValue:StringEquals",
        "aws:PrincipalTag/none",
        &["x"],
        &[]
    ));
    assert!(eval(
        "ForAllValues:StringEquals",
        "aws:PrincipalTag/none",
        &["x"],
        &[]
    ));
}

#[test]
fn set_qualifiers() {
    let tags: &[&str] = &["a", "b"];
    assert!(eval(
        "ForAnyValue:StringEquals",
        "swf:tagFilter.tag",
        &["b", "z"],
        &[("swf:tagFilter.tag", tags)]
    ));
    assert!(!eval(
        "ForAllValues:StringEquals",
        "swf:tagFilter.tag",
        &["b", "z"],
        &[("swf:tagFilter.tag", tags)]
    ));
    assert!(eval(
        "ForAllValues:StringEquals",
        "swf:tagFilter.tag",
        &["a", "b", "c"],
        &[("swf:tagFilter.tag", tags)]
    ));
    assert!(eval(
        "ForAnyValue:StringNotEquals",
        "swf:tagFilter.tag",
        &["a"],
        &[("swf:tagFilter.tag", tags)]
    ));
    assert!(!eval(
        "ForAllValues:StringNotEquals",
        "swf:tagFilter.tag",
        &["a"],
        &[("swf:tagFilter.tag", tags)]
    ));
}

#[test]
fn numbers_dates_bools_and_addresses() {
    assert!(eval(
        "NumericLessThan",
        "aws:EpochTime",
        &["1700000001"],
        &[]
    ));
    assert!(!eval(
        "NumericGreaterThan",
        "aws:EpochTime",
        &["1700000001"],
        &[]
    ));
    assert!(eval("NumericNotEquals", "aws:EpochTime", &["1"], &[]));
    assert!(eval(
        "NumericGreaterThanEquals",
        "aws:EpochTime",
        &["1700000000"],
        &[]
    ));
    assert!(eval(
        "DateGreaterThan",
        "aws:CurrentTime",
        &["2023-01-01T00:00:00Z"],
        &[]
    ));
    assert!(eval(
        "DateLessThan",
        "aws:CurrentTime",
        &["2024-01-01"],
        &[]
    ));
    assert!(eval(
        "DateEquals",
        "aws:EpochTime",
        &["2023-11-14T22:13:20Z"],
        &[]
    ));
    assert!(eval(
        "DateNotEquals",
        "aws:CurrentTime",
        &["2020-01-01"],
        &[]
    ));
    assert!(eval("Bool", "aws:SecureTransport", &["true"], &[]));
    assert!(!eval("Bool", "aws:SecureTransport", &["false"], &[]));
    assert!(eval("IpAddress", "aws:SourceIp", &["10.0.0.0/8"], &[]));
    assert!(eval(
        "IpAddress",
        "aws:SourceIp",
        &["192.168.0.0/16", "10.1.2.3"],
        &[]
    ));
    assert!(!eval("IpAddress", "aws:SourceIp", &["10.1.3.0/24"], &[]));
    assert!(eval(
        "NotIpAddress",
        "aws:SourceIp",
        &["192.168.0.0/16"],
        &[]
    ));
    assert!(eval("IpAddress", "aws:SourceIp", &["0.0.0.0/0"], &[]));
    assert!(
        !eval("IpAddress", "aws:SourceIp", &["::/0"], &[]),
        "v4 is not in a v6 block"
    );
}

#[test]
fn arn_operators() {
    assert!(eval(
        "ArnLike",
        "aws:PrincipalArn",
        &["arn:aws:iam::*:user/al*"],
        &[]
    ));
    assert!(eval(
        "ArnEquals",
        "aws:PrincipalArn",
        &["arn:aws:iam::123456789012:user/alice"],
        &[]
    ));
    assert!(!eval(
        "ArnLike",
        "aws:PrincipalArn",
        &["arn:aws:iam::*:role/*"],
        &[]
    ));
    assert!(eval(
        "ArnNotLike",
        "aws:PrincipalArn",
        &["arn:aws:iam::*:role/*"],
        &[]
    ));
    assert!(
        !eval("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*"], &[]),
        "segment count matters"
    );
}

#[test]
fn variables_in_values() {
    assert!(eval(
        "StringEquals",
        "aws:PrincipalTag/team",
        &["${aws:PrincipalTag/team}"],
        &[]
    ));
    assert!(eval(
        "StringLike",
        "swf:taskList.name",
        &["${aws:username}-*"],
        &[("swf:taskList.name", &["alice-work"])]
    ));
    assert!(!eval(
        "StringLike",
        "swf:taskList.name",
        &["${aws:username}-*"],
        &[("swf:taskList.name", &["bob-work"])]
    ));
    assert!(
        !eval(
            "StringEquals",
            "aws:username",
            &["${aws:PrincipalTag/none}"],
            &[]
        ),
        "unresolved matches nothing"
    );
}

#[test]
fn bad_values_and_operators_are_refused() {
    for (op, v) in [
        ("NumericEquals", "x"),
        ("DateEquals", "yesterday"),
        ("Bool", "yes"),
        ("IpAddress", "10.0.0.0/33"),
        ("Nope", "x"),
        ("NullIfExists", "true"),
    ] {
        assert!(
            Condition::compile(op, "aws:username", &[v.to_owned()], true).is_err(),
            "{op} {v}"
        );
    }
    assert!(Condition::compile("StringEquals", "aws:username", &[], true).is_err());
    assert!(Operator::parse("forallvalues:stringlikeifexists").is_some());
}

/// Every numeric and date comparison, below, at and above the value (`aws:EpochTime` is
/// 1700000000, `aws:CurrentTime` 2023-11-14T22:13:20Z): equality is inclusive where the name
/// says so.
#[test]
fn comparisons_at_their_boundaries() {
    let cases: [(&str, [bool; 3]); 6] = [
        ("Equals", [false, true, false]),
        ("NotEquals", [true, false, true]),
        ("LessThan", [false, false, true]),
        ("LessThanEquals", [false, true, true]),
        ("GreaterThan", [true, false, false]),
        ("GreaterThanEquals", [true, true, false]),
    ];
    let numbers = ["1699999999", "1700000000", "1700000001"];
    let dates = [
        "2023-11-14T22:13:19Z",
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:21Z",
    ];
    for (name, expected) in cases {
        for (i, want) in expected.into_iter().enumerate() {
            let numeric = format!("Numeric{name}");
            assert_eq!(
                eval(&numeric, "aws:EpochTime", &[numbers[i]], &[]),
                want,
                "{numeric} {}",
                numbers[i]
            );
            let date = format!("Date{name}");
            assert_eq!(
                eval(&date, "aws:CurrentTime", &[dates[i]], &[]),
                want,
                "{date} {}",
                dates[i]
            );
        }
    }
}

/// `explain`'s line for a condition: operator, key, policy values, the request's value and
/// the result, then what each variable resolved to.
#[test]
fn a_condition_describes_itself_for_explain() {
    let values = vec!["${aws:username}-*".to_owned()];
    let condition = Condition::compile("StringLike", "aws:username", &values, true).unwrap();
    let line = with_ctx(&[], |ctx| condition.describe(ctx));
    assert_eq!(
        line,
        r#"StringLike aws:username ["${aws:username}-*"]: request ["alice"] -> false; ${aws:username} = `alice`"#
    );

    let absent = Condition::compile(
        "StringEquals",
        "aws:PrincipalTag/none",
        &["x".to_owned()],
        true,
    )
    .unwrap();
    let line = with_ctx(&[], |ctx| absent.describe(ctx));
    assert!(line.contains("request absent -> false"), "{line}");
}

/// A value that is not a six-part ARN matches only the pattern `*`; a pattern that is not a
/// six-part ARN matches no ARN.
#[test]
fn arn_operators_on_values_that_are_not_arns() {
    let not_an_arn: &[(&str, &[&str])] = &[("aws:PrincipalArn", &["not-an-arn"])];
    assert!(eval("ArnLike", "aws:PrincipalArn", &["*"], not_an_arn));
    assert!(!eval("ArnLike", "aws:PrincipalArn", &["not-*"], not_an_arn));
    assert!(!eval(
        "ArnLike",
        "aws:PrincipalArn",
        &["not-an-arn"],
        not_an_arn
    ));
    assert!(!eval("ArnLike", "aws:PrincipalArn", &["arn:*"], &[]));
    assert!(eval("ArnLike", "aws:PrincipalArn", &["*"], &[]));
}

/// Date-only values stand for midnight UTC of that day.
#[test]
fn a_date_alone_is_midnight() {
    assert!(eval(
        "DateGreaterThan",
        "aws:CurrentTime",
        &["2023-11-14"],
        &[]
    ));
    assert!(!eval(
        "DateLessThan",
        "aws:CurrentTime",
        &["2023-11-14"],
        &[]
    ));
    assert!(eval(
        "DateLessThan",
        "aws:CurrentTime",
        &["2023-11-15"],
        &[]
    ));
}

/// IPv6 sources match IPv6 networks, and an IPv4-mapped IPv6 source matches its IPv4 network.
#[test]
fn ipv6_sources() {
    let from = |ip: &str, network: &str| {
        let condition =
            Condition::compile("IpAddress", "aws:SourceIp", &[network.to_owned()], true).unwrap();
        with_ctx(&[], |ctx| {
            let ctx = Context {
                source_ip: Some(ip.parse().unwrap()),
                ..*ctx
            };
            condition.evaluate(&ctx)
        })
    };
    assert!(from("2001:db8::1", "2001:db8::/32"));
    assert!(!from("2001:db9::1", "2001:db8::/32"));
    assert!(from("::ffff:10.1.2.3", "10.0.0.0/8"));
    assert!(!from("::ffff:11.1.2.3", "10.0.0.0/8"));
    assert!(!from("2001:db8::1", "10.0.0.0/8"));
    assert!(!from("10.1.2.3", "2001:db8::/32"));
}
