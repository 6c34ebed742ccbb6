//! Secrets Manager and SSM Parameter Store calls through the official AWS
//! SDK for Rust, one region and credential at a time.
//!
//! - Secrets Manager: objects without a pinned version or label are read
//!   with `BatchGetSecretValue` (up to 20 a call); the rest, and any secret
//!   the batch could not answer, with `GetSecretValue`, whose error is the
//!   one reported. A credential whose batch call is refused (roles granted
//!   only `GetSecretValue`) is remembered and not batched again.
//! - SSM: `GetParameters` with decryption, up to 10 names a call, pinned
//!   versions and labels as `name:selector`.
//!
//! Each call is retried with jittered backoff on throttling, 5xx and
//! transport errors (the SDK's own retries are off). Identical calls with
//! the same credential share one request while it is in flight, and a
//! successful answer is reused for [`REUSE`] after it arrives, so a burst
//! of identical mounts (a Deployment scaling up on a node) makes one call
//! per credential and secret. Errors are never reused.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::SharedHttpClient;
use secrets_store_provider_sdk::Redacted;
use secrets_store_provider_sdk::ops::backoff::Backoff;
use secrets_store_provider_sdk::ops::cache::CredentialKey;
use secrets_store_provider_sdk::ops::coalesce::Coalescer;
use tonic::Code;

use crate::auth::AwsCredentials;
use crate::config::Endpoints;
use crate::error::Error;
use crate::objects::Target;

/// Largest `BatchGetSecretValue` list.
pub const SM_BATCH: usize = 20;
/// Largest `GetParameters` list.
pub const SSM_BATCH: usize = 10;
/// Credentials remembered as not allowed to batch.
const DENIED_CAP: usize = 4096;
/// How long a successful answer is reused for identical calls.
pub const REUSE: Duration = Duration::from_secs(1);
/// Answers kept for reuse at most.
const REUSE_CAP: usize = 4096;

/// One fetched value.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The content.
    pub value: Redacted<Vec<u8>>,
    /// Version id (Secrets Manager) or number (SSM).
    pub version: String,
}

/// Per-target results of one call.
type Answers = Vec<Result<Fetched, Error>>;

/// What the backends share.
pub struct Backend {
    http: SharedHttpClient,
    endpoints: Endpoints,
    app_name: Option<AppName>,
    backoff: Backoff,
    inflight: Coalescer<String, Result<Answers, Error>>,
    recent: Mutex<HashMap<(CredentialKey, String), (Instant, Answers)>>,
    batch_denied: Mutex<HashSet<CredentialKey>>,
}

/// Clients for one region and credential.
pub struct Session {
    region: String,
    key: CredentialKey,
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Session {
    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }
}

impl Backend {
    /// A backend over `http`; `app_id` goes into the user agent.
    pub fn new(
        http: SharedHttpClient,
        endpoints: Endpoints,
        app_id: &str,
        backoff: Backoff,
    ) -> Self {
        Self {
            http,
            endpoints,
            app_name: AppName::new(app_id.to_string()).ok(),
            backoff,
            inflight: Coalescer::new(),
            recent: Mutex::new(HashMap::new()),
            batch_denied: Mutex::new(HashSet::new()),
        }
    }

