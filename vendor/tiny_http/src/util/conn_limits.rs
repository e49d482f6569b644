//! video-recorder patch: connection caps, in total and per client.
//!
//! Upstream took a thread and two descriptors for every connection before
//! reading a byte, without limit: 4,500 idle connections stopped every
//! answer and starved a recording of descriptors. A connection beyond the
//! cap per client is closed at once. At the total cap, a new connection
//! evicts the oldest one that has not yet sent a request (a slowloris holds
//! connections, it does not use them), so the owner is always answered;
//! only when every open connection has been used is a new one closed. A
//! connection's slot is held by both halves of the socket, so it is given
//! back only when both descriptors are closed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The caps; `None` means no cap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub total: Option<usize>,
    pub per_client: Option<usize>,
}

/// Evicted connections whose descriptors are not closed yet: past the
/// total cap by at most this many while they go.
const EVICTING_MAX: usize = 64;

pub struct ConnLimits {
    caps: Caps,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
    /// Connections that have not sent a request yet, oldest first, by the
    /// descriptor that `shutdown` ends them through. A descriptor is taken
    /// out (under this lock) before it is closed, so one listed is open.
    unused: BTreeMap<u64, RawFd>,
    /// Evicted, not yet closed.
    evicted: HashSet<u64>,
    next_id: u64,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Total(usize),
    PerClient(usize),
}

/// One admitted connection; gives its place back when dropped.
pub struct Slot {
    limits: Arc<ConnLimits>,
    client: IpAddr,
    id: u64,
    used: AtomicBool,
}

/// IPv4 (and IPv4-mapped) addresses count one by one, IPv6 by /64: one
/// host on a LAN can use a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Ends a connection from another thread: its reader sees the end at once.
#[allow(unsafe_code)]
fn shut(fd: RawFd) {
    use std::os::unix::io::FromRawFd;
    // SAFETY: `fd` is open (see `Open::unused`); ManuallyDrop keeps it so.
    let s = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    s.shutdown(std::net::Shutdown::Both).ok();
}

impl ConnLimits {
    pub fn new(caps: Caps) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            caps,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `peer`, whose socket is `fd`. `Ok(true)`:
    /// the oldest unused connection was evicted to make room for it.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, fd: RawFd) -> Result<(Slot, bool), Refusal> {
        let client = client_key(peer);
        let mut open = self.lock();
        let n = open.per_client.get(&client).copied().unwrap_or(0);
        if let Some(max) = self.caps.per_client {
            if n >= max {
                return Err(Refusal::PerClient(max));
            }
        }
        let mut evicted = false;
        if let Some(max) = self.caps.total {
            if open.total >= max {
                let oldest = open.unused.iter().next().map(|(&id, &fd)| (id, fd));
                match oldest {
                    Some((id, fd)) if open.evicted.len() < EVICTING_MAX => {
                        open.unused.remove(&id);
                        open.evicted.insert(id);
                        shut(fd);
                        evicted = true;
                    }
                    _ => return Err(Refusal::Total(max)),
                }
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        open.total += 1;
        open.per_client.insert(client, n + 1);
        open.unused.insert(id, fd);
        Ok((
            Slot {
                limits: self.clone(),
                client,
                id,
                used: AtomicBool::new(false),
            },
            evicted,
        ))
    }

    /// Connections open now (tests).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().total
    }
}

impl Slot {
    /// The connection sent a request: it is no longer evicted for room.
    pub(crate) fn mark_used(&self) {
        if !self.used.swap(true, Ordering::Relaxed) {
            self.limits.lock().unused.remove(&self.id);
        }
    }

    /// Its descriptor is about to be closed: it can no longer be evicted.
    pub(crate) fn release_fd(&self) {
        self.used.store(true, Ordering::Relaxed);
        self.limits.lock().unused.remove(&self.id);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.total = open.total.saturating_sub(1);
        open.unused.remove(&self.id);
        open.evicted.remove(&self.id);
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_per_client_and_in_total() {
        let l = ConnLimits::new(Caps {
            total: Some(5),
            per_client: Some(2),
        });
        // Every connection has sent a request: none can be evicted.
        let admit = |a: &str| {
            l.admit(ip(a), -1).map(|(s, evicted)| {
                assert!(!evicted);
                s.mark_used();
                s
            })
        };
        let a1 = admit("10.0.0.1").unwrap();
        let _a2 = admit("10.0.0.1").unwrap();
        assert_eq!(admit("10.0.0.1").err(), Some(Refusal::PerClient(2)));
        // The same host by its IPv4-mapped address counts as the same.
        assert_eq!(admit("::ffff:10.0.0.1").err(), Some(Refusal::PerClient(2)));
        let _b = admit("2001:db8::1").unwrap();
        let _b2 = admit("2001:db8::2").unwrap();
        assert_eq!(admit("2001:db8::3").err(), Some(Refusal::PerClient(2)));
        let _c = admit("10.0.0.3").unwrap();
        assert_eq!(admit("10.0.0.4").err(), Some(Refusal::Total(5)));
        drop(a1);
        assert_eq!(l.open(), 4);
        assert!(admit("10.0.0.1").is_ok());
    }

    /// At the total cap the oldest connection that has sent no request is
    /// ended (its socket shut down) to make room; used ones are kept.
    #[test]
    fn the_oldest_unused_connection_makes_room() {
        use std::io::Read;
        let l = ConnLimits::new(Caps {
            total: Some(3),
            per_client: Some(64),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // (client end, server end) of a real connection.
        let pair = || {
            let c = std::net::TcpStream::connect(addr).unwrap();
            let (s, _) = listener.accept().unwrap();
            (c, s)
        };
        use std::os::unix::io::AsRawFd;
        let (_c1, s1) = pair();
        let (used, _) = l.admit(ip("10.0.0.1"), s1.as_raw_fd()).unwrap();
        used.mark_used();
        let (_c2, mut s2) = pair();
        let (_idle, _) = l.admit(ip("10.0.0.2"), s2.as_raw_fd()).unwrap();
        let (_c3, s3) = pair();
        let (_newer, _) = l.admit(ip("10.0.0.2"), s3.as_raw_fd()).unwrap();
        // The owner's new connection: the idle one from 10.0.0.2 goes.
        let (_c4, s4) = pair();
        let (_owner, evicted) = l.admit(ip("10.0.0.9"), s4.as_raw_fd()).unwrap();
        assert!(evicted);
        let mut b = [0u8; 1];
        assert_eq!(s2.read(&mut b).unwrap(), 0, "the evicted connection reads its end");
        // Its place is given back only when it is closed: until then, the
        // in-flight evictions are bounded (here, the next evicts `_newer`).
        assert_eq!(l.open(), 4);
        drop(_idle);
        assert_eq!(l.open(), 3);
    }
}
