//! Coalescing: while a fetch for a key is in flight, callers asking for the
//! same key *with the same credential* wait for its result instead of
//! calling the backend again. Nothing is kept once the fetch completes, so
//! later callers fetch anew.
//!
//! Like the [cache](super::cache), the coalescer keys every fetch by the
//! [`CredentialKey`] of the whole credential that makes it, never by an
//! identifier: a caller presenting someone's access key id with a wrong
//! secret runs its own (failing) fetch and never receives the owner's.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::cache::CredentialKey;

/// In-flight fetches by credential and key.
pub struct Coalescer<K, V> {
    inflight: Mutex<HashMap<(CredentialKey, K), InFlight<V>>>,
}

/// One fetch's shared result.
type InFlight<V> = Arc<OnceCell<V>>;

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Coalescer<K, V> {
    /// An empty coalescer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `fetch` for `key` under `credential` unless one is in flight,
    /// whose result is then shared. If the running caller is cancelled, a
    /// waiter takes over.
    pub async fn run<F, Fut>(&self, credential: &CredentialKey, key: K, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let key = (credential.clone(), key);
        let cell = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let value = cell.get_or_init(fetch).await.clone();
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(&key);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::super::cache::{CredentialKeyBuilder, CredentialMaterial};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Secret(&'static str);
    impl CredentialMaterial for Secret {
        fn feed(&self, k: &mut CredentialKeyBuilder) {
            k.field("id", b"AK").field("secret", self.0.as_bytes());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identical_concurrent_fetches_share_one_call() {
        let c = Arc::new(Coalescer::<&str, u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let spawn = |secret: &'static str, key: &'static str| {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move {
                c.run(&CredentialKey::of(&Secret(secret)), key, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if secret == "right" { 42 } else { 0 }
                })
                .await
            })
        };
        let tasks: Vec<_> = (0..5)
            .map(|_| spawn("right", "a"))
            .chain([spawn("right", "b")])
            .collect();
        let wrong = spawn("wrong", "a");
        for t in tasks {
            assert_eq!(t.await.expect("join"), 42);
        }
        assert_eq!(wrong.await.expect("join"), 0, "never the owner's result");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "a, b, and a for the other secret"
        );
        // Completed fetches are not cached.
        assert_eq!(spawn("right", "a").await.expect("join"), 42);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
