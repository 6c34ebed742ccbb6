//! `Debug` of the generated messages that carry secrets or tokens (their
//! derived `Debug` is switched off in `build.rs`). Field names and
//! non-secret values print as usual; the CSI `secrets` maps print their
//! keys only, the tokens entry of a volume context or of the provider
//! `attributes` JSON prints `[redacted]`, the provider `secrets` JSON prints
//! its keys only, and file contents print their length.

use std::collections::BTreeMap;
use std::fmt;

use secrets_store_redact::REDACTED;

use crate::attributes::SERVICE_ACCOUNT_TOKENS;
use crate::csi::v1 as csi;
use crate::provider::v1alpha1 as provider;

/// A map whose values are all secret: sorted keys, values `[redacted]`.
struct Keys<'a>(Vec<&'a str>);

impl<'a> Keys<'a> {
    fn of<I: IntoIterator<Item = &'a String>>(keys: I) -> Self {
        let mut keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
        keys.sort_unstable();
        Self(keys)
    }
}

impl fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|k| (k, Raw(REDACTED))))
            .finish()
    }
}

/// A volume context or attributes map: everything but the tokens entry.
struct Context<'a>(BTreeMap<&'a str, &'a str>);

impl<'a> Context<'a> {
    fn of<I: IntoIterator<Item = (&'a String, &'a String)>>(map: I) -> Self {
        Self(
            map.into_iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        )
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            if *k == SERVICE_ACCOUNT_TOKENS {
                m.entry(k, &Raw(REDACTED));
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// Prints a string without quotes.
struct Raw<'a>(&'a str);

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for csi::NodePublishVolumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodePublishVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("publish_context", &Context::of(&self.publish_context))
            .field("staging_target_path", &self.staging_target_path)
            .field("target_path", &self.target_path)
            .field("volume_capability", &self.volume_capability)
            .field("readonly", &self.readonly)
            .field("secrets", &Keys::of(self.secrets.keys()))
            .field("volume_context", &Context::of(&self.volume_context))
            .finish()
    }
}

impl fmt::Debug for csi::NodeStageVolumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStageVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("publish_context", &Context::of(&self.publish_context))
            .field("staging_target_path", &self.staging_target_path)
            .field("volume_capability", &self.volume_capability)
            .field("secrets", &Keys::of(self.secrets.keys()))
            .field("volume_context", &Context::of(&self.volume_context))
            .finish()
    }
}

impl fmt::Debug for csi::NodeExpandVolumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeExpandVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("volume_path", &self.volume_path)
            .field("capacity_range", &self.capacity_range)
            .field("staging_target_path", &self.staging_target_path)
            .field("volume_capability", &self.volume_capability)
            .field("secrets", &Keys::of(self.secrets.keys()))
            .finish()
    }
}

/// The provider `attributes` JSON with the tokens entry redacted; all of it
/// redacted when it is not a JSON string map.
struct AttributesJson<'a>(&'a str);

impl fmt::Debug for AttributesJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::from_str::<BTreeMap<String, String>>(self.0) {
            Ok(map) => fmt::Debug::fmt(&Context::of(&map), f),
            Err(_) => f.write_str(REDACTED),
        }
    }
}

/// The provider `secrets` JSON: its keys, or `[redacted]` when it is not a
/// JSON string map.
struct SecretsJson<'a>(&'a str);

impl fmt::Debug for SecretsJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::from_str::<Option<BTreeMap<String, String>>>(self.0) {
            Ok(map) => fmt::Debug::fmt(&Keys::of(map.unwrap_or_default().keys()), f),
            Err(_) => f.write_str(REDACTED),
        }
    }
}

impl fmt::Debug for provider::MountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountRequest")
            .field("attributes", &AttributesJson(&self.attributes))
            .field("secrets", &SecretsJson(&self.secrets))
            .field("target_path", &self.target_path)
            .field("permission", &self.permission)
            .field("current_object_version", &self.current_object_version)
            .finish()
    }
}

impl fmt::Debug for provider::File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let contents = format!("{REDACTED} ({} bytes)", self.contents.len());
        f.debug_struct("File")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("contents", &Raw(&contents))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CANARY: &str = "canary-7f3a";

    fn secret_map() -> HashMap<String, String> {
        HashMap::from([("password".to_string(), CANARY.to_string())])
    }

    fn volume_context() -> HashMap<String, String> {
        HashMap::from([
            ("secretProviderClass".to_string(), "my-class".to_string()),
            (
                SERVICE_ACCOUNT_TOKENS.to_string(),
                format!(r#"{{"aud":{{"token":"{CANARY}"}}}}"#),
            ),
        ])
    }

    fn assert_hidden(dbg: &str, visible: &[&str]) {
        assert!(!dbg.contains(CANARY), "canary printed: {dbg}");
        for v in visible {
            assert!(dbg.contains(v), "{v} missing: {dbg}");
        }
    }

    #[test]
    fn csi_requests_hide_secrets_and_tokens() {
        let publish = csi::NodePublishVolumeRequest {
            volume_id: "vol-1".into(),
            target_path: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/v/mount".into(),
            publish_context: HashMap::from([("k".into(), "pc".into())]),
            secrets: secret_map(),
            volume_context: volume_context(),
            ..Default::default()
        };
        assert_hidden(
            &format!("{publish:?} {publish:#?}"),
            &[
                "vol-1",
                "/var/lib/kubelet/pods/u/",
                "password",
                "my-class",
                SERVICE_ACCOUNT_TOKENS,
                "[redacted]",
            ],
        );
        let stage = csi::NodeStageVolumeRequest {
            volume_id: "vol-2".into(),
            staging_target_path: "/staging".into(),
            secrets: secret_map(),
            volume_context: volume_context(),
            ..Default::default()
        };
        assert_hidden(
            &format!("{stage:?}"),
            &["vol-2", "/staging", "password", "my-class"],
        );
        let expand = csi::NodeExpandVolumeRequest {
            volume_id: "vol-3".into(),
            volume_path: "/expand".into(),
            secrets: secret_map(),
            ..Default::default()
        };
        assert_hidden(&format!("{expand:?}"), &["vol-3", "/expand", "password"]);
    }

    #[test]
    fn provider_messages_hide_secrets_tokens_and_contents() {
        let attributes = serde_json::to_string(&volume_context()).expect("json");
        let request = provider::MountRequest {
            attributes,
            secrets: serde_json::json!({ "access_key": CANARY }).to_string(),
            target_path: "/target".into(),
            permission: "420".into(),
            current_object_version: vec![provider::ObjectVersion {
                id: "secret/a".into(),
                version: "v1".into(),
            }],
        };
        assert_hidden(
            &format!("{request:?}"),
            &["/target", "420", "access_key", "my-class", "secret/a"],
        );
        let garbled = provider::MountRequest {
            attributes: format!("{{{CANARY}"),
            secrets: format!("[{CANARY}"),
            ..Default::default()
        };
        assert_hidden(
            &format!("{garbled:?}"),
            &["attributes: [redacted]", "secrets: [redacted]"],
        );
        let response = provider::MountResponse {
            object_version: vec![],
            error: None,
            files: vec![provider::File {
                path: "db/password".into(),
                mode: 0o644,
                contents: CANARY.as_bytes().to_vec(),
            }],
        };
        assert_hidden(
            &format!("{response:?}"),
            &["db/password", "420", "(11 bytes)"],
        );
    }
}
