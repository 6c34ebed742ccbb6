//! Dev-only: a local Alibaba Cloud protocol server for tests. It speaks the
//! documented HTTP APIs the `alibabacloud` provider calls (KMS
//! `GetSecretValue`, OOS `GetSecretParameter`, STS `AssumeRole` and
//! `AssumeRoleWithOIDC`, and the ECS instance metadata endpoints) on
//! `127.0.0.1:0`.
//!
//! It is not a stub: every signed call has its `ACS3-HMAC-SHA256`
//! signature recomputed and checked, as are the access key, STS security
//! token and its expiry, the request date, nonce reuse and the body hash.
//! Unknown keys, secrets, versions and roles, missing permissions and
//! scripted throttling are answered with the services' error codes and
//! JSON shape (`Code`, `Message`, `RequestId`). Every call is logged for
//! assertions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrets_store_provider_alibabacloud::sign::{self, Authorization, Canonical};
use serde_json::{Value, json};

/// Signed requests older or newer than this are refused.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// One call the server answered (after authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// API action, e.g. `GetSecretValue`, or `EcsCredentials`.
    pub action: String,
    /// Secret, parameter or role the call was about.
    pub target: String,
    /// Principal that made it (user or role ARN; empty if unsigned).
    pub principal: String,
    /// HTTP status answered.
    pub status: u16,
}

/// A secret version.
#[derive(Debug, Clone)]
struct Version {
    id: String,
    data: Vec<u8>,
    binary: bool,
    stages: Vec<String>,
}

#[derive(Debug, Clone)]
struct Key {
    secret: String,
    principal: String,
    token: Option<String>,
    expires: Option<SystemTime>,
}

#[derive(Debug, Clone, Default)]
struct Role {
    trusted_principals: HashSet<String>,
    oidc_provider: Option<String>,
    oidc_subject: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Key>,
    secrets: BTreeMap<String, Vec<Version>>,
    parameters: BTreeMap<String, (String, u64)>,
    acl: HashMap<String, HashSet<String>>,
    roles: HashMap<String, Role>,
    oidc_providers: HashMap<String, String>,
    ecs_role: Option<String>,
    ecs_tokens: HashSet<String>,
    nonces: HashSet<String>,
    throttle: u32,
    latency: Duration,
    session_ttl: Duration,
    calls: Vec<Call>,
}

/// The running server; stops when dropped.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn request_id() -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:012X}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u64(..) & 0xFFFF_FFFF_FFFF
    )
}

fn random_token(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

fn iso(t: SystemTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from(t)
        .format(&fmt)
        .unwrap_or_default()
}

struct ApiErr(StatusCode, &'static str, String);

impl ApiErr {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message.into(),
        )
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let body = json!({"RequestId": request_id(), "HostId": "emulator", "Code": self.1, "Message": self.2, "Recommend": ""});
        (self.0, axum::Json(body)).into_response()
    }
}

fn decode_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

impl Emulator {
    /// Starts a server on `127.0.0.1:0` with no keys, secrets or roles.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            session_ttl: Duration::from_secs(3600),
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let s = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { handle(s, method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

fn issue_session(st: &mut State, principal: &str, duration: Option<u64>) -> Value {
    let id = format!("STS.{}", random_token(20));
    let secret = random_token(30);
    let token = random_token(64);
    let ttl = duration
        .map(Duration::from_secs)
        .unwrap_or(st.session_ttl)
        .min(st.session_ttl);
    let expires = SystemTime::now() + ttl;
    st.keys.insert(
        id.clone(),
        Key {
            secret: secret.clone(),
            principal: principal.into(),
            token: Some(token.clone()),
            expires: Some(expires),
        },
    );
    json!({"AccessKeyId": id, "AccessKeySecret": secret, "SecurityToken": token, "Expiration": iso(expires)})
}

async fn handle(
    s: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/latest/") {
        return ecs(&s, &method, &path, &headers).unwrap_or_else(|e| e.into_response());
    }
    let mut params = decode_pairs(uri.query().unwrap_or_default());
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(decode_pairs(&String::from_utf8_lossy(&body)));
    }
    let param = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };
    if method != Method::POST && method != Method::GET {
        return ApiErr::new(
            405,
            "UnsupportedHTTPMethod",
            "This http method is not supported.",
        )
        .into_response();
    }
    if headers.contains_key("x-acs-action") {
        let query = decode_pairs(uri.query().unwrap_or_default());
        return match verify(&s, &method, &path, &query, &headers, &body) {
            Err(e) => e.into_response(),
            Ok(principal) => signed(&s, &headers, &query, &principal)
                .await
                .unwrap_or_else(|e| e.into_response()),
        };
    }
    if param("Action").as_deref() == Some("AssumeRoleWithOIDC") {
        return oidc(&s, &param).unwrap_or_else(|e| e.into_response());
    }
    ApiErr::new(
        400,
        "MissingSignature",
        "Signature is mandatory for this action.",
    )
    .into_response()
}

