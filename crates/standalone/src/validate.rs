//! `secrets-store validate`: every SecretProviderClass in the given files
//! is checked against the CRD schema of its version, the driver's own
//! checks (provider name, parameters present) and, for our providers, the
//! provider's strict parameter check ([`PROVIDERS`]).

use std::io::Write;
use std::path::PathBuf;

use std::collections::BTreeMap;

use secrets_store_provider_sdk::parameters::ParameterError;

use crate::class::{self, Document, Problem};

/// A provider's strict check of a class's parameters: every problem found.
pub type Validator = fn(&BTreeMap<String, String>) -> Vec<ParameterError>;

/// Our providers' strict checks, by `spec.provider`. Adding a provider is
/// one line: its name and the check its library crate exposes (adapted to
/// [`Validator`] when its error type differs).
pub const PROVIDERS: &[(&str, Validator)] = &[
    (secrets_store_provider_alibabacloud::PROVIDER_NAME, alibaba),
    (
        secrets_store_provider_vault::PROVIDER_NAME,
        secrets_store_provider_vault::parameter_errors,
    ),
    (secrets_store_provider_aws::PROVIDER_NAME, aws),
];

fn aws(parameters: &BTreeMap<String, String>) -> Vec<ParameterError> {
    secrets_store_provider_aws::validate_parameters(parameters)
        .err()
        .unwrap_or_default()
}

fn alibaba(parameters: &BTreeMap<String, String>) -> Vec<ParameterError> {
    secrets_store_provider_alibabacloud::objects::validate_parameters(parameters)
        .err()
        .into_iter()
        .collect()
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Classes checked.
    pub classes: usize,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

/// The namespace the driver checks are phrased for (a file has none).
const NAMESPACE: &str = "default";

/// Checks one document (a class, or something that should be one).
pub fn document(doc: &Document) -> Vec<Problem> {
    let schema = doc.check_schema();
    if !schema.is_empty() {
        return schema;
    }
    let namespace = doc
        .value
        .pointer("/metadata/namespace")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(NAMESPACE);
    let class = match doc.class(namespace) {
        Ok(c) => c,
        Err(p) => return vec![p],
    };
    let Some((_, validator)) = PROVIDERS
        .iter()
        .find(|(name, _)| *name == class.provider.as_str())
    else {
        return Vec::new();
    };
    validator(&class.parameters)
        .into_iter()
        .map(|e| doc.problem(format!("spec.parameters.{}", e.parameter), e.reason))
        .collect()
}

/// Checks every file; prints one line per class (problems only when
/// `quiet`) to `out`.
pub fn run(files: &[PathBuf], quiet: bool, out: &mut impl Write) -> std::io::Result<Report> {
    let mut report = Report::default();
    for path in files {
        let docs = match class::load(path) {
            Ok(d) => d,
            Err(p) => {
                writeln!(out, "{p}")?;
                report.problems.push(p);
                continue;
            }
        };
        let classes: Vec<&Document> = docs
            .iter()
            .filter(|d| d.is_class() || d.value.get("kind").is_none())
            .collect();
        if classes.is_empty() {
            let p = Problem {
                file: path.display().to_string(),
                document: String::new(),
                field: String::new(),
                reason: "no SecretProviderClass in the file".into(),
            };
            writeln!(out, "{p}")?;
            report.problems.push(p);
        }
        for doc in classes {
            report.classes += 1;
            let problems = document(doc);
            if problems.is_empty() && !quiet {
                writeln!(out, "{}: {}: ok{}", doc.file, doc.label(), note(doc))?;
            }
            for p in &problems {
                writeln!(out, "{p}")?;
            }
            report.problems.extend(problems);
        }
    }
    Ok(report)
}

/// Says when a class's parameters could not be checked in depth.
fn note(doc: &Document) -> String {
    let provider = doc
        .value
        .pointer("/spec/provider")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if PROVIDERS.iter().any(|(n, _)| *n == provider) {
        String::new()
    } else {
        let ours: Vec<&str> = PROVIDERS.iter().map(|(n, _)| *n).collect();
        format!(
            " (schema only: provider {provider:?} is not one of ours: {})",
            ours.join(", ")
        )
    }
}
