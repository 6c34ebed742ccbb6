//! The pure part of secret sync: which Secret one `secretObjects` entry
//! asks for, given the mounted files. Checks the entry (name, type, data),
//! refuses types that make the control plane mint credentials, and the keys
//! each built-in type requires, before anything is written. Custom types
//! are accepted as upstream accepts them.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use secrets_store_crds::v1::SecretObject;

use super::Error;

/// Secret types the driver refuses to create, with the reason: for each,
/// a control-plane component or the API server treats the Secret as a
/// credential, so syncing one would let whoever writes a
/// SecretProviderClass mint or plant credentials.
const FORBIDDEN_TYPES: [(&str, &str); 2] = [
    (
        "kubernetes.io/service-account-token",
        "the token controller would write a long-lived service account token into it",
    ),
    (
        "bootstrap.kubernetes.io/token",
        "it is a bootstrap token, a credential for the cluster",
    ),
];

/// Why `type_` may not be synced, if it may not (compared without regard
/// to ASCII case, so look-alikes are refused as well).
pub fn forbidden(type_: &str) -> Option<&'static str> {
    FORBIDDEN_TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(type_.trim()))
        .map(|(_, why)| *why)
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

/// The Secret one `secretObjects` entry asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct Desired {
    /// Secret name (trimmed).
    pub name: String,
    /// Secret type (trimmed).
    pub type_: String,
    /// Data, key → bytes (secret material: `Debug` prints only the keys).
    pub data: BTreeMap<String, ByteString>,
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("name", &self.name)
            .field("type_", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The desired Secret for `secretObjects[index]`, from the mounted files
/// (relative path → bytes).
pub fn build(
    index: usize,
    object: &SecretObject,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Desired, Error> {
    let name = object.secret_name.trim();
    let type_ = object.type_.trim();
    let incomplete = |field| Err(Error::Incomplete { index, field });
    if name.is_empty() {
        return incomplete("secretName");
    }
    if type_.is_empty() {
        return incomplete("type");
    }
    if object.data.is_empty() {
        return incomplete("data");
    }
    if let Some(why) = forbidden(type_) {
        return Err(Error::ForbiddenType {
            secret: name.into(),
            type_: type_.into(),
            why,
        });
    }
    let mut data = BTreeMap::new();
    for entry in &object.data {
        let key = entry.key.trim();
        let obj = entry.object_name.trim();
        if key.is_empty() {
            return incomplete("data[].key");
        }
        if obj.is_empty() {
            return incomplete("data[].objectName");
        }
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
    check_keys(name, type_, &data)?;
    Ok(Desired {
        name: name.into(),
        type_: type_.into(),
        data,
    })
}

fn check_keys(name: &str, type_: &str, data: &BTreeMap<String, ByteString>) -> Result<(), Error> {
    let missing = |key| {
        Err(Error::MissingKey {
            secret: name.into(),
            type_: type_.into(),
            key,
        })
    };
    if type_ == "kubernetes.io/basic-auth"
        && !data.contains_key("username")
        && !data.contains_key("password")
    {
        return missing("username or password");
    }
    match required_keys(type_)
        .iter()
        .find(|k| !data.contains_key(**k))
    {
        Some(key) => missing(*key),
        None => Ok(()),
    }
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
        let Desired { name, type_, data } = build(
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
        let Desired { data, .. } = build(
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
            (
                object("Opaque", &[("cert", " ")]),
                "secretObjects[0]: data[].key is required",
            ),
            (
                object("Opaque", &[("", "k")]),
                "secretObjects[0]: data[].objectName is required",
            ),
        ];
        for (obj, want) in cases {
            let err = build(0, &obj, &files(&[("cert", BUNDLE)])).expect_err(want);
            assert!(err.to_string().contains(want), "{err} vs {want}");
        }
    }

    #[test]
    fn credential_types_are_refused_before_anything_else() {
        let cases = [
            (
                "kubernetes.io/service-account-token",
                "secret s: type kubernetes.io/service-account-token is refused: the token controller would write a long-lived service account token into it",
            ),
            (
                " bootstrap.kubernetes.io/token ",
                "secret s: type bootstrap.kubernetes.io/token is refused: it is a bootstrap token, a credential for the cluster",
            ),
            (
                "Kubernetes.io/Service-Account-Token",
                "secret s: type Kubernetes.io/Service-Account-Token is refused: the token controller would write a long-lived service account token into it",
            ),
        ];
        for (type_, want) in cases {
            let err = build(
                0,
                &object(type_, &[("cert", "token")]),
                &files(&[("cert", "x")]),
            )
            .expect_err(type_);
            assert!(matches!(err, Error::ForbiddenType { .. }), "{err}");
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn custom_and_built_in_types_pass_as_upstream() {
        for type_ in [
            "Opaque",
            "example.com/custom",
            "kubernetes.io/dockerconfigjson",
            "kubernetes.io/service-account-token-ish",
        ] {
            let key = if type_.ends_with("dockerconfigjson") {
                ".dockerconfigjson"
            } else {
                "k"
            };
            let got = build(
                0,
                &object(type_, &[("cert", key)]),
                &files(&[("cert", "v")]),
            )
            .expect(type_);
            assert_eq!((got.name.as_str(), got.type_.as_str()), ("s", type_));
            assert_eq!(got.data[key].0, b"v");
        }
    }

    #[test]
    fn debug_of_a_desired_secret_shows_no_value() {
        let got = build(
            0,
            &object("Opaque", &[("cert", "k")]),
            &files(&[("cert", "canary-value")]),
        )
        .expect("ok");
        let text = format!("{got:?}");
        assert!(!text.contains("canary"), "{text}");
        assert!(text.contains("\"k\""), "{text}");
    }
}
