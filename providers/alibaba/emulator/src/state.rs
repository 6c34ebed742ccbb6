//! The emulated account: keys, secrets, parameters, roles, the instance's
//! role, scripted faults and the call log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::wire::{iso, random_token};

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
pub(crate) struct Version {
    pub id: String,
    pub data: Vec<u8>,
    pub binary: bool,
    pub stages: Vec<String>,
}

/// An access key (long-term, or an STS session with its token).
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub secret: String,
    pub principal: String,
    pub token: Option<String>,
    pub expires: Option<SystemTime>,
}

/// A RAM role and who may assume it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Role {
    pub trusted_principals: HashSet<String>,
    pub oidc_provider: Option<String>,
    pub oidc_subject: Option<String>,
}

/// Everything the emulator knows.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub keys: HashMap<String, Key>,
    pub secrets: BTreeMap<String, Vec<Version>>,
    pub parameters: BTreeMap<String, (String, u64)>,
    pub acl: HashMap<String, HashSet<String>>,
    pub roles: HashMap<String, Role>,
    pub oidc_providers: HashMap<String, String>,
    pub ecs_role: Option<String>,
    pub ecs_tokens: HashSet<String>,
    pub ecs_token_api_down: bool,
    pub nonces: HashSet<String>,
    pub throttle: u32,
    pub raw_answer: Option<(u16, Vec<u8>)>,
    pub latency: Duration,
    pub session_ttl: Duration,
    pub calls: Vec<Call>,
}

/// The state shared by the handlers.
pub(crate) type Shared = Arc<Mutex<State>>;

/// Locks the state (a panicked handler does not poison it for the rest).
pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    /// Issues an STS session for `principal`; its lifetime is the asked
    /// duration capped by the session TTL.
    pub fn issue_session(&mut self, principal: &str, duration: Option<u64>) -> Value {
        let id = format!("STS.{}", random_token(20));
        let secret = random_token(30);
        let token = random_token(64);
        let ttl = duration
            .map(Duration::from_secs)
            .unwrap_or(self.session_ttl)
            .min(self.session_ttl);
        let expires = SystemTime::now() + ttl;
        self.keys.insert(
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

    /// Logs a call.
    pub fn record(&mut self, action: &str, target: &str, principal: &str, status: u16) {
        self.calls.push(Call {
            action: action.into(),
            target: target.into(),
            principal: principal.into(),
            status,
        });
    }
}
