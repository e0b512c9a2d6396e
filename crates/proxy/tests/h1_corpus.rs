//! The request cases of llhttp's test suite (`tests/h1_corpus/llhttp_requests.json`,
//! imported by `tests/h1_corpus/import_llhttp.py` with each case's source) read by
//! the HTTP/1 path's parser: it must find the same messages as llhttp in strict mode,
//! or refuse where llhttp refuses. Where the two differ on purpose the case is listed
//! below with the reason (SPEC §7 is stricter than llhttp, or llhttp knows methods
//! and protocols a proxy for web apps does not carry).

mod h1_common;

/// Cases where switchyard's verdict differs from llhttp's, and why.
const DEVIATIONS: &[(&str, &str)] = &[
    // Looser, and why that is safe.
    (
        "HTTP protocol and ANNOUNCE method",
        "any token is a method, as in nginx; a request's framing never depends on it",
    ),
    ("Invalid method", "any token is a method (MKCOLA), as in nginx; the backend answers 405 or 501 itself"),
    (
        "Missing CR between headers",
        "a bare LF ends a line, as in nginx and hyper (RFC 9112 §2.2 allows it); the head goes upstream rebuilt with CRLF, so the backend reads the same lines",
    ),
    // Stricter.
    ("SOURCE request with ICE", "ICE/1.0 is not HTTP: 400"),
    ("OPTIONS request with RTSP", "RTSP/1.0 is not HTTP: 400"),
    ("ANNOUNCE request with RTSP", "RTSP/1.0 is not HTTP: 400"),
    ("No HTTP version", "HTTP/0.9 requests are refused (400), as in hyper"),
    ("Quotes in URI", "a `\"` in the query is refused (400), as http::Uri (hyper) refuses it"),
    ("Fragment in URI", "a fragment has no place in a request target (RFC 9112 §3.2): 400; hyper strips it"),
    ("POST with `chunked` as last transfer-encoding", "SPEC §7: a coding other than chunked alone is 501"),
    (
        "POST with `chunked` as last transfer-encoding (multiple headers)",
        "SPEC §7: a coding other than chunked alone is 501",
    ),
];

struct Case {
    source: String,
    name: String,
    input: Vec<u8>,
    messages: usize,
    error: bool,
}

fn corpus() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/h1_corpus/llhttp_requests.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("corpus")).expect("json");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            source: c["source"].as_str().unwrap_or_default().to_owned(),
            name: c["name"].as_str().unwrap_or_default().to_owned(),
            // Each char is one byte (the importer writes bytes as code points < 256).
            input: c["input"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .map(|ch| u8::try_from(u32::from(ch)).unwrap_or(b'?'))
                .collect(),
            messages: usize::try_from(c["llhttp_messages"].as_u64().unwrap_or(0)).unwrap_or(0),
            error: c["llhttp_error"].as_bool().unwrap_or(false),
        })
        .collect()
}

#[test]
fn the_parser_agrees_with_llhttp_or_says_why_not() {
    let cases = corpus();
    assert!(cases.len() > 100, "the corpus lost its cases: {}", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let (read, error) = h1_common::messages(&c.input);
        let messages = read.len();
        // Where llhttp stops with an error, the proxy may stop earlier (refuse, or wait
        // for a head or body that never comes) but never forward more messages.
        let agrees = if c.error { messages <= c.messages } else { messages == c.messages && !error };
        let deviation = DEVIATIONS.iter().find(|(name, _)| *name == c.name);
        match (agrees, deviation) {
            (true, None) => {}
            (true, Some(_)) => wrong.push(format!("listed as a deviation but agrees: {} ({})", c.name, c.source)),
            (false, Some(_)) => {}
            (false, None) => wrong.push(format!(
                "{} ({}): llhttp {} message(s){}, switchyard {messages}{}",
                c.name,
                c.source,
                c.messages,
                if c.error { " then an error" } else { "" },
                if error { " then a refusal" } else { "" },
            )),
        }
    }
    assert!(wrong.is_empty(), "{} case(s):\n{}", wrong.len(), wrong.join("\n"));
}
