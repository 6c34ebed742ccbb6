//! The API server's audit log (`audit.k8s.io/v1` Events, JSON lines), read
//! back as the requests one user made.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::rbac::Permission;

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who made it (`system:serviceaccount:<ns>:<name>` for a ServiceAccount).
    pub user: String,
    /// The RBAC verb (`get`, `list`, `watch`, `create`, ...).
    pub verb: String,
    /// API group (`""` for the core API).
    pub group: String,
    /// Resource, with `/<subresource>` when there is one.
    pub resource: String,
    /// The URI (for messages).
    pub uri: String,
    /// HTTP status code of the response.
    pub code: u16,
}

impl Request {
    /// The permission this request needed.
    pub fn permission(&self) -> Permission {
        Permission {
            group: self.group.clone(),
            resource: self.resource.clone(),
            verb: self.verb.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    stage: String,
    verb: String,
    request_u_r_i: String,
    user: User,
    object_ref: Option<ObjectRef>,
    response_status: Option<Status>,
}

#[derive(Deserialize)]
struct User {
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
    api_group: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    code: Option<u16>,
}

/// The completed resource requests of `user` in the log at `path` (a watch
/// counts once it has started; non-resource URLs such as `/version` are
/// left out).
pub fn requests_of(path: &Path, user: &str) -> anyhow::Result<Vec<Request>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let mut seen_watch = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let e: Event = serde_json::from_str(line)?;
        if e.user.username != user {
            continue;
        }
        let Some(obj) = e.object_ref else { continue };
        let Some(resource) = obj.resource else {
            continue;
        };
        let started = e.stage == "ResponseStarted" && e.verb == "watch";
        if e.stage != "ResponseComplete" && !started {
            continue;
        }
        if started && !seen_watch.insert(e.request_u_r_i.clone()) {
            continue;
        }
        out.push(Request {
            user: e.user.username,
            verb: e.verb,
            group: obj.api_group.unwrap_or_default(),
            resource: match obj.subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource,
            },
            uri: e.request_u_r_i,
            code: e.response_status.and_then(|s| s.code).unwrap_or(0),
        });
    }
    Ok(out)
}
