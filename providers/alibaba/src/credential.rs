//! Credentials: an access key, possibly an STS session, and the STS-style
//! `Credentials` object STS and the ECS metadata service answer with.

use std::time::SystemTime;

use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::cache::{
    CredentialKey, CredentialKeyBuilder, CredentialMaterial, Expiring,
};
use serde::Deserialize;

/// An access key, possibly an STS session.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Access key id (not secret; shown in logs).
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: Redacted<String>,
    /// STS security token, for temporary keys.
    pub security_token: Option<Redacted<String>>,
    /// Expiry of temporary keys.
    pub expiration: Option<SystemTime>,
}

impl Credential {
    /// A long-term access key.
    pub fn static_key(id: &str, secret: &str) -> Self {
        Self {
            access_key_id: id.to_string(),
            access_key_secret: Redacted::new(secret.to_string()),
            security_token: None,
            expiration: None,
        }
    }

    /// The cache key of this whole credential.
    pub fn key(&self) -> CredentialKey {
        CredentialKey::of(self)
    }
}

impl CredentialMaterial for Credential {
    fn feed(&self, k: &mut CredentialKeyBuilder) {
        k.field("access_key_id", self.access_key_id.as_bytes())
            .field(
                "access_key_secret",
                self.access_key_secret.expose().as_bytes(),
            )
            .optional(
                "security_token",
                self.security_token.as_ref().map(|t| t.expose().as_bytes()),
            );
    }
}

impl Expiring for Credential {
    fn expires_at(&self) -> Option<SystemTime> {
        self.expiration
    }
}

/// Why a `Credentials` object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// `Expiration` is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("session credentials have an invalid Expiration")]
    Expiration,
}

/// An STS-style `Credentials` object (STS and ECS metadata answers).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: Redacted<String>,
    /// Security token.
    pub security_token: Redacted<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub expiration: String,
}

impl SessionCredentials {
    /// Converts to a [`Credential`], parsing the expiry.
    pub fn into_credential(self) -> Result<Credential, CredentialError> {
        let exp = time::OffsetDateTime::parse(
            &self.expiration,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| CredentialError::Expiration)?;
        Ok(Credential {
            access_key_id: self.access_key_id,
            access_key_secret: self.access_key_secret,
            security_token: Some(self.security_token),
            expiration: Some(SystemTime::from(exp)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cover_secret_and_token() {
        let a = Credential::static_key("AK", "s");
        assert_eq!(a.key(), Credential::static_key("AK", "s").key());
        assert_ne!(a.key(), Credential::static_key("AK", "t").key());
        let mut session = a.clone();
        session.security_token = Some(Redacted::new("tok-canary".into()));
        assert_ne!(a.key(), session.key());
        let debug = format!("{session:?}");
        assert!(
            !debug.contains("tok-canary") && !debug.contains("\"s\""),
            "{debug}"
        );
    }

    #[test]
    fn expiration_must_parse() {
        let c = |exp: &str| SessionCredentials {
            access_key_id: "STS.x".into(),
            access_key_secret: Redacted::new("s".into()),
            security_token: Redacted::new("t".into()),
            expiration: exp.into(),
        };
        assert!(c("2030-01-01T00:00:00Z").into_credential().is_ok());
        assert_eq!(
            c("tomorrow").into_credential().err(),
            Some(CredentialError::Expiration)
        );
    }
}
