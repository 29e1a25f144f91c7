//! Guessing protection for HTTP credentials (SEC-3, SEC-17): failed authentications are
//! counted per user name and per source address; each further failure in the window is
//! answered more slowly, and at the limit the key is locked out (429 with Retry-After) for a
//! while, without the credentials even being checked. Successful authentications are neither
//! counted nor delayed. Pure state and arithmetic: the caller passes the time and sleeps.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tuning of [`FailureLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures within `window` that lock a user name or an address out.
    pub max_failures: u32,
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// Added delay per failure after the first, up to `max_delay`.
    pub step: Duration,
    pub max_delay: Duration,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(300),
            lockout: Duration::from_secs(300),
            step: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// A user name from anywhere: its failures slow down further guesses at it (a delay
    /// only; it is never locked, or anyone could lock a victim out).
    User(String),
    /// A user name from one source address (per /64 for IPv6): locked after too many failures.
    UserAt(String, IpAddr),
    /// IPv6 addresses count per /64, which is what one client usually controls.
    Addr(IpAddr),
    /// Every failure on this server: a delay for further failures, never a lockout.
    Global,
}

impl FailureKey {
    pub fn user_at(user: &str, ip: IpAddr) -> Self {
        match Self::addr(ip) {
            FailureKey::Addr(a) => FailureKey::UserAt(user.to_owned(), a),
            _ => FailureKey::UserAt(user.to_owned(), ip),
        }
    }

    /// IPv4-mapped IPv6 addresses (a dual-stack listener) count as IPv4: grouped by /64 they
    /// would all share one counter, and one guesser would lock every IPv4 client out.
    pub fn addr(ip: IpAddr) -> Self {
        FailureKey::Addr(crate::conntable::source_of(ip))
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Bounded failure counters shared by all connections.
#[derive(Debug)]
pub struct FailureLimiter {
    policy: FailurePolicy,
    max_entries: usize,
    entries: Mutex<HashMap<FailureKey, Entry>>,
}

impl FailureLimiter {
    pub fn new(policy: FailurePolicy, max_entries: usize) -> Self {
        Self {
            policy,
            max_entries: max_entries.max(16),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The remaining lockout of `key` at `now`, if locked.
    pub fn locked(&self, key: &FailureKey, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().ok()?;
        let until = entries.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failure; returns how long to delay the answer and whether the key is now
    /// locked out.
    pub fn record_failure(&self, key: FailureKey, now: Instant) -> (Duration, bool) {
        let Ok(mut entries) = self.entries.lock() else {
            return (self.policy.max_delay, false);
        };
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            self.evict(&mut entries, now);
        }
        let p = self.policy;
        let e = entries.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        if now.duration_since(e.window_start) > p.window && e.locked_until.is_none_or(|u| u <= now)
        {
            *e = Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
            };
        }
        e.failures = e.failures.saturating_add(1);
        let locked = e.failures >= p.max_failures;
        if locked {
            e.locked_until = Some(now + p.lockout);
        }
        let delay = p
            .step
            .saturating_mul(e.failures.saturating_sub(1))
            .min(p.max_delay);
        (delay, locked)
    }

    /// Drops entries whose window and lockout are over; if still full, the oldest half.
    fn evict(&self, entries: &mut HashMap<FailureKey, Entry>, now: Instant) {
        let p = self.policy;
        entries.retain(|_, e| {
            now.duration_since(e.window_start) <= p.window
                || e.locked_until.is_some_and(|u| u > now)
        });
        if entries.len() >= self.max_entries {
            let mut starts: Vec<Instant> = entries.values().map(|e| e.window_start).collect();
            starts.sort_unstable();
            let cut = starts[starts.len() / 2];
            entries.retain(|_, e| e.window_start > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy() -> FailurePolicy {
        FailurePolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(30),
            step: Duration::from_millis(100),
            max_delay: Duration::from_millis(150),
        }
    }

    #[test]
    fn ipv4_clients_of_a_dual_stack_listener_are_counted_apart() {
        let key = |s: &str| FailureKey::addr(s.parse().unwrap());
        assert_ne!(key("::ffff:192.0.2.1"), key("::ffff:192.0.2.2"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("2001:db8::1"), key("2001:db8::ffff:2"));
    }

    #[test]
    fn slows_down_then_locks_then_recovers() {
        let l = FailureLimiter::new(policy(), 100);
        let t0 = Instant::now();
        let k = FailureKey::User("alice".into());
        assert_eq!(l.locked(&k, t0), None);
        assert_eq!(l.record_failure(k.clone(), t0), (Duration::ZERO, false));
        assert_eq!(
            l.record_failure(k.clone(), t0),
            (Duration::from_millis(100), false)
        );
        // Capped delay; the third failure locks.
        assert_eq!(
            l.record_failure(k.clone(), t0),
            (Duration::from_millis(150), true)
        );
        assert_eq!(l.locked(&k, t0), Some(Duration::from_secs(30)));
        assert_eq!(
            l.locked(&k, t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(20))
        );
        // Other keys are unaffected.
        assert_eq!(l.locked(&FailureKey::User("bob".into()), t0), None);
        // After the lockout and the window, a fresh start.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(l.locked(&k, later), None);
        assert_eq!(l.record_failure(k.clone(), later), (Duration::ZERO, false));
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_memory_is_bounded() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert_eq!(FailureKey::addr(a), FailureKey::addr(b));
        let l = FailureLimiter::new(policy(), 16);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            l.record_failure(
                FailureKey::User(format!("u{i}")),
                t0 + Duration::from_millis(i.into()),
            );
        }
        assert!(l.entries.lock().unwrap().len() <= 16);
        // A locked key is not among the first evicted: the newest survive.
        let k = FailureKey::User("target".into());
        let t1 = t0 + Duration::from_secs(2);
        for _ in 0..3 {
            l.record_failure(k.clone(), t1);
        }
        assert!(l.locked(&k, t1).is_some());
    }
}
