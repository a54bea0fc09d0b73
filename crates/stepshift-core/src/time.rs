//! Points in time as the state machine carries them: UTC, millisecond precision,
//! serialized as RFC 3339 so that they read well in the Step Functions console.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time in milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// The instant `secs` seconds after the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * 1000)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved by `secs` seconds (negative moves back).
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0 + secs * 1000)
    }

    /// This instant moved by `millis` milliseconds.
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0 + millis)
    }

    /// Whole seconds from `earlier` to `self`, rounded down; negative if `earlier` is later.
    pub const fn secs_since(self, earlier: Timestamp) -> i64 {
        (self.0 - earlier.0).div_euclid(1000)
    }

    /// The start of the minute this instant falls in (CloudWatch's 1-minute buckets).
    pub const fn floor_minute(self) -> Self {
        Self(self.0 - self.0.rem_euclid(60_000))
    }

    /// The start of the next minute, or this instant if it starts a minute.
    pub const fn ceil_minute(self) -> Self {
        let rem = self.0.rem_euclid(60_000);
        if rem == 0 { self } else { Self(self.0 - rem + 60_000) }
    }

    /// RFC 3339 text, e.g. `2026-11-24T20:14:13.192Z` (milliseconds only when non-zero).
    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let text = dt.format(&Rfc3339).unwrap_or_else(|_| self.0.to_string());
        // `time` prints nanoseconds; trim to milliseconds like Step Functions does.
        match (text.find('.'), text.strip_suffix('Z')) {
            (Some(dot), Some(_)) => {
                let millis = &text[dot + 1..text.len() - 1];
                let millis = &millis[..millis.len().min(3)];
                if millis.trim_end_matches('0').is_empty() {
                    format!("{}Z", &text[..dot])
                } else {
                    format!("{}.{millis}Z", &text[..dot])
                }
            }
            _ => text,
        }
    }

    /// Parses RFC 3339 text such as Step Functions' `$$.Execution.StartTime`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let dt =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("`{text}` is not an RFC 3339 timestamp: {e}"))?;
        let millis = dt.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).map(Self).map_err(|_| format!("`{text}` is out of range"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// The source of "now": the system clock in the Lambdas, a virtual clock in the local runner.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp::from_millis(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::parse_rfc3339("2019-03-26T20:14:13.192Z").unwrap();
        assert_eq!(t.millis(), 1_553_631_253_192);
        assert_eq!(t.to_rfc3339(), "2019-03-26T20:14:13.192Z");
        let whole = Timestamp::from_secs(1_553_631_253);
        assert_eq!(whole.to_rfc3339(), "2019-03-26T20:14:13Z");
        assert_eq!(Timestamp::parse_rfc3339(&whole.to_rfc3339()).unwrap(), whole);
    }

    #[test]
    fn minute_rounding() {
        let t = Timestamp::from_millis(125_500);
        assert_eq!(t.floor_minute().millis(), 120_000);
        assert_eq!(t.ceil_minute().millis(), 180_000);
        assert_eq!(Timestamp::from_secs(120).ceil_minute().secs(), 120);
    }

    #[test]
    fn offsets_are_normalized_to_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-24T21:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T20:00:00Z");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
