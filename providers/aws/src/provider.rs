//! The mount flow, in upstream's order: tokens → regions → auth method →
//! the pod's identity (IRSA role from its ServiceAccount) → objects →
//! credentials per region → fetch (primary region, then the failover
//! region for what failed without a fatal error) → files and versions.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use secrets_store_provider_sdk::jmes::{JmesError, JsonSecret};
use secrets_store_provider_sdk::objects::Strictness;
use secrets_store_provider_sdk::request::SERVICE_ACCOUNT_TOKENS;
use secrets_store_provider_sdk::{MountError, MountRequest, Mounted, Provider};

use crate::auth::{AddressType, Authenticator, IRSA_AUDIENCE, Identity, POD_IDENTITY_AUDIENCE};
use crate::backend::{Backend, Fetched, ssm_batches};
use crate::error::Error;
use crate::objects::{self, Object, ObjectType};

/// The node label naming its region.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// The ServiceAccount annotation naming the IRSA role.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
const TOKEN_HINT: &str = "ensure tokenRequests is configured in CSIDriver spec";
/// Distinct `objects` texts remembered for the unknown-field warning.
const WARNED_CAP: usize = 4096;

/// The `aws` provider.
pub struct AwsProvider {
    auth: Authenticator,
    backend: Backend,
    kube: Option<kube::Client>,
    /// `AWS_REGION` of the provider's environment.
    env_region: Option<String>,
    warned: Mutex<HashSet<u64>>,
}

/// One file and its object version.
struct File {
    path: String,
    mode: Option<u32>,
    contents: Vec<u8>,
    version: String,
}

impl AwsProvider {
    /// A provider; without a Kubernetes client, IRSA and the node region
    /// lookup fail with a message.
    pub fn new(
        auth: Authenticator,
        backend: Backend,
        kube: Option<kube::Client>,
        env_region: Option<String>,
    ) -> Self {
        Self {
            auth,
            backend,
            kube,
            env_region: env_region.filter(|r| !r.is_empty()),
            warned: Mutex::new(HashSet::new()),
        }
    }

    fn kube(&self) -> Result<&kube::Client, Error> {
        self.kube
            .as_ref()
            .ok_or_else(|| Error::Kubernetes("no Kubernetes client configured".into()))
    }

