//! The SecretProviderClass parameters and the `objects` list, read as
//! vault-csi-provider v1.7.4 reads them (`internal/config/config.go`), and
//! a strict validation for tools ([`validate_parameters`]).
//!
//! A mount is lenient where upstream is (unknown object fields are
//! ignored); validation rejects unknown parameters and object fields, and
//! mistakes upstream only finds once it has read the secret (a bad
//! `encoding`, a `filePermission` that is not a mode).

use std::collections::{BTreeMap, BTreeSet};

use secrets_store_provider_sdk::objects::{self, ObjectsError, Strictness, UnknownField};
use secrets_store_provider_sdk::parameters::{self, ParameterError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The parameters this provider reads, in upstream's order.
pub const KNOWN_PARAMETERS: &[&str] = &[
    "roleName",
    "vaultAddress",
    "vaultNamespace",
    "vaultCACertPath",
    "vaultCADirectory",
    "vaultTLSServerName",
    "vaultTLSClientCertPath",
    "vaultTLSClientKeyPath",
    "vaultSkipTLSVerify",
    "vaultKubernetesMountPath",
    "vaultAuthMountPath",
    "audience",
    "objects",
];
/// Audience of the pod token when the SPC names none.
pub const DEFAULT_AUDIENCE: &str = "vault";
/// Methods Vault's HTTP API serves.
const METHODS: &[&str] = &["GET", "PUT", "POST", "LIST", "DELETE", "PATCH"];

/// What is wrong with the parameters. Messages are upstream's where
/// upstream has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Both auth mount parameters are set.
    #[error("cannot set both vaultKubernetesMountPath and vaultAuthMountPath")]
    BothMountPaths,
    /// `vaultSkipTLSVerify` is not a Go boolean.
    #[error("strconv.ParseBool: parsing {0:?}: invalid syntax")]
    SkipTlsVerify(String),
    /// The `objects` YAML does not parse.
    #[error("{0}")]
    Objects(String),
    /// No `roleName`.
    #[error("missing 'roleName' in SecretProviderClass definition")]
    MissingRoleName,
    /// No objects.
    #[error("no secrets configured - the provider will not read any secret material")]
    NoSecrets,
    /// Two objects share a name.
    #[error(
        "each `objectName` within a SecretProviderClass must be unique, but the following keys were duplicated: {}",
        .0.join(", ")
    )]
    Duplicates(Vec<String>),
    /// (validation) A parameter this provider does not read.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// (validation) An object field this provider does not read.
    #[error("unknown field in objects: {0}")]
    UnknownField(String),
    /// (validation) An object without `objectName`.
    #[error("object {0}: missing objectName")]
    MissingObjectName(usize),
    /// (validation) An object without `secretPath`.
    #[error("object {0:?}: missing secretPath")]
    MissingSecretPath(String),
    /// (validation) `objectName` is not a safe relative file path.
    #[error("object {0:?}: {1}")]
    BadObjectName(String, String),
    /// `encoding` is not one of the three.
    #[error("object {0:?}: invalid encoding type. Should be utf-8, base64, or hex")]
    Encoding(String),
    /// (validation) `encoding` without `secretKey` has no effect.
    #[error("object {0:?}: encoding applies only with secretKey (the whole response is JSON)")]
    EncodingWithoutKey(String),
    /// (validation) `method` is not an HTTP method Vault serves.
    #[error("object {0:?}: method {1:?} is not one of GET, PUT, POST, LIST, DELETE, PATCH")]
    Method(String, String),
    /// (validation) `filePermission` is not a file mode.
    #[error("object {0:?}: filePermission {1:#o} is not a mode between 0 and 0777")]
    Permission(String, u32),
}

/// TLS settings for talking to Vault; each layer (environment, flags, SPC)
/// overrides the fields it sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// One PEM file of CA certificates (wins over `ca_directory`).
    pub ca_cert: Option<String>,
    /// A directory of PEM CA certificates.
    pub ca_directory: Option<String>,
    /// Name for SNI and certificate verification.
    pub server_name: Option<String>,
    /// Client certificate (PEM) for mTLS.
    pub client_cert: Option<String>,
    /// Client key (PEM) for mTLS.
    pub client_key: Option<String>,
    /// No certificate verification (a layer can only turn it on).
    pub skip_verify: bool,
}

impl TlsSettings {
    /// `self` with the fields `over` sets replacing ours.
    pub fn overlay(&self, over: &TlsSettings) -> TlsSettings {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        TlsSettings {
            ca_cert: pick(&self.ca_cert, &over.ca_cert),
            ca_directory: pick(&self.ca_directory, &over.ca_directory),
            server_name: pick(&self.server_name, &over.server_name),
            client_cert: pick(&self.client_cert, &over.client_cert),
            client_key: pick(&self.client_key, &over.client_key),
            skip_verify: self.skip_verify || over.skip_verify,
        }
    }
}

