//! Quota unit tests: which meters a principal gets, caps before rates with refunds, per-domain
//! keys, and the registry's bounds.

use std::sync::atomic::AtomicU64;

use super::registry::MAX_DOMAIN_SLOTS;
use super::*;

fn spec(
    name: &str,
    ops: &[Operation],
    per: Per,
    rate: Option<(f64, u64)>,
    cap: Option<u32>,
) -> Arc<Spec> {
    Arc::new(Spec {
        name: name.into(),
        operations: ops.to_vec(),
        principals: vec!["tenant-*".into()],
        groups: vec!["ops".into()],
        per,
        rate,
        max_in_flight: cap,
        origin: "q.toml:1".into(),
    })
}

fn meters(quotas: &Quotas, registry: &Registry, name: &str, groups: &[String]) -> Meters {
    quotas.meters(registry, name, groups, |_| Arc::new(AtomicU64::new(0)))
}

const HEARTBEAT: Operation = Operation::RecordActivityTaskHeartbeat;
const POLL: Operation = Operation::PollForActivityTask;

#[test]
fn a_principal_gets_meters_only_for_the_operations_its_quotas_cover() {
    let quotas = Quotas::new(
        vec![
            spec("beats", &[HEARTBEAT], Per::Principal, Some((1.0, 1)), None),
            spec("polls", &[POLL], Per::Principal, None, Some(1)),
        ],
        None,
    );
    let registry = Registry::default();
    let m = meters(&quotas, &registry, "tenant-a", &[]);
    assert_eq!(m.len(), Operation::ALL.len());
    let names =
        |op: Operation| -> Vec<&str> { m[op.index()].iter().map(|m| &*m.spec().name).collect() };
    assert_eq!(names(HEARTBEAT), ["beats"]);
    assert_eq!(names(POLL), ["polls"]);
    assert!(names(Operation::DescribeDomain).is_empty());
    // By group, not by name.
    assert_eq!(
        meters(&quotas, &registry, "operator", &["ops".into()]).len(),
        Operation::ALL.len()
    );
    // Neither: no meters at all (the empty fast path).
    assert!(meters(&quotas, &registry, "operator", &["other".into()]).is_empty());
}

#[tokio::test]
async fn a_cap_holds_until_the_admission_is_dropped() {
    let quotas = Quotas::new(
        vec![spec("polls", &[POLL], Per::Principal, None, Some(2))],
        None,
    );
    let registry = Registry::default();
    let m = meters(&quotas, &registry, "tenant-a", &[]);
    let polls = &m[POLL.index()];
    let one = quotas.admit(polls, Some("d")).await.unwrap();
    let two = quotas.admit(polls, Some("d")).await.unwrap();
    let refused = quotas.admit(polls, Some("d")).await.unwrap_err();
    assert_eq!(
        refused,
        Throttle::InFlight {
            quota: "polls".into(),
            max: 2
        }
    );
    drop(one);
    let three = quotas
        .admit(polls, Some("d"))
        .await
        .expect("a place came free");
    drop((two, three));
    // A refused call held no place.
    let held: Vec<_> = [
        quotas.admit(polls, None).await,
        quotas.admit(polls, None).await,
    ]
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert_eq!(held.len(), 2);
    // Each principal has its own cap.
    let other = meters(&quotas, &registry, "tenant-b", &[]);
    let _b = quotas
        .admit(&other[POLL.index()], None)
        .await
        .expect("B's own cap");
}

