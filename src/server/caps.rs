//! The caps on what clients may hold at once: `max_connections` and, when set,
//! `max_connections_per_ip`. A connection takes a slot when accepted, and that slot covers one
//! call in flight on it; each further concurrent call (HTTP/2 streams) takes a slot of its own
//! from the same caps, so that neither connections nor streams can hold more than the caps
//! allow. The caps are shared by every worker thread.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The caps, shared by the accept loop and every connection.
pub(super) struct Caps {
    slots: Arc<Semaphore>,
    per_ip: Option<PerIp>,
}

struct PerIp {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One place under the caps: a connection's, or a further call's. Freed when dropped.
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
    _ip: Option<IpTicket>,
}

/// One place under the per-address cap.
pub(super) struct IpTicket {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Drop for IpTicket {
    fn drop(&mut self) {
        if let Some(per_ip) = &self.caps.per_ip {
            let mut held = per_ip.held.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = held.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&self.ip);
                }
            }
        }
    }
}

/// Which cap refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    All,
    Address,
}

impl Caps {
    pub(super) fn new(max_connections: usize, per_ip: Option<usize>) -> Arc<Caps> {
        Arc::new(Caps {
            slots: Arc::new(Semaphore::new(max_connections)),
            per_ip: per_ip.map(|max| PerIp {
                max,
                held: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Slots free now.
    pub(super) fn free(&self) -> usize {
        self.slots.available_permits()
    }

    /// A place under the per-address cap for `ip`, if it has one left (always, without the
    /// cap).
    pub(super) fn address(self: &Arc<Caps>, ip: IpAddr) -> Result<Option<IpTicket>, Full> {
        let Some(per_ip) = &self.per_ip else {
            return Ok(None);
        };
        // `::ffff:a.b.c.d` and `a.b.c.d` are one source.
        let ip = ip.to_canonical();
        let mut held = per_ip.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= per_ip.max {
            return Err(Full::Address);
        }
        *n += 1;
        Ok(Some(IpTicket {
            caps: self.clone(),
            ip,
        }))
    }

    /// Waits for a place under `max_connections` for a connection from `ip`, which already
    /// holds its place under the per-address cap.
    pub(super) async fn connection(&self, ip: Option<IpTicket>) -> Option<Slot> {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        Some(Slot {
            _permit: permit,
            _ip: ip,
        })
    }

    /// A place for a further concurrent call from `ip`, now or never: a call is refused
    /// rather than left waiting.
    pub(super) fn call(self: &Arc<Caps>, ip: IpAddr) -> Result<Slot, Full> {
        let ticket = self.address(ip)?;
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::All)?;
        Ok(Slot {
            _permit: permit,
            _ip: ticket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_shared_by_connections_and_calls_and_come_back() {
        let caps = Caps::new(2, Some(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let first = caps.connection(caps.address(a).unwrap()).await.unwrap();
        let call = caps.call(a).unwrap();
        assert_eq!(caps.call(b).err(), Some(Full::All), "two slots in all");
        drop(call);
        let other = caps.call(b).unwrap();
        drop(first);
        let again = caps.call("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            caps.address(b).err(),
            Some(Full::Address),
            "`::ffff:10.0.0.2` and `10.0.0.2` are one address"
        );
        drop((other, again));
        assert!(caps
            .per_ip
            .as_ref()
            .unwrap()
            .held
            .lock()
            .unwrap()
            .is_empty());
    }
}
