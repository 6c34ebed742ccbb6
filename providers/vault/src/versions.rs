//! Object versions: upstream's scheme, `base64url(HMAC-SHA256(key,
//! goJSON(object) ‖ contents))`, so a version changes exactly when the
//! object's settings or contents change and reveals nothing about them.
//!
//! The key is upstream's: 32 random bytes in the immutable Secret named by
//! `--hmac-secret-name` (data key `key`) in the provider's namespace,
//! created on first use (a lost creation race reads the winner's). Unlike
//! upstream, a key that cannot be read or created does not leave versions
//! empty: a random per-process key stands in (versions then change when
//! the provider restarts), with a warning; and a key once read is kept.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use secrets_store_provider_sdk::Redacted;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::params::Object;
use crate::response::go_json;

/// Data key of the HMAC Secret.
pub const KEY_FIELD: &str = "key";
/// Length of a generated key.
pub const KEY_LEN: usize = 32;

/// Where the shared key lives.
#[derive(Clone)]
pub struct KeySecret {
    /// API client.
    pub client: kube::Client,
    /// The provider's namespace.
    pub namespace: String,
    /// `--hmac-secret-name`.
    pub name: String,
}

/// Computes object versions.
pub struct Versions {
    secret: Option<KeySecret>,
    shared: OnceCell<Redacted<Vec<u8>>>,
    local: Redacted<Vec<u8>>,
}

/// The object as Go's `json.Marshal` writes upstream's `config.Secret`
/// (Go field names, declaration order).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GoSecret<'a> {
    object_name: &'a str,
    secret_path: &'a str,
    secret_key: &'a str,
    method: &'a str,
    secret_args: &'a Option<Map<String, Value>>,
    file_permission: u32,
    encoding: &'a str,
}

fn random_key() -> Vec<u8> {
    let mut key = vec![0u8; KEY_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .unwrap_or_else(|_| unreachable!("the system random source is available"));
    key
}

impl Versions {
    /// Versions keyed by `secret` when given, else by a per-process key.
    pub fn new(secret: Option<KeySecret>) -> Self {
        Self {
            secret,
            shared: OnceCell::new(),
            local: Redacted::new(random_key()),
        }
    }

    /// The key to use now.
    pub async fn key(&self) -> Redacted<Vec<u8>> {
        let Some(s) = &self.secret else {
            return self.local.clone();
        };
        match self.shared.get_or_try_init(|| get_or_create(s)).await {
            Ok(k) => k.clone(),
            Err(e) => {
                tracing::warn!(error = %e, secret = %s.name, namespace = %s.namespace, "no shared HMAC key; object versions use this process's key");
                self.local.clone()
            }
        }
    }

    /// The version of `object` with `contents`.
    pub fn version(key: &Redacted<Vec<u8>>, object: &Object, contents: &[u8]) -> String {
        let config = GoSecret {
            object_name: &object.object_name,
            secret_path: &object.secret_path,
            secret_key: &object.secret_key,
            method: &object.method,
            secret_args: &object.secret_args,
            file_permission: object.file_permission.0,
            encoding: &object.encoding,
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(go_json(&config).as_bytes());
        mac.update(contents);
        base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes())
    }
}

/// Reading or creating the key Secret failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The Secret has no usable key.
    #[error(
        "expected secret {0:?} to have a non-empty key \"key\"; delete the kubernetes secret to trigger an automatic regeneration"
    )]
    Missing(String),
}

fn key_of(secret: &Secret, name: &str) -> Result<Redacted<Vec<u8>>, KeyError> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_FIELD))
        .filter(|k| !k.0.is_empty())
        .map(|k| Redacted::new(k.0.clone()))
        .ok_or_else(|| KeyError::Missing(name.to_string()))
}

async fn get_or_create(s: &KeySecret) -> Result<Redacted<Vec<u8>>, KeyError> {
    let api: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    if let Some(existing) = api.get_opt(&s.name).await? {
        return key_of(&existing, &s.name);
    }
    let candidate = Secret {
        metadata: ObjectMeta {
            name: Some(s.name.clone()),
            namespace: Some(s.namespace.clone()),
            ..ObjectMeta::default()
        },
        immutable: Some(true),
        data: Some([(KEY_FIELD.to_string(), ByteString(random_key()))].into()),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &candidate).await {
        Ok(created) => key_of(&created, &s.name),
        Err(kube::Error::Api(e)) if e.code == 409 => key_of(&api.get(&s.name).await?, &s.name),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::FilePermission;

    #[test]
    fn versions_cover_settings_and_contents() {
        let key = Redacted::new(vec![7u8; 32]);
        let o = Object {
            object_name: "a".into(),
            secret_path: "secret/data/a".into(),
            file_permission: FilePermission(0o600),
            ..Object::default()
        };
        let v = Versions::version(&key, &o, b"x");
        assert_eq!(v, Versions::version(&key, &o, b"x"));
        assert_ne!(v, Versions::version(&key, &o, b"y"));
        let other = Object {
            secret_key: "k".into(),
            ..o.clone()
        };
        assert_ne!(v, Versions::version(&key, &other, b"x"));
        assert_ne!(
            v,
            Versions::version(&Redacted::new(vec![8u8; 32]), &o, b"x")
        );
        assert_eq!(v.len(), 44, "base64url of 32 bytes with padding");
    }

    #[test]
    fn the_hashed_config_is_gos_json() {
        let o = Object {
            object_name: "a".into(),
            secret_args: Some(
                serde_json::from_str(r#"{"ttl":"1h","common_name":"x"}"#).expect("args"),
            ),
            file_permission: FilePermission(0o600),
            ..Object::default()
        };
        let config = GoSecret {
            object_name: &o.object_name,
            secret_path: &o.secret_path,
            secret_key: &o.secret_key,
            method: &o.method,
            secret_args: &o.secret_args,
            file_permission: o.file_permission.0,
            encoding: &o.encoding,
        };
        assert_eq!(
            go_json(&config),
            r#"{"ObjectName":"a","SecretPath":"","SecretKey":"","Method":"","SecretArgs":{"common_name":"x","ttl":"1h"},"FilePermission":384,"Encoding":""}"#
        );
    }
}
