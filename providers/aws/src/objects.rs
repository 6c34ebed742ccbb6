//! The `objects` parameter: upstream's descriptor fields, validation rules
//! and messages, resolved into the objects a mount fetches.
//!
//! Upstream checks each descriptor in order (name, ARN, type, versions,
//! path, permissions, jmesPath, failover) and then its duplicates; the
//! first failure is the answer. We keep that order and those messages.
//! Beyond upstream, every file name must be a clean relative path and
//! unique across the mount (upstream lets two objects write one path).

use std::collections::{BTreeSet, HashMap, HashSet};

use secrets_store_provider_sdk::objects::{self, ObjectsError, Strictness};
use secrets_store_provider_sdk::path::{self, PathError, PathTranslation};
use serde::{Deserialize, Serialize};

/// Validation errors, with upstream's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// `pathTranslation` is neither `False` nor one character.
    #[error(transparent)]
    Translation(PathError),
    /// The YAML does not parse.
    #[error("Failed to load SecretProviderClass: {0}")]
    Load(String),
    /// A `- ` entry with nothing in it.
    #[error("Empty descriptor entry in SecretProviderClass")]
    Empty,
    /// Any of upstream's per-descriptor checks.
    #[error("{0}")]
    Invalid(String),
    /// A file name that is not a clean relative path (ours).
    #[error("{0}")]
    Path(PathError),
    /// Two objects would write one file (ours).
    #[error("duplicate file path: {0}")]
    DuplicateFile(String),
}

/// The two backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// SSM Parameter Store.
    SsmParameter,
    /// Secrets Manager.
    SecretsManager,
}

impl ObjectType {
    /// Upstream's table of names (`ssm` is accepted only from an ARN).
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "secretsmanager" => Some(Self::SecretsManager),
            "ssmparameter" | "ssm" => Some(Self::SsmParameter),
            _ => None,
        }
    }
}

/// One `jmesPath` entry as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JmesEntry {
    /// The expression.
    pub path: String,
    /// The file it goes to.
    pub object_alias: String,
    /// Octal mode, four digits (inherits the object's).
    pub file_permission: String,
}

/// `failoverObject` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverEntry {
    /// Name or ARN in the failover region.
    pub object_name: String,
    /// Version id there.
    pub object_version: String,
    /// Version label there.
    pub object_version_label: String,
}

/// One entry of `objects` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Descriptor {
    /// Name or ARN.
    pub object_name: String,
    /// File name instead of the object name.
    pub object_alias: String,
    /// Version id (Secrets Manager) or number (SSM).
    pub object_version: String,
    /// Staging label (Secrets Manager) or parameter label (SSM).
    pub object_version_label: String,
    /// `secretsmanager` or `ssmparameter`; optional with an ARN.
    pub object_type: String,
    /// Octal mode, four digits (default: the request's permission).
    pub file_permission: String,
    /// Keys of a JSON value to mount as their own files.
    pub jmes_path: Vec<JmesEntry>,
    /// The object to read in the failover region.
    pub failover_object: FailoverEntry,
}

/// What to read in one region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Name or ARN.
    pub name: String,
    /// Pinned version id or number.
    pub version: Option<String>,
    /// Version label.
    pub label: Option<String>,
}

/// A `jmesPath` entry resolved to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JmesFile {
    /// The expression.
    pub path: String,
    /// The alias (for messages).
    pub alias: String,
    /// The file name.
    pub file: String,
    /// Its mode, when set.
    pub mode: Option<u32>,
}

/// A validated object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The backend.
    pub kind: ObjectType,
    /// `objectName` as written (for messages).
    pub name: String,
    /// The file name (also the object version id).
    pub file: String,
    /// Its mode, when set.
    pub mode: Option<u32>,
    /// What to read in the primary region.
    pub primary: Target,
    /// What to read in the failover region.
    pub failover: Target,
    /// jmesPath files.
    pub jmes: Vec<JmesFile>,
}

/// Parsed objects and the fields that were ignored.
#[derive(Debug)]
pub struct Parsed {
    /// Objects in the order written.
    pub objects: Vec<Object>,
    /// Unknown fields (for one warning).
    pub unknown: Vec<objects::UnknownField>,
}

