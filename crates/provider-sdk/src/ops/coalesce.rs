//! Coalescing: while a fetch for a key is in flight, callers asking for the
//! same key wait for its result instead of calling the backend again.
//! Nothing is kept once the fetch completes, so later callers fetch anew.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// In-flight fetches by key.
pub struct Coalescer<K, V> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

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

    /// Runs `fetch` for `key` unless one is in flight, whose result is then
    /// shared. If the running caller is cancelled, a waiter takes over.
    pub async fn run<F, Fut>(&self, key: K, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
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
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn identical_concurrent_fetches_share_one_call() {
        let c = Arc::new(Coalescer::<&str, u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let spawn = |key: &'static str| {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move {
                c.run(key, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    42
                })
                .await
            })
        };
        let tasks: Vec<_> = (0..5).map(|_| spawn("a")).chain([spawn("b")]).collect();
        for t in tasks {
            assert_eq!(t.await.expect("join"), 42);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one call for a, one for b");
        // Completed fetches are not cached.
        assert_eq!(spawn("a").await.expect("join"), 42);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
