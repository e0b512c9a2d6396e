//! TLS termination on the real binary: h2 and http/1.1 by ALPN, X-Forwarded-Proto
//! https, certificate swap on SIGHUP, a bad certificate keeps the old one.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;
use bytes::Bytes;
use common::{Sy, write_config};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::Path;
use std::sync::Arc;
use switchyard_test_support::Upstream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca { der: cert.der().clone(), issuer: Issuer::new(params, key) }
}

/// Writes a leaf for `localhost` signed by `ca` to cert.pem / key.pem; returns its DER.
fn leaf(ca: &Ca, dir: &Path) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca.issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    cert.der().to_vec()
}

fn connector(ca: &Ca, alpn: &[u8]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

/// One request over a new TLS connection; returns (negotiated ALPN, peer cert DER, body).
async fn get(sy: &Sy, ca: &Ca, alpn: &[u8], path: &str) -> (Vec<u8>, Vec<u8>, String) {
    let tcp = TcpStream::connect(sy.tls.unwrap()).await.unwrap();
    let tls = connector(ca, alpn).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let (_, session) = tls.get_ref();
    let negotiated = session.alpn_protocol().unwrap_or_default().to_vec();
    let peer = session.peer_certificates().unwrap()[0].to_vec();
    let req = http::Request::get(format!("https://localhost{path}"))
        .header("host", "localhost")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = if alpn == b"h2" {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (negotiated, peer, String::from_utf8(body.to_vec()).unwrap())
}

/// Two connections through one client config (one session store): how each handshake went.
async fn two_handshakes(sy: &Sy, ca: &Ca) -> Vec<Option<tokio_rustls::rustls::HandshakeKind>> {
    let connector = connector(ca, b"http/1.1");
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(sy.tls.unwrap()).await.unwrap();
        let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        kinds.push(tls.get_ref().1.handshake_kind());
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/").header("host", "localhost").body(Full::<Bytes>::default()).unwrap();
        // Reading the answer also reads the session tickets sent after the handshake.
        send.send_request(req).await.unwrap().into_body().collect().await.unwrap();
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_h2_and_http1_and_swaps_certificates_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let ca = ca();
    let first = leaf(&ca, dir.path());
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let tls = "[listener.tls]\naddress = \"127.0.0.1:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n[admin]";
    std::fs::write(&cfg, text.replacen("[admin]", tls, 1)).unwrap();
    let sy = Sy::start(&cfg, &["--access-log", "off"]);

    let (alpn, peer, body) = get(&sy, &ca, b"h2", "/headers").await;
    assert_eq!((alpn.as_slice(), peer.as_slice()), (&b"h2"[..], first.as_slice()));
    assert!(body.lines().any(|l| l == "x-forwarded-proto: https"), "{body}");
    let (alpn, _, body) = get(&sy, &ca, b"http/1.1", "/").await;
    assert_eq!((alpn.as_slice(), body.as_str()), (&b"http/1.1"[..], "blue"));
    use tokio_rustls::rustls::HandshakeKind::{Full as FullHandshake, Resumed};
    assert_eq!(two_handshakes(&sy, &ca).await, [Some(FullHandshake), Some(Resumed)], "a second connection resumes");

    let second = leaf(&ca, dir.path());
    assert_ne!(first, second);
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload applied");
    assert_eq!(get(&sy, &ca, b"h2", "/").await.1, second, "new connections get the new certificate");

    std::fs::write(dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n")
        .unwrap();
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload failed");
    let (_, peer, body) = get(&sy, &ca, b"h2", "/").await;
    assert_eq!((peer, body.as_str()), (second, "blue"), "a bad certificate keeps the old one");
}
