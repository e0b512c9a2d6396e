//! Starting a rollout against real upstreams: the smoke requests go to every
//! canary backend, and a start the canary cannot pass is refused with 409 naming
//! what failed, changing nothing.

#![allow(clippy::unwrap_used)]

mod common;
use common::{fixture, meta};
use switchyard_config::{RolloutSettings, Smoke, Weight};
use switchyard_control::ControlError;

fn with_smoke(path: &str, status: u16) -> RolloutSettings {
    RolloutSettings { smoke: vec![Smoke { path: path.into(), status }], ..RolloutSettings::default() }
}

#[tokio::test]
async fn passing_smoke_requests_reach_every_canary_backend_then_the_first_step_is_in_force() {
    let f = fixture("active = \"blue\"").await;
    let v = f.handle.rollout_start("shop", "green", with_smoke("/status/204", 204), meta("go")).await.unwrap();
    assert_eq!((v.version, v.traffic.weight("green")), (2, Weight(100)));
    assert_eq!(f.green.hits(), 1, "one smoke request to the one green backend");
    assert_eq!(f.blue.hits(), 0, "nothing to the baseline");
}

#[tokio::test]
async fn a_failing_smoke_request_refuses_the_start_naming_backend_path_and_answer() {
    let f = fixture("active = \"blue\"").await;
    let e = f.handle.rollout_start("shop", "green", with_smoke("/status/503", 200), meta("go")).await.unwrap_err();
    let ControlError::Conflict(text) = &e else { panic!("{e:?}") };
    assert!(
        text.contains(&f.green.address()) && text.contains("/status/503") && text.contains("answered 503"),
        "{text}"
    );
    f.green.stop();
    let e = f.handle.rollout_start("shop", "green", with_smoke("/", 200), meta("go")).await.unwrap_err();
    assert!(matches!(&e, ControlError::Conflict(t) if t.contains("connect")), "{e}");
    let v = f.handle.service("shop").await.unwrap();
    assert_eq!((v.version, v.traffic.weight("green"), v.rollout.is_none()), (1, Weight::ZERO, true));
}

#[tokio::test]
async fn a_canary_below_min_healthy_is_refused_by_the_gate() {
    let f = fixture("active = \"blue\"").await;
    let table = f.router.load();
    table.service("shop").unwrap().pool("green").unwrap().backends[0].set_healthy(false);
    let e = f.handle.rollout_start("shop", "green", RolloutSettings::default(), meta("go")).await.unwrap_err();
    assert!(matches!(e, ControlError::Gate { ref pool, healthy: 0, .. } if pool == "green"), "{e}");
    assert_eq!(f.handle.service("shop").await.unwrap().version, 1);
}
