//! The provider SDK's decoding of a `MountRequest`: the attributes, secrets
//! and permission JSON strings, then the service-account tokens JSON (read
//! from the secrets first, the attributes second).
//!
//! Each JSON field is either raw text (syntax) or a map the fuzzer builds
//! (semantics), so both paths are reached. Invariants: a decoded request
//! has a target path, a permission within `0..=0o777` and the attributes
//! and secrets that were sent; `Debug` of the request and of the decoded
//! tokens, and of the wire request itself, never shows a secret value or a
//! token.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_provider_sdk::request::{MountRequest, Redacted, SERVICE_ACCOUNT_TOKENS};

#[derive(Arbitrary, Debug)]
enum Json {
    Raw(String),
    Map(BTreeMap<String, String>),
    /// The map plus the tokens JSON under the tokens key.
    WithTokens(BTreeMap<String, String>, Tokens),
}

#[derive(Arbitrary, Debug)]
enum Tokens {
    Raw(String),
    Map(BTreeMap<String, (String, String)>),
}

impl Tokens {
    fn text(&self) -> String {
        match self {
            Self::Raw(s) => s.clone(),
            Self::Map(m) => {
                let m: BTreeMap<_, _> = m
                    .iter()
                    .map(|(aud, (token, exp))| {
                        let v = serde_json::json!({"token": token, "expirationTimestamp": exp});
                        (aud.clone(), v)
                    })
                    .collect();
                serde_json::to_string(&m).expect("json")
            }
        }
    }
}

impl Json {
    fn text(&self) -> String {
        match self {
            Self::Raw(s) => s.clone(),
            Self::Map(m) => serde_json::to_string(m).expect("json"),
            Self::WithTokens(m, t) => {
                let mut m = m.clone();
                m.insert(SERVICE_ACCOUNT_TOKENS.to_string(), t.text());
                serde_json::to_string(&m).expect("json")
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    attributes: Json,
    secrets: Json,
    permission: String,
    target_path: String,
    versions: Vec<(String, String)>,
}

/// `Debug` must not depend on secret values at all: it is the same as for
/// the request with the secrets and the tokens attribute blanked.
fn check_redaction(req: &MountRequest) {
    let mut blank = req.clone();
    blank.secrets = Redacted::new(BTreeMap::new());
    if let Some(t) = blank.attributes.get_mut(SERVICE_ACCOUNT_TOKENS) {
        t.clear();
    }
    assert_eq!(
        format!("{req:?}"),
        format!("{blank:?}"),
        "Debug shows a secret"
    );
    if let Ok(tokens) = req.service_account_tokens() {
        let mut blank = tokens.clone();
        for t in blank.values_mut() {
            t.token = Redacted::new(String::new());
        }
        assert_eq!(
            format!("{tokens:?}"),
            format!("{blank:?}"),
            "Debug shows a token"
        );
    }
}

/// The wire request with every secret value and the tokens blanked (keys
/// kept; text that is not a map stays text that is not a map).
fn blank_wire(raw: &pb::MountRequest) -> pb::MountRequest {
    let mut blank = raw.clone();
    blank.secrets = match serde_json::from_str::<Option<BTreeMap<String, String>>>(&raw.secrets) {
        Ok(m) => {
            let keys: BTreeMap<String, String> = m
                .unwrap_or_default()
                .into_keys()
                .map(|k| (k, String::new()))
                .collect();
            serde_json::to_string(&keys).expect("json")
        }
        Err(_) => "[".into(),
    };
    if let Ok(mut m) = serde_json::from_str::<BTreeMap<String, String>>(&raw.attributes) {
        if let Some(t) = m.get_mut(SERVICE_ACCOUNT_TOKENS) {
            t.clear();
        }
        blank.attributes = serde_json::to_string(&m).expect("json");
    }
    blank
}

fuzz_target!(|input: Input| {
    let raw = pb::MountRequest {
        attributes: input.attributes.text(),
        secrets: input.secrets.text(),
        target_path: input.target_path.clone(),
        permission: input.permission.clone(),
        current_object_version: input
            .versions
            .iter()
            .map(|(id, version)| pb::ObjectVersion {
                id: id.clone(),
                version: version.clone(),
            })
            .collect(),
    };
    assert_eq!(
        format!("{raw:?}"),
        format!("{:?}", blank_wire(&raw)),
        "Debug of the wire request shows a secret"
    );
    let sent_attributes: Option<BTreeMap<String, String>> =
        serde_json::from_str(&raw.attributes).ok();
    let Ok(req) = MountRequest::decode(raw.clone()) else {
        return;
    };
    assert!(!req.target_path.as_os_str().is_empty());
    assert!(req.permission <= 0o777, "permission {:#o}", req.permission);
    assert_eq!(Some(&req.attributes), sent_attributes.as_ref());
    if !raw.secrets.is_empty() {
        let sent: Option<BTreeMap<String, String>> =
            serde_json::from_str(&raw.secrets).expect("decoded secrets are a map or null");
        assert_eq!(req.secrets.expose(), &sent.unwrap_or_default());
    }
    check_redaction(&req);
});
