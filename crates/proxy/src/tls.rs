//! TLS termination: a rustls `ServerConfig` (ALPN `h2`, `http/1.1`) built from
//! PEM files and held in an `ArcSwap`, so a reload swaps certificates for new
//! connections while open ones keep theirs. Sessions resume (tickets and a cache).

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The crypto provider: ring, or aws-lc-rs with the `aws-lc` feature.
#[cfg(feature = "aws-lc")]
use rustls::crypto::aws_lc_rs as crypto;
#[cfg(not(feature = "aws-lc"))]
use rustls::crypto::ring as crypto;

/// The live TLS settings of a listener; the control task stores new ones on reload.
pub type TlsSettings = Arc<ArcSwap<ServerConfig>>;

/// Reads a PEM certificate chain and key (PKCS#8, RSA or SEC1) into a server config.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(crypto::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{} with {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Session resumption as nginx does it: stateless tickets (keys rotated every 6 h,
    // kept across reloads, so a certificate swap does not end every session), on
    // top of rustls' in-memory session cache.
    config.ticketer = ticketer()?;
    Ok(Arc::new(config))
}

/// The process's session ticket keys.
fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, String> {
    static TICKETER: OnceLock<Arc<dyn rustls::server::ProducesTickets>> = OnceLock::new();
    if let Some(t) = TICKETER.get() {
        return Ok(t.clone());
    }
    let made = crypto::Ticketer::new().map_err(|e| format!("TLS session tickets: {e}"))?;
    Ok(TICKETER.get_or_init(|| made).clone())
}

/// Settings holding `config`.
pub fn settings(config: Arc<ServerConfig>) -> TlsSettings {
    Arc::new(ArcSwap::new(config))
}
