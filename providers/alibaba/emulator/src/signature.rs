//! The emulator's own check of `ACS3-HMAC-SHA256` requests: it parses the
//! `Authorization` header itself and recomputes the signature with the
//! provider's canonicalization (pinned to Alibaba's published vector), then
//! checks the key, the STS token and its expiry, the date window, the body
//! hash, header coverage and nonce reuse.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method};
use secrets_store_provider_alibabacloud::sign::{self, ALGORITHM, Canonical};

use crate::state::{Key, Shared, lock};
use crate::wire::{ApiErr, header};

/// Signed requests older or newer than this are refused.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id.
    pub credential: String,
    /// Signed header names as sent.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

impl Authorization {
    /// Parses `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix(ALGORITHM)?.trim_start();
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => credential = Some(v.to_string()),
                "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
                "Signature" => signature = Some(v.to_string()),
                _ => return None,
            }
        }
        Some(Self {
            credential: credential?,
            signed_headers: signed?,
            signature: signature?,
        })
    }
}

/// Authenticates a V3-signed request; returns the principal.
pub(crate) fn verify(
    s: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiErr> {
    let auth = header(headers, "authorization")
        .and_then(Authorization::parse)
        .ok_or_else(|| {
            ApiErr::new(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            )
        })?;
    let mut st = lock(s);
    let key = check_key(&st.keys, &auth.credential, headers)?;
    check_date(headers)?;
    let nonce = header(headers, "x-acs-signature-nonce").ok_or_else(|| {
        ApiErr::new(
            400,
            "MissingSignatureNonce",
            "SignatureNonce is mandatory for this action.",
        )
    })?;
    check_signature(&auth, &key.secret, method, path, query, headers, body)?;
    if !st.nonces.insert(nonce.to_string()) {
        return Err(ApiErr::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    Ok(key.principal)
}

/// The access key, and its STS token when it is a session.
fn check_key(
    keys: &std::collections::HashMap<String, Key>,
    id: &str,
    headers: &HeaderMap,
) -> Result<Key, ApiErr> {
    let key = keys.get(id).cloned().ok_or_else(|| {
        ApiErr::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })?;
    if let Some(token) = &key.token {
        if header(headers, "x-acs-security-token") != Some(token.as_str()) {
            return Err(ApiErr::new(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            ));
        }
        if key.expires.is_some_and(|e| e <= SystemTime::now()) {
            return Err(ApiErr::new(
                400,
                "InvalidSecurityToken.Expired",
                "Specified SecurityToken is expired.",
            ));
        }
    }
    Ok(key)
}

/// The request date is within the clock window.
fn check_date(headers: &HeaderMap) -> Result<(), ApiErr> {
    let date = header(headers, "x-acs-date").ok_or_else(|| {
        ApiErr::new(
            400,
            "MissingParameter",
            "x-acs-date is mandatory for this action.",
        )
    })?;
    let t = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiErr::new(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        })?;
    let skew = (time::OffsetDateTime::now_utc() - t).unsigned_abs();
    if skew > MAX_CLOCK_SKEW {
        return Err(ApiErr::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

/// Body hash, header coverage and the signature itself.
fn check_signature(
    auth: &Authorization,
    secret: &str,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiErr> {
    if header(headers, "x-acs-content-sha256") != Some(sign::sha256_hex(body).as_str()) {
        return Err(ApiErr::new(
            400,
            "InvalidContentSha256",
            "The x-acs-content-sha256 header does not match the body.",
        ));
    }
    // Every x-acs-* header and host must be covered by the signature.
    let mut sent: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| sign::is_signed_header(k))
        .collect();
    sent.push("host".into());
    if sent.iter().any(|h| !auth.signed_headers.contains(h)) {
        return Err(ApiErr::new(
            400,
            "IncompleteSignature",
            "The request signature does not cover all x-acs headers.",
        ));
    }
    let signed: Vec<(String, String)> = auth
        .signed_headers
        .iter()
        .map(|h| {
            (
                h.clone(),
                header(headers, h).unwrap_or_default().to_string(),
            )
        })
        .collect();
    let canonical = Canonical {
        method: method.as_str(),
        path,
        query,
        headers: &signed,
        payload_hash: &sign::sha256_hex(body),
    };
    if canonical.signature(secret) != auth.signature {
        return Err(ApiErr::new(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parses() {
        let a = Authorization::parse(
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-date,Signature=abc",
        )
        .expect("parse");
        assert_eq!(a.credential, "YourAccessKeyId");
        assert_eq!(a.signed_headers, ["host", "x-acs-date"]);
        assert_eq!(a.signature, "abc");
        assert!(Authorization::parse("HMAC-SHA1 x").is_none());
        assert!(Authorization::parse("ACS3-HMAC-SHA256 Credential=a,Signature=b").is_none());
        assert!(Authorization::parse("ACS3-HMAC-SHA256 Credential=a,X=1,Signature=b").is_none());
    }
}
