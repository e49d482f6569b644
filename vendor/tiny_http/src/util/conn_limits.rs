//! video-recorder patch: connection caps, in total and per client.
//!
//! Upstream took a thread and two descriptors for every connection before
//! reading a byte, without limit: 4,500 idle connections stopped every
//! answer and starved a recording of descriptors. A connection beyond a cap
//! is closed at once; its slot is held by both halves of the socket, so it
//! is given back only when both descriptors are closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps; `None` means no cap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub total: Option<usize>,
    pub per_client: Option<usize>,
}

pub struct ConnLimits {
    caps: Caps,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
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

impl ConnLimits {
    pub fn new(caps: Caps) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            caps,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let client = client_key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(max) = self.caps.total {
            if open.0 >= max {
                return Err(Refusal::Total(max));
            }
        }
        let n = open.1.get(&client).copied().unwrap_or(0);
        if let Some(max) = self.caps.per_client {
            if n >= max {
                return Err(Refusal::PerClient(max));
            }
        }
        open.0 += 1;
        open.1.insert(client, n + 1);
        Ok(Slot {
            limits: self.clone(),
            client,
        })
    }

    /// Connections open now (tests).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap().0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.client);
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
        let a1 = l.admit(ip("10.0.0.1")).unwrap();
        let _a2 = l.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(l.admit(ip("10.0.0.1")).err(), Some(Refusal::PerClient(2)));
        // The same host by its IPv4-mapped address counts as the same.
        assert_eq!(l.admit(ip("::ffff:10.0.0.1")).err(), Some(Refusal::PerClient(2)));
        let _b = l.admit(ip("2001:db8::1")).unwrap();
        let _b2 = l.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(l.admit(ip("2001:db8::3")).err(), Some(Refusal::PerClient(2)));
        let _c = l.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(l.admit(ip("10.0.0.4")).err(), Some(Refusal::Total(5)));
        drop(a1);
        assert_eq!(l.open(), 4);
        assert!(l.admit(ip("10.0.0.1")).is_ok());
    }
}
