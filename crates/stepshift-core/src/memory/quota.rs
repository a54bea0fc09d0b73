//! Account-wide request-rate quotas, as AWS enforces them on control-plane APIs: a token
//! bucket per quota that refills at the quota's rate by the account's clock and holds at
//! most a burst's worth of tokens. A call that finds the bucket empty is refused with
//! `ThrottlingException` / `TooManyRequestsException` (a [`PortError::Throttled`]) and
//! changes nothing. AWS documents the rates, not its bucket sizes; the burst here is one
//! second's worth, the strictest reading.
//!
//! Off by default: [`MemoryAws::limit_rate`] turns a quota on. The local runner's scale
//! benchmark (`stepshift_local::fleet`) runs many deployments against one account with
//! both quotas below on.

use std::collections::BTreeMap;

use super::{Call, MemoryAws};
use crate::error::{PortError, Service};

/// One account-wide rate quota: which calls share it, and its rate.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// What the quota is called in reports, e.g. `Lambda control plane`.
    pub name: &'static str,
    /// Requests per second the account may make.
    pub per_second: f64,
    /// Requests the bucket holds when full (a burst after a quiet spell).
    pub burst: f64,
    /// The calls that share it.
    pub applies_to: fn(Call) -> bool,
}

/// Lambda's control-plane quota: 15 requests per second per account and Region, shared by
/// every API but Invoke, GetFunction and GetPolicy ("Lambda quotas", API requests).
pub const LAMBDA_CONTROL_PLANE: Quota =
    Quota { name: "Lambda control plane", per_second: 15.0, burst: 15.0, applies_to: Call::is_lambda_control_plane };

/// Parameter Store's standard throughput: 40 transactions per second per account and
/// Region, which AWS documents for GetParameter, GetParameters and GetParametersByPath,
/// and applies to PutParameter too ("Changing Parameter Store throughput"). This model
/// counts DeleteParameter against it as well, which is stricter than documented.
pub const PARAMETER_STORE: Quota =
    Quota { name: "Parameter Store", per_second: 40.0, burst: 40.0, applies_to: |call| call.service() == Service::Ssm };

/// What a quota saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaUsage {
    /// Calls that reached it (admitted and throttled).
    pub calls: u64,
    /// Calls it refused.
    pub throttled: u64,
    /// The most calls that reached it in one second of the clock (throttled included).
    pub largest_burst: u64,
    /// The most calls it admitted in one second of the clock.
    pub largest_admitted: u64,
}

#[derive(Debug)]
pub(super) struct Bucket {
    quota: Quota,
    tokens: f64,
    /// When `tokens` was last brought up to date, ms.
    at: i64,
    usage: QuotaUsage,
    /// Calls and admissions per second of the clock (second → (calls, admitted)).
    seconds: BTreeMap<i64, (u64, u64)>,
}

impl Bucket {
    fn new(quota: Quota, now: i64) -> Self {
        Bucket { quota, tokens: quota.burst, at: now, usage: QuotaUsage::default(), seconds: BTreeMap::new() }
    }

    /// Takes a token for a call at `now` (ms); `false` if the bucket is empty.
    fn admit(&mut self, now: i64) -> bool {
        // A clock that went back refills nothing.
        let elapsed = (now - self.at).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.quota.per_second).min(self.quota.burst);
        self.at = self.at.max(now);
        let admitted = self.tokens >= 1.0;
        if admitted {
            self.tokens -= 1.0;
        }
        self.usage.calls += 1;
        self.usage.throttled += u64::from(!admitted);
        let second = self.seconds.entry(now.div_euclid(1000)).or_default();
        second.0 += 1;
        second.1 += u64::from(admitted);
        self.usage.largest_burst = self.usage.largest_burst.max(second.0);
        self.usage.largest_admitted = self.usage.largest_admitted.max(second.1);
        admitted
    }
}

/// The quotas an account enforces.
#[derive(Debug, Default)]
pub(super) struct Quotas {
    buckets: Vec<Bucket>,
}