#[tokio::test]
async fn a_refusal_by_one_quota_gives_back_what_the_others_took() {
    let quotas = Quotas::new(
        vec![
            spec(
                "wide",
                &[HEARTBEAT],
                Per::Principal,
                Some((0.001, 2)),
                Some(5),
            ),
            spec("narrow", &[HEARTBEAT], Per::All, Some((0.001, 1)), None),
        ],
        None,
    );
    let registry = Registry::default();
    let m = meters(&quotas, &registry, "tenant-a", &[]);
    let beats = &m[HEARTBEAT.index()];
    let admitted = quotas.admit(beats, None).await.unwrap();
    drop(admitted);
    for _ in 0..3 {
        let refused = quotas.admit(beats, None).await.unwrap_err();
        assert_eq!(
            refused,
            Throttle::Rate {
                quota: "narrow".into()
            }
        );
    }
    // `wide` (burst 2) spent one token, not four: a fresh `narrow` admits once more.
    let other = Quotas::new(
        vec![
            quotas.specs[0].clone(),
            spec("narrow-2", &[HEARTBEAT], Per::All, Some((0.001, 5)), None),
        ],
        None,
    );
    let m = meters(&other, &registry, "tenant-a", &[]);
    let _second = other
        .admit(&m[HEARTBEAT.index()], None)
        .await
        .expect("wide's second token");
    assert_eq!(
        other.admit(&m[HEARTBEAT.index()], None).await.unwrap_err(),
        Throttle::Rate {
            quota: "wide".into()
        }
    );
    // The counter of the quota that refused counts each refusal.
    let counted = Arc::new(AtomicU64::new(0));
    let m = quotas.meters(&registry, "tenant-c", &[], |name| {
        if name == "narrow" {
            counted.clone()
        } else {
            Arc::new(AtomicU64::new(0))
        }
    });
    let _ = quotas.admit(&m[HEARTBEAT.index()], None).await;
    assert_eq!(counted.load(Relaxed), 1);
}

#[tokio::test]
async fn keys_follow_per() {
    let registry = Registry::default();
    for (per, same_principal_other_domain, other_principal_same_domain) in [
        (Per::Principal, false, true),
        (Per::Domain, true, false),
        (Per::PrincipalDomain, true, true),
        (Per::All, false, false),
    ] {
        let quotas = Quotas::new(
            vec![spec(
                per.as_str(),
                &[HEARTBEAT],
                per,
                Some((0.001, 1)),
                None,
            )],
            None,
        );
        let a = meters(&quotas, &registry, "tenant-a", &[]);
        let b = meters(&quotas, &registry, "tenant-b", &[]);
        let (a, b) = (&a[HEARTBEAT.index()], &b[HEARTBEAT.index()]);
        let _first = quotas.admit(a, Some("d1")).await.unwrap();
        assert_eq!(
            quotas.admit(a, Some("d2")).await.is_ok(),
            same_principal_other_domain,
            "{per:?}: A in another domain"
        );
        assert_eq!(
            quotas.admit(b, Some("d1")).await.is_ok(),
            other_principal_same_domain,
            "{per:?}: B in the same domain"
        );
    }
}

#[test]
fn the_registry_drops_slots_no_generation_holds() {
    let registry = Registry::default();
    let quotas = Quotas::new(
        vec![
            spec("fixed", &[HEARTBEAT], Per::Principal, Some((1.0, 1)), None),
            spec("domains", &[HEARTBEAT], Per::Domain, Some((1.0, 1)), None),
        ],
        None,
    );
    let m = meters(&quotas, &registry, "tenant-a", &[]);
    assert_eq!(registry.len(), (1, 0));
    registry.sweep();
    assert_eq!(registry.len(), (1, 0), "held by a live generation");
    drop(m);
    registry.sweep();
    assert!(registry.is_empty());
}

#[test]
fn per_domain_slots_are_bounded_and_idle_ones_make_room() {
    let registry = Registry::default();
    let spec = spec("domains", &[HEARTBEAT], Per::Domain, Some((0.001, 1)), None);
    let Place::ByDomain(slots) = registry.place(&spec, "tenant-a") else {
        panic!("a per-domain place");
    };
    let rate = spec.gcra_rate().unwrap();
    let now = gcra::now();
    for i in 0..MAX_DOMAIN_SLOTS {
        let slot = slots.get(&format!("d{i}")).expect("room");
        if i % 2 == 0 {
            slot.bucket.admit(rate, now).unwrap(); // busy: a spent bucket
        }
    }
    assert!(
        slots.get("new").is_some(),
        "idle slots are forgotten to make room"
    );
    assert!(slots.get("d0").is_some(), "a busy slot is kept");
    for i in 0..MAX_DOMAIN_SLOTS {
        if let Some(slot) = slots.get(&format!("e{i}")) {
            let _ = slot.bucket.admit(rate, now);
        }
    }
    assert!(
        slots.get("one-too-many").is_none(),
        "every slot is busy: the call is refused, not counted nowhere"
    );
    assert!(registry.len().1 <= MAX_DOMAIN_SLOTS);
}
