//! A cache of expiring values (credentials, sessions) keyed by identity.
//!
//! A value is served until less than the refresh margin remains before its
//! expiry; then the next caller refreshes it while the others for the same
//! key wait for that refresh instead of starting their own.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A value that may expire.
pub trait Expiring {
    /// When the value stops being valid; `None` for never.
    fn expires_at(&self) -> Option<SystemTime>;
}

/// Values by key, refreshed `margin` before they expire.
pub struct ExpiringCache<K, V> {
    margin: Duration,
    slots: Mutex<HashMap<K, Arc<tokio::sync::Mutex<Option<V>>>>>,
}

impl<K: Eq + Hash + Clone, V: Expiring + Clone> ExpiringCache<K, V> {
    /// A cache refreshing values `margin` before expiry.
    pub fn new(margin: Duration) -> Self {
        Self {
            margin,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, v: &V) -> bool {
        match v.expires_at() {
            None => true,
            Some(at) => at
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > self.margin),
        }
    }

    /// The cached value for `key`, or the result of `load` (stored when it
    /// succeeds). Concurrent callers for one key share one `load`.
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key.clone()).or_default().clone()
        };
        let mut value = slot.lock().await;
        if let Some(v) = value.as_ref().filter(|v| self.fresh(v)) {
            return Ok(v.clone());
        }
        let v = load().await?;
        *value = Some(v.clone());
        Ok(v)
    }

    /// Forgets the value for `key` (e.g. after the backend rejected it).
    pub fn invalidate(&self, key: &K) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(key);
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

    #[tokio::test]
    async fn serves_fresh_values_and_refreshes_near_expiry() {
        let cache = ExpiringCache::new(Duration::from_secs(180));
        let loads = AtomicUsize::new(0);
        let far = Some(SystemTime::now() + Duration::from_secs(3600));
        let near = Some(SystemTime::now() + Duration::from_secs(60));
        let load = |exp| {
            let n = loads.fetch_add(1, Ordering::SeqCst) as u32;
            async move { Ok::<_, ()>(Cred(n, exp)) }
        };
        assert_eq!(cache.get_or_load(&"a", || load(far)).await.expect("a").0, 0);
        assert_eq!(cache.get_or_load(&"a", || load(far)).await.expect("a").0, 0);
        assert_eq!(
            cache.get_or_load(&"b", || load(near)).await.expect("b").0,
            1
        );
        // Within the margin: refreshed on every call.
        assert_eq!(
            cache.get_or_load(&"b", || load(near)).await.expect("b").0,
            2
        );
        assert_eq!(
            cache.get_or_load(&"c", || load(None)).await.expect("c").0,
            3
        );
        assert_eq!(
            cache.get_or_load(&"c", || load(None)).await.expect("c").0,
            3
        );
        cache.invalidate(&"a");
        assert_eq!(cache.get_or_load(&"a", || load(far)).await.expect("a").0, 4);
        assert!(
            cache
                .get_or_load(&"d", || async { Err::<Cred, _>("boom") })
                .await
                .is_err()
        );
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
                        .get_or_load(&"k", || async {
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
}