    async fn mount_inner(&self, req: &MountRequest) -> Result<Mounted, Error> {
        let tokens = tokens(req)?;
        let pod = req.pod();
        let regions = self
            .regions(
                req.attribute("region").unwrap_or_default(),
                req.attribute("failoverRegion").unwrap_or_default(),
                &pod.namespace,
                &pod.name,
            )
            .await?;
        tracing::info!(pod = %pod.name, namespace = %pod.namespace, service_account = %pod.service_account, regions = %regions.join(", "), "servicing mount request");
        let use_pod_identity = match req.attribute("usePodIdentity").unwrap_or_default() {
            "" => false,
            v => go_bool(v).ok_or_else(|| {
                Error::Invalid(format!(
                    "failed to parse usePodIdentity value, error: strconv.ParseBool: parsing {v:?}: invalid syntax"
                ))
            })?,
        };
        let identity = if use_pod_identity {
            Identity::PodIdentity {
                token: token_for(&tokens, POD_IDENTITY_AUDIENCE, "Pod Identity")?,
                address: AddressType::parse(
                    req.attribute("preferredAddressType").unwrap_or_default(),
                ),
            }
        } else {
            let token = token_for(&tokens, IRSA_AUDIENCE, "IRSA")?;
            let role_arn = self.role_arn(&pod.namespace, &pod.service_account).await?;
            Identity::Irsa { token, role_arn }
        };
        let parsed = objects::parse(
            req.attribute("objects").unwrap_or_default(),
            req.attribute("pathTranslation"),
            &regions,
            Strictness::Lenient,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        self.warn_unknown(
            req.attribute("objects").unwrap_or_default(),
            &parsed.unknown,
        );
        let files = self.fetch(&parsed.objects, &regions, &identity).await?;
        let mut mounted = Mounted::new();
        for f in files {
            mounted
                .file(&f.path, f.mode.unwrap_or(req.permission), f.contents)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            mounted.version(&f.path, &f.version);
        }
        Ok(mounted)
    }

    fn warn_unknown(
        &self,
        text: &str,
        unknown: &[secrets_store_provider_sdk::objects::UnknownField],
    ) {
        if unknown.is_empty() {
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.len() >= WARNED_CAP {
            warned.clear();
        }
        if warned.insert(h.finish()) {
            let fields: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            tracing::warn!(fields = %fields.join(", "), "objects has fields the provider ignores");
        }
    }

    /// Upstream's regions: the parameter, else `AWS_REGION`, else the
    /// node's label; then the failover region, if any.
    async fn regions(
        &self,
        region: &str,
        failover: &str,
        namespace: &str,
        pod: &str,
    ) -> Result<Vec<String>, Error> {
        let primary = match (region, &self.env_region) {
            ("", Some(env)) => env.clone(),
            ("", None) => self.node_region(namespace, pod).await.map_err(|e| {
                Error::Kubernetes(format!("failed to retrieve region from node. error {e}"))
            })?,
            (r, _) => r.to_string(),
        };
        let mut regions = vec![primary];
        if !failover.is_empty() {
            if failover == regions[0] {
                return Err(Error::Invalid(format!(
                    "{failover}: failover region cannot be the same as the primary region"
                )));
            }
            regions.push(failover.to_string());
        }
        Ok(regions)
    }

    async fn node_region(&self, namespace: &str, pod: &str) -> Result<String, String> {
        let client = self.kube().map_err(|e| e.to_string())?.clone();
        let pod = kube::Api::<Pod>::namespaced(client.clone(), namespace)
            .get(pod)
            .await
            .map_err(|e| e.to_string())?;
        let node_name = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
        let node = kube::Api::<Node>::all(client)
            .get(&node_name)
            .await
            .map_err(|e| e.to_string())?;
        node.metadata
            .labels
            .and_then(|l| l.get(REGION_LABEL).cloned())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| "Region not found".to_string())
    }

    async fn role_arn(&self, namespace: &str, sa: &str) -> Result<String, Error> {
        let client = self.kube()?.clone();
        let account = kube::Api::<ServiceAccount>::namespaced(client, namespace)
            .get(sa)
            .await
            .map_err(|e| {
                Error::Kubernetes(format!(
                    "failed to get service account {namespace}/{sa}: {e}"
                ))
            })?;
        account
            .metadata
            .annotations
            .and_then(|a| a.get(ROLE_ARN_ANNOTATION).cloned())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "An IAM role must be associated with service account {sa} (namespace: {namespace})"
                ))
            })
    }

    /// Fetches every object: each region in turn for the objects still
    /// missing, stopping at a fatal error.
    async fn fetch(
        &self,
        objects: &[Object],
        regions: &[String],
        identity: &Identity,
    ) -> Result<Vec<File>, Error> {
        let mut done: BTreeMap<usize, Vec<File>> = BTreeMap::new();
        let mut last: BTreeMap<usize, Error> = BTreeMap::new();
        for (r, region) in regions.iter().enumerate() {
            let pending: Vec<usize> = (0..objects.len())
                .filter(|i| !done.contains_key(i))
                .collect();
            if pending.is_empty() {
                break;
            }
            let creds = self.auth.credentials(identity, region).await?;
            let session = self.backend.session(region, &creds);
            let failover = r > 0;
            let target = |i: &usize| {
                let o = &objects[*i];
                if failover {
                    o.failover.clone()
                } else {
                    o.primary.clone()
                }
            };
            let (sm, ssm): (Vec<usize>, Vec<usize>) = pending
                .iter()
                .partition(|&&i| objects[i].kind == ObjectType::SecretsManager);
            let mut answers: Vec<(usize, Result<Fetched, Error>)> = Vec::new();
            let targets: Vec<_> = sm.iter().map(target).collect();
            let got = self.backend.secrets(&session, &targets).await;
            for (&i, a) in sm.iter().zip(got) {
                let a = a.map_err(|e| {
                    e.map_message(|m| {
                        format!("{region}: Failed fetching secret {}: {m}", objects[i].name)
                    })
                });
                answers.push((i, a));
            }
            let ssm_targets: Vec<_> = ssm.iter().map(|i| (*i, target(i))).collect();
            let indexed: Vec<_> = ssm_targets.iter().map(|(i, t)| (*i, t)).collect();
            for chunk in ssm_batches(&indexed) {
                let targets: Vec<_> = chunk.iter().map(target).collect();
                match self.backend.parameters(&session, &targets).await {
                    Ok(got) => answers.extend(chunk.iter().copied().zip(got)),
                    Err(e) => answers.extend(chunk.iter().map(|&i| (i, Err(e.clone())))),
                }
            }
            answers.sort_by_key(|(i, _)| *i);
            for (i, a) in answers {
                match a.and_then(|f| files_of(&objects[i], f, region)) {
                    Ok(files) => {
                        done.insert(i, files);
                    }
                    Err(e) if e.fatal() => return Err(e),
                    Err(e) => {
                        tracing::warn!(object = %objects[i].name, region = %region, error = %e, "fetch failed");
                        last.insert(i, e);
                    }
                }
            }
        }
        if let Some((&i, e)) = last.iter().find(|(i, _)| !done.contains_key(*i)) {
            let o = &objects[i];
            let head = match o.kind {
                ObjectType::SecretsManager => format!(
                    "Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: {}",
                    o.name
                ),
                ObjectType::SsmParameter => {
                    "Failed to fetch parameters from all regions.".to_string()
                }
            };
            return Err(e
                .clone()
                .map_message(|m| format!("{head} (last error: {m})")));
        }
        Ok(done.into_values().flatten().collect())
    }
}

