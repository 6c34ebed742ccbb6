//! The emulator rejects what Alibaba Cloud rejects: every test sends raw
//! HTTP/1.1 requests signed with the provider's `ACS3-HMAC-SHA256`
//! implementation, and asserts the HTTP status and the JSON `Code`.

use std::time::{Duration, SystemTime};

use base64::Engine;
use secrets_store_alibaba_emulator::Emulator;
use secrets_store_provider_alibabacloud::sign::{self, Canonical};
use secrets_store_provider_alibabacloud::transport::{nonce, timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AK: &str = "LTAI-test-key";
const SK: &str = "test-secret";
const USER: &str = "acs:ram::123456:user/app";
const ROLE: &str = "acs:ram::123456:role/reader";
const KMS: &str = "2016-01-20";
const OOS: &str = "2019-06-01";
const STS: &str = "2015-04-01";

/// An HTTP answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer with `status` and `code`.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        let j = self.json();
        assert_eq!(
            (self.status, j["Code"].as_str()),
            (status, Some(code)),
            "{j}"
        );
        assert!(j["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(j["Message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// Sends one raw HTTP/1.1 request and reads the whole answer.
async fn raw(
    emu: &Emulator,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let authority = emu.url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\nhost: {authority}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream
        .write_all(req.as_bytes())
        .await
        .expect("write request");
    stream.write_all(body).await.expect("write request");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read answer");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked answers are not decoded here: {head}"
    );
    Answer {
        status,
        body: buf[split + 4..].to_vec(),
    }
}

/// A V3-signed RPC call, every part of which a test may spoil.
#[derive(Clone)]
struct Signed {
    method: &'static str,
    action: String,
    version: String,
    query: Vec<(String, String)>,
    key_id: String,
    /// Secret the request is signed with.
    secret: String,
    token: Option<String>,
    date: String,
    nonce: String,
    body: Vec<u8>,
    /// `x-acs-content-sha256` sent (default: hash of `body`).
    content_sha256: Option<String>,
    /// Headers sent but left out of the signature.
    unsigned: Vec<(String, String)>,
    /// Query sent instead of the signed one.
    tampered_query: Option<Vec<(String, String)>>,
}

impl Signed {
    fn new(action: &str, version: &str, query: &[(&str, &str)]) -> Self {
        Self {
            method: "POST",
            action: action.into(),
            version: version.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            key_id: AK.into(),
            secret: SK.into(),
            token: None,
            date: timestamp(SystemTime::now()),
            nonce: nonce(),
            body: Vec::new(),
            content_sha256: None,
            unsigned: Vec::new(),
            tampered_query: None,
        }
    }

    fn kms(secret_name: &str) -> Self {
        Self::new("GetSecretValue", KMS, &[("SecretName", secret_name)])
    }

    fn with_session(mut self, creds: &Value) -> Self {
        self.key_id = creds["AccessKeyId"]
            .as_str()
            .expect("credential field")
            .into();
        self.secret = creds["AccessKeySecret"]
            .as_str()
            .expect("credential field")
            .into();
        self.token = Some(
            creds["SecurityToken"]
                .as_str()
                .expect("credential field")
                .into(),
        );
        self
    }

    async fn send(&self, emu: &Emulator) -> Answer {
        let authority = emu.url().trim_start_matches("http://").to_string();
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), authority),
            ("x-acs-action".into(), self.action.clone()),
            ("x-acs-version".into(), self.version.clone()),
            ("x-acs-date".into(), self.date.clone()),
            ("x-acs-signature-nonce".into(), self.nonce.clone()),
            (
                "x-acs-content-sha256".into(),
                self.content_sha256
                    .clone()
                    .unwrap_or_else(|| sign::sha256_hex(&self.body)),
            ),
            ("accept".into(), "application/json".into()),
        ];
        if let Some(token) = &self.token {
            headers.push(("x-acs-accesskey-id".into(), self.key_id.clone()));
            headers.push(("x-acs-security-token".into(), token.clone()));
        }
        let payload_hash = sign::sha256_hex(&self.body);
        let authorization = Canonical {
            method: self.method,
            path: "/",
            query: &self.query,
            headers: &headers,
            payload_hash: &payload_hash,
        }
        .authorization(&self.key_id, &self.secret);
        let qs = sign::query(self.tampered_query.as_ref().unwrap_or(&self.query));
        headers.retain(|(k, _)| k != "host");
        headers.push(("authorization".into(), authorization));
        headers.extend(self.unsigned.iter().cloned());
        raw(emu, self.method, &format!("/?{qs}"), &headers, &self.body).await
    }
}

