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
