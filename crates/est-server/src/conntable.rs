//! The connection table (issue 12, connection floods): every open connection, its source and
//! what it is doing, so that a flood of idle or slow connections cannot keep the server from
//! answering a fresh one.
//!
//! The accept loop never waits for a slot. Each accepted connection is admitted, refused (its
//! source already holds its share, or every slot is serving a request) or admitted by closing
//! the connection that has waited longest without a request in flight. Handshake and idle
//! timeouts shrink as the table fills, and a reaper closes what outlived them. A request being
//! served is never cut. The policy is pure functions of the table and the time the caller
//! passes; the table itself is a mutex over a map, held for microseconds, never across an
//! `.await`.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::Limits;

/// Timeouts never shrink below this (nor above what is configured): a legitimate client on a
/// slow link still gets a second for its handshake and for its request head.
pub const TIMEOUT_FLOOR: Duration = Duration::from_secs(1);

/// Below this occupancy (of `max_connections`) the configured timeouts apply unchanged.
const SHRINK_FROM: f64 = 0.5;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; the TLS handshake is not finished.
    Handshaking,
    /// No request in flight: waiting for (or receiving) a request head.
    Idle,
    /// A request is being served: from the moment hyper hands it to the service until its
    /// response body has been handed back to hyper.
    Busy,
}

/// Why a new connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its source already holds `max_connections_per_source` connections.
    PerSource,
    /// The table is full and every connection in it is serving a request.
    AllBusy,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::PerSource => "too many connections from this source",
            Refused::AllBusy => "every connection slot is serving a request",
        })
    }
}

/// The source a connection counts against: an IPv4 address, or the /64 of an IPv6 address
/// (what one client usually controls). IPv4-mapped IPv6 addresses (a dual-stack listener)
/// count as the IPv4 address, not as one /64 shared by every IPv4 client.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
        v4 => v4,
    }
}

/// The tunables of the table, from [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePolicy {
    /// `max_connections`.
    pub capacity: usize,
    /// `max_connections_per_source`.
    pub per_source: usize,
    /// The configured handshake timeout (at low occupancy).
    pub handshake_timeout: Duration,
    /// The configured idle timeout (at low occupancy): `header_read_timeout`.
    pub idle_timeout: Duration,
    /// A request cannot run longer than `request_timeout`: a connection still busy after
    /// this long is a client that does not read its response, and is treated as idle.
    pub stalled_after: Duration,
}

impl TablePolicy {
    pub fn from_limits(l: &Limits) -> Self {
        Self {
            capacity: l.max_connections.max(1),
            per_source: l.max_connections_per_source.max(1),
            handshake_timeout: l.handshake_timeout,
            idle_timeout: l.header_read_timeout,
            stalled_after: l.request_timeout.saturating_add(l.header_read_timeout),
        }
    }

    /// The handshake and idle timeouts in force with `open` connections.
    pub fn effective_timeouts(&self, open: usize) -> (Duration, Duration) {
        (
            shrink(self.handshake_timeout, open, self.capacity),
            shrink(self.idle_timeout, open, self.capacity),
        )
    }

    /// Whether a connection in `phase` since `since` may be closed to make room.
    fn evictable(&self, phase: Phase, since: Instant, now: Instant) -> bool {
        phase != Phase::Busy || now.saturating_duration_since(since) > self.stalled_after
    }

    /// Whether a connection in `phase` since `since` has outlived its timeout, given the
    /// effective `(handshake, idle)` timeouts.
    fn expired(&self, phase: Phase, since: Instant, now: Instant, t: (Duration, Duration)) -> bool {
        let age = now.saturating_duration_since(since);
        match phase {
            Phase::Handshaking => age > t.0,
            Phase::Idle => age > t.1,
            Phase::Busy => age > self.stalled_after,
        }
    }
}

