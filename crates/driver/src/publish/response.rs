//! The provider's side of a publish: the `MountRequest` upstream would
//! build, and the check of the `MountResponse` (hostile input) into files
//! for the atomic writer and object versions for the status.

use std::collections::BTreeMap;

use secrets_store_atomic_writer::Payload;
use secrets_store_crds::v1::SecretProviderClassObject;
use secrets_store_proto::attributes::SERVICE_ACCOUNT_TOKENS;
use secrets_store_proto::provider::v1alpha1 as api;

use super::request::PublishRequest;

/// File permission sent to providers (JSON of 0644, as upstream).
const PERMISSION: &str = "420";

/// Why a `MountResponse` is refused.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The provider answered with an error code.
    #[error("mount request failed with provider error code {0}")]
    Code(String),
    /// No object versions (the status could not be recorded).
    #[error("missing object versions")]
    NoVersions,
    /// A file breaks the path or mode rules.
    #[error(transparent)]
    File(#[from] secrets_store_atomic_writer::Error),
}

/// A response that passed every check.
#[derive(Debug)]
pub struct Checked {
    /// Files to write (empty: the provider wrote them itself, legacy mode).
    pub payload: Payload,
    /// Object versions for the SecretProviderClassPodStatus.
    pub objects: Vec<SecretProviderClassObject>,
}

/// Checks a provider's answer.
pub fn check(response: api::MountResponse) -> Result<Checked, ResponseError> {
    if let Some(code) = response
        .error
        .as_ref()
        .map(|e| e.code.as_str())
        .filter(|c| !c.is_empty())
    {
        return Err(ResponseError::Code(code.to_string()));
    }
    if response.object_version.is_empty() {
        return Err(ResponseError::NoVersions);
    }
    let mut payload = Payload::new();
    for f in response.files {
        payload.insert(&f.path, f.contents, i64::from(f.mode))?;
    }
    let objects = response
        .object_version
        .into_iter()
        .map(|v| SecretProviderClassObject {
            id: v.id,
            version: v.version,
        })
        .collect();
    Ok(Checked { payload, objects })
}

/// The MountRequest upstream would build: parameters overlaid with the
/// volume context; tokens from `secrets` win over the context.
pub fn mount_request(
    req: &PublishRequest,
    parameters: &BTreeMap<String, String>,
) -> api::MountRequest {
    provider_request(
        parameters,
        req.context.expose(),
        req.secrets.expose(),
        req.target.path(),
    )
}

/// The MountRequest for any target directory (the driver's kubelet
/// targets and the standalone CLI's directories): `parameters` overlaid
/// with `context`, tokens from `secrets` winning over the context,
/// `secrets` as JSON (`null` when empty), permission `"420"`.
pub fn provider_request(
    parameters: &BTreeMap<String, String>,
    context: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
    target: &std::path::Path,
) -> api::MountRequest {
    let mut attributes = parameters.clone();
    attributes.extend(context.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(tokens) = secrets.get(SERVICE_ACCOUNT_TOKENS) {
        attributes.insert(SERVICE_ACCOUNT_TOKENS.to_string(), tokens.clone());
    }
    let secrets = if secrets.is_empty() {
        "null".to_string()
    } else {
        serde_json::to_string(secrets).unwrap_or_else(|_| "null".into())
    };
    api::MountRequest {
        attributes: serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into()),
        secrets,
        target_path: target.display().to_string(),
        permission: PERMISSION.to_string(),
        current_object_version: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(files: &[(&str, i32)], versions: usize, code: &str) -> api::MountResponse {
        api::MountResponse {
            object_version: (0..versions)
                .map(|i| api::ObjectVersion {
                    id: format!("o{i}"),
                    version: "1".into(),
                })
                .collect(),
            error: Some(api::Error { code: code.into() }),
            files: files
                .iter()
                .map(|(p, m)| api::File {
                    path: p.to_string(),
                    mode: *m,
                    contents: b"c".to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn checks_in_order_with_messages() {
        let cases = [
            (
                response(&[("a", 0o644)], 1, "Throttled"),
                "mount request failed with provider error code Throttled",
            ),
            (response(&[("a", 0o644)], 0, ""), "missing object versions"),
            (
                response(&[("/etc/x", 0o644)], 1, ""),
                "invalid file path \"/etc/x\"",
            ),
            (
                response(&[("a/../../x", 0o644)], 1, ""),
                "invalid file path",
            ),
            (response(&[("a", 0o4755)], 1, ""), "invalid mode"),
            (
                response(&[("a", 0o644), ("a", 0o644)], 1, ""),
                "duplicate file path",
            ),
        ];
        for (resp, want) in cases {
            let err = check(resp).expect_err(want);
            assert!(err.to_string().contains(want), "{err} vs {want}");
        }
        let ok = check(response(&[("a", 0o644), ("d/b", 0o600)], 2, "")).expect("valid");
        assert_eq!(ok.payload.len(), 2);
        assert_eq!(ok.objects.len(), 2);
    }
}
