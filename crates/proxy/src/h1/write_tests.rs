use super::*;
use crate::h1::parse::{self, MAX_HEADERS};
use httparse::EMPTY_HEADER;

fn forwarded(raw: &str, own: [Option<&[u8]>; 2]) -> String {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let req = parse::request(raw.as_bytes(), &mut h, 8192).unwrap().unwrap();
    let fwd = Forwarding {
        client: b"10.1.2.3",
        proto: "http",
        host: b"app.example",
        own,
        own_cookie: b"sy_preview",
        websocket: false,
    };
    let mut out = Vec::new();
    request_head(&mut out, &req, &fwd);
    String::from_utf8(out).unwrap()
}

#[test]
fn a_request_head_is_copied_minus_hop_by_hop_plus_forwarded() {
    let raw = "GET /p?q HTTP/1.1\r\nHost: App.Example:80\r\nAccept: */*\r\nConnection: keep-alive, X-Secret\r\n\
               X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-Proto: https\r\n\
               X-Forwarded-Host: evil\r\nUpgrade: h2c\r\n\r\n";
    assert_eq!(
        forwarded(raw, [None, None]),
        "GET /p?q HTTP/1.1\r\nAccept: */*\r\nHost: app.example\r\nX-Forwarded-For: 10.1.2.3\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example\r\n\r\n"
    );
}

#[test]
fn forwarded_for_lines_become_one_list_ending_with_the_client() {
    let raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Other: x\r\nx-forwarded-for: 2.2.2.2\r\n\r\n";
    let out = forwarded(raw, [None, None]);
    assert!(out.contains("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.1.2.3\r\nX-Other: x\r\n"), "{out}");
    assert_eq!(out.matches("orwarded-For").count(), 1, "{out}");
}

#[test]
fn lengths_are_canonical_and_chunking_is_kept() {
    let post = forwarded("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", [None, None]);
    assert!(post.contains("\r\nContent-Length: 7\r\n\r\n") && !post.contains("007"), "{post}");
    let chunked = forwarded("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", [None, None]);
    assert!(chunked.ends_with("\r\nTransfer-Encoding: chunked\r\n\r\n"), "{chunked}");
    assert_eq!(chunked.matches("Transfer-Encoding").count(), 1);
}

#[test]
fn the_proxys_own_routing_inputs_are_not_forwarded() {
    let raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Pool: green\r\nX-Switchyard-Preview: tok\r\n\
               Cookie: a=1; sy_preview=tok; b=2\r\n\r\n";
    let out = forwarded(raw, [Some(b"x-switchyard-preview"), Some(b"X-Pool")]);
    assert!(!out.contains("X-Pool") && !out.contains("Preview") && !out.contains("tok"), "{out}");
    assert!(out.contains("Cookie: a=1; b=2\r\n"), "{out}");
    let only = forwarded("GET / HTTP/1.1\r\nHost: a\r\nCookie: sy_preview=tok\r\n\r\n", [None, None]);
    assert!(!only.contains("Cookie"), "{only}");
    let other = forwarded("GET / HTTP/1.1\r\nHost: a\r\nCookie: sy_preview_x=1\r\n\r\n", [None, None]);
    assert!(other.contains("Cookie: sy_preview_x=1\r\n"), "{other}");
}

fn answered(raw: &str, head: bool, close: bool, cookie: Option<&[u8]>) -> String {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let resp = parse::response(raw.as_bytes(), &mut h, 8192, head).unwrap().unwrap();
    let mut out = Vec::new();
    response_head(&mut out, &resp, close, cookie, false);
    String::from_utf8(out).unwrap()
}

#[test]
fn a_response_head_keeps_its_lines_and_gets_the_proxys() {
    let raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(
        answered(raw, false, false, None),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
    );
    let closing = answered(raw, false, true, Some(b"sy=1; Path=/"));
    assert!(
        closing.ends_with("Set-Cookie: sy=1; Path=/\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"),
        "{closing}"
    );
    let until_close = answered("HTTP/1.0 200 OK\r\nX: y\r\n\r\n", false, false, None);
    assert_eq!(until_close, "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\n");
}

#[test]
fn bodiless_answers_keep_their_length_and_upgrades_their_upgrade() {
    let head = answered("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, false, None);
    assert_eq!(head, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    let ws = answered(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        false,
        false,
        None,
    );
    assert_eq!(ws, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
}

#[test]
fn decimals() {
    for n in [0u64, 7, 10, 12345, u64::MAX] {
        let mut out = Vec::new();
        decimal(&mut out, n);
        assert_eq!(out, n.to_string().as_bytes());
    }
}
