//! A cache of expiring values (credentials, sessions) keyed by credential.
//!
//! # The key rule
//! Anything derived from a credential (an assumed-role session, a fetched
//! secret, a concurrent fetch's result) is keyed by a [`CredentialKey`]: a
//! keyed hash (HMAC-SHA256 under a random per-process key) of the **whole**
//! credential that obtained it: access key id *and* secret, security token,
//! role ARN, OIDC token, whatever takes part. Never by an identifier alone:
//! an access key id, a role ARN or a subject is public, so a caller that
//! presents a known id with a wrong secret must not be served what the real
//! owner's call produced. The cache and the [coalescer](super::coalesce)
//! take a `CredentialKey` on every call, so the rule cannot be skipped; the
//! hash keeps secret bytes out of the key (and out of `Debug`).
//!
//! A value is served until less than the refresh margin remains before its
//! expiry; then the next caller refreshes it while the others for the same
//! key wait for that refresh instead of starting their own. A cache made
//! [`with_capacity`](ExpiringCache::with_capacity) forgets its least
//! recently used entry when a new one would exceed the capacity.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use ring::hmac;
use ring::rand::SystemRandom;

/// The per-process HMAC key: random, never stored or logged.
static PROCESS_KEY: LazyLock<hmac::Key> = LazyLock::new(|| {
    hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
        .unwrap_or_else(|_| unreachable!("the system random source is available"))
});

/// Everything a credential is made of, fed field by field into a
/// [`CredentialKey`].
pub trait CredentialMaterial {
    /// Feeds every field that makes the credential what it is (ids,
    /// secrets, tokens, role ARNs), in a fixed order.
    fn feed(&self, key: &mut CredentialKeyBuilder);
}

/// Collects a credential's fields for [`CredentialKey::of`].
pub struct CredentialKeyBuilder(hmac::Context);

impl CredentialKeyBuilder {
    /// Adds one named field; names and lengths are framed, so fields can
    /// not run into each other.
    pub fn field(&mut self, name: &str, value: &[u8]) -> &mut Self {
        for part in [name.as_bytes(), value] {
            self.0.update(&(part.len() as u64).to_be_bytes());
            self.0.update(part);
        }
        self
    }

    /// Adds an optional field (absent and empty differ).
    pub fn optional(&mut self, name: &str, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.field(name, v),
            None => self.field(&format!("{name}:none"), b""),
        }
    }

    /// Adds a nested credential (e.g. the base of an assumed role).
    pub fn nested(&mut self, name: &str, inner: &impl CredentialMaterial) -> &mut Self {
        self.field(name, b"{");
        inner.feed(self);
        self.field(name, b"}")
    }
}

/// A keyed hash of a whole credential: the only key under which values
/// derived from that credential are cached or shared (see the module
/// docs). `Debug` shows no bytes of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialKey([u8; 32]);

impl CredentialKey {
    /// The key of `credential`, from all its material.
    pub fn of(credential: &impl CredentialMaterial) -> Self {
        let mut b = CredentialKeyBuilder(hmac::Context::with_key(&PROCESS_KEY));
        credential.feed(&mut b);
        let tag = b.0.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Self(out)
    }
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey([hashed])")
    }
}

/// A value that may expire.
pub trait Expiring {
    /// When the value stops being valid; `None` for never.
    fn expires_at(&self) -> Option<SystemTime>;
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<V>>>;

/// The entries and the clock that orders their last use.
type Slots<K, V> = (u64, HashMap<(CredentialKey, K), Entry<V>>);

/// A slot and when it was last used (a tick of the cache's clock).
struct Entry<V> {
    slot: Slot<V>,
    used: u64,
}

/// Values by credential and key, refreshed `margin` before they expire.
pub struct ExpiringCache<K, V> {
    margin: Duration,
    capacity: Option<usize>,
    slots: Mutex<Slots<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Expiring + Clone> ExpiringCache<K, V> {
    /// A cache refreshing values `margin` before expiry, without a bound.
    pub fn new(margin: Duration) -> Self {
        Self {
            margin,
            capacity: None,
            slots: Mutex::new((0, HashMap::new())),
        }
    }

    /// A cache holding at most `capacity` entries (at least one), evicting
    /// the least recently used.
    pub fn with_capacity(margin: Duration, capacity: usize) -> Self {
        Self {
            capacity: Some(capacity.max(1)),
            ..Self::new(margin)
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).1.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, credential: &CredentialKey, key: &K) -> Slot<V> {
        let mut guard = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let (clock, slots) = &mut *guard;
        *clock += 1;
        let used = *clock;
        let id = (credential.clone(), key.clone());
        if let Some(e) = slots.get_mut(&id) {
            e.used = used;
            return e.slot.clone();
        }
        if let Some(cap) = self.capacity
            && slots.len() >= cap
            && let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
        {
            slots.remove(&oldest);
        }
        let slot = Slot::default();
        slots.insert(
            id,
            Entry {
                slot: slot.clone(),
                used,
            },
        );
        slot
    }

    fn fresh(&self, v: &V) -> bool {
        match v.expires_at() {
            None => true,
            Some(at) => at
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > self.margin),
        }
    }

    /// The value cached for `key` under `credential`, or the result of
    /// `load` (stored when it succeeds). Concurrent callers for one
    /// credential and key share one `load`.
    pub async fn get_or_load<E, F, Fut>(
        &self,
        credential: &CredentialKey,
        key: &K,
        load: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let slot = self.slot(credential, key);
        let mut value = slot.lock().await;
        if let Some(v) = value.as_ref().filter(|v| self.fresh(v)) {
            return Ok(v.clone());
        }
        let v = load().await?;
        *value = Some(v.clone());
        Ok(v)
    }

