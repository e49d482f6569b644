//! Failed sign-ins: growing delays per (client, user), and a budget for the
//! whole device. An attempt is claimed before its password is checked, so
//! a crowd of concurrent guesses cannot all pass the gate before the first
//! failure is counted. Delays grow instead of locking: behind a NAT or a
//! proxy, one wrong guess a minute must not keep the owner out for good,
//! and owners already signed in are let in before any of this is asked.
//! Times are passed in, so tests can move the clock.

use crate::sync::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Failures a (client, user) may have before each try must wait.
pub const FREE_FAILURES: u32 = 5;
/// Longest wait between tries.
const MAX_DELAY: Duration = Duration::from_secs(300);
/// A (client, user) with no failure for this long starts afresh.
const FORGET: Duration = Duration::from_secs(900);
/// Failures the whole device may have in a burst...
const BUDGET: f64 = 60.0;
/// ...and the rate it refills at (failures a second: 20 a minute).
const REFILL_PER_SEC: f64 = 1.0 / 3.0;
/// Clients remembered at once.
const MAX_ENTRIES: usize = 10_000;

/// Who failed: an IPv4 address or an IPv6 /64 (one LAN host can use a
/// whole /64), and which configured user was tried.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    client: IpAddr,
    user: String,
}

impl Key {
    pub fn new(ip: Option<IpAddr>, user: &str) -> Key {
        let client = match ip.map(canonical) {
            Some(IpAddr::V6(v6)) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            Some(v4) => v4,
            None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        };
        Key {
            client,
            user: user.to_string(),
        }
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

struct Entry {
    failures: u32,
    /// Attempts admitted and not yet answered.
    pending: u32,
    last: Instant,
}

struct State {
    entries: HashMap<Key, Entry>,
    /// Failures the device may still have (refills over time).
    budget: f64,
    budget_at: Instant,
}

pub struct Lockout {
    state: Mutex<State>,
    /// Notified when an attempt is answered: a client's own tries queued
    /// behind its earlier ones look again.
    answered: Condvar,
}

/// Wait before a try is accepted: 2 s after the fifth failure, doubling.
fn delay(tries: u32) -> Duration {
    if tries < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (tries - FREE_FAILURES + 1).min(16);
    Duration::from_secs(1 << exp).min(MAX_DELAY)
}

/// Why an attempt was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures: wait so many seconds.
    Wait(u64),
    /// As many tries of this (client, user) are being checked as it may
    /// have: retry when they are answered.
    Busy,
}

/// An admitted attempt; give its answer with `Lockout::settle`.
#[derive(Debug)]
pub struct Claim {
    key: Key,
    trusted: bool,
}

impl Lockout {
    pub fn new(now: Instant) -> Lockout {
        Lockout {
            state: Mutex::new(State {
                entries: HashMap::new(),
                budget: BUDGET,
                budget_at: now,
            }),
            answered: Condvar::new(),
        }
    }

    /// Waits until an attempt is answered, or `timeout` passes.
    pub fn wait_answer(&self, timeout: Duration) {
        let s = self.lock();
        let _ = self.answered.wait_timeout(s, timeout);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Admits an attempt, or says why not (tests: as `claim_as`, untrusted).
    #[cfg(test)]
    pub fn claim(&self, key: Key, now: Instant) -> Result<Claim, Refused> {
        self.claim_as(key, now, false)
    }

    /// Admits an attempt; `trusted`: from a browser that signed in as this
    /// user before (a device cookie), which the device-wide budget does not
    /// slow (nor is it taken from).
    pub fn claim_as(&self, key: Key, now: Instant, trusted: bool) -> Result<Claim, Refused> {
        let mut s = self.lock();
        let elapsed = now.saturating_duration_since(s.budget_at).as_secs_f64();
        s.budget = (s.budget + elapsed * REFILL_PER_SEC).min(BUDGET);
        s.budget_at = now;
        if s.budget < 1.0 && !trusted {
            let secs = ((1.0 - s.budget) / REFILL_PER_SEC).ceil() as u64;
            return Err(Refused::Wait(secs.max(1)));
        }
        if s.entries.len() >= MAX_ENTRIES {
            s.entries
                .retain(|_, e| e.pending > 0 || now.saturating_duration_since(e.last) < FORGET);
            if s.entries.len() >= MAX_ENTRIES {
                // Still full: forget those with the fewest failures.
                s.entries
                    .retain(|_, e| e.pending > 0 || e.failures >= FREE_FAILURES);
            }
        }
        let e = s.entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            pending: 0,
            last: now,
        });
        // Quiet for long enough: start afresh (a claim that was never
        // settled, when its thread could not start, is forgotten too).
        if now.saturating_duration_since(e.last) >= FORGET {
            e.failures = 0;
            e.pending = 0;
            e.last = now;
        }
        let since = now.saturating_duration_since(e.last);
        let wait = delay(e.failures);
        if wait > since {
            return Err(Refused::Wait(
                (wait - since).as_secs_f64().ceil().max(1.0) as u64
            ));
        }
        // Tries already admitted count as failures until they are answered:
        // a crowd of concurrent guesses gets no more checks than a sequence.
        if delay(e.failures + e.pending) > since {
            return Err(Refused::Busy);
        }
        e.pending += 1;
        // The budget is taken now and given back on success.
        if !trusted {
            s.budget -= 1.0;
        }
        Ok(Claim { key, trusted })
    }

