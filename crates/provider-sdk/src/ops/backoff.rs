//! Bounded retries with jittered exponential backoff, for errors the
//! backend marks as transient (throttling, temporary unavailability).

use std::time::Duration;

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
    /// The delay before retry `n` (from 0): a random point in the upper half
    /// of `min(max, initial * 2^n)`, so retries neither align nor vanish.
    pub fn delay(&self, n: u32) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
            .min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Runs `op` until it succeeds, fails with an error `retryable` rejects,
    /// or the attempts are used up; returns the last result.
    pub async fn retry<T, E, F, Fut>(
        &self,
        retryable: impl Fn(&E) -> bool,
        mut op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut n = 0;
        loop {
            match op().await {
                Err(e) if n + 1 < self.attempts.max(1) && retryable(&e) => {
                    let d = self.delay(n);
                    tracing::debug!(
                        attempt = n + 1,
                        delay_ms = d.as_millis() as u64,
                        "retrying after transient error"
                    );
                    tokio::time::sleep(d).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn delays_grow_with_jitter_and_cap() {
        let b = Backoff {
            attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        for _ in 0..50 {
            let d0 = b.delay(0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d5 = b.delay(5);
            assert!(
                d5 >= Duration::from_millis(250) && d5 <= Duration::from_millis(500),
                "{d5:?}"
            );
            assert!(b.delay(40) <= Duration::from_millis(500));
        }
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
