//! Strict checks of a SecretProviderClass's `parameters`, for tools that
//! validate a class before it is used (`secrets-store validate`).
//!
//! A provider's mount path stays as lenient as upstream's; each provider
//! crate also exposes one strict check that refuses what its mount would
//! ignore or reject: unknown parameter names ([`known_only`]), malformed
//! values and unknown fields in `objects` ([`crate::objects::Strictness::Strict`]).

use std::collections::BTreeMap;

use secrets_store_proto::attributes::SECRET_PROVIDER_CLASS;

/// Prefix of the attributes the driver adds from the volume context.
const DRIVER_PREFIX: &str = "csi.storage.k8s.io/";

/// One parameter a provider refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct ParameterError {
    /// The parameter's name (e.g. `objects`).
    pub parameter: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ParameterError {
    /// A refusal of `parameter` for `reason`.
    pub fn new(parameter: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            parameter: parameter.into(),
            reason: reason.to_string(),
        }
    }
}

/// Refuses a parameter whose name is not in `known` (the attributes the
/// driver adds, `csi.storage.k8s.io/*` and `secretProviderClass`, are
/// allowed: a class that sets them is overridden, not wrong).
pub fn known_only(
    parameters: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), ParameterError> {
    let unknown = parameters.keys().find(|k| {
        !known.contains(&k.as_str())
            && !k.starts_with(DRIVER_PREFIX)
            && k.as_str() != SECRET_PROVIDER_CLASS
    });
    match unknown {
        None => Ok(()),
        Some(k) => Err(ParameterError::new(
            k.escape_debug().to_string(),
            format!("unknown parameter (known: {})", known.join(", ")),
        )),
    }
}

/// Refuses a value other than `true` or `false` (when set).
pub fn boolean(parameters: &BTreeMap<String, String>, name: &str) -> Result<(), ParameterError> {
    match parameters.get(name).map(String::as_str) {
        None | Some("true" | "false") => Ok(()),
        Some(v) => Err(ParameterError::new(
            name,
            format!(
                "must be \"true\" or \"false\", not {:?}",
                v.escape_debug().to_string()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_names_are_refused_but_driver_attributes_pass() {
        let known = ["objects", "region"];
        let ok = params(&[
            ("objects", ""),
            ("csi.storage.k8s.io/pod.name", "p"),
            ("secretProviderClass", "c"),
        ]);
        assert_eq!(known_only(&ok, &known), Ok(()));
        let err = known_only(&params(&[("regoin", "x")]), &known).expect_err("typo");
        assert_eq!(
            err.to_string(),
            "regoin: unknown parameter (known: objects, region)"
        );
    }

    #[test]
    fn booleans_are_true_or_false() {
        assert_eq!(boolean(&params(&[]), "b"), Ok(()));
        assert_eq!(boolean(&params(&[("b", "false")]), "b"), Ok(()));
        let err = boolean(&params(&[("b", "yes")]), "b").expect_err("yes");
        assert_eq!(
            err.to_string(),
            "b: must be \"true\" or \"false\", not \"yes\""
        );
    }
}
