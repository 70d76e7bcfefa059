//! Rate limits: the generic cell rate algorithm (GCRA).
//!
//! A limit of `limit` requests per `period` lets a full `limit` through at
//! once and then one every `period / limit` — a token bucket of size
//! `limit`, stored as one number per key: the theoretical arrival time
//! (TAT) of the next request. Cache backends run [`gcra_step`] atomically
//! (in-process under a lock, in Redis as one Lua script) so the limit holds
//! across every process that shares the cache.

use std::time::Duration;

use crate::{Error, Result};

/// `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub period: Duration,
}

impl Rate {
    /// `limit` requests per minute.
    pub fn per_minute(limit: u32) -> Self {
        Rate {
            limit,
            period: Duration::from_secs(60),
        }
    }

    /// Checks the rate is usable: at least one request, a period of 1 ms to a day.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0
            || self.period < Duration::from_millis(1)
            || self.period > Duration::from_secs(86_400)
        {
            return Err(
                Error::invalid("a rate limit needs at least 1 request per 1 ms to 1 day")
                    .with_code("invalid_rate"),
            );
        }
        Ok(())
    }

    /// Microseconds between requests at the steady rate (at least 1).
    pub fn emission_us(&self) -> i64 {
        ((self.period.as_micros() / u128::from(self.limit)) as i64).max(1)
    }

    /// The bucket's size in microseconds: `limit` emission intervals.
    pub fn burst_us(&self) -> i64 {
        self.emission_us() * i64::from(self.limit)
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub allowed: bool,
    pub limit: u32,
    /// Requests still allowed right now after this one.
    pub remaining: u32,
    /// When the bucket is full again.
    pub reset_after: Duration,
    /// When a denied request may be retried.
    pub retry_after: Option<Duration>,
}

impl Throttle {
    /// The decision when no limit could be checked (the cache is down):
    /// the request passes.
    pub fn unchecked(rate: &Rate) -> Self {
        Throttle {
            allowed: true,
            limit: rate.limit,
            remaining: rate.limit,
            reset_after: Duration::ZERO,
            retry_after: None,
        }
    }
}

/// One GCRA step at `now_us` with the stored TAT (`None`: no state).
/// Returns the decision and, when allowed, the new TAT to store (with a TTL
/// of `new_tat - now_us`).
pub fn gcra_step(stored_tat_us: Option<i64>, now_us: i64, rate: &Rate) -> (Throttle, Option<i64>) {
    let t = rate.emission_us();
    let burst = rate.burst_us();
    let tat = stored_tat_us.unwrap_or(now_us).max(now_us);
    let new_tat = tat + t;
    let allow_at = new_tat - burst;
    let us = |v: i64| Duration::from_micros(v.max(0) as u64);
    if now_us < allow_at {
        return (
            Throttle {
                allowed: false,
                limit: rate.limit,
                remaining: 0,
                reset_after: us(tat - now_us),
                retry_after: Some(us(allow_at - now_us)),
            },
            None,
        );
    }
    let remaining = ((burst - (new_tat - now_us)) / t).clamp(0, i64::from(rate.limit)) as u32;
    (
        Throttle {
            allowed: true,
            limit: rate.limit,
            remaining,
            reset_after: us(new_tat - now_us),
            retry_after: None,
        },
        Some(new_tat),
    )
}

/// Turns a backend's raw answer `(allowed, retry_after_us, reset_after_us)`
/// into a [`Throttle`], computing `remaining` the same way as [`gcra_step`].
pub fn throttle_from_parts(
    rate: &Rate,
    allowed: bool,
    retry_after_us: i64,
    reset_after_us: i64,
) -> Throttle {
    let us = |v: i64| Duration::from_micros(v.max(0) as u64);
    let t = rate.emission_us();
    let remaining = if allowed {
        ((rate.burst_us() - reset_after_us) / t).clamp(0, i64::from(rate.limit)) as u32
    } else {
        0
    };
    Throttle {
        allowed,
        limit: rate.limit,
        remaining,
        reset_after: us(reset_after_us),
        retry_after: (!allowed).then(|| us(retry_after_us)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: &Rate, times: &[i64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let (d, new) = gcra_step(tat, now, rate);
                if let Some(n) = new {
                    tat = Some(n);
                }
                d.allowed
            })
            .collect()
    }

    #[test]
    fn a_full_burst_then_the_steady_rate() {
        let rate = Rate::per_minute(5);
        // Five at once pass, the sixth is refused.
        assert_eq!(
            run(&rate, &[0; 6]),
            vec![true, true, true, true, true, false]
        );
        // 12 s later (one emission interval) one more passes.
        assert_eq!(run(&rate, &[0, 0, 0, 0, 0, 12_000_000]), vec![true; 6]);
        let (d, _) = gcra_step(Some(60_000_000), 0, &rate);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_secs(12)));
    }

    #[test]
    fn remaining_counts_down() {
        let rate = Rate::per_minute(3);
        let (d1, t1) = gcra_step(None, 0, &rate);
        assert_eq!((d1.allowed, d1.remaining), (true, 2));
        let (d2, t2) = gcra_step(t1, 0, &rate);
        assert_eq!(d2.remaining, 1);
        let (d3, _) = gcra_step(t2, 0, &rate);
        assert_eq!(d3.remaining, 0);
        assert_eq!(throttle_from_parts(&rate, true, 0, 20_000_000).remaining, 2);
        assert!(Rate {
            limit: 0,
            period: Duration::from_secs(1)
        }
        .validate()
        .is_err());
    }
}
