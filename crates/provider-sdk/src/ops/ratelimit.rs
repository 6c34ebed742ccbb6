//! A requests-per-second limit with a burst of one, shared by every fetch
//! from one backend. Callers wait for their slot, up to a timeout.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The wait for a slot would exceed the caller's timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit: no request slot within {0:?}")]
pub struct RateLimited(pub Duration);

/// Spaces requests at least `1/qps` apart.
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter for `qps` requests per second; `0` means unlimited.
    pub fn new(qps: u32) -> Self {
        Self {
            interval: (qps > 0).then(|| Duration::from_secs(1) / qps),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for a request slot, failing at once if the slot is further
    /// away than `timeout`.
    pub async fn acquire(&self, timeout: Duration) -> Result<(), RateLimited> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            if at.duration_since(now) > timeout {
                return Err(RateLimited(timeout));
            }
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_and_times_out() {
        let l = RateLimiter::new(10);
        let start = Instant::now();
        for _ in 0..5 {
            l.acquire(Duration::from_secs(1)).await.expect("slot");
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        let l = RateLimiter::new(1);
        l.acquire(Duration::ZERO).await.expect("first is free");
        assert_eq!(
            l.acquire(Duration::from_millis(500)).await,
            Err(RateLimited(Duration::from_millis(500)))
        );
        let u = RateLimiter::new(0);
        for _ in 0..100 {
            u.acquire(Duration::ZERO).await.expect("unlimited");
        }
    }
}
