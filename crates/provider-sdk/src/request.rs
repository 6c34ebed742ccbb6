//! Decoding of a `MountRequest`: its JSON-in-string fields become typed
//! values, and the secret parts are wrapped in [`Redacted`].

pub use secrets_store_proto::attributes::{
    JsonError, POD_NAME, POD_NAMESPACE, POD_UID, SERVICE_ACCOUNT_NAME, SERVICE_ACCOUNT_TOKENS,
    ServiceAccountToken, ServiceAccountTokens,
};
pub use secrets_store_redact::Redacted;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use secrets_store_proto::attributes::from_json;
use secrets_store_proto::provider::v1alpha1 as pb;

/// Request decoding errors; messages follow the upstream providers.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `target_path` is empty.
    #[error("missing mount path")]
    MissingTargetPath,
    /// `attributes` is not a JSON string map.
    #[error("failed to unmarshal attributes, error: {0}")]
    Attributes(#[source] JsonError),
    /// `secrets` is not a JSON string map.
    #[error("failed to unmarshal secrets, error: {0}")]
    Secrets(#[source] JsonError),
    /// `permission` is not a JSON number.
    #[error("failed to unmarshal file permission, error: {0}")]
    Permission(#[source] JsonError),
    /// `permission` is not a file mode.
    #[error("file permission {0} is not a mode between 0 and 0777")]
    PermissionRange(u32),
    /// The tokens JSON is malformed.
    #[error("failed to unmarshal service account tokens, error: {0}")]
    Tokens(#[source] JsonError),
}

/// The pod a mount is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// The pod's service account.
    pub service_account: String,
}

/// A decoded `MountRequest`. `Debug` redacts the secrets and the tokens
/// attribute.
#[derive(Clone)]
pub struct MountRequest {
    /// SecretProviderClass parameters overlaid with the volume context.
    pub attributes: BTreeMap<String, String>,
    /// nodePublishSecretRef data (and, from driver 1.5, tokens).
    pub secrets: Redacted<BTreeMap<String, String>>,
    /// The kubelet target directory (the driver writes the files).
    pub target_path: PathBuf,
    /// File mode for every file.
    pub permission: u32,
    /// Object versions the driver last saw, by id.
    pub current_versions: BTreeMap<String, String>,
}

impl fmt::Debug for MountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attributes: BTreeMap<&str, &str> = self
            .attributes
            .iter()
            .map(|(k, v)| match k.as_str() {
                SERVICE_ACCOUNT_TOKENS => (k.as_str(), secrets_store_redact::REDACTED),
                _ => (k.as_str(), v.as_str()),
            })
            .collect();
        f.debug_struct("MountRequest")
            .field("attributes", &attributes)
            .field("secrets", &self.secrets)
            .field("target_path", &self.target_path)
            .field("permission", &self.permission)
            .field("current_versions", &self.current_versions)
            .finish()
    }
}

impl MountRequest {
    /// Decodes the wire request.
    pub fn decode(raw: pb::MountRequest) -> Result<Self, RequestError> {
        if raw.target_path.is_empty() {
            return Err(RequestError::MissingTargetPath);
        }
        let attributes: BTreeMap<String, String> =
            from_json(&raw.attributes).map_err(RequestError::Attributes)?;
        let secrets: Option<BTreeMap<String, String>> = if raw.secrets.is_empty() {
            None
        } else {
            from_json(&raw.secrets).map_err(RequestError::Secrets)?
        };
        let permission: u32 = from_json(&raw.permission).map_err(RequestError::Permission)?;
        if permission > 0o777 {
            return Err(RequestError::PermissionRange(permission));
        }
        Ok(Self {
            attributes,
            secrets: Redacted::new(secrets.unwrap_or_default()),
            target_path: PathBuf::from(raw.target_path),
            permission,
            current_versions: raw
                .current_object_version
                .into_iter()
                .map(|v| (v.id, v.version))
                .collect(),
        })
    }

    /// An attribute (SPC parameter or volume context key).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The pod the volume belongs to.
    pub fn pod(&self) -> PodInfo {
        let get = |k| self.attribute(k).unwrap_or_default().to_string();
        PodInfo {
            name: get(POD_NAME),
            namespace: get(POD_NAMESPACE),
            uid: get(POD_UID),
            service_account: get(SERVICE_ACCOUNT_NAME),
        }
    }