/// Parses `objects` for the regions of the mount (primary first).
/// An empty region is unknown (standalone validation): ARN regions are
/// then not compared with it.
pub fn parse(
    yaml: &str,
    translation: Option<&str>,
    regions: &[String],
    strictness: Strictness,
) -> Result<Parsed, ObjectError> {
    let translation = PathTranslation::parse(translation).map_err(ObjectError::Translation)?;
    let parsed = objects::parse::<Option<Descriptor>>(yaml, "objectName", strictness)
        .map_err(|e| ObjectError::Load(load_message(e)))?;
    let mut seen_names: HashMap<String, (String, String)> = HashMap::new();
    let mut seen_aliases: HashSet<String> = HashSet::new();
    let mut files: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for d in parsed.objects {
        let d = d.ok_or(ObjectError::Empty)?;
        validate(&d, regions, translation).map_err(ObjectError::Invalid)?;
        duplicates(&d, &mut seen_names, &mut seen_aliases).map_err(ObjectError::Invalid)?;
        let object = resolve(d, translation)?;
        for f in std::iter::once(&object.file).chain(object.jmes.iter().map(|j| &j.file)) {
            path::validate(f).map_err(ObjectError::Path)?;
            if !files.insert(f.clone()) {
                return Err(ObjectError::DuplicateFile(f.clone()));
            }
        }
        out.push(object);
    }
    Ok(Parsed {
        objects: out,
        unknown: parsed.unknown,
    })
}

fn load_message(e: ObjectsError) -> String {
    e.to_string()
}

/// The file name of an object name or alias, as upstream makes it.
fn file_name(name: &str, translation: PathTranslation) -> String {
    match translation {
        PathTranslation::Replace(_) => translation.apply(name),
        PathTranslation::Off => name.trim_start_matches('/').to_string(),
    }
}

/// The alias, else the name.
fn shown_name(d: &Descriptor) -> &str {
    if d.object_alias.is_empty() {
        &d.object_name
    } else {
        &d.object_alias
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 8).ok().map(|m| m & 0o777)
}

fn resolve(d: Descriptor, translation: PathTranslation) -> Result<Object, ObjectError> {
    let kind = secret_type(&d);
    let file = file_name(shown_name(&d), translation);
    let jmes = d
        .jmes_path
        .iter()
        .map(|j| JmesFile {
            path: j.path.clone(),
            alias: j.object_alias.clone(),
            file: file_name(&j.object_alias, translation),
            mode: mode(&j.file_permission).or_else(|| mode(&d.file_permission)),
        })
        .collect();
    let primary = Target {
        name: d.object_name.clone(),
        version: non_empty(&d.object_version),
        label: non_empty(&d.object_version_label),
    };
    let f = &d.failover_object;
    let failover = Target {
        name: non_empty(&f.object_name).unwrap_or_else(|| primary.name.clone()),
        version: non_empty(&f.object_version).or_else(|| primary.version.clone()),
        label: non_empty(&f.object_version_label).or_else(|| primary.label.clone()),
    };
    Ok(Object {
        kind,
        mode: mode(&d.file_permission),
        name: d.object_name,
        file,
        primary,
        failover,
        jmes,
    })
}

/// The parts of an ARN upstream reads (`arn:partition:service:region:account:resource`).
struct Arn<'a> {
    service: &'a str,
    region: &'a str,
}

fn parse_arn(name: &str) -> Option<Arn<'_>> {
    let parts: Vec<&str> = name.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn").then(|| Arn {
        service: parts[2],
        region: parts[3],
    })
}

/// The backend: `objectType`, else the ARN's service. An unknown name maps
/// to SSM, as upstream's table lookup does.
fn secret_type(d: &Descriptor) -> ObjectType {
    let name = if d.object_type.is_empty() {
        d.object_name.split(':').nth(2).unwrap_or_default()
    } else {
        d.object_type.as_str()
    };
    ObjectType::from_name(name).unwrap_or(ObjectType::SsmParameter)
}

fn validate_name(name: &str, object_type: &str, region: Option<&str>) -> Result<(), String> {
    let arn = if name.starts_with("arn:") {
        Some(parse_arn(name).ok_or_else(|| format!("Invalid ARN format in object name: {name}"))?)
    } else {
        None
    };
    if let (Some(a), Some(r)) = (&arn, region.filter(|r| !r.is_empty()))
        && a.region != r
    {
        return Err(format!("ARN region must match region {r}: {name}"));
    }
    let service = arn.as_ref().map(|a| a.service).unwrap_or_default();
    if object_type.is_empty() {
        if arn.is_none() {
            return Err(format!(
                "Must use objectType when a full ARN is not specified: {name}"
            ));
        }
        if ObjectType::from_name(service).is_none() {
            return Err(format!("Invalid service in ARN: {service}"));
        }
        return Ok(());
    }
    let Some(kind) = ObjectType::from_name(object_type).filter(|_| object_type != "ssm") else {
        return Err(format!("Invalid objectType: {object_type}"));
    };
    let arn_kind = ObjectType::from_name(service).unwrap_or(ObjectType::SsmParameter);
    if arn.is_some() && kind != arn_kind {
        return Err(format!("objectType does not match ARN: {name}"));
    }
    Ok(())
}

