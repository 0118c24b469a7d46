//! Bearer-token authentication: HS256-signed JWTs carrying the tenant, the actor and a role.
//!
//! Every endpoint takes a [`Caller`]; there is no anonymous route except health checks. The tenant
//! comes only from the verified token — never from the URL or the body — so one tenant cannot name
//! another's data. The signing secret comes from the environment (`VTAG_JWT_SECRET`), never the repo.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::header;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use vtag_domain::{Actor, TenantId};

use crate::problem::Problem;

/// Seed RBAC: viewers read, editors tag, admins manage rules and policies. Ordered: a higher role
/// may do everything a lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub actor: Actor,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Problem::forbidden(format!("this action needs the {role:?} role").to_lowercase()))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
}

pub struct Authenticator {
    secret: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("VTAG_JWT_SECRET is not set")]
    Missing,
    #[error("VTAG_JWT_SECRET must be at least 32 bytes")]
    TooShort,
}

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl Authenticator {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let secret = secret.into();
        if secret.len() < 32 {
            return Err(SecretError::TooShort);
        }
        Ok(Self { secret })
    }

    pub fn from_env() -> Result<Self, SecretError> {
        Self::new(std::env::var("VTAG_JWT_SECRET").map_err(|_| SecretError::Missing)?)
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    pub fn issue(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks signature (constant time), algorithm, expiry and the identity claims.
    pub fn verify(&self, token: &str, now_epoch_secs: i64) -> Result<Caller, Problem> {
        let bad = |why: &str| Problem::unauthorized(format!("invalid token: {why}"));
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a JWT"));
        };
        let header_json: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(|| bad("unreadable header"))?;
        // Refuse anything but HS256: accepting the header's algorithm blindly is the classic JWT hole.
        if header_json.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(bad("algorithm must be HS256"));
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad("unreadable signature"))?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).map_err(|_| bad("signature mismatch"))?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(|| bad("unreadable claims"))?;
        if claims.exp <= now_epoch_secs {
            return Err(bad("expired"));
        }
        Ok(Caller {
            tenant: TenantId::parse(&claims.tenant).map_err(|e| bad(&e.message))?,
            actor: Actor::parse(&claims.sub).map_err(|e| bad(&e.message))?,
            role: claims.role,
        })
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <token>"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| Problem::unauthorized("the Authorization scheme must be Bearer"))?;
        auth.verify(token.trim(), chrono::Utc::now().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(vec![7u8; 32]).unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims { sub: "alice@example.com".into(), tenant: "acme".into(), role: Role::Editor, exp, iat: 0 }
    }

    #[test]
    fn a_token_we_issued_verifies() {
        let token = auth().issue(&claims(2_000));
        let caller = auth().verify(&token, 1_000).unwrap();
        assert_eq!(caller.tenant.as_str(), "acme");
        assert_eq!(caller.actor.as_str(), "alice@example.com");
        assert!(caller.require(Role::Viewer).is_ok());
        assert!(caller.require(Role::Admin).is_err());
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let token = auth().issue(&claims(2_000));
        assert!(auth().verify(&token, 2_000).is_err());
        let other = Authenticator::new(vec![8u8; 32]).unwrap();
        assert!(other.verify(&token, 1_000).is_err());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"eve","tenant":"globex","role":"admin","exp":9999999999}"#);
        parts[1] = &forged;
        assert!(auth().verify(&parts.join("."), 1_000).is_err());
        let none_alg = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
        assert!(auth().verify(&none_alg, 1_000).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Authenticator::new(vec![1u8; 31]).is_err());
    }
}
