use super::*;
use httparse::EMPTY_HEADER;

fn req(raw: &str) -> Result<Option<(Body, bool, usize)>, Refusal> {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let head = request(raw.as_bytes(), &mut h, 8192)?;
    if let Some(head) = &head {
        head.host_rule()?;
    }
    Ok(head.map(|r| (r.body, r.keep_alive, r.len)))
}

fn refused(raw: &str) -> Refusal {
    match req(raw) {
        Err(r) => r,
        Ok(v) => panic!("accepted {raw:?}: {v:?}"),
    }
}

#[test]
fn a_plain_get_parses_in_place() {
    let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: app.example\r\nAccept: */*\r\n\r\nNEXT";
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let r = request(raw, &mut h, 8192).unwrap().unwrap();
    assert_eq!((r.method, r.target, r.http10), ("GET", "/a?b=1", false));
    assert_eq!(r.host, Some(&b"app.example"[..]));
    assert_eq!(r.headers.len(), 2);
    assert_eq!(&raw[r.len..], b"NEXT");
    assert_eq!(r.body, Body::None);
    assert!(r.keep_alive && !r.upgrade && !r.expect_continue);
}

#[test]
fn incomplete_heads_wait_until_the_limit() {
    assert_eq!(req("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    let long = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "y".repeat(9000));
    assert_eq!(refused(&long), Refusal::TooLarge);
    let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
    assert_eq!(refused(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")), Refusal::TooLarge);
}

#[test]
fn body_framing_follows_the_length_or_chunked() {
    let post = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(req(&format!("{post}hello")), Ok(Some((Body::Length(5), true, post.len()))));
    assert_eq!(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap().0, Body::Length(0));
    assert_eq!(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n").unwrap().unwrap().0, Body::Length(7));
    let chunked = req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(chunked.unwrap().unwrap().0, Body::Chunked);
}

#[test]
fn ambiguous_lengths_are_refused() {
    for raw in [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ] {
        assert_eq!(refused(raw), Refusal::AmbiguousLength, "{raw:?}");
    }
}

#[test]
fn codings_other_than_chunked_alone_are_not_implemented() {
    for te in ["gzip", "gzip, chunked", "chunked, chunked", "chunked, gzip", "identity", ""] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(refused(&raw), Refusal::UnsupportedEncoding, "{te:?}");
        assert_eq!(Refusal::UnsupportedEncoding.status(), 501);
    }
    let two = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(refused(two), Refusal::UnsupportedEncoding);
}

#[test]
fn host_is_required_once_in_http11() {
    assert_eq!(refused("GET / HTTP/1.1\r\n\r\n"), Refusal::MissingHost);
    assert_eq!(refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), Refusal::RepeatedHost);
    let old = req("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!old.1, "HTTP/1.0 closes unless asked to keep alive");
    assert!(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap().unwrap().1);
}

#[test]
fn malformed_lines_bare_cr_and_obs_fold_are_refused() {
    for raw in [
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET a?b HTTP/1.1\r\nHost: a\r\n\r\n",
        "PRI * HTTP/1.1\r\n\r\n",
        "GET /a`b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a?<b> HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\x7f: 1\r\n\r\n",
    ] {
        assert_eq!(refused(raw), Refusal::Malformed, "{raw:?}");
    }
}

#[test]
fn connection_options_are_read() {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\n\r\n";
    let r = request(raw, &mut h, 8192).unwrap().unwrap();
    assert!(r.upgrade && r.keep_alive && r.expect_continue);
    assert!(!req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap().unwrap().1);
}

fn resp(raw: &str, head: bool) -> Result<(u16, Body, bool), Refusal> {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    response(raw.as_bytes(), &mut h, 8192, head).map(|r| r.map(|r| (r.status, r.body, r.keep_alive)).unwrap())
}

#[test]
fn response_bodies_follow_the_status_and_the_request() {
    let cl = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(resp(cl, false), Ok((200, Body::Length(5), true)));
    assert_eq!(resp(cl, true), Ok((200, Body::None, true)));
    for status in ["101 Switching Protocols", "204 No Content", "304 Not Modified", "100 Continue"] {
        let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(resp(&raw, false).unwrap().1, Body::None, "{status}");
    }
    let close = resp("HTTP/1.1 200 OK\r\n\r\n", false);
    assert_eq!(close, Ok((200, Body::UntilClose, false)), "no length: ends at close, never reused");
    let chunked = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false);
    assert_eq!(chunked, Ok((200, Body::Chunked, true)));
    assert_eq!(resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false), Ok((200, Body::Length(1), false)));
}

#[test]
fn ambiguous_responses_are_refused() {
    let both = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(resp(both, false), Err(Refusal::AmbiguousLength));
    let gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_eq!(resp(gzip, false), Err(Refusal::UnsupportedEncoding));
    let two = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\n";
    assert_eq!(resp(two, false), Err(Refusal::AmbiguousLength));
}
