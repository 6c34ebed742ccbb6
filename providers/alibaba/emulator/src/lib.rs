//! Dev-only: a local Alibaba Cloud protocol server for tests. It speaks the
//! documented HTTP APIs the `alibabacloud` provider calls, one module per
//! service ([`kms`] `GetSecretValue`, [`oos`] `GetSecretParameter`, [`sts`]
//! `AssumeRole`, [`oidc`] `AssumeRoleWithOIDC`, [`ecs`] instance metadata)
//! over plain HTTP or TLS ([`tls`]) on a local address.
//!
//! It is not a stub: every signed call has its `ACS3-HMAC-SHA256`
//! signature recomputed and checked ([`signature`], with its own parser of
//! the `Authorization` header), as are the access key, STS security token
//! and its expiry, the request date, nonce reuse and the body hash.
//! Unknown keys, secrets, versions and roles, missing permissions and
//! scripted throttling are answered with the services' error codes and
//! JSON shape (`Code`, `Message`, `RequestId`). Every call is logged for
//! assertions.

pub mod ecs;
pub mod kms;
pub mod oidc;
pub mod oos;
pub mod signature;
pub mod state;
pub mod sts;
pub mod tls;
pub mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

pub use state::Call;
use state::{Key, Shared, State, Version, lock};
use wire::{ApiErr, decode_pairs, header, param};

/// The running server; stops when dropped.
pub struct Emulator {
    addr: SocketAddr,
    ca_pem: Option<String>,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(s: Shared) -> axum::Router {
    axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move { handle(s, method, uri, headers, body).await }
        },
    )
}

fn new_state() -> Shared {
    Arc::new(Mutex::new(State {
        session_ttl: Duration::from_secs(3600),
        ..State::default()
    }))
}

impl Emulator {
    /// Starts a plain HTTP server on `127.0.0.1:0` with no keys, secrets or
    /// roles.
    pub async fn start() -> std::io::Result<Self> {
        let state = new_state();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            ca_pem: None,
            state,
            task,
        })
    }

    /// Starts an HTTPS server on `bind` whose certificate (a leaf signed by
    /// a fresh CA, see [`Emulator::ca_pem`]) names `127.0.0.1`, `localhost`
    /// and `names`.
    pub async fn start_tls(bind: SocketAddr, names: &[&str]) -> std::io::Result<Self> {
        let state = new_state();
        let (ca_pem, config) = tls::server_config(names)?;
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(tls::serve(listener, config, router(state.clone())));
        Ok(Self {
            addr,
            ca_pem: Some(ca_pem),
            state,
            task,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `http(s)://<address>:<port>`.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed the serving certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Answers the next KMS/OOS call with this raw status and body (a
    /// broken or hostile backend).
    pub fn answer_next_raw(&self, status: u16, body: &[u8]) {
        self.state().raw_answer = Some((status, body.to_vec()));
    }

    /// Makes the metadata session-token API (IMDSv2) refuse.
    pub fn fail_metadata_tokens(&self) {
        self.state().ecs_token_api_down = true;
    }

    /// Registers a long-term access key of `principal` (a user ARN).
    pub fn add_access_key(&self, id: &str, secret: &str, principal: &str) {
        self.state().keys.insert(
            id.into(),
            Key {
                secret: secret.into(),
                principal: principal.into(),
                token: None,
                expires: None,
            },
        );
    }

    /// Creates (or replaces) a text secret whose one version is current.
    pub fn add_secret(&self, name: &str, version_id: &str, data: &str) {
        self.state().secrets.insert(
            name.into(),
            vec![Version {
                id: version_id.into(),
                data: data.as_bytes().to_vec(),
                binary: false,
                stages: vec!["ACSCurrent".into()],
            }],
        );
    }

    /// Creates (or replaces) a binary secret.
    pub fn add_binary_secret(&self, name: &str, version_id: &str, data: &[u8]) {
        self.state().secrets.insert(
            name.into(),
            vec![Version {
                id: version_id.into(),
                data: data.to_vec(),
                binary: true,
                stages: vec!["ACSCurrent".into()],
            }],
        );
    }

    /// Adds a version that becomes `ACSCurrent`; the old current one becomes
    /// `ACSPrevious` (secret rotation).
    pub fn put_secret_version(&self, name: &str, version_id: &str, data: &str) {
        let mut s = self.state();
        let versions = s.secrets.entry(name.into()).or_default();
        for v in versions.iter_mut() {
            v.stages.retain(|st| st != "ACSPrevious");
            if let Some(st) = v.stages.iter_mut().find(|st| *st == "ACSCurrent") {
                *st = "ACSPrevious".into();
            }
        }
        versions.push(Version {
            id: version_id.into(),
            data: data.as_bytes().to_vec(),
            binary: false,
            stages: vec!["ACSCurrent".into()],
        });
    }

    /// Adds a custom stage label to a version.
    pub fn add_stage(&self, name: &str, version_id: &str, stage: &str) {
        if let Some(v) = self
            .state()
            .secrets
            .get_mut(name)
            .and_then(|vs| vs.iter_mut().find(|v| v.id == version_id))
        {
            v.stages.push(stage.into());
        }
    }

    /// Creates or updates an OOS secret parameter; each update bumps its
    /// `ParameterVersion`.
    pub fn put_parameter(&self, name: &str, value: &str) {
        let mut s = self.state();
        let e = s
            .parameters
            .entry(name.into())
            .or_insert((String::new(), 0));
        *e = (value.into(), e.1 + 1);
    }

    /// Restricts a secret or parameter to the listed principals (by
    /// default any known key may read it).
    pub fn restrict(&self, name: &str, principals: &[&str]) {
        self.state().acl.insert(
            name.into(),
            principals.iter().map(|p| p.to_string()).collect(),
        );
    }

    /// A role that `principals` may assume with `AssumeRole`.
    pub fn add_role(&self, role_arn: &str, principals: &[&str]) {
        let mut s = self.state();
        let r = s.roles.entry(role_arn.into()).or_default();
        r.trusted_principals
            .extend(principals.iter().map(|p| p.to_string()));
    }

    /// An OIDC provider whose tokens have issuer `issuer`, and a role
    /// trusting it for tokens of `subject` (any subject if `None`).
    pub fn add_oidc_role(
        &self,
        role_arn: &str,
        provider_arn: &str,
        issuer: &str,
        subject: Option<&str>,
    ) {
        let mut s = self.state();
        s.oidc_providers.insert(provider_arn.into(), issuer.into());
        let r = s.roles.entry(role_arn.into()).or_default();
        r.oidc_provider = Some(provider_arn.into());
        r.oidc_subject = subject.map(str::to_string);
    }

    /// Attaches a RAM role to the "instance" (ECS metadata).
    pub fn set_ecs_role(&self, role_arn: &str) {
        self.state().ecs_role = Some(role_arn.into());
        self.state().roles.entry(role_arn.into()).or_default();
    }

    /// Answers the next `n` KMS/OOS calls with `Rejected.Throttling`.
    pub fn throttle_next(&self, n: u32) {
        self.state().throttle = n;
    }

    /// Delays every KMS/OOS answer.
    pub fn set_latency(&self, d: Duration) {
        self.state().latency = d;
    }

    /// Lifetime of STS and ECS sessions issued from now on.
    pub fn set_session_ttl(&self, d: Duration) {
        self.state().session_ttl = d;
    }

    /// Calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Calls of `action` about `target` so far.
    pub fn count(&self, action: &str, target: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| c.action == action && c.target == target)
            .count()
    }

    /// Forgets the call log.
    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }
}

async fn handle(s: Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/latest/") {
        return ecs::metadata(&s, &method, &path, &headers).unwrap_or_else(|e| e.into_response());
    }
    if method != Method::POST && method != Method::GET {
        return ApiErr::new(
            405,
            "UnsupportedHTTPMethod",
            "This http method is not supported.",
        )
        .into_response();
    }
    let query = decode_pairs(uri.query().unwrap_or_default());
    if headers.contains_key("x-acs-action") {
        return match signature::verify(&s, &method, &path, &query, &headers, &body) {
            Err(e) => e.into_response(),
            Ok(principal) => signed(&s, &headers, &query, &principal)
                .await
                .unwrap_or_else(|e| e.into_response()),
        };
    }
    let mut params = query;
    let is_form = header(&headers, "content-type")
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(decode_pairs(&String::from_utf8_lossy(&body)));
    }
    if param(&params, "Action").as_deref() == Some("AssumeRoleWithOIDC") {
        return oidc::assume_role_with_oidc(&s, &params).unwrap_or_else(|e| e.into_response());
    }
    ApiErr::new(
        400,
        "MissingSignature",
        "Signature is mandatory for this action.",
    )
    .into_response()
}