/// A file mode from YAML: an integer where a leading `0` means octal, as
/// yaml.v3 reads `0600` into Go's `os.FileMode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FilePermission(pub u32);

impl<'de> Deserialize<'de> for FilePermission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FilePermission;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a file mode such as 0600")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(FilePermission)
                    .map_err(|_| E::custom("file mode out of range"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("file mode is negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match go_int(v) {
                    Some(n) => self.visit_i64(n),
                    None => Err(E::custom("expected a file mode such as 0600")),
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// An integer as yaml.v3 resolves a plain scalar: `0x`, `0o`, `0b` and a
/// leading `0` (octal) prefixes, an optional sign, `_` separators.
pub fn go_int(s: &str) -> Option<i64> {
    let s = s.replace('_', "");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    let (radix, body) = if let Some(b) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        (16, b)
    } else if let Some(b) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        (8, b)
    } else if let Some(b) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        (2, b)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(body, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// One entry of `objects`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Object {
    /// The file name, used verbatim.
    pub object_name: String,
    /// The Vault path (KV v2 paths include `data/`); may carry `?query`.
    pub secret_path: String,
    /// The key to extract; empty means the whole response as JSON.
    pub secret_key: String,
    /// HTTP method; empty means GET.
    pub method: String,
    /// JSON body of the request.
    pub secret_args: Option<Map<String, Value>>,
    /// Mode of this file; 0 means the request's.
    pub file_permission: FilePermission,
    /// `utf-8` (default), `base64` or `hex`, case-insensitive.
    pub encoding: String,
}

/// How to decode an extracted value before writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Utf8,
    /// Standard base64 with padding.
    Base64,
    /// Hexadecimal.
    Hex,
}

impl Object {
    /// The HTTP method (GET when unset).
    pub fn method(&self) -> &str {
        if self.method.is_empty() {
            "GET"
        } else {
            &self.method
        }
    }

    /// The decoding `encoding` asks for.
    pub fn encoding(&self) -> Result<Encoding, ParamError> {
        let e = self.encoding.as_str();
        if e.is_empty() || e.eq_ignore_ascii_case("utf-8") {
            Ok(Encoding::Utf8)
        } else if e.eq_ignore_ascii_case("base64") {
            Ok(Encoding::Base64)
        } else if e.eq_ignore_ascii_case("hex") {
            Ok(Encoding::Hex)
        } else {
            Err(ParamError::Encoding(self.object_name.clone()))
        }
    }
}

/// The parsed parameters of one mount.
#[derive(Debug, Clone, Default)]
pub struct Parameters {
    /// `roleName`.
    pub role_name: String,
    /// `vaultAddress`.
    pub vault_address: Option<String>,
    /// `vaultNamespace`.
    pub vault_namespace: Option<String>,
    /// The TLS parameters.
    pub tls: TlsSettings,
    /// `vaultKubernetesMountPath` or `vaultAuthMountPath`.
    pub auth_mount_path: Option<String>,
    /// `audience` as given (empty when unset).
    pub audience: String,
    /// The objects, in SPC order.
    pub objects: Vec<Object>,
    /// Object fields this provider ignored.
    pub unknown: Vec<UnknownField>,
}

impl Parameters {
    /// Reads the parameters as upstream does (`parseParameters`), then
    /// checks them (`validate`), stopping at the first problem.
    pub fn parse(
        attrs: &BTreeMap<String, String>,
        strictness: Strictness,
    ) -> Result<Self, ParamError> {
        let p = Self::read(attrs, strictness)?;
        p.check()?;
        Ok(p)
    }

    fn read(attrs: &BTreeMap<String, String>, strictness: Strictness) -> Result<Self, ParamError> {
        let get = |k: &str| attrs.get(k).filter(|v| !v.is_empty()).cloned();
        let auth_mount_path = match (
            attrs.get("vaultKubernetesMountPath"),
            attrs.get("vaultAuthMountPath"),
        ) {
            (Some(_), Some(_)) => return Err(ParamError::BothMountPaths),
            (Some(m), None) | (None, Some(m)) => Some(m.clone()).filter(|m| !m.is_empty()),
            (None, None) => None,
        };
        let skip_verify = match attrs.get("vaultSkipTLSVerify") {
            None => false,
            Some(v) => secrets_store_go_flag::parse_bool(v)
                .map_err(|_| ParamError::SkipTlsVerify(v.clone()))?,
        };
        let objects = objects::parse::<Object>(
            attrs.get("objects").map(String::as_str).unwrap_or_default(),
            "objectName",
            strictness,
        )
        .map_err(|e: ObjectsError| ParamError::Objects(e.to_string()))?;
        Ok(Self {
            role_name: attrs.get("roleName").cloned().unwrap_or_default(),
            vault_address: get("vaultAddress"),
            vault_namespace: get("vaultNamespace"),
            tls: TlsSettings {
                ca_cert: get("vaultCACertPath"),
                ca_directory: get("vaultCADirectory"),
                server_name: get("vaultTLSServerName"),
                client_cert: get("vaultTLSClientCertPath"),
                client_key: get("vaultTLSClientKeyPath"),
                skip_verify,
            },
            auth_mount_path,
            audience: attrs.get("audience").cloned().unwrap_or_default(),
            objects: objects.objects,
            unknown: objects.unknown,
        })
    }

    fn check(&self) -> Result<(), ParamError> {
        if self.role_name.is_empty() {
            return Err(ParamError::MissingRoleName);
        }
        if self.objects.is_empty() {
            return Err(ParamError::NoSecrets);
        }
        let mut seen = BTreeSet::new();
        let duplicated: Vec<String> = self
            .objects
            .iter()
            .filter(|o| !seen.insert(o.object_name.as_str()))
            .map(|o| o.object_name.clone())
            .collect();
        if !duplicated.is_empty() {
            return Err(ParamError::Duplicates(duplicated));
        }
        Ok(())
    }

    /// The audience of the pod token to log in with.
    pub fn token_audience(&self) -> &str {
        if self.audience.is_empty() {
            DEFAULT_AUDIENCE
        } else {
            &self.audience
        }
    }
}

/// Checks SecretProviderClass parameters strictly, for tools (the CLI's
/// `validate`): everything a mount would reject, plus unknown parameters
/// and object fields, and object mistakes upstream finds only after
/// reading the secret. Returns every problem found.
pub fn validate_parameters(params: &BTreeMap<String, String>) -> Result<(), Vec<ParamError>> {
    let mut problems: Vec<ParamError> = parameters::known_only(params, KNOWN_PARAMETERS)
        .err()
        .map(|e| ParamError::UnknownParameter(e.parameter))
        .into_iter()
        .collect();
    let parsed = match Parameters::read(params, Strictness::Lenient) {
        Ok(p) => p,
        Err(e) => {
            problems.push(e);
            return Err(problems);
        }
    };
    problems.extend(
        parsed
            .unknown
            .iter()
            .map(|u| ParamError::UnknownField(u.to_string())),
    );
    if let Err(e) = parsed.check() {
        problems.push(e);
    }
    for (i, o) in parsed.objects.iter().enumerate() {
        problems.extend(object_problems(i, o));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// [`validate_parameters`] as the SDK's [`ParameterError`]s, each naming
/// its parameter (the shape `secrets-store validate` takes).
pub fn parameter_errors(params: &BTreeMap<String, String>) -> Vec<ParameterError> {
    validate_parameters(params)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| ParameterError::new(e.parameter().to_string(), e))
        .collect()
}

impl ParamError {
    /// The parameter at fault.
    pub fn parameter(&self) -> &str {
        match self {
            Self::BothMountPaths => "vaultAuthMountPath",
            Self::SkipTlsVerify(_) => "vaultSkipTLSVerify",
            Self::MissingRoleName => "roleName",
            Self::UnknownParameter(name) => name,
            _ => "objects",
        }
    }
}

fn object_problems(index: usize, o: &Object) -> Vec<ParamError> {
    let name = || o.object_name.clone();
    let mut out = Vec::new();
    if o.object_name.is_empty() {
        out.push(ParamError::MissingObjectName(index));
    } else if let Err(e) = secrets_store_provider_sdk::path::validate(&o.object_name) {
        out.push(ParamError::BadObjectName(name(), e.to_string()));
    }
    if o.secret_path.is_empty() {
        out.push(ParamError::MissingSecretPath(name()));
    }
    if let Err(e) = o.encoding() {
        out.push(e);
    } else if !o.encoding.is_empty() && o.secret_key.is_empty() {
        out.push(ParamError::EncodingWithoutKey(name()));
    }
    if !o.method.is_empty() && !METHODS.contains(&o.method.as_str()) {
        out.push(ParamError::Method(name(), o.method.clone()));
    }
    if o.file_permission.0 > 0o777 {
        out.push(ParamError::Permission(name(), o.file_permission.0));
    }
    out
}

#[cfg(test)]
mod tests;