/// An emulator with the test user's key and secret `db` (`v1` current).
async fn emulator() -> Emulator {
    let emu = Emulator::start().await.expect("start emulator");
    emu.add_access_key(AK, SK, USER);
    emu.add_secret("db", "v1", "hunter2");
    emu
}

/// Assumes [`ROLE`] with the user's key; returns `Credentials`.
async fn assume_role(emu: &Emulator, duration: Option<&str>) -> Value {
    let mut q = vec![("RoleArn", ROLE), ("RoleSessionName", "s")];
    if let Some(d) = duration {
        q.push(("DurationSeconds", d));
    }
    let a = Signed::new("AssumeRole", STS, &q).send(emu).await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()["Credentials"].clone()
}

#[track_caller]
fn assert_secret(a: &Answer, version: &str, data: &str) {
    assert_eq!(a.status, 200, "{}", a.text());
    let j = a.json();
    assert_eq!(j["VersionId"], version, "{j}");
    assert_eq!(j["SecretData"], data, "{j}");
}

fn jwt(claims: &Value) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(v).expect("claims"))
    };
    format!("{}.{}.c2ln", b64(&json!({"alg": "RS256"})), b64(claims))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

// 1. Control case.

#[tokio::test]
async fn valid_signed_get_secret_value_succeeds() {
    let emu = emulator().await;
    let a = Signed::kms("db").send(&emu).await;
    assert_secret(&a, "v1", "hunter2");
    let j = a.json();
    assert_eq!(j["SecretName"], "db");
    assert_eq!(j["SecretDataType"], "text");
    assert_eq!(j["VersionStages"]["VersionStage"], json!(["ACSCurrent"]));
    assert_eq!(emu.count("GetSecretValue", "db"), 1);
    assert_eq!(emu.calls()[0].principal, USER);
    assert_eq!(emu.calls()[0].status, 200);
}

#[tokio::test]
async fn valid_signed_get_secret_value_by_arn_and_binary() {
    let emu = emulator().await;
    emu.add_binary_secret("blob", "b1", &[0, 159, 146, 150]);
    let a = Signed::kms("acs:kms:cn-hangzhou:123456:secret/db")
        .send(&emu)
        .await;
    assert_secret(&a, "v1", "hunter2");
    let a = Signed::kms("blob").send(&emu).await;
    assert_secret(&a, "b1", "AJ+Slg==");
    assert_eq!(a.json()["SecretDataType"], "binary");
}

// 2. Bad signature.

#[tokio::test]
async fn wrong_secret_key_is_rejected() {
    let emu = emulator().await;
    let mut r = Signed::kms("db");
    r.secret = "not-the-secret".into();
    r.send(&emu)
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    // Nothing was served, and the same request signed right still works.
    assert_eq!(emu.count("GetSecretValue", "db"), 0);
    r.secret = SK.into();
    assert_secret(&r.send(&emu).await, "v1", "hunter2");
}

#[tokio::test]
async fn query_changed_after_signing_is_rejected() {
    let emu = emulator().await;
    emu.add_secret("other", "o1", "x");
    let mut r = Signed::kms("db");
    r.tampered_query = Some(vec![("SecretName".into(), "other".into())]);
    r.send(&emu)
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    assert_eq!(emu.count("GetSecretValue", "other"), 0);
}