    /// The pod's service account tokens by audience, read from `secrets`
    /// first and the attributes second; empty when the driver sent none.
    pub fn service_account_tokens(
        &self,
    ) -> Result<BTreeMap<String, ServiceAccountToken>, RequestError> {
        let raw = self
            .secrets
            .expose()
            .get(SERVICE_ACCOUNT_TOKENS)
            .or_else(|| self.attributes.get(SERVICE_ACCOUNT_TOKENS));
        match raw {
            None => Ok(BTreeMap::new()),
            Some(s) => ServiceAccountTokens::from_json(s)
                .map(|t| t.0)
                .map_err(RequestError::Tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(attributes: &str, secrets: &str, permission: &str) -> pb::MountRequest {
        pb::MountRequest {
            attributes: attributes.into(),
            secrets: secrets.into(),
            target_path: "/var/lib/kubelet/pods/u/volumes/v/mount".into(),
            permission: permission.into(),
            current_object_version: vec![pb::ObjectVersion {
                id: "a".into(),
                version: "1".into(),
            }],
        }
    }

    #[test]
    fn decodes_all_fields_and_redacts_secrets() {
        let tokens = r#"{"sts.aliyuncs.com":{"token":"jwt-canary","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;
        let attrs = serde_json::json!({"objects": "x", POD_NAME: "p", POD_NAMESPACE: "ns", SERVICE_ACCOUNT_TOKENS: tokens}).to_string();
        let r = MountRequest::decode(raw(&attrs, r#"{"access_key":"ak-canary"}"#, "420"))
            .expect("decode");
        assert_eq!(r.permission, 0o644);
        assert_eq!(r.attribute("objects"), Some("x"));
        assert_eq!(r.pod().namespace, "ns");
        assert_eq!(r.current_versions.get("a").map(String::as_str), Some("1"));
        let toks = r.service_account_tokens().expect("tokens");
        assert_eq!(toks["sts.aliyuncs.com"].token.expose(), "jwt-canary");
        let dbg = format!("{r:?} {toks:?}");
        assert!(!dbg.contains("canary"), "{dbg}");
    }

    #[test]
    fn tokens_in_secrets_win_over_attributes() {
        let t = |v: &str| format!(r#"{{"aud":{{"token":"{v}","expirationTimestamp":""}}}}"#);
        let attrs = serde_json::json!({ SERVICE_ACCOUNT_TOKENS: t("from-attr") }).to_string();
        let secrets = serde_json::json!({ SERVICE_ACCOUNT_TOKENS: t("from-secret") }).to_string();
        let r = MountRequest::decode(raw(&attrs, &secrets, "420")).expect("decode");
        assert_eq!(
            r.service_account_tokens().expect("t")["aud"].token.expose(),
            "from-secret"
        );
    }

    #[test]
    fn null_secrets_is_empty() {
        let r = MountRequest::decode(raw("{}", "null", "420")).expect("decode");
        assert!(r.secrets.expose().is_empty());
        assert!(r.service_account_tokens().expect("none").is_empty());
    }

    #[test]
    fn errors_use_upstream_messages() {
        let cases = [
            (
                raw("{", "", "420"),
                "failed to unmarshal attributes, error: ",
            ),
            (
                raw("{}", "[", "420"),
                "failed to unmarshal secrets, error: ",
            ),
            (
                raw("{}", "", "x"),
                "failed to unmarshal file permission, error: ",
            ),
            (raw("{}", "", "1000"), "file permission 1000 is not a mode"),
        ];
        for (req, want) in cases {
            let err = MountRequest::decode(req).expect_err(want).to_string();
            assert!(err.starts_with(want), "{err}");
        }
        // serde would quote the value; the message names the position only.
        let leaky = [
            raw("{}", r#""canary-secret""#, "420"),
            raw(r#"{"a":"canary-attr","b":7}"#, "", "420"),
            raw(
                r#"{"csi.storage.k8s.io/serviceAccount.tokens":"{\"aud\":\"canary-jwt\"}"}"#,
                "",
                "420",
            ),
        ];
        for req in leaky {
            let err = MountRequest::decode(req)
                .and_then(|r| r.service_account_tokens().map(|_| r))
                .expect_err("bad json")
                .to_string();
            assert!(
                !err.contains("canary") && err.contains("at line 1 column"),
                "{err}"
            );
        }
        let mut no_path = raw("{}", "", "420");
        no_path.target_path.clear();
        assert_eq!(
            MountRequest::decode(no_path).expect_err("path").to_string(),
            "missing mount path"
        );
    }
}
