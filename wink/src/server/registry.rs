//! The machines a server runs, by pid, and the indices its requests need:
//! by address (who may send lifecycle words), by port (`stop`, `list`,
//! port conflicts), by parent (orphans), by follower (relays), and the
//! unconfirmed machines whose parent is the server by start id (their
//! first `started`). Every index is updated with the table, so a machine
//! removed leaves nothing behind, and no request scans every machine.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::address::Address;
use crate::control::RequestId;
use crate::name::MachineName;

use super::MAX_FOLLOWERS;

/// Whoever asked for a machine's lifecycle with `start <id> … server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Follower {
    pub(super) to: Address,
    pub(super) id: RequestId,
}

/// Whoever asked for a machine to stop, to be told `stopped` once it is
/// gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stopper {
    pub(super) to: Address,
    pub(super) id: RequestId,
}

/// One machine process the server watches: forked by it, or adopted after
/// a restart.
#[derive(Debug)]
pub(super) struct Machine {
    /// Tells this record from an earlier one with the same pid.
    pub(super) serial: u64,
    pub(super) pid: u32,
    pub(super) name: MachineName,
    /// Where it was told to listen (port 0: any).
    pub(super) requested: Address,
    /// Where it listens, once it said so (`register`, or a first `started`
    /// to the server); indexed.
    address: Option<Address>,
    /// Its parent's address (the server's own when the server is its
    /// parent); indexed.
    parent: Address,
    /// Whether its parent is the server: its lifecycle is relayed.
    pub(super) server_parented: bool,
    /// The `start` that made it.
    pub(super) start: Option<RequestId>,
    /// Since when it runs (forked), or since when the server knows it
    /// (adopted after a server restart).
    pub(super) since: Instant,
    /// It said `unregister` or `exited`: it is exiting in order.
    pub(super) orderly: bool,
    /// Indexed.
    followers: Vec<Follower>,
    pub(super) stoppers: Vec<Stopper>,
    /// When SIGKILL follows the SIGTERM already sent.
    pub(super) kill_at: Option<Instant>,
    /// SIGKILL was sent.
    pub(super) killed: bool,
}

/// What a new record starts from.
#[derive(Debug)]
pub(super) struct NewMachine {
    pub(super) pid: u32,
    pub(super) name: MachineName,
    pub(super) requested: Address,
    pub(super) address: Option<Address>,
    pub(super) parent: Address,
    pub(super) server_parented: bool,
    pub(super) start: Option<RequestId>,
    pub(super) since: Instant,
    pub(super) follower: Option<Follower>,
}

impl Machine {
    pub(super) fn address(&self) -> Option<Address> {
        self.address
    }

    pub(super) fn parent(&self) -> Address {
        self.parent
    }

    pub(super) fn followers(&self) -> &[Follower] {
        &self.followers
    }

    /// The port it listens on (or was told to, until it says), 0 if any.
    pub(super) fn port(&self) -> u16 {
        self.address.unwrap_or(self.requested).port()
    }

    /// Whether a message from `from` may be from this machine before it
    /// said where it listens: the port it was told (unless any), on the IP
    /// it was told (unless unspecified). Once it said, only from there.
    pub(super) fn may_be_at(&self, from: Address) -> bool {
        match self.address {
            Some(address) => address == from,
            None => may_listen_at(self.requested, from),
        }
    }
}

/// Whether a machine told to listen at `requested` may be at `from`.
pub(super) fn may_listen_at(requested: Address, from: Address) -> bool {
    (requested.port() == 0 || requested.port() == from.port())
        && (requested.ip().is_unspecified() || requested.ip() == from.ip())
}

#[derive(Debug, Default)]
pub(super) struct Registry {
    machines: HashMap<u32, Machine>,
    by_address: HashMap<Address, u32>,
    by_port: BTreeSet<(u16, u32)>,
    by_parent: BTreeSet<(Address, u32)>,
    by_follower: BTreeSet<(Address, u32)>,
    /// Server-parented machines that have not said where they listen, by
    /// the id of the `start` that made them.
    unconfirmed: BTreeSet<(RequestId, u32)>,
    next_serial: u64,
}

