//! Bounded retries with jittered exponential backoff, for errors the
//! backend marks as transient (throttling, temporary unavailability), on
//! the `backon` crate.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in total, including the first (at least 1).
    pub attempts: u32,
    /// Base delay before the first retry.
    pub initial: Duration,
    /// Cap on any one delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The `backon` policy: retry `n` (from 0) waits a random time in
    /// `[c/2, c)` where `c = min(max, initial * 2^n)`, so retries neither
    /// align nor vanish, and there are `attempts - 1` retries at most.
    pub fn policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.initial / 2)
            .with_max_delay(self.max / 2)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts.max(1) as usize - 1)
    }

    /// Runs `op` until it succeeds, fails with an error `retryable` rejects,
    /// or the attempts are used up; returns the last result.
    pub async fn retry<T, E, F, Fut>(&self, retryable: impl Fn(&E) -> bool, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        op.retry(self.policy())
            .when(retryable)
            .notify(|_, delay| {
                tracing::debug!(
                    delay_ms = delay.as_millis() as u64,
                    "retrying after transient error"
                );
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;
    use tokio::time::Instant;

    #[test]
    fn delays_grow_with_jitter_and_cap() {
        let b = Backoff {
            attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let ms = Duration::from_millis;
        for _ in 0..50 {
            let delays: Vec<Duration> = b.policy().build().collect();
            assert_eq!(delays.len(), 4, "attempts - 1 retries");
            let bounds = [(50, 100), (100, 200), (200, 400), (250, 500)];
            for (d, (lo, hi)) in delays.iter().zip(bounds) {
                assert!(*d >= ms(lo) && *d <= ms(hi), "{d:?} not in {lo}..{hi} ms");
            }
        }
        let single = Backoff { attempts: 0, ..b };
        assert_eq!(
            single.policy().build().count(),
            0,
            "at least one attempt, no retry"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_transient_errors_and_stops() {
        let b = Backoff {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut calls = 0;
        let start = Instant::now();
        let r: Result<(), &str> = b
            .retry(
                |e| *e == "throttled",
                || {
                    calls += 1;
                    async { Err("throttled") }
                },
            )
            .await;
        assert_eq!((r, calls), (Err("throttled"), 3));
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );

        let mut calls = 0;
        let r: Result<(), &str> = b
            .retry(
                |e| *e == "throttled",
                || {
                    calls += 1;
                    async { Err("denied") }
                },
            )
            .await;
        assert_eq!((r, calls), (Err("denied"), 1));

        let mut calls = 0;
        let r = b
            .retry(
                |_: &&str| true,
                || {
                    calls += 1;
                    let ok = calls == 2;
                    async move { if ok { Ok(7) } else { Err("t") } }
                },
            )
            .await;
        assert_eq!((r, calls), (Ok(7), 2));
    }
}
