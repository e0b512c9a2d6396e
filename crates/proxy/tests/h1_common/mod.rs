//! The messages switchyard's HTTP/1 parser finds in a byte string, as the corpus
//! and the differential tests compare them with llhttp's and hyper's.

use switchyard_proxy::h1::chunked::Chunked;
use switchyard_proxy::h1::parse::{self, Body, MAX_HEADERS};

/// Each complete message (method, body data length) in order, and whether the
/// parser refused something. It stops when it refuses, waits for more, or after a
/// message that closes the connection (no keep-alive, CONNECT, an upgrade): bytes
/// left then count as refused, as llhttp reports them.
pub fn messages(mut rest: &[u8]) -> (Vec<(String, usize)>, bool) {
    let mut out = Vec::new();
    loop {
        if rest.is_empty() {
            return (out, false);
        }
        let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let head = match parse::request(rest, &mut lines, 64 * 1024) {
            Ok(Some(h)) => h,
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        };
        let method = head.method.to_owned();
        let last = !head.keep_alive || head.upgrade || head.method == "CONNECT";
        let (len, body) = (head.len, head.body);
        rest = &rest[len..];
        let size = match body {
            Body::None => 0,
            Body::Length(n) => match usize::try_from(n).ok().filter(|&n| n <= rest.len()) {
                Some(n) => {
                    rest = &rest[n..];
                    n
                }
                None => return (out, false),
            },
            Body::Chunked => match Chunked::default().feed(rest) {
                Ok(fed) if fed.done => {
                    rest = &rest[fed.used..];
                    usize::try_from(fed.data).unwrap_or(usize::MAX)
                }
                Ok(_) => return (out, false),
                Err(_) => return (out, true),
            },
            Body::UntilClose => unreachable!("requests are never close-delimited"),
        };
        out.push((method, size));
        if last {
            return (out, !rest.is_empty());
        }
    }
}