/// The object's file and its jmesPath files from a fetched value.
fn files_of(o: &Object, f: Fetched, region: &str) -> Result<Vec<File>, Error> {
    let mut out = Vec::with_capacity(1 + o.jmes.len());
    if !o.jmes.is_empty() {
        let json =
            JsonSecret::parse(&o.name, f.value.expose()).map_err(|e| jmes_error(&e, region))?;
        for j in &o.jmes {
            let v = json
                .extract(&j.path, &j.alias)
                .map_err(|e| jmes_error(&e, region))?;
            out.push(File {
                path: j.file.clone(),
                mode: j.mode,
                contents: v.into_bytes(),
                version: f.version.clone(),
            });
        }
    }
    out.insert(
        0,
        File {
            path: o.file.clone(),
            mode: o.mode,
            contents: f.value.into_inner(),
            version: f.version,
        },
    );
    Ok(out)
}

/// Upstream's jmesPath messages.
fn jmes_error(e: &JmesError, region: &str) -> Error {
    let m = match e {
        JmesError::InvalidJson(name) => {
            format!("Invalid JSON used with jmesPath in secret: {name}.")
        }
        JmesError::InvalidPath(p) => format!("Invalid JMES Path: {p}."),
        JmesError::NotFound { path, alias } => format!(
            "JMES Path - {path} for object alias - {alias} does not point to a valid object."
        ),
        JmesError::NotString(p) => {
            format!("Invalid JMES search result type for path:{p}. Only string is allowed.")
        }
    };
    Error::Content(format!("{region}: {m}"))
}

/// Go's `strconv.ParseBool`.
pub fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The pod's tokens: upstream requires the attribute.
fn tokens(
    req: &MountRequest,
) -> Result<BTreeMap<String, secrets_store_provider_sdk::request::ServiceAccountToken>, Error> {
    let present = req
        .attribute(SERVICE_ACCOUNT_TOKENS)
        .is_some_and(|t| !t.is_empty())
        || req.secrets.expose().contains_key(SERVICE_ACCOUNT_TOKENS);
    if !present {
        return Err(Error::Invalid(format!(
            "CSI token error: serviceAccount.tokens not provided - ensure tokenRequests is configured in CSIDriver - {TOKEN_HINT}"
        )));
    }
    req.service_account_tokens().map_err(|e| {
        Error::Invalid(format!(
            "CSI token error: failed to parse serviceAccount.tokens: {e} - {TOKEN_HINT}"
        ))
    })
}

fn token_for(
    tokens: &BTreeMap<String, secrets_store_provider_sdk::request::ServiceAccountToken>,
    audience: &str,
    method: &str,
) -> Result<secrets_store_provider_sdk::Redacted<String>, Error> {
    match tokens.get(audience) {
        None => Err(Error::Invalid(format!(
            "{method} token extraction failed: token for audience {audience:?} not found - ensure tokenRequests includes this audience in CSIDriver"
        ))),
        Some(t) if t.token.expose().is_empty() => Err(Error::Invalid(format!(
            "{method} token extraction failed: token for audience {audience:?} is empty"
        ))),
        Some(t) => Ok(t.token.clone()),
    }
}

impl Provider for AwsProvider {
    async fn mount(&self, request: MountRequest) -> Result<Mounted, MountError> {
        self.mount_inner(&request).await.map_err(MountError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bools() {
        assert_eq!(go_bool("True"), Some(true));
        assert_eq!(go_bool("0"), Some(false));
        assert_eq!(go_bool("yes"), None);
    }
}