impl Registry {
    pub(super) fn len(&self) -> usize {
        self.machines.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    pub(super) fn contains(&self, pid: u32) -> bool {
        self.machines.contains_key(&pid)
    }

    pub(super) fn get(&self, pid: u32) -> Option<&Machine> {
        self.machines.get(&pid)
    }

    /// The record, to change what no index depends on.
    pub(super) fn get_mut(&mut self, pid: u32) -> Option<&mut Machine> {
        self.machines.get_mut(&pid)
    }

    /// Records a machine; its pid must not be recorded.
    pub(super) fn insert(&mut self, new: NewMachine) {
        debug_assert!(!self.machines.contains_key(&new.pid));
        let pid = new.pid;
        self.next_serial += 1;
        let machine = Machine {
            serial: self.next_serial,
            pid,
            name: new.name,
            requested: new.requested,
            address: None,
            parent: new.parent,
            server_parented: new.server_parented,
            start: new.start,
            since: new.since,
            orderly: false,
            followers: Vec::new(),
            stoppers: Vec::new(),
            kill_at: None,
            killed: false,
        };
        self.by_port.insert((machine.port(), pid));
        self.by_parent.insert((machine.parent, pid));
        if let (true, Some(start)) = (machine.server_parented, machine.start) {
            self.unconfirmed.insert((start, pid));
        }
        self.machines.insert(pid, machine);
        if let Some(address) = new.address {
            self.confirm(pid, address);
        }
        if let Some(follower) = new.follower {
            self.add_follower(pid, follower);
        }
    }

    /// Forgets a machine and every index entry of it.
    pub(super) fn remove(&mut self, pid: u32) -> Option<Machine> {
        let machine = self.machines.remove(&pid)?;
        self.by_port.remove(&(machine.port(), pid));
        self.by_parent.remove(&(machine.parent, pid));
        if let Some(start) = machine.start {
            self.unconfirmed.remove(&(start, pid));
        }
        if let Some(address) = machine.address {
            if self.by_address.get(&address) == Some(&pid) {
                self.by_address.remove(&address);
            }
        }
        for follower in &machine.followers {
            self.by_follower.remove(&(follower.to, pid));
        }
        Some(machine)
    }

    /// The machine listens at `address`. Another record at that address
    /// (a process that ended and is not yet reaped) no longer receives
    /// what comes from there.
    pub(super) fn confirm(&mut self, pid: u32, address: Address) {
        let Some(machine) = self.machines.get_mut(&pid) else {
            return;
        };
        self.by_port.remove(&(machine.port(), pid));
        if let Some(old) = machine.address.replace(address) {
            if self.by_address.get(&old) == Some(&pid) {
                self.by_address.remove(&old);
            }
        }
        self.by_port.insert((machine.port(), pid));
        if let Some(start) = machine.start {
            self.unconfirmed.remove(&(start, pid));
        }
        self.by_address.insert(address, pid);
    }

    /// The machine that said it listens at `address`.
    pub(super) fn at(&self, address: Address) -> Option<u32> {
        self.by_address.get(&address).copied()
    }

    /// The machines on `port`, lowest pid first.
    pub(super) fn on_port(&self, port: u16) -> impl Iterator<Item = u32> + '_ {
        self.by_port
            .range((port, 0)..=(port, u32::MAX))
            .map(|&(_, pid)| pid)
    }

    /// The machines whose parent is `parent`.
    pub(super) fn children_of(&self, parent: Address) -> Vec<u32> {
        self.by_parent
            .range((parent, 0)..=(parent, u32::MAX))
            .map(|&(_, pid)| pid)
            .collect()
    }

    /// Server-parented machines made by `start` that have not said where
    /// they listen.
    pub(super) fn unconfirmed(&self, start: RequestId) -> impl Iterator<Item = &Machine> + '_ {
        self.unconfirmed
            .range((start, 0)..=(start, u32::MAX))
            .filter_map(|(_, pid)| self.machines.get(pid))
    }

    /// Every machine, by port then pid.
    pub(super) fn by_port(&self) -> impl Iterator<Item = &Machine> + '_ {
        self.by_port
            .iter()
            .filter_map(|(_, pid)| self.machines.get(pid))
    }

    /// Every pid.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.machines.keys().copied().collect()
    }

    /// Relays the lifecycle of `pid` to `follower` too, unless it has
    /// [`MAX_FOLLOWERS`] already.
    pub(super) fn add_follower(&mut self, pid: u32, follower: Follower) {
        if let Some(machine) = self.machines.get_mut(&pid) {
            if !machine.followers.contains(&follower) && machine.followers.len() < MAX_FOLLOWERS {
                machine.followers.push(follower);
                self.by_follower.insert((follower.to, pid));
            }
        }
    }

    /// Stops relaying to `to`; how many machines it followed.
    pub(super) fn drop_follower(&mut self, to: Address) -> usize {
        let pids: Vec<u32> = self
            .by_follower
            .range((to, 0)..=(to, u32::MAX))
            .map(|&(_, pid)| pid)
            .collect();
        for pid in &pids {
            self.by_follower.remove(&(to, *pid));
            if let Some(machine) = self.machines.get_mut(pid) {
                machine.followers.retain(|f| f.to != to);
            }
        }
        pids.len()
    }

    /// The sizes of the table and each index, for tests of boundedness.
    #[cfg(test)]
    pub(super) fn sizes(&self) -> [usize; 6] {
        [
            self.machines.len(),
            self.by_address.len(),
            self.by_port.len(),
            self.by_parent.len(),
            self.by_follower.len(),
            self.unconfirmed.len(),
        ]
    }
}
