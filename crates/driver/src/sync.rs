//! Sync as Kubernetes Secret: the `secretObjects` of a SecretProviderClass
//! become Kubernetes Secrets built from the mounted files.
//!
//! Runs after every publish or refresh that wrote files, with the payload in
//! hand (no read-back from the tmpfs). Each Secret:
//! - carries the declared type, labels and annotations, plus
//!   `secrets-store.csi.k8s.io/managed=true`;
//! - is owned by every pod that mounts it (one owner reference each, never
//!   dropped on re-sync), so garbage collection deletes it when the last
//!   consuming pod is gone;
//! - is written only when its content would change;
//! - is never taken over if it exists without the managed label.
//!
//! Required keys are checked per type before anything is written.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::MANAGED_LABEL;
use secrets_store_crds::v1::SecretObject;

use crate::status::PodRef;

/// Why a Secret could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `secretName`, `type` or `data` is empty.
    #[error("secretObjects[{index}]: {field} is required")]
    Incomplete {
        /// Index in `secretObjects`.
        index: usize,
        /// The missing field.
        field: &'static str,
    },
    /// A data entry names an object that is not mounted.
    #[error("secret {secret}: file matching objectName {object} not found in the pod")]
    MissingObject {
        /// Secret name.
        secret: String,
        /// The objectName.
        object: String,
    },
    /// The type requires keys the data does not have.
    #[error("secret {secret} of type {type_} needs key {key}")]
    MissingKey {
        /// Secret name.
        secret: String,
        /// Secret type.
        type_: String,
        /// The missing key.
        key: &'static str,
    },
    /// A Secret of that name exists and is not managed by the driver.
    #[error(
        "secret {namespace}/{secret} exists and is not managed by the Secrets Store CSI driver \
         (no label {MANAGED_LABEL}=true); it was left untouched: rename secretObjects[].secretName or delete the Secret"
    )]
    NotManaged {
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
    },
    /// The API server refused or failed.
    #[error("secret {namespace}/{secret}: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
        /// Cause.
        source: kube::Error,
    },
}

/// What a sync did to one Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Created,
    /// Updated (data, labels, annotations or owners changed).
    Updated,
    /// Already as desired; not written.
    Unchanged,
}

/// Keys a Secret type must have (the API server checks some of these too;
/// checking first gives a clearer message and writes nothing).
fn required_keys(type_: &str) -> &'static [&'static str] {
    match type_ {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        _ => &[],
    }
}

/// The desired Secret for one `secretObjects` entry, from the mounted files.
pub fn desired(
    index: usize,
    object: &SecretObject,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<(String, String, BTreeMap<String, ByteString>), Error> {
    let name = object.secret_name.trim();
    let type_ = object.type_.trim();
    if name.is_empty() {
        return Err(Error::Incomplete {
            index,
            field: "secretName",
        });
    }
    if type_.is_empty() {
        return Err(Error::Incomplete {
            index,
            field: "type",
        });
    }
    if object.data.is_empty() {
        return Err(Error::Incomplete {
            index,
            field: "data",
        });
    }
    let mut data = BTreeMap::new();
    for entry in &object.data {
        let key = entry.key.trim();
        let obj = entry.object_name.trim();
        let contents = files.get(obj).ok_or_else(|| Error::MissingObject {
            secret: name.into(),
            object: obj.into(),
        })?;
        let value = if type_ == "kubernetes.io/tls" {
            tls_part(key, contents)
        } else {
            contents.clone()
        };
        data.insert(key.to_string(), ByteString(value));
    }
    if type_ == "kubernetes.io/basic-auth"
        && !data.contains_key("username")
        && !data.contains_key("password")
    {
        return Err(Error::MissingKey {
            secret: name.into(),
            type_: type_.into(),
            key: "username or password",
        });
    }
    for key in required_keys(type_) {
        if !data.contains_key(*key) {
            return Err(Error::MissingKey {
                secret: name.into(),
                type_: type_.into(),
                key,
            });
        }
    }
    Ok((name.to_string(), type_.to_string(), data))
}

/// For TLS Secrets built from one PEM bundle: `tls.crt` keeps the
/// CERTIFICATE blocks, `tls.key` the private key block. Content without
/// such blocks is used as it is.
fn tls_part(key: &str, contents: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(contents);
    let blocks = pem_blocks(&text);
    let pick = |want_cert: bool| -> String {
        blocks
            .iter()
            .filter(|(label, _)| {
                (label == "CERTIFICATE") == want_cert
                    && (want_cert || label.ends_with("PRIVATE KEY"))
            })
            .map(|(_, block)| block.as_str())
            .collect::<Vec<_>>()
            .join("")
    };
    let picked = match key {
        "tls.crt" => pick(true),
        "tls.key" => pick(false),
        _ => String::new(),
    };
    if picked.is_empty() {
        contents.to_vec()
    } else {
        picked.into_bytes()
    }
}

/// PEM blocks of a text: (label, whole block with a trailing newline).
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        out.push((label, format!("{}\n", &rest[start..stop])));
        rest = &rest[stop..];
    }
    out
}

