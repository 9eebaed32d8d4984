//! Limits on WebSocket subscriptions: how many may run at once on one connection and for one
//! token, and a charge of one request from the token's rate-limit bucket (the one HTTP
//! requests draw from) for every subscription started. [`crate::executor::ServedSchema`]
//! admits every WebSocket operation here, whatever the protocol; a refused subscription gets a single
//! RATE_LIMITED error and ends. The number of subscriptions running is a gauge on
//! `/metrics` (`sijil_subscriptions_active`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::limits::RateLimiter;

/// The subscriptions running on one WebSocket connection (put in the connection's data when
/// it is initialised).
#[derive(Debug, Default)]
pub struct ConnectionSubscriptions {
    active: AtomicUsize,
}

impl ConnectionSubscriptions {
    /// A fresh, empty count.
    pub fn new() -> Arc<ConnectionSubscriptions> {
        Arc::new(ConnectionSubscriptions::default())
    }

    /// Subscriptions running on the connection now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// The caps and counts shared by every connection of a server.
pub struct SubscriptionLimits {
    limiter: Arc<RateLimiter>,
    per_connection: usize,
    per_token: usize,
    by_token: Mutex<HashMap<Uuid, usize>>,
    active: AtomicU64,
}

impl std::fmt::Debug for SubscriptionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionLimits")
            .field("per_connection", &self.per_connection)
            .field("per_token", &self.per_token)
            .field("active", &self.active())
            .finish_non_exhaustive()
    }
}

impl SubscriptionLimits {
    /// Limits drawing from `limiter`, with at most `per_connection` subscriptions on a
    /// connection and `per_token` for a token across its connections (each at least 1).
    pub fn new(
        limiter: Arc<RateLimiter>,
        per_connection: usize,
        per_token: usize,
    ) -> Arc<SubscriptionLimits> {
        Arc::new(SubscriptionLimits {
            limiter,
            per_connection: per_connection.max(1),
            per_token: per_token.max(1),
            by_token: Mutex::new(HashMap::new()),
            active: AtomicU64::new(0),
        })
    }

    /// Subscriptions running on the server now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }

    /// Admits one subscription of `principal` on `connection`, or says why not. The
    /// returned ticket holds its place until dropped (when the subscription ends).
    pub fn admit(
        self: &Arc<Self>,
        principal: &Principal,
        connection: Option<&Arc<ConnectionSubscriptions>>,
    ) -> Result<Ticket, ApiError> {
        if let Err(wait) = self.limiter.check(principal.token_id) {
            return Err(ApiError::RateLimited {
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            });
        }
        if let Some(connection) = connection {
            let taken = connection
                .active
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.per_connection).then_some(n + 1)
                });
            if taken.is_err() {
                return Err(ApiError::TooManySubscriptions {
                    limit: self.per_connection,
                    per: "connection",
                });
            }
        }
        {
            let mut by_token = self.by_token.lock().unwrap_or_else(PoisonError::into_inner);
            let count = by_token.entry(principal.token_id).or_insert(0);
            if *count >= self.per_token {
                drop(by_token);
                if let Some(connection) = connection {
                    connection.active.fetch_sub(1, Ordering::AcqRel);
                }
                return Err(ApiError::TooManySubscriptions {
                    limit: self.per_token,
                    per: "token",
                });
            }
            *count += 1;
        }
        self.active.fetch_add(1, Ordering::AcqRel);
        Ok(Ticket {
            limits: Arc::clone(self),
            token: principal.token_id,
            connection: connection.cloned(),
        })
    }
}

/// One admitted subscription's place; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    limits: Arc<SubscriptionLimits>,
    token: Uuid,
    connection: Option<Arc<ConnectionSubscriptions>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(connection) = &self.connection {
            connection.active.fetch_sub(1, Ordering::AcqRel);
        }
        let mut by_token = self
            .limits
            .by_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = by_token.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_token.remove(&self.token);
            }
        }
        drop(by_token);
        self.limits.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn principal() -> Principal {
        Principal {
            token_id: Uuid::now_v7(),
            workspace_id: Uuid::now_v7(),
            role: Role::Auditor,
            name: "t".into(),
            permissions: Vec::new(),
        }
    }

    #[test]
    fn caps_per_connection_and_per_token_and_frees_on_drop() {
        let limits = SubscriptionLimits::new(Arc::new(RateLimiter::new(1000, 1000)), 2, 3);
        let p = principal();
        let (c1, c2) = (
            ConnectionSubscriptions::new(),
            ConnectionSubscriptions::new(),
        );
        let a = limits.admit(&p, Some(&c1)).ok();
        let b = limits.admit(&p, Some(&c1)).ok();
        assert!(a.is_some() && b.is_some());
        assert!(matches!(
            limits.admit(&p, Some(&c1)),
            Err(ApiError::TooManySubscriptions {
                per: "connection",
                ..
            })
        ));
        let c = limits.admit(&p, Some(&c2)).ok();
        assert!(c.is_some());
        assert!(matches!(
            limits.admit(&p, Some(&c2)),
            Err(ApiError::TooManySubscriptions { per: "token", .. })
        ));
        // A refusal by the token cap leaves the connection's count as it was.
        assert_eq!(c2.active(), 1);
        assert_eq!(limits.active(), 3);
        drop(a);
        assert_eq!(c1.active(), 1);
        assert_eq!(limits.active(), 2);
        assert!(limits.admit(&principal(), Some(&c1)).is_ok());
        assert_eq!(limits.active(), 2, "the ticket was dropped at once");
    }

    #[test]
    fn starts_draw_from_the_rate_limit_bucket() {
        let limits = SubscriptionLimits::new(Arc::new(RateLimiter::new(1, 2)), 10, 10);
        let p = principal();
        let _a = limits.admit(&p, None);
        let _b = limits.admit(&p, None);
        assert!(matches!(
            limits.admit(&p, None),
            Err(ApiError::RateLimited { .. })
        ));
    }
}
