use std::fmt::Debug;
use std::time::SystemTime;

/// The source of "now" for issuance, expiry checks and records. Injected, never global, so tests
/// can issue certificates "in the past" or check expiry without sleeping.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> SystemTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the Unix epoch, saturating at zero for times before it.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 / ISO 8601 UTC (`2026-12-07T23:17:16Z`), as every list, page and
/// export shows times; the number itself if it is out of range.
pub fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}