    /// Gives back a claim that was never checked (the verifier was busy):
    /// neither a failure nor a success.
    pub fn release(&self, claim: Claim) {
        let mut s = self.lock();
        if !claim.trusted {
            s.budget = (s.budget + 1.0).min(BUDGET);
        }
        if let Some(e) = s.entries.get_mut(&claim.key) {
            e.pending = e.pending.saturating_sub(1);
        }
        drop(s);
        self.answered.notify_all();
    }

    /// Records what the check said.
    pub fn settle(&self, claim: Claim, ok: bool, now: Instant) {
        self.settle_inner(claim, ok, now);
        self.answered.notify_all();
    }

    fn settle_inner(&self, claim: Claim, ok: bool, now: Instant) {
        let mut s = self.lock();
        if ok && !claim.trusted {
            s.budget = (s.budget + 1.0).min(BUDGET);
        }
        let Some(e) = s.entries.get_mut(&claim.key) else {
            return;
        };
        e.pending = e.pending.saturating_sub(1);
        if ok {
            e.failures = 0;
            if e.pending == 0 {
                s.entries.remove(&claim.key);
            }
            return;
        }
        {
            e.failures += 1;
            e.last = now;
            if e.failures == FREE_FAILURES {
                log::warn!(
                    "client {}: {} failed sign-ins as {:?}; each further try waits longer",
                    claim.key.client,
                    e.failures,
                    claim.key.user
                );
            }
        }
    }

