//! Rate limits: how many requests one client address, or one actor, may make per second.
//!
//! Each is a keyed GCRA limiter from the `governor` crate: a steady rate with a burst allowance,
//! a few bytes of state per key, and no background task. Keys that have been quiet long enough
//! to be back at a full burst are dropped every few thousand checks, so the tables do not grow
//! with every address ever seen.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use footlights_protocol::ActionError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often the limiters forget keys that are back at a full burst, in checks.
const TIDY_EVERY: u64 = 4096;

/// A steady rate of requests per second, with bursts of up to [`burst`](Rate::burst)
/// requests at once (the rate itself by default).
///
/// ```
/// use footlights_server::Rate;
/// // 20 requests a second, and up to 100 at once after a quiet spell.
/// let rate = Rate::per_second(20).burst(100);
/// # let _ = rate;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

impl Rate {
    /// `n` requests per second (at least one).
    pub fn per_second(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Rate {
            per_second: n,
            burst: n,
        }
    }

    /// Allows bursts of up to `n` requests (at least one).
    #[must_use]
    pub fn burst(mut self, n: u32) -> Self {
        self.burst = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        self
    }

    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// The server's limiters, made from its settings when it starts serving.
pub(crate) struct Limiters {
    client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    actor: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
    /// Refusals of each limiter, for `/metrics`.
    refused_client: prometheus_client::metrics::counter::Counter,
    refused_actor: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("client", &self.client.is_some())
            .field("actor", &self.actor.is_some())
            .finish()
    }
}

fn refusal(what: &str, retry_after: std::time::Duration) -> ActionError {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct RetryAfter {
        retry_after_ms: u64,
    }
    ActionError::rate_limited(format!("too many requests {what}; slow down")).with_metadata(
        &RetryAfter {
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        },
    )
}

impl Limiters {
    pub(crate) fn new(client: Option<Rate>, actor: Option<Rate>) -> Self {
        Limiters {
            client: client.map(|r| RateLimiter::keyed(r.quota())),
            actor: actor.map(|r| RateLimiter::keyed(r.quota())),
            checks: AtomicU64::new(0),
            refused_client: Default::default(),
            refused_actor: Default::default(),
        }
    }

    /// Counts each limiter's refusals in these counters.
    pub(crate) fn counting(
        mut self,
        client: prometheus_client::metrics::counter::Counter,
        actor: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        self.refused_client = client;
        self.refused_actor = actor;
        self
    }

    /// Counts a request from `ip` (unknown addresses, such as Unix sockets', are not limited).
    ///
    /// # Errors
    /// `actor.rate_limited` (429) with `retryAfterMs` when the address is over its rate.
    pub(crate) fn client(&self, ip: Option<IpAddr>) -> Result<(), ActionError> {
        let (Some(limiter), Some(ip)) = (&self.client, ip) else {
            return Ok(());
        };
        self.tidy();
        limiter.check_key(&ip).map_err(|not_until| {
            self.refused_client.inc();
            refusal(
                "from this address",
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Whether requests are counted per actor at all (`rate_limit_per_actor` is set).
    pub(crate) fn limits_actors(&self) -> bool {
        self.actor.is_some()
    }

    /// Counts a request to the actor `address` names (its id, or its name and key).
    ///
    /// # Errors
    /// `actor.rate_limited` (429) with `retryAfterMs` when the actor is over its rate.
    pub(crate) fn actor(&self, address: &str) -> Result<(), ActionError> {
        let Some(limiter) = &self.actor else {
            return Ok(());
        };
        self.tidy();
        limiter.check_key(&address.to_owned()).map_err(|not_until| {
            self.refused_actor.inc();
            refusal(
                "for this actor",
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    fn tidy(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY == TIDY_EVERY - 1 {
            for limiter in self.client.iter() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            for limiter in self.actor.iter() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_key() {
        let limits = Limiters::new(
            Some(Rate::per_second(1).burst(3)),
            Some(Rate::per_second(1)),
        );
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        let other = Some(IpAddr::from([127, 0, 0, 2]));
        let passed = (0..10).filter(|_| limits.client(ip).is_ok()).count();
        // Three at once, then about one a second: the burst passes, the rest mostly not.
        assert!((3..10).contains(&passed), "{passed}");
        let refused = limits.client(ip).unwrap_err();
        assert_eq!((refused.group(), refused.code()), ("actor", "rate_limited"));
        assert_eq!(refused.http_status(), 429);
        assert!(
            limits.client(other).is_ok(),
            "another address has its own budget"
        );
        assert!(
            limits.client(None).is_ok(),
            "unknown addresses are not limited"
        );
        assert!(limits.actor("room/a").is_ok());
        assert!(
            limits.actor("room/b").is_ok(),
            "another actor has its own budget"
        );
        let open = Limiters::new(None, None);
        assert!((0..100).all(|_| open.client(ip).is_ok() && open.actor("x").is_ok()));
    }
}
