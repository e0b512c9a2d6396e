//! The dashboard's files over real HTTP (SPEC §10): no token needed, the
//! strict CSP on every answer, caching a new binary invalidates; and
//! `GET /v1/whoami`, which tells the page what its token may do.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{Admin, OP, start_with_files};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use switchyard_admin::Limits;

const VIEW: &str = "view-secret";

async fn start() -> Admin {
    start_with_files(
        Limits::default(),
        "[[admin.tokens]]\nname = \"dash\"\nfile = \"view\"\nrole = \"viewer\"",
        &[("view", VIEW)],
    )
    .await
}

async fn get(api: &Admin, path: &str, headers: &[(&str, &[u8])]) -> (StatusCode, Value, HeaderMap) {
    api.exact("GET", path, headers, b"").await.unwrap()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_assets_need_no_token_and_carry_the_csp() {
    let api = start().await;
    let (s, page, h) = get(&api, "/ui", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header(&h, "content-security-policy").split("; base-uri").next().unwrap(),
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    );
    assert_eq!(header(&h, "x-frame-options"), "DENY");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    let page = page.as_str().unwrap().to_owned();
    assert!(
        page.contains("<link rel=\"icon\" href=\"data:,\">"),
        "the page must not make the browser ask for a favicon"
    );

    // Every asset the page names is served, typed, and cached for good under its versioned URL.
    let urls: Vec<&str> = page.split(['"', '\'']).filter(|s| s.starts_with("/ui/") && s.contains("?v=")).collect();
    assert_eq!(urls.len(), 6, "{urls:?}");
    for url in urls {
        let (s, _, h) = get(&api, url, &[]).await;
        assert_eq!(s, StatusCode::OK, "{url}");
        assert!(header(&h, "content-type").starts_with(if url.contains(".css") {
            "text/css"
        } else {
            "text/javascript"
        }));
        assert_eq!(header(&h, "cache-control"), "public, max-age=31536000, immutable", "{url}");
        assert!(header(&h, "content-security-policy").starts_with("default-src 'none'"), "{url}");
        // An old binary's version (or none) is not cached: the file may have changed.
        let (_, _, h) = get(&api, &url.replace("?v=", "?v=0"), &[]).await;
        assert_eq!(header(&h, "cache-control"), "no-cache");
    }
}

#[tokio::test]
async fn the_page_revalidates_with_its_etag() {
    let api = start().await;
    let (_, _, h) = get(&api, "/ui/", &[]).await;
    let etag = header(&h, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");
    let (s, body, _) = get(&api, "/ui", &[("if-none-match", etag.as_bytes())]).await;
    assert_eq!((s, body), (StatusCode::NOT_MODIFIED, json!("")));
    let (s, _, _) = get(&api, "/ui", &[("if-none-match", b"\"other\"")]).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn unknown_files_methods_and_hosts_are_refused() {
    let api = start().await;
    let (s, e, h) = get(&api, "/ui/secret.txt", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["error"], "no such dashboard file /ui/secret.txt");
    assert!(!header(&h, "content-security-policy").is_empty());
    let (s, _, h) = api.exact("POST", "/ui", &[], b"").await.unwrap();
    assert_eq!((s, header(&h, "allow")), (StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD"));
    // The page is under the same browser rules as the API: a rebinding Host is refused.
    let (s, _, _) = get(&api, "/ui", &[("host", b"evil.example:9901")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = get(&api, "/ui/app.js", &[("origin", b"http://evil.example")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn whoami_names_the_token_and_its_role() {
    let api = start().await;
    let op = format!("Bearer {OP}");
    let (s, v, _) = get(&api, "/v1/whoami", &[("authorization", op.as_bytes())]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"actor": "api", "role": "operator"})));
    let view = format!("Bearer {VIEW}");
    let (s, v, _) = get(&api, "/v1/whoami", &[("authorization", view.as_bytes())]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"actor": "dash", "role": "viewer"})));
    let (s, v, _) = get(&api, "/v1/whoami", &[("authorization", b"Bearer wrong")]).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing or unknown bearer token")));
    let (s, _, _) = api.exact("POST", "/v1/whoami", &[("authorization", op.as_bytes())], b"").await.unwrap();
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, v, _) = get(&api, "/v1/cluster", &[("authorization", view.as_bytes())]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"store": "none", "connected": false, "replicas": []})));
}
