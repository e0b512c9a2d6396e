//! Bearer tokens: who may read, who may change traffic, and the actor name each
//! change is recorded under.

use std::net::SocketAddr;
use subtle::ConstantTimeEq;
use switchyard_config::{Admin, Role};

/// One accepted token.
struct Token {
    name: String,
    secret: Vec<u8>,
    role: Role,
}

/// The configured tokens; empty means the API is open (loopback only).
pub struct Tokens {
    tokens: Vec<Token>,
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The actor name for history.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// Why tokens could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A token file could not be read or is empty.
    #[error("admin token file {0}: {1}")]
    File(String, String),
    /// Exposed beyond loopback with no token.
    #[error(
        "refusing to serve the admin API on non-loopback address {0} without a token (set [admin] token_file or SWITCHYARD_ADMIN_TOKEN)"
    )]
    Exposed(SocketAddr),
}

impl Tokens {
    /// Reads `token_file` (or `env_token` when it is absent) as the operator token
    /// `api`, and every `[[admin.tokens]]`.
    pub fn load(admin: &Admin, env_token: Option<String>) -> Result<Tokens, AuthError> {
        let mut tokens = Vec::new();
        let read = |path: &std::path::Path| -> Result<Vec<u8>, AuthError> {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AuthError::File(path.display().to_string(), e.to_string()))?;
            let secret = text.trim();
            if secret.is_empty() {
                return Err(AuthError::File(path.display().to_string(), "is empty".into()));
            }
            Ok(secret.as_bytes().to_vec())
        };
        match (&admin.token_file, env_token.filter(|t| !t.trim().is_empty())) {
            (Some(path), _) => tokens.push(Token { name: "api".into(), secret: read(path)?, role: Role::Operator }),
            (None, Some(t)) => {
                tokens.push(Token { name: "api".into(), secret: t.trim().as_bytes().to_vec(), role: Role::Operator })
            }
            (None, None) => {}
        }
        for t in &admin.tokens {
            tokens.push(Token { name: t.name.clone(), secret: read(&t.file)?, role: t.role });
        }
        let out = Tokens { tokens };
        if out.tokens.is_empty() && !admin.address.ip().is_loopback() {
            return Err(AuthError::Exposed(admin.address));
        }
        Ok(out)
    }

    /// No tokens at all: every caller is the operator `api`.
    pub fn open() -> Tokens {
        Tokens { tokens: Vec::new() }
    }

    /// Whether no token is configured (every caller is the operator `api`).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Who sent this `Authorization` header value; `None` = unknown or missing.
    /// Every token is compared, each in constant time (`subtle`), so timing says
    /// nothing about which token, or how much of one, matched.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<Caller> {
        if self.tokens.is_empty() {
            return Some(Caller { name: "api".into(), role: Role::Operator });
        }
        let presented = authorization?.strip_prefix(b"Bearer ")?;
        let mut found = None;
        for t in &self.tokens {
            if bool::from(presented.ct_eq(&t.secret)) && found.is_none() {
                found = Some(Caller { name: t.name.clone(), role: t.role });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_config::NamedToken;

    fn admin(addr: &str, dir: &std::path::Path) -> Admin {
        std::fs::write(dir.join("viewer"), "view-secret\n").unwrap();
        Admin {
            address: addr.parse().unwrap(),
            token_file: None,
            preview_key_file: None,
            tokens: vec![NamedToken { name: "dash".into(), file: dir.join("viewer"), role: Role::Viewer }],
            hosts: vec![],
        }
    }

    #[test]
    fn tokens_identify_callers_and_unknown_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tokens::load(&admin("127.0.0.1:9901", dir.path()), Some("op-secret".into())).unwrap();
        assert_eq!(t.check(Some(b"Bearer op-secret")), Some(Caller { name: "api".into(), role: Role::Operator }));
        assert_eq!(t.check(Some(b"Bearer view-secret")).unwrap().role, Role::Viewer);
        assert_eq!(t.check(Some(b"Bearer nope")), None);
        assert_eq!(t.check(Some(b"op-secret")), None);
        assert_eq!(t.check(None), None);
        for near in ["Bearer op-secreT", "Bearer op-secre", "Bearer op-secret2", "Bearer ", "bearer op-secret"] {
            assert_eq!(t.check(Some(near.as_bytes())), None, "{near}");
        }
    }

    #[test]
    fn non_loopback_without_token_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = admin("0.0.0.0:9901", dir.path());
        a.tokens.clear();
        assert!(matches!(Tokens::load(&a, None), Err(AuthError::Exposed(_))));
        assert!(Tokens::load(&a, Some("x".into())).is_ok());
    }
}