    /// Forgets every value cached under `credential` (e.g. after the
    /// backend rejected one of them).
    pub fn invalidate(&self, credential: &CredentialKey) {
        let mut guard = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.retain(|(c, _), _| c != credential);
    }

    /// Forgets the value cached for `credential` and `key` if it is still
    /// one `rejected` matches (another caller may already have replaced
    /// it); a refresh in progress is waited for.
    pub async fn invalidate_if(
        &self,
        credential: &CredentialKey,
        key: &K,
        rejected: impl Fn(&V) -> bool,
    ) {
        let slot = {
            let guard = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match guard.1.get(&(credential.clone(), key.clone())) {
                Some(e) => e.slot.clone(),
                None => return,
            }
        };
        let mut value = slot.lock().await;
        if value.as_ref().is_some_and(rejected) {
            *value = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone)]
    struct Cred(u32, Option<SystemTime>);
    impl Expiring for Cred {
        fn expires_at(&self) -> Option<SystemTime> {
            self.1
        }
    }

    struct Key<'a>(&'a str, &'a str, Option<&'a str>);
    impl CredentialMaterial for Key<'_> {
        fn feed(&self, k: &mut CredentialKeyBuilder) {
            k.field("id", self.0.as_bytes())
                .field("secret", self.1.as_bytes())
                .optional("token", self.2.map(str::as_bytes));
        }
    }

    fn key(id: &str, secret: &str) -> CredentialKey {
        CredentialKey::of(&Key(id, secret, None))
    }

    #[test]
    fn credential_keys_cover_every_field() {
        assert_eq!(key("AK", "s"), key("AK", "s"));
        assert_ne!(key("AK", "s"), key("AK", "wrong"), "same id, other secret");
        assert_ne!(key("AK", "s"), key("AKs", ""), "fields are framed");
        assert_ne!(
            CredentialKey::of(&Key("AK", "s", None)),
            CredentialKey::of(&Key("AK", "s", Some(""))),
            "absent and empty token differ"
        );
        assert_eq!(format!("{:?}", key("AK", "s")), "CredentialKey([hashed])");
    }

    #[tokio::test]
    async fn serves_fresh_values_and_refreshes_near_expiry() {
        let cache = ExpiringCache::new(Duration::from_secs(180));
        let c = key("AK", "s");
        let loads = AtomicUsize::new(0);
        let far = Some(SystemTime::now() + Duration::from_secs(3600));
        let near = Some(SystemTime::now() + Duration::from_secs(60));
        let load = |exp| {
            let n = loads.fetch_add(1, Ordering::SeqCst) as u32;
            async move { Ok::<_, ()>(Cred(n, exp)) }
        };
        macro_rules! get {
            ($k:expr, $exp:expr) => {
                cache.get_or_load(&c, &$k, || load($exp)).await.expect($k).0
            };
        }
        assert_eq!(get!("a", far), 0);
        assert_eq!(get!("a", far), 0);
        assert_eq!(get!("b", near), 1);
        // Within the margin: refreshed on every call.
        assert_eq!(get!("b", near), 2);
        assert_eq!(get!("c", None), 3);
        assert_eq!(get!("c", None), 3);
        cache.invalidate(&c);
        assert_eq!(get!("a", far), 4);
        let failed = cache.get_or_load(&c, &"d", || async { Err::<Cred, _>("boom") });
        assert_eq!(failed.await.err(), Some("boom"));
    }

    #[tokio::test]
    async fn another_credential_with_the_same_id_never_gets_the_value() {
        let cache = ExpiringCache::new(Duration::from_secs(1));
        let owner = cache
            .get_or_load(&key("AK", "right"), &"role", || async {
                Ok::<_, ()>(Cred(1, None))
            })
            .await;
        assert_eq!(owner.expect("owner").0, 1);
        let other = cache
            .get_or_load(&key("AK", "wrong"), &"role", || async {
                Err::<Cred, _>("rejected")
            })
            .await;
        assert_eq!(other.err(), Some("rejected"));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load() {
        let cache = Arc::new(ExpiringCache::new(Duration::from_secs(1)));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(&key("AK", "s"), &"k", || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok::<_, ()>(Cred(7, None))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("join").expect("ok").0, 7);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn capacity_evicts_the_least_recently_used() {
        let cache = ExpiringCache::with_capacity(Duration::from_secs(1), 2);
        let c = key("AK", "s");
        let loads = AtomicUsize::new(0);
        let get = |k: &'static str| {
            let loads = &loads;
            let cache = &cache;
            let c = c.clone();
            async move {
                cache
                    .get_or_load(&c, &k, || async {
                        Ok::<_, ()>(Cred(loads.fetch_add(1, Ordering::SeqCst) as u32, None))
                    })
                    .await
                    .expect(k)
                    .0
            }
        };
        assert_eq!((get("a").await, get("b").await, get("a").await), (0, 1, 0));
        // "b" is the least recently used: "c" replaces it.
        assert_eq!(get("c").await, 2);
        assert_eq!(cache.len(), 2);
        assert_eq!((get("a").await, get("b").await), (0, 3));
    }

    #[tokio::test]
    async fn invalidate_if_spares_a_replaced_value() {
        let cache = ExpiringCache::new(Duration::from_secs(1));
        let c = key("AK", "s");
        let get =
            |n: u32| cache.get_or_load(&c, &"k", move || async move { Ok::<_, ()>(Cred(n, None)) });
        assert_eq!(get(1).await.expect("1").0, 1);
        cache.invalidate_if(&c, &"k", |v| v.0 == 9).await;
        assert_eq!(get(2).await.expect("kept").0, 1);
        cache.invalidate_if(&c, &"k", |v| v.0 == 1).await;
        assert_eq!(get(3).await.expect("reloaded").0, 3);
    }
}
