//! WebSocket through the proxy: echo works, the connection stays on blue after a
//! switch, it is counted as upgraded, and `drain_timeout` closes it.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use switchyard_test_support::{TestProxy, Upstream, assert_eventually, config_from};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

mod ws_echo;
use ws_echo::ws_echo;

fn cfg(blue: &str, green: &str, active: &str, extra: &str) -> switchyard_config::Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"chat\"\n{extra}\n[service.traffic]\nactive = \"{active}\"\n[service.pools.blue]\nbackends = [\"{blue}\"]\n[service.pools.green]\nbackends = [\"{green}\"]\n"
    ))
}

fn upgraded(proxy: &TestProxy, pool: &str) -> u64 {
    proxy.router.load().service("chat").unwrap().pool(pool).unwrap().stats.upgraded()
}

#[tokio::test]
async fn websocket_stays_on_blue_after_switch_and_drain_timeout_closes_it() {
    let (blue, green) = (ws_echo("blue").await, ws_echo("green").await);
    let proxy = TestProxy::start(&cfg(&blue, &green, "blue", "drain_timeout = \"300ms\"")).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://chat.example.com/socket", stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("blue: hi"));
    assert_eq!(upgraded(&proxy, "blue"), 1);

    proxy.apply(&cfg(&blue, &green, "green", "drain_timeout = \"300ms\""));
    ws.send(Message::text("still there?")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("blue: still there?"));

    // drain_timeout after blue lost its weight, the tunnel is closed.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the upgraded connection was not closed after drain_timeout");
    assert_eventually!(upgraded(&proxy, "blue") == 0, "tunnel still counted");

    // New connections go to green.
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("ws://chat.example.com/socket", stream).await.unwrap();
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("green: hi"));
}

#[tokio::test]
async fn without_drain_timeout_the_websocket_outlives_the_switch() {
    let (blue, green) = (ws_echo("blue").await, ws_echo("green").await);
    let _plain = Upstream::spawn("unused").await;
    let proxy = TestProxy::start(&cfg(&blue, &green, "blue", "")).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("ws://chat.example.com/socket", stream).await.unwrap();
    proxy.apply(&cfg(&blue, &green, "green", ""));
    for i in 0..5 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(format!("blue: m{i}")));
    }
    assert_eq!(upgraded(&proxy, "blue"), 1);
    ws.close(None).await.unwrap();
    // The tunnel lasts until both sockets are closed, not just the WebSocket.
    drop(ws);
    assert_eventually!(upgraded(&proxy, "blue") == 0, "closed tunnel still counted");
}

/// A tunnel outlives hyper's connection (it keeps the socket): it must keep its
/// place under `max_connections` until it closes.
#[tokio::test]
async fn an_open_websocket_keeps_its_place_under_max_connections() {
    let (blue, green) = (ws_echo("blue").await, ws_echo("green").await);
    let text = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nmax_connections = 1\n[[service]]\nname = \"chat\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{blue}\"]\n[service.pools.green]\nbackends = [\"{green}\"]\n"
    );
    let proxy = TestProxy::start(&config_from(&text)).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("ws://chat.example.com/socket", stream).await.unwrap();
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("blue: hi"));
    // A second client waits in the backlog while the tunnel is open.
    let mut other = switchyard_test_support::RawConn::open(proxy.addr).await;
    assert!(other.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), other.response()).await.is_err(),
        "served past max_connections while a WebSocket was open"
    );
    drop(ws);
    let r = tokio::time::timeout(Duration::from_secs(10), other.response()).await.expect("never served");
    assert!(r.is_some(), "no answer once the tunnel closed");
}