fn validate_permission(p: &str) -> Result<(), String> {
    if p.is_empty() || (p.len() == 4 && p.bytes().all(|b| (b'0'..=b'7').contains(&b))) {
        Ok(())
    } else {
        Err(format!("Invalid File Permission: {p}"))
    }
}

/// Upstream's `(/../)|(^../)|(/..$)` on the file name.
fn bad_path(file: &str) -> bool {
    file.contains("/../") || file.starts_with("../") || file.ends_with("/..")
}

/// Upstream's per-descriptor checks, in its order.
fn validate(
    d: &Descriptor,
    regions: &[String],
    translation: PathTranslation,
) -> Result<(), String> {
    let name = &d.object_name;
    if name.is_empty() {
        return Err("Object name must be specified".into());
    }
    validate_name(name, &d.object_type, regions.first().map(String::as_str))?;
    let ssm = secret_type(d) == ObjectType::SsmParameter;
    if ssm && !d.object_version.is_empty() && !d.object_version_label.is_empty() {
        return Err(format!(
            "ssm parameters can not specify both objectVersion and objectVersionLabel: {name}"
        ));
    }
    if bad_path(&file_name(shown_name(d), translation)) {
        return Err(format!("path can not contain ../: {name}"));
    }
    validate_permission(&d.file_permission)?;
    for j in &d.jmes_path {
        if j.path.is_empty() {
            return Err("Path must be specified for JMES object".into());
        }
        if j.object_alias.is_empty() {
            return Err("Object alias must be specified for JMES object".into());
        }
        validate_permission(&j.file_permission)?;
    }
    validate_failover(d, regions, ssm)
}

fn validate_failover(d: &Descriptor, regions: &[String], ssm: bool) -> Result<(), String> {
    let f = &d.failover_object;
    let name = &d.object_name;
    if f.object_name.is_empty() {
        return Ok(());
    }
    if d.object_alias.is_empty() {
        return Err(format!(
            "object alias must be specified for objects with failover entries: {name}"
        ));
    }
    if regions.len() < 2 {
        return Err(format!(
            "failover object allowed only when failover region is defined: {name}"
        ));
    }
    validate_name(
        &f.object_name,
        &d.object_type,
        regions.get(1).map(String::as_str),
    )?;
    if ssm && !f.object_version.is_empty() && !f.object_version_label.is_empty() {
        return Err(format!(
            "ssm parameters can not specify both objectVersion and objectVersionLabel: {name}"
        ));
    }
    if f.object_version != d.object_version {
        return Err(format!(
            "object versions must match between primary and failover regions: {name}"
        ));
    }
    Ok(())
}

