//! Operational helpers that keep backend traffic low and polite.
//!
//! - [`cache`]: values with an expiry (credentials), refreshed before they
//!   expire, one refresh at a time per key.
//! - [`coalesce`]: identical concurrent fetches share one backend call.
//! - [`ratelimit`]: a per-backend requests-per-second limit.
//! - [`backoff`]: bounded retries with jittered exponential backoff.

pub mod backoff;
pub mod cache;
pub mod coalesce;
pub mod ratelimit;
