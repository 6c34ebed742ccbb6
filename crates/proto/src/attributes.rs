//! Keys of the volume context kubelet sends and of the `attributes` JSON
//! the driver passes to providers (part of both wire contracts), and the
//! one encoding of kubelet's service-account-token JSON.

use std::collections::BTreeMap;

use secrets_store_redact::Redacted;
use serde::{Deserialize, Serialize};

/// Pod name (CSIDriver `podInfoOnMount`).
pub const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
/// Pod namespace.
pub const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
/// Pod UID.
pub const POD_UID: &str = "csi.storage.k8s.io/pod.uid";
/// The pod's service account name.
pub const SERVICE_ACCOUNT_NAME: &str = "csi.storage.k8s.io/serviceAccount.name";
/// `"true"` for ephemeral inline volumes.
pub const EPHEMERAL: &str = "csi.storage.k8s.io/ephemeral";
/// Service-account tokens, JSON `{audience: {token, expirationTimestamp}}`
/// (in the volume context, or in the CSI `secrets` on newer kubelets);
/// see [`ServiceAccountTokens`].
pub const SERVICE_ACCOUNT_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";
/// Volume attribute naming the SecretProviderClass.
pub const SECRET_PROVIDER_CLASS: &str = "secretProviderClass";

/// Malformed JSON in a wire field (attributes, secrets, tokens). The
/// message names the kind and position only: serde's own message quotes
/// the offending value, which may be a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at line {line} column {column}")]
pub struct JsonError {
    /// What is wrong, without the value.
    pub kind: &'static str,
    /// Line of the error (1-based).
    pub line: usize,
    /// Column of the error (1-based).
    pub column: usize,
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Syntax => "malformed JSON",
            Category::Data => "unexpected JSON value",
            Category::Eof => "JSON ends early",
            Category::Io => "JSON read error",
        };
        Self {
            kind,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Decodes wire JSON with a [`JsonError`] that never quotes the input.
pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, JsonError> {
    serde_json::from_str(s).map_err(JsonError::from)
}

/// One service-account token kubelet minted for an audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountToken {
    /// The JWT; `Debug` prints `[redacted]`.
    pub token: Redacted<String>,
    /// RFC 3339 expiry, as kubelet writes it (empty if absent).
    #[serde(rename = "expirationTimestamp", default)]
    pub expiration_timestamp: String,
}

/// The value of [`SERVICE_ACCOUNT_TOKENS`]: tokens by audience, encoded as
/// kubelet encodes them (`{"<audience>":{"token":"…","expirationTimestamp":"…"}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceAccountTokens(pub BTreeMap<String, ServiceAccountToken>);

impl ServiceAccountTokens {
    /// Adds the token for `audience`.
    pub fn insert(&mut self, audience: impl Into<String>, token: String, expiration: String) {
        self.0.insert(
            audience.into(),
            ServiceAccountToken {
                token: Redacted::new(token),
                expiration_timestamp: expiration,
            },
        );
    }

    /// Decodes the attribute's value; blank means no tokens.
    pub fn from_json(s: &str) -> Result<Self, JsonError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        from_json(s)
    }

    /// Encodes the attribute's value.
    pub fn to_json(&self) -> String {
        // A map of strings always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_encoding_round_trips_and_debug_hides_tokens() {
        let kubelet = r#"{"aud-a":{"token":"jwt-canary-a","expirationTimestamp":"2030-01-01T00:00:00Z"},"aud-b":{"token":"jwt-canary-b"}}"#;
        let tokens = ServiceAccountTokens::from_json(kubelet).expect("decode");
        assert_eq!(tokens.0["aud-a"].token.expose(), "jwt-canary-a");
        assert_eq!(
            tokens.0["aud-a"].expiration_timestamp,
            "2030-01-01T00:00:00Z"
        );
        assert_eq!(tokens.0["aud-b"].expiration_timestamp, "");
        let dbg = format!("{tokens:?}");
        assert!(!dbg.contains("canary") && dbg.contains("aud-a"), "{dbg}");

        let mut built = ServiceAccountTokens::default();
        built.insert(
            "aud-a",
            "jwt-canary-a".into(),
            "2030-01-01T00:00:00Z".into(),
        );
        assert_eq!(
            built.to_json(),
            r#"{"aud-a":{"token":"jwt-canary-a","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#
        );
        assert_eq!(
            ServiceAccountTokens::from_json(&built.to_json()).expect("again"),
            built
        );
    }

    #[test]
    fn blank_is_empty_and_garbage_is_an_error() {
        assert!(
            ServiceAccountTokens::from_json(" ")
                .expect("blank")
                .0
                .is_empty()
        );
        let err = ServiceAccountTokens::from_json(r#"{"aud":"jwt-canary"}"#).expect_err("shape");
        assert_eq!(err.kind, "unexpected JSON value");
        assert!(!err.to_string().contains("canary"), "{err}");
        let err = ServiceAccountTokens::from_json("{").expect_err("eof");
        assert_eq!(err.to_string(), "JSON ends early at line 1 column 1");
    }
}