/// Upstream's duplicate rules: the same name twice needs a different alias
/// or label; aliases (object and jmesPath) are unique.
fn duplicates(
    d: &Descriptor,
    seen_names: &mut HashMap<String, (String, String)>,
    seen_aliases: &mut HashSet<String>,
) -> Result<(), String> {
    let (alias, label) = (&d.object_alias, &d.object_version_label);
    if let Some((f_alias, f_label)) = seen_names.get(&d.object_name) {
        let prefix = format!(
            "found descriptor with duplicate object name {}",
            d.object_name
        );
        let (ha, fa, hl, fl) = (
            !alias.is_empty(),
            !f_alias.is_empty(),
            !label.is_empty(),
            !f_label.is_empty(),
        );
        if ha && fa && !hl && !fl && alias == f_alias {
            return Err(format!(
                "{prefix}, duplicate object alias {alias}, and no version label"
            ));
        }
        if !ha && !fa && hl && fl && label == f_label {
            return Err(format!(
                "{prefix}, no object alias, and duplicate version label {label}"
            ));
        }
        if ha && fa && hl && fl && alias == f_alias && label == f_label {
            return Err(format!(
                "{prefix}, duplicate object alias {alias}, and duplicate version label {label}"
            ));
        }
        if !ha && !fa && !hl && !fl {
            return Err(format!("{prefix}, no object alias, and no version label"));
        }
    }
    seen_names.insert(d.object_name.clone(), (alias.clone(), label.clone()));
    if seen_aliases.contains(alias) {
        return Err(format!("found duplicate object alias {alias}"));
    }
    if !alias.is_empty() {
        seen_aliases.insert(alias.clone());
    }
    for j in &d.jmes_path {
        if !seen_aliases.insert(j.object_alias.clone()) {
            return Err(format!(
                "Name already in use for objectAlias: found duplicate object alias {} in JMES path entry {}",
                j.object_alias, j.path
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "us-east-1";

    fn regions(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    fn lenient(yaml: &str) -> Result<Parsed, ObjectError> {
        parse(yaml, None, &regions(&[R]), Strictness::Lenient)
    }

    #[test]
    fn resolves_names_types_versions_and_files() {
        let yaml = r#"
- objectName: "MySecret"
  objectType: "secretsmanager"
  objectVersionLabel: AWSPREVIOUS
  filePermission: "0600"
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
  objectAlias: db
  jmesPath:
    - path: username
      objectAlias: dbuser
      filePermission: "0640"
    - path: password
      objectAlias: dbpass
- objectName: /app/param
  objectType: ssmparameter
  objectVersion: "3"
"#;
        let o = lenient(yaml).expect("parse").objects;
        assert_eq!(o[0].kind, ObjectType::SecretsManager);
        assert_eq!(o[0].primary.label.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!((o[0].file.as_str(), o[0].mode), ("MySecret", Some(0o600)));
        assert_eq!(o[1].kind, ObjectType::SecretsManager, "from the ARN");
        assert_eq!(o[1].file, "db");
        assert_eq!(o[1].jmes[0].file, "dbuser");
        assert_eq!(o[1].jmes[0].mode, Some(0o640));
        assert_eq!(o[1].jmes[1].mode, None, "inherits the object's (none)");
        assert_eq!(o[2].kind, ObjectType::SsmParameter);
        assert_eq!(o[2].file, "_app_param");
        assert_eq!(o[2].primary.version.as_deref(), Some("3"));
        let off = parse(
            "- {objectName: /app/param, objectType: ssmparameter}\n",
            Some("False"),
            &regions(&[R]),
            Strictness::Lenient,
        )
        .expect("off");
        assert_eq!(off.objects[0].file, "app/param");
        let dash = parse(
            "- {objectName: a/b, objectType: ssmparameter}\n",
            Some("-"),
            &regions(&[R]),
            Strictness::Lenient,
        )
        .expect("dash");
        assert_eq!(dash.objects[0].file, "a-b");
    }

    #[test]
    fn failover_targets() {
        let yaml = "- objectName: arn:aws:secretsmanager:us-east-1:1:secret:a\n  objectAlias: a\n  failoverObject:\n    objectName: arn:aws:secretsmanager:us-west-2:1:secret:a\n    objectVersionLabel: L\n";
        let o = parse(yaml, None, &regions(&[R, "us-west-2"]), Strictness::Strict)
            .expect("parse")
            .objects;
        assert_eq!(
            o[0].failover.name,
            "arn:aws:secretsmanager:us-west-2:1:secret:a"
        );
        assert_eq!(o[0].failover.label.as_deref(), Some("L"));
        assert_eq!(o[0].primary.label, None);
    }

    #[test]
    fn upstream_validation_messages() {
        let two = regions(&[R, "us-west-2"]);
        let cases: &[(&str, &[String], &str)] = &[
            ("- objectAlias: x\n", &[], "Object name must be specified"),
            (
                "- objectName: \"arn:aws:x\"\n",
                &[],
                "Invalid ARN format in object name: arn:aws:x",
            ),
            (
                "- objectName: \"arn:aws:secretsmanager:us-west-2:1:secret:a\"\n",
                &[],
                "ARN region must match region us-east-1: arn:aws:secretsmanager:us-west-2:1:secret:a",
            ),
            (
                "- objectName: a\n",
                &[],
                "Must use objectType when a full ARN is not specified: a",
            ),
            (
                "- objectName: \"arn:aws:s3:us-east-1:1:b\"\n",
                &[],
                "Invalid service in ARN: s3",
            ),
            (
                "- {objectName: a, objectType: ssm}\n",
                &[],
                "Invalid objectType: ssm",
            ),
            (
                "- {objectName: a, objectType: kms}\n",
                &[],
                "Invalid objectType: kms",
            ),
            (
                "- {objectName: \"arn:aws:ssm:us-east-1:1:parameter/a\", objectType: secretsmanager}\n",
                &[],
                "objectType does not match ARN: arn:aws:ssm:us-east-1:1:parameter/a",
            ),
            (
                "- {objectName: a, objectType: ssmparameter, objectVersion: \"1\", objectVersionLabel: l}\n",
                &[],
                "ssm parameters can not specify both objectVersion and objectVersionLabel: a",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, filePermission: \"644\"}\n",
                &[],
                "Invalid File Permission: 644",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, jmesPath: [{objectAlias: x}]}\n",
                &[],
                "Path must be specified for JMES object",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: x}]}\n",
                &[],
                "Object alias must be specified for JMES object",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: x, objectAlias: y, filePermission: \"0800\"}]}\n",
                &[],
                "Invalid File Permission: 0800",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, failoverObject: {objectName: b}}\n",
                &two,
                "object alias must be specified for objects with failover entries: a",
            ),
            (
                "- {objectName: a, objectAlias: x, objectType: secretsmanager, failoverObject: {objectName: b}}\n",
                &[],
                "failover object allowed only when failover region is defined: a",
            ),
            (
                "- {objectName: a, objectAlias: x, objectType: secretsmanager, objectVersion: v, failoverObject: {objectName: b}}\n",
                &two,
                "object versions must match between primary and failover regions: a",
            ),
            (
                "- {objectName: a, objectAlias: x, objectType: secretsmanager, failoverObject: {objectName: \"arn:aws:secretsmanager:us-east-1:1:secret:b\"}}\n",
                &two,
                "ARN region must match region us-west-2: arn:aws:secretsmanager:us-east-1:1:secret:b",
            ),
            ("- \n", &[], "Empty descriptor entry in SecretProviderClass"),
            (
                "- {objectName: a, objectType: secretsmanager}\n- {objectName: a, objectType: secretsmanager}\n",
                &[],
                "found descriptor with duplicate object name a, no object alias, and no version label",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n- {objectName: a, objectType: secretsmanager, objectAlias: x}\n",
                &[],
                "found descriptor with duplicate object name a, duplicate object alias x, and no version label",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, objectVersionLabel: l}\n- {objectName: a, objectType: secretsmanager, objectVersionLabel: l}\n",
                &[],
                "found descriptor with duplicate object name a, no object alias, and duplicate version label l",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, objectAlias: x, objectVersionLabel: l}\n- {objectName: a, objectType: secretsmanager, objectAlias: x, objectVersionLabel: l}\n",
                &[],
                "found descriptor with duplicate object name a, duplicate object alias x, and duplicate version label l",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n- {objectName: b, objectType: secretsmanager, objectAlias: x}\n",
                &[],
                "found duplicate object alias x",
            ),
            (
                "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n- {objectName: b, objectType: secretsmanager, jmesPath: [{path: p, objectAlias: x}]}\n",
                &[],
                "Name already in use for objectAlias: found duplicate object alias x in JMES path entry p",
            ),
            (
                "- {objectName: a, objectType: secretsmanager}\n- {objectName: b, objectType: secretsmanager, objectAlias: a}\n",
                &[],
                "duplicate file path: a",
            ),
            (
                "- {objectName: [x]}\n",
                &[],
                "Failed to load SecretProviderClass: ",
            ),
        ];
        for (yaml, r, want) in cases {
            let r = if r.is_empty() {
                regions(&[R])
            } else {
                r.to_vec()
            };
            let err = parse(yaml, None, &r, Strictness::Lenient)
                .expect_err(yaml)
                .to_string();
            assert!(err.starts_with(want), "{yaml:?}: {err}");
        }
        let err = parse(
            "- {objectName: ../x, objectType: ssmparameter}\n",
            Some("False"),
            &regions(&[R]),
            Strictness::Lenient,
        )
        .expect_err("traversal")
        .to_string();
        assert_eq!(err, "path can not contain ../: ../x");
        let err = parse(
            "- {objectName: a, objectType: ssmparameter}\n",
            Some("ab"),
            &regions(&[R]),
            Strictness::Lenient,
        )
        .expect_err("translation")
        .to_string();
        assert_eq!(
            err,
            "pathTranslation must be either 'False' or a single character string"
        );
    }

    #[test]
    fn duplicates_allowed_as_upstream() {
        let ok = "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n- {objectName: a, objectType: secretsmanager, objectAlias: y}\n";
        assert!(lenient(ok).is_ok());
        let strict = parse(
            "- {objectName: a, objectType: secretsmanager, bogus: 1}\n",
            None,
            &regions(&[R]),
            Strictness::Strict,
        )
        .expect_err("strict")
        .to_string();
        assert!(strict.contains("unknown field `bogus`"), "{strict}");
        let l =
            lenient("- {objectName: a, objectType: secretsmanager, bogus: 1}\n").expect("lenient");
        assert_eq!(l.unknown.len(), 1);
        assert!(lenient("").expect("empty").objects.is_empty());
    }
}
