//! What a rendered chart grants a ServiceAccount through ClusterRoles and
//! ClusterRoleBindings, as `(group, resource, verb)` permissions.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::objects::{kind, name};

/// One RBAC permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// API group (`""` for the core API).
    pub group: String,
    /// Resource, `<resource>/<subresource>` for a subresource.
    pub resource: String,
    /// Verb.
    pub verb: String,
}

impl Permission {
    /// A permission from its parts.
    pub fn new(group: &str, resource: &str, verb: &str) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {}/{}", self.verb, group, self.resource)
    }
}

/// Names of the ClusterRoles bound to ServiceAccount `namespace/sa`.
pub fn roles_bound_to(objs: &[Value], namespace: &str, sa: &str) -> BTreeSet<String> {
    objs.iter()
        .filter(|o| kind(o) == "ClusterRoleBinding")
        .filter(|b| {
            b["subjects"].as_array().into_iter().flatten().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == namespace
            })
        })
        .filter_map(|b| b["roleRef"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Every permission the named ClusterRoles grant. Wildcards are refused:
/// least privilege means naming each verb and resource.
pub fn granted(objs: &[Value], roles: &BTreeSet<String>) -> anyhow::Result<BTreeSet<Permission>> {
    let mut out = BTreeSet::new();
    for role in objs
        .iter()
        .filter(|o| kind(o) == "ClusterRole" && roles.contains(name(o)))
    {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        anyhow::ensure!(
                            !(group == "*" || resource == "*" || verb == "*"),
                            "ClusterRole {} grants a wildcard",
                            name(role)
                        );
                        out.insert(Permission::new(&group, &resource, &verb));
                    }
                }
            }
        }
    }
    Ok(out)
}