    /// Clients for `region` with `creds`.
    pub fn session(&self, region: &str, creds: &AwsCredentials) -> Session {
        let mut b = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(
                aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(creds.to_sdk()),
            )
            .http_client(self.http.clone())
            .retry_config(RetryConfig::disabled())
            .use_fips(self.endpoints.use_fips);
        if let Some(a) = &self.app_name {
            b = b.app_name(a.clone());
        }
        let conf = b.build();
        let mut sm = aws_sdk_secretsmanager::config::Builder::from(&conf);
        if let Some(u) = &self.endpoints.secrets_manager {
            sm = sm.endpoint_url(u);
        }
        let mut ssm = aws_sdk_ssm::config::Builder::from(&conf);
        if let Some(u) = &self.endpoints.ssm {
            ssm = ssm.endpoint_url(u);
        }
        Session {
            region: region.to_string(),
            key: CredentialKey::of(creds),
            sm: aws_sdk_secretsmanager::Client::from_conf(sm.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
        }
    }

    /// Reads Secrets Manager `targets`; one answer per target.
    pub async fn secrets(&self, s: &Session, targets: &[Target]) -> Answers {
        let mut answers: Vec<Option<Result<Fetched, Error>>> = vec![None; targets.len()];
        let plain: Vec<usize> = (0..targets.len())
            .filter(|&i| targets[i].version.is_none() && targets[i].label.is_none())
            .collect();
        if plain.len() > 1 && !self.denied(&s.key) {
            for chunk in plain.chunks(SM_BATCH) {
                let ids: Vec<String> = chunk.iter().map(|&i| targets[i].name.clone()).collect();
                match self.batch(s, &ids).await {
                    Ok(found) => {
                        for (&i, f) in chunk.iter().zip(found) {
                            answers[i] = f.map(Ok);
                        }
                    }
                    Err(e) if e.fatal() || e.code() == Code::PermissionDenied => {
                        tracing::info!(region = s.region, error = %e, "BatchGetSecretValue refused; reading secrets one by one");
                        self.deny(&s.key);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(region = s.region, error = %e, "BatchGetSecretValue failed; reading secrets one by one");
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(targets.len());
        for (t, a) in targets.iter().zip(answers) {
            out.push(match a {
                Some(a) => a,
                None => self.secret(s, t).await,
            });
        }
        out
    }

    /// Runs `fetch` for `key` under the session's credential: a recent
    /// successful answer, else the call in flight, else a new call.
    async fn shared<F, Fut>(&self, s: &Session, key: String, fetch: F) -> Result<Answers, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Answers, Error>>,
    {
        let id = (s.key.clone(), key);
        {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, answers)) = recent.get(&id)
                && at.elapsed() < REUSE
            {
                return Ok(answers.clone());
            }
        }
        let result = self.inflight.run(&id.0, id.1.clone(), fetch).await;
        if let Ok(answers) = &result {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.retain(|_, (at, _)| at.elapsed() < REUSE);
            if recent.len() < REUSE_CAP {
                recent.insert(id, (Instant::now(), answers.clone()));
            }
        }
        result
    }

    fn denied(&self, key: &CredentialKey) -> bool {
        self.batch_denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    fn deny(&self, key: &CredentialKey) {
        let mut d = self.batch_denied.lock().unwrap_or_else(|p| p.into_inner());
        if d.len() >= DENIED_CAP {
            d.clear();
        }
        d.insert(key.clone());
    }

    /// One `BatchGetSecretValue`; per id the value, or `None` when the
    /// batch did not answer it (it is then read alone).
    async fn batch(&self, s: &Session, ids: &[String]) -> Result<Vec<Option<Fetched>>, Error> {
        let key = format!("{}\0batch\0{}", s.region, ids.join("\0"));
        let answers = self
            .shared(s, key, || async move {
                let out = self
                    .backoff
                    .retry(
                        |e: &Error| e.retryable(),
                        || async move {
                            s.sm.batch_get_secret_value()
                                .set_secret_id_list(Some(ids.to_vec()))
                                .send()
                                .await
                                .map_err(|e| {
                                    Error::from_sdk("Secrets Manager", "BatchGetSecretValue", &e)
                                })
                        },
                    )
                    .await?;
                let entries = out.secret_values();
                Ok(ids
                    .iter()
                    .map(|id| {
                        entries
                            .iter()
                            .find(|e| e.name() == Some(id.as_str()) || e.arn() == Some(id.as_str()))
                            .map(|e| {
                                Ok(Fetched {
                                    value: Redacted::new(value_of(
                                        e.secret_string(),
                                        e.secret_binary(),
                                    )),
                                    version: e.version_id().unwrap_or_default().to_string(),
                                })
                            })
                            .unwrap_or_else(|| Err(Error::Content(String::new())))
                    })
                    .collect())
            })
            .await?;
        Ok(answers.into_iter().map(Result::ok).collect())
    }

    /// One `GetSecretValue`.
    async fn secret(&self, s: &Session, t: &Target) -> Result<Fetched, Error> {
        let key = format!(
            "{}\0get\0{}\0{}\0{}",
            s.region,
            t.name,
            t.version.as_deref().unwrap_or_default(),
            t.label.as_deref().unwrap_or_default()
        );
        let mut answers = self
            .shared(s, key, || async move {
                let r = self
                    .backoff
                    .retry(
                        |e: &Error| e.retryable(),
                        || async move {
                            s.sm.get_secret_value()
                                .secret_id(&t.name)
                                .set_version_id(t.version.clone())
                                .set_version_stage(t.label.clone())
                                .send()
                                .await
                                .map_err(|e| {
                                    Error::from_sdk("Secrets Manager", "GetSecretValue", &e)
                                })
                        },
                    )
                    .await
                    .map(|out| Fetched {
                        value: Redacted::new(value_of(out.secret_string(), out.secret_binary())),
                        version: out.version_id().unwrap_or_default().to_string(),
                    });
                Ok(vec![r])
            })
            .await?;
        answers
            .pop()
            .unwrap_or_else(|| Err(Error::Content(String::new())))
    }

    /// One `GetParameters` for up to [`SSM_BATCH`] targets with distinct
    /// names ([`ssm_batches`]: answers carry no selector everywhere, so a
    /// name must identify its target). A failed call or any invalid
    /// parameter fails the whole batch, as upstream.
    pub async fn parameters(&self, s: &Session, targets: &[Target]) -> Result<Answers, Error> {
        let names: Vec<String> = targets.iter().map(ssm_name).collect();
        let key = format!("{}\0ssm\0{}", s.region, names.join("\0"));
        let names = &names;
        self.shared(s, key, || async move {
            let out = self
                .backoff
                .retry(
                    |e: &Error| e.retryable(),
                    || async move {
                        s.ssm
                            .get_parameters()
                            .set_names(Some(names.clone()))
                            .with_decryption(true)
                            .send()
                            .await
                            .map_err(|e| Error::from_sdk("SSM", "GetParameters", &e))
                    },
                )
                .await
                .map_err(|e| {
                    e.map_message(|m| format!("{}: Failed fetching parameters: {m}", s.region))
                })?;
            let invalid = out.invalid_parameters();
            if !invalid.is_empty() {
                let mut seen = Vec::new();
                for p in invalid {
                    if !seen.contains(p) {
                        seen.push(p.clone());
                    }
                }
                return Err(Error::Backend {
                    code: Code::NotFound,
                    message: format!("400: {}: invalid parameters: {}", s.region, seen.join(", ")),
                    fatal: true,
                    retryable: false,
                });
            }
            let params = out.parameters();
            Ok(targets
                .iter()
                .map(|t| {
                    let selector = ssm_selector(t);
                    let named = |p: &&aws_sdk_ssm::types::Parameter| {
                        p.name() == Some(t.name.as_str()) || p.arn() == Some(t.name.as_str())
                    };
                    params
                        .iter()
                        .filter(named)
                        .find(|p| selector.is_none() || p.selector() == selector.as_deref())
                        .or_else(|| params.iter().find(named))
                        .map(|p| Fetched {
                            value: Redacted::new(p.value().unwrap_or_default().as_bytes().to_vec()),
                            version: p.version().to_string(),
                        })
                        .ok_or_else(|| {
                            Error::Content(format!(
                                "{}: parameter {} missing from the answer",
                                s.region, t.name
                            ))
                        })
                })
                .collect())
        })
        .await
    }
}

fn value_of(
    string: Option<&str>,
    binary: Option<&aws_sdk_secretsmanager::primitives::Blob>,
) -> Vec<u8> {
    match (string, binary) {
        (Some(s), _) => s.as_bytes().to_vec(),
        (None, Some(b)) => b.as_ref().to_vec(),
        (None, None) => Vec::new(),
    }
}

/// Splits targets (by index) into `GetParameters` batches of at most
/// [`SSM_BATCH`], never with one name twice in a batch.
pub fn ssm_batches(targets: &[(usize, &Target)]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut names: Vec<HashSet<&str>> = Vec::new();
    for (i, t) in targets {
        let slot = batches
            .iter()
            .zip(&names)
            .position(|(b, n)| b.len() < SSM_BATCH && !n.contains(t.name.as_str()));
        match slot {
            Some(k) => {
                batches[k].push(*i);
                names[k].insert(&t.name);
            }
            None => {
                batches.push(vec![*i]);
                names.push(HashSet::from([t.name.as_str()]));
            }
        }
    }
    batches
}

fn ssm_selector(t: &Target) -> Option<String> {
    t.version
        .as_ref()
        .or(t.label.as_ref())
        .map(|v| format!(":{v}"))
}

/// `name`, `name:version` or `name:label`.
fn ssm_name(t: &Target) -> String {
    format!("{}{}", t.name, ssm_selector(t).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Target {
        Target {
            name: name.into(),
            version: None,
            label: None,
        }
    }

    #[test]
    fn ssm_batches_hold_ten_distinct_names() {
        let targets: Vec<Target> = (0..12)
            .map(|i| t(&format!("p{i}")))
            .chain([t("p0"), t("p0")])
            .collect();
        let indexed: Vec<(usize, &Target)> = targets.iter().enumerate().collect();
        let b = ssm_batches(&indexed);
        assert_eq!(
            b,
            vec![(0..10).collect::<Vec<_>>(), vec![10, 11, 12], vec![13]]
        );
    }
}
