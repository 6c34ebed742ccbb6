//! The `objects` entries of an `alibabacloud` SecretProviderClass, checked
//! with upstream's rules and messages and resolved to file names.

use std::collections::BTreeSet;

use secrets_store_provider_sdk::objects::{self, ObjectsError, Strictness, UnknownField};
use secrets_store_provider_sdk::parameters::{self, ParameterError};
use secrets_store_provider_sdk::path::{self, PathError, PathTranslation};
use serde::{Deserialize, Serialize};

/// One entry of `objects`, as written by users.
///
/// Unknown fields are not refused here: like upstream, the provider
/// ignores them (and warns); [`Strictness::Strict`] refuses them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretObject {
    /// Secret or parameter name, or a KMS secret ARN (`acs:kms:…`).
    #[serde(default)]
    pub object_name: String,
    /// File name; defaults to the name.
    #[serde(default)]
    pub object_alias: String,
    /// KMS `VersionId`.
    #[serde(default)]
    pub object_version: String,
    /// KMS `VersionStage`.
    #[serde(default)]
    pub object_version_label: String,
    /// `kms` (default) or `oos`.
    #[serde(default)]
    pub object_type: String,
    /// Keys to extract from a JSON secret into their own files.
    #[serde(default)]
    pub jmes_path: Vec<JmesPathObject>,
    /// KMS endpoint for this object.
    #[serde(default)]
    pub kms_endpoint: String,
    /// RAM role to assume (from the base credential) for this object.
    #[serde(default)]
    pub cross_account_role_arn: String,
}

/// One `jmesPath` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JmesPathObject {
    /// The JMES expression.
    #[serde(default)]
    pub path: String,
    /// The file it is written to.
    #[serde(default)]
    pub object_alias: String,
}

/// Which backend holds an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    /// KMS Secrets Manager.
    Kms,
    /// OOS encrypted parameter.
    Oos,
}

impl ObjectType {
    /// The name used in SPCs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kms => "kms",
            Self::Oos => "oos",
        }
    }
}

/// A validated object, ready to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Name sent to the backend.
    pub name: String,
    /// Backend.
    pub kind: ObjectType,
    /// File name (also the object version id).
    pub file: String,
    /// Pinned `VersionId` (KMS).
    pub version_id: Option<String>,
    /// Pinned `VersionStage` (KMS).
    pub version_stage: Option<String>,
    /// `(path, file)` jmesPath extractions.
    pub jmes: Vec<(String, String)>,
    /// KMS endpoint override.
    pub kms_endpoint: Option<String>,
    /// Role to assume for this object.
    pub cross_account_role_arn: Option<String>,
}