#[tokio::test]
async fn unsigned_acs_header_is_rejected() {
    let emu = emulator().await;
    let mut r = Signed::kms("db");
    r.unsigned = vec![("x-acs-extra".into(), "1".into())];
    r.send(&emu).await.assert_error(400, "IncompleteSignature");
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_rejected() {
    let emu = emulator().await;
    let headers = |auth: Option<&str>| {
        let mut h: Vec<(String, String)> = vec![
            ("x-acs-action".into(), "GetSecretValue".into()),
            ("x-acs-version".into(), KMS.into()),
            ("x-acs-date".into(), timestamp(SystemTime::now())),
            ("x-acs-signature-nonce".into(), nonce()),
            ("x-acs-content-sha256".into(), sign::EMPTY_SHA256.into()),
        ];
        if let Some(a) = auth {
            h.push(("authorization".into(), a.into()));
        }
        h
    };
    raw(&emu, "POST", "/?SecretName=db", &headers(None), b"")
        .await
        .assert_error(400, "IncompleteSignature");
    let v2 = format!("acs {AK}:c2lnbmF0dXJl");
    raw(&emu, "POST", "/?SecretName=db", &headers(Some(&v2)), b"")
        .await
        .assert_error(400, "IncompleteSignature");
    // RPC-style calls without any signature at all.
    raw(
        &emu,
        "GET",
        "/?Action=GetSecretValue&Version=2016-01-20&SecretName=db",
        &[],
        b"",
    )
    .await
    .assert_error(400, "MissingSignature");
    assert_eq!(emu.count("GetSecretValue", "db"), 0);
}

// 3. Unknown key.

#[tokio::test]
async fn unknown_access_key_id_is_rejected() {
    let emu = emulator().await;
    let mut r = Signed::kms("db");
    r.key_id = "LTAI-nobody".into();
    r.send(&emu)
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
    assert!(emu.calls().is_empty());
}

// 4. STS session tokens.

#[tokio::test]
async fn sts_session_works_until_it_expires() {
    let emu = emulator().await;
    emu.add_role(ROLE, &[USER]);
    emu.set_session_ttl(Duration::from_secs(1));
    let creds = assume_role(&emu, None).await;
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("STS."));

    let fresh = Signed::kms("db").with_session(&creds).send(&emu).await;
    assert_secret(&fresh, "v1", "hunter2");
    assert_eq!(emu.calls().last().unwrap().principal, ROLE);

    // The only sleep: let the 1 s session lapse.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Signed::kms("db")
        .with_session(&creds)
        .send(&emu)
        .await
        .assert_error(400, "InvalidSecurityToken.Expired");
    // The long-term key is unaffected.
    assert_secret(&Signed::kms("db").send(&emu).await, "v1", "hunter2");
}

#[tokio::test]
async fn sts_key_without_or_with_foreign_token_is_rejected() {
    let emu = emulator().await;
    emu.add_role(ROLE, &[USER]);
    let a = assume_role(&emu, Some("900")).await;
    let b = assume_role(&emu, Some("900")).await;

    let mut no_token = Signed::kms("db").with_session(&a);
    no_token.token = None;
    no_token
        .send(&emu)
        .await
        .assert_error(400, "InvalidSecurityToken.MismatchWithAccessKey");

    let mut foreign = Signed::kms("db").with_session(&a);
    foreign.token = b["SecurityToken"].as_str().map(str::to_string);
    foreign
        .send(&emu)
        .await
        .assert_error(400, "InvalidSecurityToken.MismatchWithAccessKey");

    assert_secret(
        &Signed::kms("db").with_session(&b).send(&emu).await,
        "v1",
        "hunter2",
    );
}

