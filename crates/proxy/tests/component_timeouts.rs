//! Component tier, paused clock: `timeouts.request` runs from the last request byte
//! sent until the response head; `timeouts.idle` cuts an exchange in which nothing
//! moved for that long — during the upload, while waiting for the head, while the
//! response body streams. Both on the in-task HTTP/1 path and hyper-util's (h2c).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::time::Duration;
use switchyard_config::Config;
use switchyard_test_support::{Handler, Ticker, Upstream, body_channel, config_from, text};
use tokio::time::Instant;

const PROTOCOLS: [&str; 2] = ["http1", "h2c"];

fn config(backend: &Upstream, protocol: &str, timeouts: &str) -> Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.timeouts]\n{timeouts}\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\nprotocol = \"{protocol}\"\n",
        backend.address()
    ))
}

/// POSTs `chunks` chunks of 100 bytes to `/upload`, one every `every`, pausing `stall`
/// after the first; returns status, body text and how long the answer took.
async fn upload(
    h: &Handler,
    chunks: usize,
    every: Duration,
    stall: Duration,
) -> (StatusCode, Result<String, String>, Duration) {
    let (tx, body) = body_channel();
    let req = Request::post("/upload").header("host", "shop").body(body).unwrap();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for i in 0..chunks {
            if tx.send(Bytes::from(vec![b'u'; 100])).await.is_err() {
                return;
            }
            tokio::time::sleep(if i == 0 { stall } else { every }).await;
        }
    });
    let resp = h.proxy.handle(req).await;
    let took = start.elapsed();
    let (status, body) = text(resp).await;
    sender.abort();
    (status, body, took)
}

/// GETs `/hold`, which `b` holds until released; returns status, body text and how
/// long the answer took, then lets the held request go.
async fn get_held(h: &Handler, b: &Upstream) -> (StatusCode, Result<String, String>, Duration) {
    let start = Instant::now();
    let (status, body) = h.get_text("/hold").await;
    let took = start.elapsed();
    b.release(1);
    (status, body, took)
}

#[tokio::test(start_paused = true)]
async fn an_upload_longer_than_the_request_timeout_succeeds_while_it_moves() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    for protocol in PROTOCOLS {
        let h = Handler::new(&config(&b, protocol, "request = \"200ms\"\nidle = \"1s\""));
        // 12 chunks 50 ms apart: ~600 ms of upload on a 200 ms request timeout.
        let ms50 = Duration::from_millis(50);
        let (status, body, took) = upload(&h, 12, ms50, ms50).await;
        assert_eq!((status, body.unwrap()), (StatusCode::OK, "blue 1200".to_owned()), "{protocol}");
        assert!(took >= Duration::from_millis(550), "{protocol}: the upload took {took:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_upload_that_stalls_for_the_idle_timeout_is_cut_with_504() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    for protocol in PROTOCOLS {
        let h = Handler::new(&config(&b, protocol, "idle = \"200ms\""));
        let (status, body, took) = upload(&h, 3, Duration::from_millis(10), Duration::from_millis(600)).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{protocol}");
        assert!(body.unwrap().contains("pool \"blue\""));
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(600),
            "{protocol}: cut after {took:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_backend_that_never_answers_gets_504_after_the_request_timeout() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    for protocol in PROTOCOLS {
        let h = Handler::new(&config(&b, protocol, "request = \"200ms\""));
        let (status, body, took) = get_held(&h, &b).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{protocol}");
        assert!(body.unwrap().contains("service \"shop\" pool \"blue\""));
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(400),
            "{protocol}: 504 after {took:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_timeout_shorter_than_the_request_timeout_also_ends_the_wait_for_the_head() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    for protocol in PROTOCOLS {
        let h = Handler::new(&config(&b, protocol, "request = \"30s\"\nidle = \"300ms\""));
        let (status, _, took) = get_held(&h, &b).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{protocol}");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(500),
            "{protocol}: 504 after {took:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_response_body_that_stalls_for_the_idle_timeout_is_cut() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    for protocol in PROTOCOLS {
        let h = Handler::new(&config(&b, protocol, "idle = \"200ms\""));
        let resp = h.get("/download?bytes=1000000&pause=1").await;
        assert_eq!(resp.status(), StatusCode::OK, "{protocol}");
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(!first.into_data().unwrap().is_empty());
        let start = Instant::now();
        // The backend sends nothing more until released: the body ends in an error.
        let rest = tokio::time::timeout(Duration::from_secs(5), body.collect()).await.expect("the body was never cut");
        let took = start.elapsed();
        let err = rest.err().unwrap().to_string();
        assert!(err.contains("timeouts.idle"), "{protocol}: {err}");
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(400),
            "{protocol}: cut after {took:?}"
        );
        b.release(1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_download_that_keeps_moving_is_not_cut() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    let h = Handler::new(&config(&b, "http1", "request = \"100ms\"\nidle = \"200ms\""));
    let resp = h.get("/download?bytes=300000&pause=1").await;
    let mut body = resp.into_body();
    let mut got = body.frame().await.unwrap().unwrap().into_data().unwrap().len();
    // 150 ms of quiet (under idle) while the client waits, then the rest: the
    // exchange lasts past both timeouts.
    let release = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        b.release(1);
    };
    let read = async {
        while let Some(f) = body.frame().await {
            got += f.unwrap().into_data().map_or(0, |d| d.len());
        }
    };
    tokio::join!(release, read);
    assert_eq!(got, 300_000);
}