/// Invalid `objects`; messages follow upstream.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// Not YAML, a mistyped field, or (strict) an unknown one.
    #[error("failed to load SecretProviderClass: {0}")]
    Load(#[from] ObjectsError),
    /// `objects` lists nothing.
    #[error("failed to load SecretProviderClass: no objects specified")]
    Empty,
    /// Missing `objectName`.
    #[error("object name must be specified")]
    NoName,
    /// Malformed ARN.
    #[error("invalid ARN format in object name: {0}")]
    Arn(String),
    /// ARN of another service.
    #[error("invalid service in ARN: {0}")]
    ArnService(String),
    /// Unknown `objectType`.
    #[error("unsupported object type {0:?}, only support \"kms\" and \"oos\"")]
    Type(String),
    /// jmesPath entry without path.
    #[error("path must be specified for JMES object")]
    JmesPath,
    /// jmesPath entry without alias.
    #[error("object alias must be specified for JMES object")]
    JmesAlias,
    /// A file name is unsafe.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Same name, alias and type twice.
    #[error("duplicate object name: {0} (type: {1})")]
    DuplicateName(String, &'static str),
    /// Two objects with one file name.
    #[error("duplicate object alias: {0}")]
    DuplicateAlias(String),
    /// A jmesPath file name used twice.
    #[error("duplicate JMES path object alias: {0}")]
    DuplicateJmesAlias(String),
}

fn check_arn(name: &str) -> Result<(), ObjectError> {
    if !name.starts_with("acs:") {
        return Ok(());
    }
    let parts: Vec<&str> = name.splitn(5, ':').collect();
    if parts.len() != 5 || parts[1].is_empty() || parts[4].is_empty() {
        return Err(ObjectError::Arn(name.to_string()));
    }
    if parts[1] != "kms" {
        return Err(ObjectError::ArnService(name.to_string()));
    }
    Ok(())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Validated objects and the fields that were ignored.
#[derive(Debug)]
pub struct Parsed {
    /// The objects, in order.
    pub objects: Vec<Object>,
    /// Unknown fields (empty in strict mode, which refuses them).
    pub unknown: Vec<UnknownField>,
}

/// Parses and validates the `objects` parameter.
pub fn parse(
    yaml: &str,
    translation: PathTranslation,
    strictness: Strictness,
) -> Result<Parsed, ObjectError> {
    let parsed = objects::parse::<SecretObject>(yaml, "objectName", strictness)?;
    let objects = validate(parsed.objects, translation)?;
    Ok(Parsed {
        objects,
        unknown: parsed.unknown,
    })
}

fn jmes_files(
    o: &SecretObject,
    translation: PathTranslation,
    files: &mut BTreeSet<String>,
) -> Result<Vec<(String, String)>, ObjectError> {
    let mut jmes = Vec::new();
    for j in &o.jmes_path {
        if j.path.is_empty() {
            return Err(ObjectError::JmesPath);
        }
        if j.object_alias.is_empty() {
            return Err(ObjectError::JmesAlias);
        }
        let jf = translation.apply(&j.object_alias);
        path::validate(&jf)?;
        if !files.insert(jf.clone()) {
            return Err(ObjectError::DuplicateJmesAlias(jf));
        }
        jmes.push((j.path.clone(), jf));
    }
    Ok(jmes)
}

fn validate(
    raw: Vec<SecretObject>,
    translation: PathTranslation,
) -> Result<Vec<Object>, ObjectError> {
    if raw.is_empty() {
        return Err(ObjectError::Empty);
    }
    let mut names = BTreeSet::new();
    let mut files = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for o in raw {
        if o.object_name.is_empty() {
            return Err(ObjectError::NoName);
        }
        check_arn(&o.object_name)?;
        let kind = match o.object_type.as_str() {
            "" | "kms" => ObjectType::Kms,
            "oos" => ObjectType::Oos,
            other => return Err(ObjectError::Type(other.to_string())),
        };
        let file = translation.apply(if o.object_alias.is_empty() {
            &o.object_name
        } else {
            &o.object_alias
        });
        path::validate(&file)?;
        if !names.insert((o.object_name.clone(), o.object_alias.clone(), kind)) {
            return Err(ObjectError::DuplicateName(o.object_name, kind.as_str()));
        }
        if !files.insert(file.clone()) {
            return Err(ObjectError::DuplicateAlias(file));
        }
        let jmes = jmes_files(&o, translation, &mut files)?;
        out.push(Object {
            kind,
            file,
            version_id: non_empty(&o.object_version).filter(|_| kind == ObjectType::Kms),
            version_stage: non_empty(&o.object_version_label).filter(|_| kind == ObjectType::Kms),
            jmes,
            kms_endpoint: non_empty(&o.kms_endpoint),
            cross_account_role_arn: non_empty(&o.cross_account_role_arn),
            name: o.object_name,
        });
    }
    Ok(out)
}

/// Parameters an `alibabacloud` class may set.
pub const PARAMETERS: &[&str] = &[
    "objects",
    "pathTranslation",
    "region",
    "usePodServiceAccountToken",
];

/// The strict check of an `alibabacloud` class's parameters, for tools
/// (`secrets-store validate`): no unknown parameter, a valid region, path translation and boolean, and
/// `objects` parsed with [`Strictness::Strict`].
pub fn validate_parameters(
    parameters: &std::collections::BTreeMap<String, String>,
) -> Result<(), ParameterError> {
    parameters::known_only(parameters, PARAMETERS)?;
    parameters::boolean(parameters, "usePodServiceAccountToken")?;
    if let Some(r) = parameters.get("region").filter(|r| !r.is_empty()) {
        crate::endpoint::region(r).map_err(|e| ParameterError::new("region", e))?;
    }
    let get = |k: &str| parameters.get(k).map(String::as_str);
    let translation = PathTranslation::parse(get("pathTranslation"))
        .map_err(|e| ParameterError::new("pathTranslation", e))?;
    parse(
        get("objects").unwrap_or_default(),
        translation,
        Strictness::Strict,
    )
    .map_err(|e| ParameterError::new("objects", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: PathTranslation = PathTranslation::Replace('_');

    fn lenient(yaml: &str, t: PathTranslation) -> Result<Parsed, ObjectError> {
        parse(yaml, t, Strictness::Lenient)
    }

    #[test]
    fn resolves_files_versions_and_types() {
        let yaml = r#"
- objectName: "My/Path/Secret"
  objectVersion: v1
  objectVersionLabel: ACSCurrent
- objectName: "acs:kms:cn-hangzhou:123456:secret/db"
  objectAlias: db
  kmsEndpoint: kms.cn-hangzhou.aliyuncs.com
  crossAccountRoleArn: acs:ram::999:role/reader
  jmesPath:
    - path: username
      objectAlias: user
- objectName: param
  objectType: oos
  objectVersion: ignored
"#;
        let o = parse(yaml, ON, Strictness::Strict).expect("parse").objects;
        assert_eq!(o[0].file, "My_Path_Secret");
        assert_eq!(o[0].version_id.as_deref(), Some("v1"));
        assert_eq!(o[0].version_stage.as_deref(), Some("ACSCurrent"));
        assert_eq!(o[1].file, "db");
        assert_eq!(
            o[1].jmes,
            vec![("username".to_string(), "user".to_string())]
        );
        assert_eq!(
            o[1].cross_account_role_arn.as_deref(),
            Some("acs:ram::999:role/reader")
        );
        assert_eq!(
            (o[2].kind, o[2].version_id.clone()),
            (ObjectType::Oos, None)
        );
        let off = lenient("- objectName: /a/b\n", PathTranslation::Off).expect("off");
        assert_eq!(off.objects[0].file, "a/b");
        // Upstream's unescaped-dot regex rejected these with translation off.
        for ok in ["a/bc/d", "ab/c", "foo/ab"] {
            assert!(
                lenient(&format!("- objectName: {ok}\n"), PathTranslation::Off).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn upstream_validation_messages() {
        let cases = [
            ("- objectAlias: x\n", "object name must be specified"),
            (
                "- objectName: \"acs:kms:x\"\n",
                "invalid ARN format in object name: acs:kms:x",
            ),
            (
                "- objectName: \"acs:oss:r:1:b\"\n",
                "invalid service in ARN: acs:oss:r:1:b",
            ),
            (
                "- objectName: a\n  objectType: s3\n",
                "unsupported object type \"s3\", only support \"kms\" and \"oos\"",
            ),
            (
                "- objectName: a\n  jmesPath:\n    - objectAlias: x\n",
                "path must be specified for JMES object",
            ),
            (
                "- objectName: a\n  jmesPath:\n    - path: x\n",
                "object alias must be specified for JMES object",
            ),
            (
                "- objectName: a\n- objectName: a\n",
                "duplicate object name: a (type: kms)",
            ),
            (
                "- objectName: a\n- objectName: b\n  objectAlias: a\n",
                "duplicate object alias: a",
            ),
            (
                "- objectName: a\n  jmesPath:\n    - {path: x, objectAlias: a}\n",
                "duplicate JMES path object alias: a",
            ),
            (
                "- objectName: a\n  objectAlias: ../../etc/x\n",
                "path can not contain ../: ../../etc/x",
            ),
            (
                "- objectName: a\n  objectVersion: [1]\n",
                "failed to load SecretProviderClass: object 0 (\"a\"): line 2 column 18: expected string scalar",
            ),
            (
                "[",
                "failed to load SecretProviderClass: objects is not a valid YAML list",
            ),
            (
                "",
                "failed to load SecretProviderClass: no objects specified",
            ),
        ];
        for (yaml, want) in cases {
            let translation = if yaml.contains("../") {
                PathTranslation::Off
            } else {
                ON
            };
            let err = lenient(yaml, translation).expect_err(yaml).to_string();
            assert!(err.starts_with(want), "{yaml:?}: {err}");
        }
        // kms and oos may share a name when the files differ.
        assert!(
            lenient(
                "- objectName: a\n- objectName: a\n  objectType: oos\n  objectAlias: b\n",
                ON
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_fields_are_ignored_or_refused_in_strict_mode() {
        let yaml =
            "- objectName: a\n  bogus: 1\n  jmesPath:\n    - {path: x, objectAlias: b, extra: 1}\n";
        let p = lenient(yaml, ON).expect("lenient");
        assert_eq!(p.objects[0].jmes, vec![("x".to_string(), "b".to_string())]);
        let unknown: Vec<String> = p.unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            unknown,
            [
                "object 0 (\"a\"): bogus",
                "object 0 (\"a\"): jmesPath[0].extra"
            ]
        );
        let err = parse(yaml, ON, Strictness::Strict).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "failed to load SecretProviderClass: object 0 (\"a\"): unknown field `bogus`"
        );
    }
}
