//! Limits that keep one caller from hurting the rest: the gateway's configuration of query
//! depth, complexity, page size, body size, timeout and concurrent subscriptions, and a
//! per-token rate limiter (which subscription starts draw from too, see
//! [`subscription_limits`](crate::subscription_limits)).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The gateway's tunables.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Deepest selection set accepted.
    pub max_depth: usize,
    /// Largest query complexity accepted (async-graphql's count, lists weighted by page size).
    pub max_complexity: usize,
    /// Largest page any list returns.
    pub max_page: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Whether `__schema`/`__type` introspection is served.
    pub introspection: bool,
    /// Sustained requests per second per token.
    pub rate_per_second: u32,
    /// Burst allowance per token.
    pub rate_burst: u32,
    /// How long a mutation waits for its write to reach the read models.
    pub read_your_writes_timeout: Duration,
    /// Most subscriptions running at once on one WebSocket connection.
    pub max_subscriptions_per_connection: usize,
    /// Most subscriptions running at once for one token, across its connections.
    pub max_subscriptions_per_token: usize,
    /// Most events of its workspace a `customerAsOf` rebuild reads (the workspace-local
    /// position asked for may not exceed it).
    pub as_of_max_events: u64,
    /// Events the shared tail of a workspace's log holds for an `eventAppended` subscriber
    /// that has not taken them yet; one further behind reads the log index itself until it
    /// catches up ([`crate::log_tail`]). The channel keeps this many of the latest events per
    /// workspace with subscribers, whether read or not, so it bounds that memory too.
    pub tail_buffer: usize,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            max_depth: 12,
            max_complexity: 5_000,
            max_page: 200,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(15),
            introspection: true,
            rate_per_second: 5_000,
            rate_burst: 10_000,
            read_your_writes_timeout: Duration::from_secs(5),
            max_subscriptions_per_connection: 16,
            max_subscriptions_per_token: 256,
            as_of_max_events: 250_000,
            tail_buffer: 512,
        }
    }
}

/// A token bucket per token id.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second with bursts of `burst`.
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the caller's bucket, or says how long to wait.
    pub fn check(&self, token: Uuid) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, at) = buckets.entry(token).or_insert((self.burst, now));
        let refill = now.duration_since(*at).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let limiter = RateLimiter::new(1, 3);
        let t = Uuid::now_v7();
        assert!(limiter.check(t).is_ok());
        assert!(limiter.check(t).is_ok());
        assert!(limiter.check(t).is_ok());
        assert!(limiter.check(t).is_err());
        assert!(
            limiter.check(Uuid::now_v7()).is_ok(),
            "other tokens unaffected"
        );
    }
}