/// Creates or updates one Secret owned by `pod`.
pub async fn apply(
    client: &kube::Client,
    pod: &PodRef,
    object: &SecretObject,
    name: &str,
    type_: &str,
    data: BTreeMap<String, ByteString>,
) -> Result<Change, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &pod.namespace);
    let err = |source| Error::Api {
        namespace: pod.namespace.clone(),
        secret: name.to_string(),
        source,
    };
    let owner = pod.owner_reference();
    let mut labels = object.labels.clone();
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    match api.get_opt(name).await.map_err(err)? {
        None => {
            let mut secret = Secret::default();
            secret.metadata.name = Some(name.to_string());
            secret.metadata.labels = Some(labels);
            secret.metadata.annotations =
                (!object.annotations.is_empty()).then(|| object.annotations.clone());
            secret.metadata.owner_references = Some(vec![owner]);
            secret.type_ = Some(type_.to_string());
            secret.data = Some(data);
            match api.create(&PostParams::default(), &secret).await {
                Ok(_) => Ok(Change::Created),
                // Another pod's publish created it meanwhile: update instead.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    Box::pin(apply(
                        client,
                        pod,
                        object,
                        name,
                        type_,
                        secret.data.unwrap_or_default(),
                    ))
                    .await
                }
                Err(e) => Err(err(e)),
            }
        }
        Some(existing) => {
            let managed = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_LABEL))
                .is_some_and(|v| v == "true");
            if !managed {
                return Err(Error::NotManaged {
                    namespace: pod.namespace.clone(),
                    secret: name.to_string(),
                });
            }
            let mut updated = existing.clone();
            let meta = &mut updated.metadata;
            meta.labels
                .get_or_insert_with(Default::default)
                .extend(labels);
            if !object.annotations.is_empty() {
                meta.annotations
                    .get_or_insert_with(Default::default)
                    .extend(object.annotations.clone());
            }
            let owners = meta.owner_references.get_or_insert_with(Vec::new);
            if !owners.iter().any(|o| o.uid == owner.uid) {
                owners.push(owner);
            }
            updated.type_ = Some(type_.to_string());
            updated.data = Some(data);
            if updated == existing {
                return Ok(Change::Unchanged);
            }
            // Replace carries resourceVersion: a concurrent writer makes this
            // fail with a conflict rather than lose its owner reference.
            api.replace(name, &PostParams::default(), &updated)
                .await
                .map_err(err)?;
            Ok(Change::Updated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_store_crds::v1::SecretObjectData;

    fn object(type_: &str, data: &[(&str, &str)]) -> SecretObject {
        SecretObject {
            secret_name: "s".into(),
            type_: type_.into(),
            data: data
                .iter()
                .map(|(o, k)| SecretObjectData {
                    object_name: o.to_string(),
                    key: k.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    const BUNDLE: &str = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";

    #[test]
    fn opaque_maps_objects_to_keys() {
        let (name, type_, data) = desired(
            0,
            &object("Opaque", &[("db/user", "username")]),
            &files(&[("db/user", "admin")]),
        )
        .expect("ok");
        assert_eq!((name.as_str(), type_.as_str()), ("s", "Opaque"));
        assert_eq!(data["username"].0, b"admin");
    }

    #[test]
    fn tls_splits_a_pem_bundle() {
        let (_, _, data) = desired(
            0,
            &object(
                "kubernetes.io/tls",
                &[("cert", "tls.crt"), ("cert", "tls.key")],
            ),
            &files(&[("cert", BUNDLE)]),
        )
        .expect("ok");
        let crt = String::from_utf8(data["tls.crt"].0.clone()).expect("utf8");
        let key = String::from_utf8(data["tls.key"].0.clone()).expect("utf8");
        assert_eq!(crt.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(!crt.contains("PRIVATE KEY"));
        assert_eq!(
            key,
            "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn type_rules_and_missing_things_are_errors() {
        let cases: Vec<(SecretObject, &str)> = vec![
            (
                object("kubernetes.io/tls", &[("cert", "tls.crt")]),
                "secret s of type kubernetes.io/tls needs key tls.key",
            ),
            (
                object("kubernetes.io/ssh-auth", &[("cert", "key")]),
                "needs key ssh-privatekey",
            ),
            (
                object("kubernetes.io/basic-auth", &[("cert", "user")]),
                "needs key username or password",
            ),
            (
                object("Opaque", &[("absent", "k")]),
                "file matching objectName absent not found in the pod",
            ),
            (
                object("", &[("cert", "k")]),
                "secretObjects[0]: type is required",
            ),
            (object("Opaque", &[]), "secretObjects[0]: data is required"),
        ];
        for (obj, want) in cases {
            let err = desired(0, &obj, &files(&[("cert", BUNDLE)])).expect_err(want);
            assert!(err.to_string().contains(want), "{err} vs {want}");
        }
    }
}