fn header<'a>(h: &'a HeaderMap, k: &str) -> Option<&'a str> {
    h.get(k).and_then(|v| v.to_str().ok())
}

/// Authenticates a V3-signed request; returns the principal.
fn verify(
    s: &Arc<Mutex<State>>,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiErr> {
    let auth = header(headers, "authorization")
        .and_then(Authorization::parse)
        .ok_or_else(|| {
            ApiErr::new(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            )
        })?;
    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
    let key = st.keys.get(&auth.credential).cloned().ok_or_else(|| {
        ApiErr::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })?;
    if let Some(token) = &key.token {
        if header(headers, "x-acs-security-token") != Some(token.as_str()) {
            return Err(ApiErr::new(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            ));
        }
        if key.expires.is_some_and(|e| e <= SystemTime::now()) {
            return Err(ApiErr::new(
                400,
                "InvalidSecurityToken.Expired",
                "Specified SecurityToken is expired.",
            ));
        }
    }
    let date = header(headers, "x-acs-date").ok_or_else(|| {
        ApiErr::new(
            400,
            "MissingParameter",
            "x-acs-date is mandatory for this action.",
        )
    })?;
    let t = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiErr::new(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        })?;
    let skew = (time::OffsetDateTime::now_utc() - t).unsigned_abs();
    if skew > MAX_CLOCK_SKEW {
        return Err(ApiErr::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let nonce = header(headers, "x-acs-signature-nonce").ok_or_else(|| {
        ApiErr::new(
            400,
            "MissingSignatureNonce",
            "SignatureNonce is mandatory for this action.",
        )
    })?;
    if header(headers, "x-acs-content-sha256") != Some(sign::sha256_hex(body).as_str()) {
        return Err(ApiErr::new(
            400,
            "InvalidContentSha256",
            "The x-acs-content-sha256 header does not match the body.",
        ));
    }
    // Every x-acs-* header and host must be covered by the signature.
    let mut sent: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| sign::is_signed_header(k))
        .collect();
    sent.push("host".into());
    if sent.iter().any(|h| !auth.signed_headers.contains(h)) {
        return Err(ApiErr::new(
            400,
            "IncompleteSignature",
            "The request signature does not cover all x-acs headers.",
        ));
    }
    let signed: Vec<(String, String)> = auth
        .signed_headers
        .iter()
        .map(|h| {
            (
                h.clone(),
                header(headers, h).unwrap_or_default().to_string(),
            )
        })
        .collect();
    let canonical = Canonical {
        method: method.as_str(),
        path,
        query,
        headers: &signed,
        payload_hash: &sign::sha256_hex(body),
    };
    if canonical.signature(&key.secret) != auth.signature {
        return Err(ApiErr::new(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    if !st.nonces.insert(nonce.to_string()) {
        return Err(ApiErr::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    Ok(key.principal)
}

async fn signed(
    s: &Arc<Mutex<State>>,
    headers: &HeaderMap,
    query: &[(String, String)],
    principal: &str,
) -> Result<Response, ApiErr> {
    let action = header(headers, "x-acs-action")
        .unwrap_or_default()
        .to_string();
    let version = header(headers, "x-acs-version").unwrap_or_default();
    let param = |k: &str| query.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
    let expected = match action.as_str() {
        "GetSecretValue" => "2016-01-20",
        "GetSecretParameter" => "2019-06-01",
        "AssumeRole" => "2015-04-01",
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
        let role = param("RoleArn").ok_or_else(|| {
            ApiErr::new(
                400,
                "MissingRoleArn",
                "RoleArn is mandatory for this action.",
            )
        })?;
        let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
        let r = st.roles.get(&role).cloned();
        let status = match &r {
            None => 404,
            Some(r) if !r.trusted_principals.contains(principal) => 403,
            Some(_) => 200,
        };
        st.calls.push(Call {
            action: action.clone(),
            target: role.clone(),
            principal: principal.into(),
            status,
        });
        return match status {
            404 => Err(ApiErr::new(
                404,
                "EntityNotExist.Role",
                "The specified Role not exists .",
            )),
            403 => Err(ApiErr::new(
                403,
                "NoPermission",
                "You are not authorized to do this action. You should be authorized by RAM.",
            )),
            _ => {
                let creds = issue_session(
                    &mut st,
                    &role,
                    param("DurationSeconds").and_then(|d| d.parse().ok()),
                );
                Ok(axum::Json(json!({"RequestId": request_id(), "AssumedRoleUser": {"Arn": format!("{role}/session"), "AssumedRoleId": random_token(12)}, "Credentials": creds})).into_response())
            }
        };
    }
    let target = if action == "GetSecretValue" {
        param("SecretName")
    } else {
        param("Name")
    }
    .ok_or_else(|| ApiErr::new(400, "MissingParameter", "A required parameter is missing."))?;
    let latency = s.lock().unwrap_or_else(|p| p.into_inner()).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
    let name = match target.strip_prefix("acs:kms:") {
        Some(rest) => rest
            .splitn(3, ':')
            .nth(2)
            .and_then(|r| r.strip_prefix("secret/"))
            .unwrap_or(rest)
            .to_string(),
        None => target.clone(),
    };
    let result = (|| {
        if st.throttle > 0 {
            st.throttle -= 1;
            return Err(ApiErr::new(
                400,
                "Rejected.Throttling",
                "Request was denied due to request throttling.",
            ));
        }
        if let Some(acl) = st.acl.get(&name)
            && !acl.contains(principal)
        {
            return Err(ApiErr::new(
                403,
                "Forbidden.NoPermission",
                "This operation is forbidden by permission system.",
            ));
        }
        if action == "GetSecretParameter" {
            let (value, version) = st.parameters.get(&name).cloned().ok_or_else(|| {
                ApiErr::new(
                    404,
                    "EntityNotExists.Parameter",
                    format!("Parameter {name} not exists."),
                )
            })?;
            let value = if param("WithDecryption").as_deref() == Some("true") {
                value
            } else {
                base64::engine::general_purpose::STANDARD.encode(format!("encrypted:{value}"))
            };
            return Ok(
                json!({"RequestId": request_id(), "Parameter": {"Name": name, "Value": value, "ParameterVersion": version, "Type": "Secret", "Id": format!("p-{name}"), "KeyId": "key-1"}}),
            );
        }
        let versions = st.secrets.get(&name).ok_or_else(|| {
            ApiErr::new(404, "Forbidden.ResourceNotFound", "The resource not found.")
        })?;
        let stage = param("VersionStage");
        let vid = param("VersionId");
        let v = versions
            .iter()
            .find(|v| match (&vid, &stage) {
                (Some(id), Some(stage)) => &v.id == id && v.stages.contains(stage),
                (Some(id), None) => &v.id == id,
                (None, Some(stage)) => v.stages.contains(stage),
                (None, None) => v.stages.iter().any(|s| s == "ACSCurrent"),
            })
            .ok_or_else(|| {
                ApiErr::new(404, "Forbidden.ResourceNotFound", "The resource not found.")
            })?;
        let data = if v.binary {
            base64::engine::general_purpose::STANDARD.encode(&v.data)
        } else {
            String::from_utf8_lossy(&v.data).into_owned()
        };
        Ok(json!({
            "RequestId": request_id(), "SecretName": name, "VersionId": v.id, "CreateTime": iso(SystemTime::now()),
            "SecretData": data, "SecretDataType": if v.binary { "binary" } else { "text" },
            "VersionStages": {"VersionStage": v.stages}, "SecretType": "Generic",
        }))
    })();
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.0.as_u16(),
    };
    st.calls.push(Call {
        action,
        target,
        principal: principal.into(),
        status,
    });
    result.map(|v| axum::Json(v).into_response())
}

fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn oidc(s: &Arc<Mutex<State>>, param: &dyn Fn(&str) -> Option<String>) -> Result<Response, ApiErr> {
    let missing = |k: &'static str| {
        ApiErr::new(
            400,
            "MissingParameter",
            format!("{k} is mandatory for this action."),
        )
    };
    let role = param("RoleArn").ok_or_else(|| missing("RoleArn"))?;
    let provider = param("OIDCProviderArn").ok_or_else(|| missing("OIDCProviderArn"))?;
    let token = param("OIDCToken").ok_or_else(|| missing("OIDCToken"))?;
    param("RoleSessionName").ok_or_else(|| missing("RoleSessionName"))?;
    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
    let result = (|| {
        let issuer = st.oidc_providers.get(&provider).cloned().ok_or_else(|| {
            ApiErr::new(
                404,
                "EntityNotExist.OIDCProvider",
                "The specified OIDC provider does not exist.",
            )
        })?;
        let r = st.roles.get(&role).cloned().ok_or_else(|| {
            ApiErr::new(
                404,
                "EntityNotExist.Role",
                "The specified Role not exists .",
            )
        })?;
        let claims = jwt_claims(&token).ok_or_else(|| {
            ApiErr::new(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDC token is invalid.",
            )
        })?;
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == "sts.aliyuncs.com",
            Value::Array(a) => a.iter().any(|x| x == "sts.aliyuncs.com"),
            _ => false,
        };
        if !aud_ok || claims["iss"].as_str() != Some(issuer.as_str()) {
            return Err(ApiErr::new(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The audience or issuer of the OIDC token is invalid.",
            ));
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if claims["exp"].as_u64().is_none_or(|exp| exp <= now) {
            return Err(ApiErr::new(
                400,
                "AuthenticationFail.OIDCToken.Expired",
                "The OIDC token is expired.",
            ));
        }
        if r.oidc_provider.as_deref() != Some(provider.as_str())
            || r.oidc_subject
                .as_deref()
                .is_some_and(|sub| claims["sub"].as_str() != Some(sub))
        {
            return Err(ApiErr::new(
                403,
                "AuthenticationFail.NoPermission",
                "The role does not trust this OIDC identity.",
            ));
        }
        Ok(issue_session(
            &mut st,
            &role,
            param("DurationSeconds").and_then(|d| d.parse().ok()),
        ))
    })();
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.0.as_u16(),
    };
    st.calls.push(Call {
        action: "AssumeRoleWithOIDC".into(),
        target: role.clone(),
        principal: String::new(),
        status,
    });
    result.map(|creds| axum::Json(json!({"RequestId": request_id(), "AssumedRoleUser": {"Arn": format!("{role}/session")}, "OIDCTokenInfo": {}, "Credentials": creds})).into_response())
}

fn ecs(
    s: &Arc<Mutex<State>>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiErr> {
    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
    if path == "/latest/api/token" && method == Method::PUT {
        if header(headers, "x-aliyun-ecs-metadata-token-ttl-seconds")
            .and_then(|v| v.parse::<u32>().ok())
            .is_none()
        {
            return Ok((StatusCode::BAD_REQUEST, "missing ttl").into_response());
        }
        let t = random_token(40);
        st.ecs_tokens.insert(t.clone());
        return Ok(t.into_response());
    }
    if let Some(t) = header(headers, "x-aliyun-ecs-metadata-token")
        && !st.ecs_tokens.contains(t)
    {
        return Ok((StatusCode::UNAUTHORIZED, "invalid metadata token").into_response());
    }
    let Some(rest) = path.strip_prefix("/latest/meta-data/ram/security-credentials/") else {
        return Ok((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let Some(role_arn) = st.ecs_role.clone() else {
        return Ok((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let role_name = role_arn.rsplit('/').next().unwrap_or_default().to_string();
    if rest.is_empty() {
        return Ok(role_name.into_response());
    }
    if rest != role_name {
        return Ok((StatusCode::NOT_FOUND, "not found").into_response());
    }
    let mut creds = issue_session(&mut st, &role_arn, None);
    creds["Code"] = json!("Success");
    creds["LastUpdated"] = json!(iso(SystemTime::now()));
    st.calls.push(Call {
        action: "EcsCredentials".into(),
        target: role_arn,
        principal: String::new(),
        status: 200,
    });
    Ok(axum::Json(creds).into_response())
}
