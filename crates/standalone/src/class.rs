//! SecretProviderClass files: YAML documents, checked against the CRD
//! schema of their version (v1 or v1alpha1, from `secrets-store-crds`),
//! and turned into the class the driver would use (its `spc::check`).

use std::path::Path;

use secrets_store_crds::v1::SecretProviderClass;
use secrets_store_csi_driver::spc::{self, ProviderClass};
use serde_json::Value;

use crate::schema;

/// The API versions a class may use.
const VERSIONS: [&str; 2] = ["v1", "v1alpha1"];
const KIND: &str = "SecretProviderClass";

/// One mistake in a file: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Problem {
    /// The file, as given.
    pub file: String,
    /// The document: `SecretProviderClass "<name>"` or `document <n>`;
    /// empty for the whole file.
    pub document: String,
    /// Field path (`spec.parameters.objects`); empty for the document.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl Problem {
    fn render(&self) -> String {
        [&self.file, &self.document, &self.field, &self.reason]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(": ")
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file, as given.
    pub file: String,
    /// Position in the file, from 1.
    pub index: usize,
    /// The document.
    pub value: Value,
}

impl Document {
    /// `metadata.name`, if it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }

    /// Whether the document declares itself a SecretProviderClass.
    pub fn is_class(&self) -> bool {
        self.value.get("kind").and_then(Value::as_str) == Some(KIND)
    }

    /// How messages name the document.
    pub fn label(&self) -> String {
        match self.name() {
            Some(n) if self.is_class() => format!("{KIND} {:?}", n.escape_debug().to_string()),
            _ => format!("document {}", self.index),
        }
    }

    /// A problem in this document.
    pub fn problem(&self, field: impl Into<String>, reason: impl ToString) -> Problem {
        Problem {
            file: self.file.clone(),
            document: self.label(),
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// Checks a SecretProviderClass document: its apiVersion and the CRD
    /// schema of that version (types, required and unknown fields).
    pub fn check_schema(&self) -> Vec<Problem> {
        let api_version = self.value.get("apiVersion").and_then(Value::as_str);
        let version = api_version
            .and_then(|v| v.strip_prefix(secrets_store_crds::GROUP))
            .and_then(|v| v.strip_prefix('/'))
            .filter(|v| VERSIONS.contains(v));
        let Some(version) = version else {
            let found = api_version.map_or("nothing".to_string(), |v| format!("{v:?}"));
            let reason = format!(
                "expected {g}/v1 or {g}/v1alpha1, found {found}",
                g = secrets_store_crds::GROUP
            );
            return vec![self.problem("apiVersion", reason)];
        };
        match crd_schema(version) {
            Ok(s) => schema::check(&self.value, &s)
                .into_iter()
                .map(|v| self.problem(v.field, v.reason))
                .collect(),
            Err(e) => vec![self.problem("", e)],
        }
    }

    /// The class as the driver would use it for a pod in `namespace`
    /// (after [`Document::check_schema`] passed).
    pub fn class(&self, namespace: &str) -> Result<ProviderClass, Problem> {
        let object: SecretProviderClass =
            serde_json::from_value(self.value.clone()).map_err(|e| self.problem("", e))?;
        let name = self.name().unwrap_or_default().to_string();
        spc::check(namespace, &name, object).map_err(|e| {
            let field = match e {
                spc::Error::NoParameters(..) => "spec.parameters",
                _ => "spec.provider",
            };
            self.problem(field, e)
        })
    }
}

fn crd_schema(
    version: &str,
) -> Result<
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
    String,
> {
    let crd = secrets_store_crds::crd::secret_provider_class().map_err(|e| e.to_string())?;
    crd.spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema)
        .and_then(|s| s.open_api_v3_schema)
        .ok_or_else(|| format!("no schema for version {version}"))
}

/// Reads the YAML documents of a file (empty documents are skipped).
pub fn load(path: &Path) -> Result<Vec<Document>, Problem> {
    let file = path.display().to_string();
    let whole = |reason: String| Problem {
        file: file.clone(),
        document: String::new(),
        field: String::new(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    let values: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| whole(yaml_error(&e)))?;
    Ok(values
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .map(|(i, value)| Document {
            file: file.clone(),
            index: i + 1,
            value,
        })
        .collect())
}

fn yaml_error(e: &serde_saphyr::Error) -> String {
    let first = e.to_string();
    let message = first
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    match e.location() {
        Some(l) if !message.contains("line") => format!(
            "invalid YAML at line {} column {}: {message}",
            l.line(),
            l.column()
        ),
        _ => format!("invalid YAML: {message}"),
    }
}

/// The one class `fill` uses from a file: schema-checked, chosen by name
/// when the file holds several.
pub fn pick(path: &Path, name: Option<&str>, namespace: &str) -> Result<ProviderClass, Problem> {
    let docs = load(path)?;
    let classes: Vec<&Document> = docs.iter().filter(|d| d.is_class()).collect();
    let file = path.display().to_string();
    let whole = |reason: String| Problem {
        file: file.clone(),
        document: String::new(),
        field: String::new(),
        reason,
    };
    let names = || {
        classes
            .iter()
            .map(|d| d.name().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let doc = match (name, classes.as_slice()) {
        (_, []) => return Err(whole(format!("no {KIND} in the file"))),
        (None, [one]) => *one,
        (None, _) => {
            return Err(whole(format!(
                "{} classes ({}); choose one with --class",
                classes.len(),
                names()
            )));
        }
        (Some(n), _) => *classes
            .iter()
            .find(|d| d.name() == Some(n))
            .ok_or_else(|| whole(format!("no {KIND} named {n:?} (found: {})", names())))?,
    };
    if let Some(p) = doc.check_schema().into_iter().next() {
        return Err(p);
    }
    doc.class(namespace)
}