/// Dispatches an authenticated call by `x-acs-action` and version.
async fn signed(
    s: &Shared,
    headers: &HeaderMap,
    query: &[(String, String)],
    principal: &str,
) -> Result<Response, ApiErr> {
    let action = header(headers, "x-acs-action").unwrap_or_default();
    let version = header(headers, "x-acs-version").unwrap_or_default();
    let expected = match action {
        "GetSecretValue" => kms::VERSION,
        "GetSecretParameter" => oos::VERSION,
        "AssumeRole" => sts::VERSION,
        _ => {
            return Err(ApiErr::new(
                404,
                "InvalidAction.NotFound",
                format!("Specified api is not found, please check your url and method. ({action})"),
            ));
        }
    };
    if version != expected {
        return Err(ApiErr::new(
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        ));
    }
    if action == "AssumeRole" {
        let answer = sts::assume_role(&mut lock(s), query, principal)?;
        return Ok(axum::Json(answer).into_response());
    }
    let target_param = if action == "GetSecretValue" {
        "SecretName"
    } else {
        "Name"
    };
    let target = param(query, target_param)
        .ok_or_else(|| ApiErr::new(400, "MissingParameter", "A required parameter is missing."))?;
    let latency = lock(s).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    data_call(&mut lock(s), action, &target, query, principal)
}

/// A KMS or OOS read: scripted faults, access control, the answer, the log.
fn data_call(
    st: &mut State,
    action: &str,
    target: &str,
    query: &[(String, String)],
    principal: &str,
) -> Result<Response, ApiErr> {
    let name = kms::secret_name(target);
    if let Some((status, body)) = st.raw_answer.take() {
        st.record(action, target, principal, status);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        return Ok((status, body).into_response());
    }
    let result = if st.throttle > 0 {
        st.throttle -= 1;
        Err(ApiErr::new(
            400,
            "Rejected.Throttling",
            "Request was denied due to request throttling.",
        ))
    } else if st
        .acl
        .get(&name)
        .is_some_and(|acl| !acl.contains(principal))
    {
        Err(ApiErr::new(
            403,
            "Forbidden.NoPermission",
            "This operation is forbidden by permission system.",
        ))
    } else if action == "GetSecretParameter" {
        oos::get_secret_parameter(st, &name, query)
    } else {
        kms::get_secret_value(st, &name, query)
    };
    let status = result.as_ref().map_or_else(ApiErr::status, |_| 200);
    st.record(action, target, principal, status);
    result.map(|v| axum::Json(v).into_response())
}