/// A timeout at `open` of `capacity` connections: `configured` up to half full, then linearly
/// less, down to [`TIMEOUT_FLOOR`] (or `configured`, if that is shorter) when full.
pub fn shrink(configured: Duration, open: usize, capacity: usize) -> Duration {
    let floor = configured.min(TIMEOUT_FLOOR);
    let occupancy = open as f64 / capacity.max(1) as f64;
    let f = ((occupancy - SHRINK_FROM) / (1.0 - SHRINK_FROM)).clamp(0.0, 1.0);
    configured.saturating_sub((configured - floor).mul_f64(f))
}

/// The connection to close to make room: the one that has been handshaking or idle longest
/// (a busy one only once it is stalled), or none when every connection is serving a request.
pub fn pick_victim<I>(policy: &TablePolicy, now: Instant, conns: I) -> Option<u64>
where
    I: IntoIterator<Item = (u64, Phase, Instant)>,
{
    conns
        .into_iter()
        .filter(|&(_, phase, since)| policy.evictable(phase, since, now))
        .min_by_key(|&(id, _, since)| (since, id))
        .map(|(id, _, _)| id)
}

#[derive(Debug)]
struct Entry {
    source: IpAddr,
    phase: Phase,
    since: Instant,
    /// Requests in flight (HTTP/1.1 serves one at a time; a count keeps that assumption out).
    busy: u32,
    /// Dropping it (removing the entry) tells the connection's task to close.
    _close: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    per_source: HashMap<IpAddr, usize>,
}

impl Inner {
    /// Removes a connection; dropping its entry closes it.
    fn remove(&mut self, id: u64) -> bool {
        let Some(e) = self.entries.remove(&id) else {
            return false;
        };
        if let Some(n) = self.per_source.get_mut(&e.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&e.source);
            }
        }
        true
    }

    fn victim(&self, policy: &TablePolicy, now: Instant) -> Option<u64> {
        pick_victim(
            policy,
            now,
            self.entries.iter().map(|(&id, e)| (id, e.phase, e.since)),
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused_per_source: AtomicU64,
    refused_all_busy: AtomicU64,
    evicted: AtomicU64,
    reaped: AtomicU64,
}

/// A snapshot of the table and its counters since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub open: usize,
    pub handshaking: usize,
    pub idle: usize,
    pub busy: usize,
    pub accepted: u64,
    pub refused_per_source: u64,
    pub refused_all_busy: u64,
    /// Closed to make room for a new connection.
    pub evicted: u64,
    /// Closed by the reaper: handshaking or idle past the effective timeout.
    pub reaped: u64,
}

/// Every open connection of one server.
#[derive(Debug)]
pub struct ConnTable {
    policy: TablePolicy,
    inner: Mutex<Inner>,
    counters: Counters,
}

impl ConnTable {
    pub fn new(policy: TablePolicy) -> Arc<Self> {
        Arc::new(Self {
            policy,
            inner: Mutex::new(Inner::default()),
            counters: Counters::default(),
        })
    }