impl Quotas {
    /// Refuses `call` at `now` (ms) if a quota it falls under has no token left. Every
    /// quota the call falls under is charged.
    pub(super) fn check(&mut self, call: Call, now: i64) -> Result<(), PortError> {
        let mut refused: Option<&Quota> = None;
        for b in self.buckets.iter_mut().filter(|b| (b.quota.applies_to)(call)) {
            if !b.admit(now) && refused.is_none() {
                refused = Some(&b.quota);
            }
        }
        match refused {
            None => Ok(()),
            Some(q) => Err(PortError::Throttled {
                service: call.service(),
                message: format!("Rate exceeded: the account's {} quota is {} requests/s", q.name, q.per_second),
            }),
        }
    }
}

impl MemoryAws {
    /// Enforces `quota` on the account from now on, with a full bucket (replacing a quota
    /// of the same name).
    pub fn limit_rate(&self, quota: Quota) {
        let now = crate::time::Clock::now(self).millis();
        let mut s = self.lock();
        s.quotas.buckets.retain(|b| b.quota.name != quota.name);
        s.quotas.buckets.push(Bucket::new(quota, now));
    }

    /// What each enforced quota saw, by name.
    pub fn quota_usage(&self) -> BTreeMap<&'static str, QuotaUsage> {
        self.lock().quotas.buckets.iter().map(|b| (b.quota.name, b.usage.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::AliasRouter;
    use crate::time::Timestamp;

    fn account() -> MemoryAws {
        let aws = MemoryAws::new(Timestamp::from_secs(1_800_000_000));
        aws.add_function("orders", 2);
        aws.put_alias("orders", "live", crate::ports::AliasRouting::single("1"));
        aws
    }

    #[tokio::test]
    async fn a_burst_above_the_rate_is_throttled_and_the_bucket_refills_with_the_clock() {
        let aws = account();
        aws.limit_rate(LAMBDA_CONTROL_PLANE);
        let mut admitted = 0;
        for _ in 0..20 {
            admitted += usize::from(aws.get_alias("orders", "live").await.is_ok());
        }
        assert_eq!(admitted, 15, "a full bucket admits 15 at one instant");
        let refused = aws.get_alias("orders", "live").await.unwrap_err();
        assert!(matches!(refused, PortError::Throttled { .. }) && refused.is_retryable(), "{refused}");
        assert!(refused.to_string().contains("15 requests/s"), "{refused}");
        aws.set_now(Timestamp::from_secs(1_800_000_000).plus_millis(200));
        let mut after = 0;
        for _ in 0..5 {
            after += usize::from(aws.get_alias("orders", "live").await.is_ok());
        }
        assert_eq!(after, 3, "200 ms refill 3 tokens at 15/s");
        let usage = &aws.quota_usage()["Lambda control plane"];
        assert_eq!((usage.calls, usage.throttled), (26, 8));
        assert_eq!((usage.largest_burst, usage.largest_admitted), (26, 18), "all in one second of the clock");
    }

    #[tokio::test]
    async fn a_throttled_write_changes_nothing_and_other_services_are_not_charged() {
        let aws = account();
        aws.limit_rate(Quota { burst: 1.0, ..LAMBDA_CONTROL_PLANE });
        aws.limit_rate(PARAMETER_STORE);
        aws.get_alias("orders", "live").await.unwrap();
        let writes = aws.writes();
        let split = crate::ports::AliasRouting { version: "1".into(), additional: Some(("2".into(), 0.1)) };
        assert!(aws.update_alias("orders", "live", &split, None).await.is_err());
        assert_eq!(aws.alias("orders", "live").unwrap().routing, crate::ports::AliasRouting::single("1"));
        assert_eq!(aws.writes(), writes + 1, "the call was made and counted");
        for _ in 0..40 {
            crate::ports::ParameterStore::put(&aws, "/p", "v").await.unwrap();
        }
        assert!(crate::ports::ParameterStore::put(&aws, "/p", "v").await.is_err(), "the 41st in one instant");
        let usage = aws.quota_usage();
        assert_eq!(usage["Lambda control plane"].calls, 2, "SSM calls do not count against Lambda's quota");
        assert_eq!(usage["Parameter Store"].throttled, 1);
    }

    #[tokio::test]
    async fn no_quota_is_enforced_unless_asked() {
        let aws = account();
        for _ in 0..1000 {
            aws.get_alias("orders", "live").await.unwrap();
        }
        assert!(aws.quota_usage().is_empty());
    }
}