#[tokio::test]
async fn assume_role_requires_trust_and_an_existing_role() {
    let emu = emulator().await;
    emu.add_role(ROLE, &["acs:ram::123456:user/someone-else"]);
    Signed::new(
        "AssumeRole",
        STS,
        &[("RoleArn", ROLE), ("RoleSessionName", "s")],
    )
    .send(&emu)
    .await
    .assert_error(403, "NoPermission");
    Signed::new(
        "AssumeRole",
        STS,
        &[
            ("RoleArn", "acs:ram::123456:role/nope"),
            ("RoleSessionName", "s"),
        ],
    )
    .send(&emu)
    .await
    .assert_error(404, "EntityNotExist.Role");
    Signed::new("AssumeRole", STS, &[("RoleSessionName", "s")])
        .send(&emu)
        .await
        .assert_error(400, "MissingRoleArn");
}

#[tokio::test]
async fn assume_role_duration_is_capped_by_session_ttl() {
    let emu = emulator().await;
    emu.add_role(ROLE, &[USER]);
    emu.set_session_ttl(Duration::from_secs(600));
    let creds = assume_role(&emu, Some("3600")).await;
    let exp = time::OffsetDateTime::parse(
        creds["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left <= time::Duration::seconds(600) && left > time::Duration::seconds(590),
        "{left}"
    );
}

#[tokio::test]
async fn assume_role_with_oidc_checks_the_token() {
    let emu = emulator().await;
    let provider = "acs:ram::123456:oidc-provider/ack";
    let issuer = "https://oidc.example";
    emu.add_oidc_role(ROLE, provider, issuer, Some("system:serviceaccount:ns:sa"));
    let call = |token: String| {
        let body = [
            ("Action", "AssumeRoleWithOIDC"),
            ("Version", STS),
            ("RoleArn", ROLE),
            ("OIDCProviderArn", provider),
            ("OIDCToken", token.as_str()),
            ("RoleSessionName", "s"),
        ];
        let body = sign::query(&body);
        let emu = &emu;
        async move {
            raw(
                emu,
                "POST",
                "/",
                &[(
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body.as_bytes(),
            )
            .await
        }
    };
    let claims = |aud: &str, sub: &str, exp: u64| {
        jwt(&json!({"iss": issuer, "aud": aud, "sub": sub, "exp": exp}))
    };
    let sub = "system:serviceaccount:ns:sa";
    let later = unix_now() + 600;

    let ok = call(claims("sts.aliyuncs.com", sub, later)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let creds = ok.json()["Credentials"].clone();
    assert_secret(
        &Signed::kms("db").with_session(&creds).send(&emu).await,
        "v1",
        "hunter2",
    );

    call(claims("sts.aliyuncs.com", sub, unix_now() - 10))
        .await
        .assert_error(400, "AuthenticationFail.OIDCToken.Expired");
    call(claims("someone-else", sub, later))
        .await
        .assert_error(400, "AuthenticationFail.OIDCToken.Invalid");
    call("not-a-jwt".into())
        .await
        .assert_error(400, "AuthenticationFail.OIDCToken.Invalid");
    call(claims(
        "sts.aliyuncs.com",
        "system:serviceaccount:ns:other",
        later,
    ))
    .await
    .assert_error(403, "AuthenticationFail.NoPermission");
}

// 5. Clock window.

#[tokio::test]
async fn request_date_outside_the_clock_window_is_rejected() {
    let emu = emulator().await;
    let hour = Duration::from_secs(3600);
    for date in [SystemTime::now() - hour, SystemTime::now() + hour] {
        let mut r = Signed::kms("db");
        r.date = timestamp(date);
        r.send(&emu)
            .await
            .assert_error(400, "InvalidTimeStamp.Expired");
    }
    // Five minutes off is inside the window.
    let mut r = Signed::kms("db");
    r.date = timestamp(SystemTime::now() - Duration::from_secs(300));
    assert_secret(&r.send(&emu).await, "v1", "hunter2");
}

#[tokio::test]
async fn malformed_date_is_rejected() {
    let emu = emulator().await;
    let mut r = Signed::kms("db");
    r.date = "Mon, 26 Oct 2023 09:01:01 GMT".into();
    r.send(&emu)
        .await
        .assert_error(400, "InvalidTimeStamp.Format");
}

// 6. Nonce replay.

#[tokio::test]
async fn replayed_nonce_is_rejected() {
    let emu = emulator().await;
    let r = Signed::kms("db");
    assert_secret(&r.send(&emu).await, "v1", "hunter2");
    // Byte-for-byte the same request again.
    r.send(&emu).await.assert_error(400, "SignatureNonceUsed");
    // Same nonce, otherwise a different (validly signed) request.
    let mut other = Signed::new("GetSecretParameter", OOS, &[("Name", "p")]);
    other.nonce = r.nonce.clone();
    other
        .send(&emu)
        .await
        .assert_error(400, "SignatureNonceUsed");
    assert_eq!(emu.count("GetSecretValue", "db"), 1);
    // A fresh nonce is fine.
    assert_secret(&Signed::kms("db").send(&emu).await, "v1", "hunter2");
}

// 7. Versions, stages and unknown secrets.

#[tokio::test]
async fn versions_stages_and_unknown_secrets() {
    let emu = emulator().await;
    emu.put_secret_version("db", "v2", "hunter3");
    emu.add_stage("db", "v1", "Blue");
    let get = |q: &[(&str, &str)]| {
        let mut all = vec![("SecretName", "db")];
        all.extend_from_slice(q);
        Signed::new("GetSecretValue", KMS, &all)
    };

    assert_secret(&get(&[]).send(&emu).await, "v2", "hunter3");
    assert_secret(
        &get(&[("VersionStage", "ACSPrevious")]).send(&emu).await,
        "v1",
        "hunter2",
    );
    assert_secret(
        &get(&[("VersionId", "v1")]).send(&emu).await,
        "v1",
        "hunter2",
    );
    assert_secret(
        &get(&[("VersionId", "v1"), ("VersionStage", "Blue")])
            .send(&emu)
            .await,
        "v1",
        "hunter2",
    );

    for q in [
        &[("VersionId", "v9")][..],
        &[("VersionStage", "NoSuchStage")][..],
        &[("VersionId", "v2"), ("VersionStage", "ACSPrevious")][..],
    ] {
        get(q)
            .send(&emu)
            .await
            .assert_error(404, "Forbidden.ResourceNotFound");
    }
    Signed::kms("missing")
        .send(&emu)
        .await
        .assert_error(404, "Forbidden.ResourceNotFound");
    Signed::new("GetSecretValue", KMS, &[])
        .send(&emu)
        .await
        .assert_error(400, "MissingParameter");
}

#[tokio::test]
async fn wrong_action_or_version_is_rejected() {
    let emu = emulator().await;
    Signed::new("GetSecretValue", "2019-06-01", &[("SecretName", "db")])
        .send(&emu)
        .await
        .assert_error(400, "InvalidVersion");
    Signed::new("DeleteSecret", KMS, &[("SecretName", "db")])
        .send(&emu)
        .await
        .assert_error(404, "InvalidAction.NotFound");
    raw(&emu, "PUT", "/?SecretName=db", &[], b"")
        .await
        .assert_error(405, "UnsupportedHTTPMethod");
}

#[tokio::test]
async fn restricted_secret_and_throttling() {
    let emu = emulator().await;
    emu.restrict("db", &["acs:ram::123456:user/admin"]);
    Signed::kms("db")
        .send(&emu)
        .await
        .assert_error(403, "Forbidden.NoPermission");
    emu.restrict("db", &[USER]);
    emu.throttle_next(1);
    Signed::kms("db")
        .send(&emu)
        .await
        .assert_error(400, "Rejected.Throttling");
    assert_secret(&Signed::kms("db").send(&emu).await, "v1", "hunter2");
}

#[tokio::test]
async fn oos_get_secret_parameter() {
    let emu = emulator().await;
    emu.put_parameter("p", "one");
    emu.put_parameter("p", "two");
    let a = Signed::new(
        "GetSecretParameter",
        OOS,
        &[("Name", "p"), ("WithDecryption", "true")],
    )
    .send(&emu)
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let j = a.json();
    assert_eq!(j["Parameter"]["Value"], "two");
    assert_eq!(j["Parameter"]["ParameterVersion"], 2);
    // Without decryption the value is not the plain text.
    let a = Signed::new("GetSecretParameter", OOS, &[("Name", "p")])
        .send(&emu)
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_ne!(a.json()["Parameter"]["Value"], "two");
    Signed::new("GetSecretParameter", OOS, &[("Name", "nope")])
        .send(&emu)
        .await
        .assert_error(404, "EntityNotExists.Parameter");
}

// 8. Body hash.

#[tokio::test]
async fn body_not_matching_content_sha256_is_rejected() {
    let emu = emulator().await;
    let mut r = Signed::kms("db");
    r.body = b"SecretName=other".to_vec();
    // Signed over the real body, but the header claims the empty body.
    r.content_sha256 = Some(sign::EMPTY_SHA256.into());
    r.send(&emu).await.assert_error(400, "InvalidContentSha256");

    // Header claims a hash of a different body.
    let mut r = Signed::kms("db");
    r.content_sha256 = Some(sign::sha256_hex(b"something else"));
    r.send(&emu).await.assert_error(400, "InvalidContentSha256");

    // A body whose hash matches and is signed is accepted.
    let mut r = Signed::kms("db");
    r.body = b"{}".to_vec();
    assert_secret(&r.send(&emu).await, "v1", "hunter2");
    assert_eq!(emu.count("GetSecretValue", "db"), 1);
}

// ECS instance metadata.

#[tokio::test]
async fn ecs_metadata_hardened_mode() {
    let emu = emulator().await;
    emu.set_ecs_role(ROLE);
    let base = "/latest/meta-data/ram/security-credentials/";

    let a = raw(&emu, "PUT", "/latest/api/token", &[], b"").await;
    assert_eq!(a.status, 400, "{}", a.text());
    let ttl = [(
        "x-aliyun-ecs-metadata-token-ttl-seconds".to_string(),
        "60".to_string(),
    )];
    let a = raw(&emu, "PUT", "/latest/api/token", &ttl, b"").await;
    assert_eq!(a.status, 200);
    let token = a.text();
    let with = |t: &str| [("x-aliyun-ecs-metadata-token".to_string(), t.to_string())];

    let a = raw(&emu, "GET", base, &with("forged"), b"").await;
    assert_eq!(a.status, 401, "{}", a.text());
    let a = raw(&emu, "GET", base, &with(&token), b"").await;
    assert_eq!((a.status, a.text().as_str()), (200, "reader"));
    let a = raw(&emu, "GET", &format!("{base}other"), &with(&token), b"").await;
    assert_eq!(a.status, 404);
    let a = raw(&emu, "GET", &format!("{base}reader"), &with(&token), b"").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let creds = a.json();
    assert_eq!(creds["Code"], "Success");
    assert_eq!(emu.count("EcsCredentials", ROLE), 1);
    let r = Signed::kms("db").with_session(&creds).send(&emu).await;
    assert_secret(&r, "v1", "hunter2");
    assert_eq!(emu.calls().last().unwrap().principal, ROLE);
}

#[tokio::test]
async fn ecs_metadata_without_role_is_not_found() {
    let emu = emulator().await;
    let a = raw(
        &emu,
        "GET",
        "/latest/meta-data/ram/security-credentials/",
        &[],
        b"",
    )
    .await;
    assert_eq!(a.status, 404);
}