    pub fn policy(&self) -> &TablePolicy {
        &self.policy
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; should something, the map is still whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip`, closing the longest-waiting idle or handshaking one if
    /// the table is full. The receiver resolves when the connection must close.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(Slot, oneshot::Receiver<()>), Refused> {
        let source = source_of(ip);
        let mut inner = self.lock();
        if inner.per_source.get(&source).copied().unwrap_or(0) >= self.policy.per_source {
            drop(inner);
            self.counters
                .refused_per_source
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerSource);
        }
        if inner.entries.len() >= self.policy.capacity {
            match inner.victim(&self.policy, now) {
                Some(victim) => {
                    inner.remove(victim);
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    drop(inner);
                    self.counters
                        .refused_all_busy
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(Refused::AllBusy);
                }
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let (tx, rx) = oneshot::channel();
        inner.entries.insert(
            id,
            Entry {
                source,
                phase: Phase::Handshaking,
                since: now,
                busy: 0,
                _close: tx,
            },
        );
        *inner.per_source.entry(source).or_insert(0) += 1;
        drop(inner);
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Ok((
            Slot {
                table: self.clone(),
                id,
            },
            rx,
        ))
    }

    /// Closes every connection that outlived the timeout in force; returns how many.
    pub fn reap(&self, now: Instant) -> usize {
        let mut inner = self.lock();
        let timeouts = self.policy.effective_timeouts(inner.entries.len());
        let expired: Vec<u64> = inner
            .entries
            .iter()
            .filter(|(_, e)| self.policy.expired(e.phase, e.since, now, timeouts))
            .map(|(&id, _)| id)
            .collect();
        for &id in &expired {
            inner.remove(id);
        }
        drop(inner);
        self.counters
            .reaped
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        expired.len()
    }

    /// Closes the longest-waiting idle or handshaking connection (the process is out of file
    /// descriptors); false if there is none.
    /// Closes every connection (the end of the shutdown grace period): dropping the entries
    /// wakes each connection's task, which drops its socket.
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.per_source.clear();
    }

    pub fn evict_one(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        let Some(victim) = inner.victim(&self.policy, now) else {
            return false;
        };
        inner.remove(victim);
        drop(inner);
        self.counters.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub fn stats(&self) -> ConnStats {
        let inner = self.lock();
        let mut s = ConnStats {
            open: inner.entries.len(),
            ..ConnStats::default()
        };
        for e in inner.entries.values() {
            match e.phase {
                Phase::Handshaking => s.handshaking += 1,
                Phase::Idle => s.idle += 1,
                Phase::Busy => s.busy += 1,
            }
        }
        drop(inner);
        let c = &self.counters;
        s.accepted = c.accepted.load(Ordering::Relaxed);
        s.refused_per_source = c.refused_per_source.load(Ordering::Relaxed);
        s.refused_all_busy = c.refused_all_busy.load(Ordering::Relaxed);
        s.evicted = c.evicted.load(Ordering::Relaxed);
        s.reaped = c.reaped.load(Ordering::Relaxed);
        s
    }

    /// Moves a connection to `phase` (a no-op once it was closed).
    fn set_phase(&self, id: u64, phase: Phase, now: Instant) {
        if let Some(e) = self.lock().entries.get_mut(&id) {
            e.phase = phase;
            e.since = now;
        }
    }

    fn request_started(&self, id: u64, now: Instant) {
        if let Some(e) = self.lock().entries.get_mut(&id) {
            e.busy += 1;
            e.phase = Phase::Busy;
            e.since = now;
        }
    }

    fn request_done(&self, id: u64, now: Instant) {
        if let Some(e) = self.lock().entries.get_mut(&id) {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.phase = Phase::Idle;
                e.since = now;
            }
        }
    }
}

/// One connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    table: Arc<ConnTable>,
    id: u64,
}

impl Slot {
    /// The TLS handshake is done: the connection waits for its first request.
    pub fn handshake_done(&self) {
        self.table.set_phase(self.id, Phase::Idle, Instant::now());
    }

    /// A request is in flight until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> BusyGuard {
        self.table.request_started(self.id, Instant::now());
        BusyGuard(self.clone())
    }

    /// For a deliberate wait inside a request (the delay after a failed authentication,
    /// SEC-3): the connection counts as idle meanwhile, so that guessers sleeping on their
    /// delay cannot fill the table with connections that may never be evicted. Should it be
    /// evicted, the request's future is dropped and the guesser gets no answer at all.
    pub fn idle_while_delayed(self: &Arc<Self>) -> DelayGuard {
        self.table.request_done(self.id, Instant::now());
        DelayGuard(self.clone())
    }
}

/// Marks its connection busy again when the deliberate wait is over.
#[derive(Debug)]
pub struct DelayGuard(Arc<Slot>);

impl Drop for DelayGuard {
    fn drop(&mut self) {
        self.0.table.request_started(self.0.id, Instant::now());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.lock().remove(self.id);
    }
}

/// Marks its connection busy while it lives.
#[derive(Debug)]
pub struct BusyGuard(Arc<Slot>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.table.request_done(self.0.id, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn policy(capacity: usize, per_source: usize) -> TablePolicy {
        TablePolicy {
            capacity,
            per_source,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            stalled_after: Duration::from_secs(40),
        }
    }

    const S10: Duration = Duration::from_secs(10);

    #[test]
    fn timeouts_hold_until_half_full_then_shrink_linearly_to_the_floor() {
        assert_eq!(shrink(S10, 0, 1000), S10);
        assert_eq!(shrink(S10, 500, 1000), S10);
        let near = |a: Duration, ms: u64| a.abs_diff(Duration::from_millis(ms)).as_micros() < 10;
        assert!(near(shrink(S10, 750, 1000), 5500));
        assert!(near(shrink(S10, 900, 1000), 2800));
        assert_eq!(shrink(S10, 1000, 1000), TIMEOUT_FLOOR);
        // Over capacity (connections closing) stays at the floor.
        assert_eq!(shrink(S10, 5000, 1000), TIMEOUT_FLOOR);
        // Monotone in occupancy.
        let mut last = S10;
        for open in 0..=1000 {
            let t = shrink(S10, open, 1000);
            assert!(t <= last && t >= TIMEOUT_FLOOR, "{open}: {t:?}");
            last = t;
        }
    }

    #[test]
    fn a_timeout_shorter_than_the_floor_never_grows() {
        let short = Duration::from_millis(300);
        assert_eq!(shrink(short, 0, 10), short);
        assert_eq!(shrink(short, 10, 10), short);
        assert_eq!(shrink(Duration::ZERO, 10, 10), Duration::ZERO);
        // Capacity zero is treated as one, not a division by zero.
        assert_eq!(shrink(S10, 1, 0), TIMEOUT_FLOOR);
    }

    #[test]
    fn the_victim_is_the_longest_waiting_connection_not_serving_a_request() {
        let p = policy(4, 4);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let conns = [
            (1, Phase::Busy, t0),
            (2, Phase::Idle, t0 + s(3)),
            (3, Phase::Handshaking, t0 + s(2)),
            (4, Phase::Idle, t0 + s(5)),
        ];
        assert_eq!(pick_victim(&p, t0 + s(6), conns), Some(3));
        // Only busy ones: nobody is evicted...
        let busy = [(1, Phase::Busy, t0), (2, Phase::Busy, t0 + s(1))];
        assert_eq!(pick_victim(&p, t0 + s(6), busy), None);
        // ...unless one has been busy past any request's deadline (not reading its answer).
        assert_eq!(pick_victim(&p, t0 + s(41), busy), Some(1));
        assert_eq!(pick_victim(&p, t0, []), None);
        // Ties go to the lower (older) id.
        let tie = [(7, Phase::Idle, t0), (5, Phase::Idle, t0)];
        assert_eq!(pick_victim(&p, t0, tie), Some(5));
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn a_full_table_evicts_the_oldest_idle_connection_and_closes_it() {
        let t = ConnTable::new(policy(2, 2));
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let (a, mut a_rx) = t.admit(ip(1), t0).unwrap();
        let (b, mut b_rx) = t.admit(ip(2), t0 + Duration::from_millis(1)).unwrap();
        let (_c, _c_rx) = t.admit(ip(3), t0 + Duration::from_millis(2)).unwrap();
        // a was the oldest: its receiver reports the close; b is untouched.
        assert_eq!(a_rx.try_recv(), Err(oneshot::error::TryRecvError::Closed));
        assert_eq!(b_rx.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        let s = t.stats();
        assert_eq!((s.open, s.evicted, s.accepted), (2, 1, 3));
        // Dropping a's slot after its eviction changes nothing.
        drop(a);
        assert_eq!(t.stats().open, 2);
        drop(b);
        assert_eq!(t.stats().open, 1);
    }

    #[test]
    fn a_table_of_busy_connections_refuses_newcomers() {
        let t = ConnTable::new(policy(2, 2));
        let now = Instant::now();
        let (a, _a_rx) = t.admit(IpAddr::from([10, 0, 0, 1]), now).unwrap();
        let (b, _b_rx) = t.admit(IpAddr::from([10, 0, 0, 2]), now).unwrap();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let (ga, _gb) = (a.request(), b.request());
        let err = t.admit(IpAddr::from([10, 0, 0, 3]), Instant::now()).err();
        assert_eq!(err, Some(Refused::AllBusy));
        // Once a's response is out, a is idle and can make room.
        drop(ga);
        assert!(t.admit(IpAddr::from([10, 0, 0, 3]), Instant::now()).is_ok());
        let s = t.stats();
        assert_eq!((s.refused_all_busy, s.evicted, s.busy), (1, 1, 1));
    }

    #[test]
    fn a_request_sleeping_on_its_failure_delay_can_be_evicted() {
        let t = ConnTable::new(policy(1, 1));
        let (a, mut a_rx) = t
            .admit(IpAddr::from([10, 0, 0, 1]), Instant::now())
            .unwrap();
        let a = Arc::new(a);
        let _request = a.request();
        assert_eq!(
            t.admit(IpAddr::from([10, 0, 0, 2]), Instant::now()).err(),
            Some(Refused::AllBusy)
        );
        {
            let _delay = a.idle_while_delayed();
            assert_eq!(
                t.stats().busy,
                0,
                "idle while it waits out its delay (SEC-3)"
            );
        }
        assert_eq!(t.stats().busy, 1, "busy again once the delay is over");
        let _delay = a.idle_while_delayed();
        // A newcomer evicts the guesser sleeping on its delay.
        assert!(t.admit(IpAddr::from([10, 0, 0, 2]), Instant::now()).is_ok());
        assert_eq!(
            a_rx.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed),
            "the evicted connection is told to close"
        );
        assert_eq!(t.stats().evicted, 1);
    }

    #[test]
    fn close_all_ends_every_connection() {
        let t = ConnTable::new(policy(4, 4));
        let (_a, mut a_rx) = t
            .admit(IpAddr::from([10, 0, 0, 1]), Instant::now())
            .unwrap();
        let (b, mut b_rx) = t
            .admit(IpAddr::from([10, 0, 0, 2]), Instant::now())
            .unwrap();
        let _busy = Arc::new(b).request();
        t.close_all();
        assert_eq!(t.stats().open, 0);
        for rx in [&mut a_rx, &mut b_rx] {
            assert_eq!(
                rx.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed)
            );
        }
    }

    #[test]
    fn one_source_gets_its_share_and_no_more() {
        let t = ConnTable::new(policy(100, 2));
        let now = Instant::now();
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = t.admit(v6("2001:db8::1"), now).unwrap();
        let _b = t.admit(v6("2001:db8::2"), now).unwrap();
        // A third address of the same /64 is the same source.
        assert_eq!(
            t.admit(v6("2001:db8::3"), now).err(),
            Some(Refused::PerSource)
        );
        // Another /64 is not.
        let _c = t.admit(v6("2001:db8:0:1::1"), now).unwrap();
        drop(a);
        assert!(t.admit(v6("2001:db8::3"), now).is_ok());
        assert_eq!(t.stats().refused_per_source, 1);
    }

    #[test]
    fn the_reaper_closes_what_outlived_the_timeout_in_force_but_never_a_request() {
        let t = ConnTable::new(policy(4, 4));
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let (hs, _r1) = t.admit(ip(1), t0).unwrap();
        let (idle, _r2) = t.admit(ip(2), t0).unwrap();
        let (busy, _r3) = t.admit(ip(3), t0).unwrap();
        idle.handshake_done();
        let busy = Arc::new(busy);
        let _guard = busy.request();
        // 3 of 4 open: timeouts are 10 - 9 * 0.5 = 5.5 s. Nothing is that old yet.
        assert_eq!(t.reap(t0 + Duration::from_secs(5)), 0);
        // Later, the handshaking and the idle one go; the busy one stays.
        assert_eq!(t.reap(t0 + Duration::from_secs(12)), 2);
        let s = t.stats();
        assert_eq!((s.open, s.busy, s.reaped), (1, 1, 2));
        // Until it has been busy past any request's deadline.
        assert_eq!(t.reap(Instant::now() + Duration::from_secs(41)), 1);
        drop((hs, idle));
    }
}