    /// Failures counted for a key (tests).
    #[cfg(test)]
    fn failures(&self, key: &Key) -> u32 {
        self.lock().entries.get(key).map_or(0, |e| e.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, user: &str) -> Key {
        Key::new(Some(ip.parse().unwrap()), user)
    }

    /// `n` tries for `k` at `at`, each admitted and failed.
    fn fail(l: &Lockout, k: &Key, n: u32, at: Instant) {
        for _ in 0..n {
            let c = l.claim(k.clone(), at).unwrap();
            l.settle(c, false, at);
        }
    }

    #[test]
    fn attempts_are_claimed_before_they_are_checked() {
        let t0 = Instant::now();
        let l = Lockout::new(t0);
        // 300 concurrent tries from one client: only the free ones get in,
        // the others are told to retry.
        let answers: Vec<_> = (0..300)
            .map(|_| l.claim(key("10.0.0.9", "admin"), t0))
            .collect();
        let refused = answers
            .iter()
            .filter(|a| a.as_ref().err() == Some(&Refused::Busy));
        assert_eq!(refused.count(), 300 - FREE_FAILURES as usize);
        let claims: Vec<_> = answers.into_iter().filter_map(Result::ok).collect();
        assert_eq!(claims.len(), FREE_FAILURES as usize);
        for c in claims {
            l.settle(c, false, t0);
        }
        assert_eq!(l.failures(&key("10.0.0.9", "admin")), FREE_FAILURES);
        // Another user from the same client, and another client, are free.
        assert!(l.claim(key("10.0.0.9", "viewer"), t0).is_ok());
        assert!(l.claim(key("10.0.0.10", "admin"), t0).is_ok());
    }

    #[test]
    fn a_known_browser_is_not_slowed_by_the_device_wide_budget() {
        let t0 = Instant::now();
        let l = Lockout::new(t0);
        // Guessers from rotating addresses use the whole budget up.
        for i in 0..BUDGET as u32 {
            let c = l
                .claim(key(&format!("10.1.{}.{}", i / 200, i % 200), "admin"), t0)
                .unwrap();
            l.settle(c, false, t0);
        }
        let owner = key("192.168.1.20", "admin");
        assert!(matches!(l.claim(owner.clone(), t0), Err(Refused::Wait(_))));
        // The owner's browser, which signed in before, is let through...
        let c = l.claim_as(owner.clone(), t0, true).unwrap();
        l.settle(c, true, t0);
        // ...without refilling the budget for the others.
        assert!(matches!(
            l.claim(key("10.9.9.9", "admin"), t0),
            Err(Refused::Wait(_))
        ));
        // Its own failures still slow it (a stolen cookie is no free pass).
        for _ in 0..FREE_FAILURES {
            let c = l.claim_as(owner.clone(), t0, true).unwrap();
            l.settle(c, false, t0);
        }
        assert!(matches!(l.claim_as(owner, t0, true), Err(Refused::Wait(_))));
    }

    #[test]
    fn delays_grow_then_expire() {
        let t0 = Instant::now();
        let l = Lockout::new(t0);
        let k = key("10.0.0.9", "admin");
        fail(&l, &k, FREE_FAILURES, t0);
        assert_eq!(l.claim(k.clone(), t0).unwrap_err(), Refused::Wait(2));
        let t1 = t0 + Duration::from_secs(2);
        fail(&l, &k, 1, t1);
        assert_eq!(l.claim(k.clone(), t1).unwrap_err(), Refused::Wait(4));
        let t2 = t1 + Duration::from_secs(4);
        fail(&l, &k, 1, t2);
        assert_eq!(l.claim(k.clone(), t2).unwrap_err(), Refused::Wait(8));
        // Waits never exceed the cap however many failures.
        assert_eq!(delay(40), MAX_DELAY);
        // Quiet for FORGET: the count starts afresh.
        let later = t2 + FORGET;
        fail(&l, &k, 1, later);
        assert_eq!(l.failures(&k), 1);
        // Success forgets the failures.
        let c = l.claim(k.clone(), later).unwrap();
        l.settle(c, true, later);
        assert_eq!(l.failures(&k), 0);
    }

    #[test]
    fn a_claim_given_back_unchecked_forgets_nothing() {
        let t0 = Instant::now();
        let l = Lockout::new(t0);
        let k = key("10.0.0.9", "admin");
        fail(&l, &k, FREE_FAILURES, t0);
        let t1 = t0 + Duration::from_secs(2);
        let c = l.claim(k.clone(), t1).unwrap();
        l.release(c);
        assert_eq!(
            l.failures(&k),
            FREE_FAILURES,
            "a busy verifier is no success"
        );
        assert!(
            l.claim(k.clone(), t1).is_ok(),
            "and the try may be made again"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            key("2001:db8::1", "admin"),
            key("2001:db8::ffff:1", "admin")
        );
        assert_ne!(key("2001:db8::1", "admin"), key("2001:db8:0:1::1", "admin"));
        assert_eq!(key("::ffff:10.0.0.9", "admin"), key("10.0.0.9", "admin"));
    }

    #[test]
    fn the_device_has_a_budget_of_failures() {
        let t0 = Instant::now();
        let l = Lockout::new(t0);
        // Many clients, each within its free failures.
        let mut failed = 0;
        let mut refused = None;
        'outer: for a in 0..100u32 {
            for _ in 0..FREE_FAILURES {
                let ip = format!("10.1.{}.{}", a / 200, a % 200);
                match l.claim(key(&ip, "admin"), t0) {
                    Ok(c) => {
                        l.settle(c, false, t0);
                        failed += 1;
                    }
                    Err(secs) => {
                        refused = Some(secs);
                        break 'outer;
                    }
                }
            }
        }
        assert_eq!(failed, BUDGET as u32);
        assert_eq!(refused, Some(Refused::Wait(3)));
        // It refills: 3 s later one more try.
        let t1 = t0 + Duration::from_secs(3);
        assert!(l.claim(key("10.2.0.1", "admin"), t1).is_ok());
        assert!(l.claim(key("10.2.0.2", "admin"), t1).is_err());
    }
}
