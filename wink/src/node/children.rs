//! A node's children: spawns in flight by request id, children by address,
//! children written off (with their `stop` retries), and spawns given up on
//! whose `started` may still come. Every table is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::control::{ExitReason, Reply, RequestId};
use crate::name::MachineName;

/// Most spawns in flight at once; a spawn beyond is reported unstarted.
pub const MAX_SPAWNING: usize = 1024;
/// Most written-off children and late spawns remembered; the oldest go
/// first.
pub const MAX_WRITTEN_OFF: usize = 1024;
/// For how many heartbeat timeouts a written-off child's `stop` is retried
/// (and a late spawn's `started` awaited).
pub const WRITE_OFF_TIMEOUTS: u32 = 10;

/// A child heard from.
#[derive(Debug)]
struct Child {
    name: MachineName,
    server: Address,
    /// The spawn's request id.
    start: RequestId,
    last_heard: Instant,
}

/// A spawn not yet answered by the child's `started`.
#[derive(Debug)]
struct Spawning {
    name: MachineName,
    server: Address,
    asked: Instant,
}

/// A child reported lost whose server has not yet answered its `stop`.
#[derive(Debug)]
struct WrittenOff {
    server: Address,
    id: RequestId,
    /// Doubles from a pulse up to the heartbeat timeout: while a partition
    /// lasts, the retries do not pile up.
    interval: Duration,
    next_retry: Instant,
    until: Instant,
    /// The server said `stopping`: no more retries, but `stopped` is
    /// still expected.
    answered: bool,
}

/// A spawn reported unstarted that may still say `started`.
#[derive(Debug)]
struct Late {
    name: MachineName,
    server: Address,
    until: Instant,
}

/// A child gone without its own `exited`, to report to the receivers.
#[derive(Debug)]
pub struct Lost {
    /// Who the stand-ins come from: the child, or its server for one that
    /// never said `started`.
    pub from: Address,
    /// The child's name.
    pub name: MachineName,
    /// The `errored` text.
    pub why: String,
    /// The `exited` reason.
    pub reason: ExitReason,
    /// A `stop` to send: server, request id, port.
    pub stop: Option<(Address, RequestId, u16)>,
    /// The id of the spawn that made it.
    pub start: Option<RequestId>,
}

/// What a `started` is.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// A spawn of ours: now a child.
    Child,
    /// A spawn of ours already reported unstarted: to be stopped.
    Late {
        /// Its server.
        server: Address,
    },
    /// Nobody we spawned.
    Stranger,
}

/// What a `died` is.
#[derive(Debug)]
pub enum Died {
    /// A child or spawn of ours, now lost.
    Lost(Lost),
    /// A child already written off, now seen gone.
    Gone,
    /// Nobody of ours, or not from its server.
    Stranger,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub struct Children {
    timeout: Duration,
    retry: Duration,
    alive: BTreeMap<Address, Child>,
    spawning: BTreeMap<RequestId, Spawning>,
    written_off: BTreeMap<Address, WrittenOff>,
    stop_ids: BTreeMap<RequestId, Address>,
    late: BTreeMap<RequestId, Late>,
    /// Stops asked of live children's servers (a supervisor's), by request
    /// id: whose server.
    asked: BTreeMap<RequestId, Address>,
}

impl Children {
    /// Children written off after `timeout` of silence, their stops retried
    /// every `retry`.
    pub fn new(timeout: Duration, retry: Duration) -> Self {
        Children {
            timeout,
            retry,
            alive: BTreeMap::new(),
            spawning: BTreeMap::new(),
            written_off: BTreeMap::new(),
            stop_ids: BTreeMap::new(),
            late: BTreeMap::new(),
            asked: BTreeMap::new(),
        }
    }

    /// Children heard from.
    pub fn alive(&self) -> usize {
        self.alive.len()
    }

    /// The addresses of the children heard from, with their names.
    pub fn addresses(&self) -> impl Iterator<Item = (Address, &MachineName)> + '_ {
        self.alive.iter().map(|(a, c)| (*a, &c.name))
    }

    /// Spawns in flight.
    pub fn spawning(&self) -> usize {
        self.spawning.len()
    }

    /// Entries in every table.
    pub fn table_sizes(&self) -> usize {
        self.alive.len()
            + self.spawning.len()
            + self.written_off.len()
            + self.stop_ids.len()
            + self.late.len()
            + self.asked.len()
    }

    /// The child spawn `start` made, if alive: its address and server.
    pub fn find(&self, start: RequestId) -> Option<(Address, Address)> {
        self.alive
            .iter()
            .find(|(_, c)| c.start == start)
            .map(|(a, c)| (*a, c.server))
    }

    /// A `stop` (request `id`) asked of `server` for a live child: its
    /// replies are ours. The oldest such are forgotten past
    /// [`MAX_WRITTEN_OFF`].
    pub fn asked_stop(&mut self, id: RequestId, server: Address) {
        if self.asked.len() >= MAX_WRITTEN_OFF {
            self.asked.pop_first();
        }
        self.asked.insert(id, server);
    }

    /// Gives up on the live child spawn `start` made, which did not exit
    /// when stopped: written off (its stop, request `id`, retried) and
    /// reported lost.
    pub fn abandon(&mut self, now: Instant, start: RequestId, id: RequestId) -> Option<Lost> {
        let (address, _) = self.find(start)?;
        let child = self.alive.remove(&address)?;
        self.write_off(now, address, child.name.clone(), child.server, id);
        Some(Lost {
            from: address,
            name: child.name,
            why: "did not exit within its shutdown time".to_owned(),
            reason: ExitReason::Heartbeat,
            stop: Some((child.server, id, address.port())),
            start: Some(start),
        })
    }

    /// A spawn asked of `server` with request `id`.
    pub fn spawn(
        &mut self,
        now: Instant,
        id: RequestId,
        name: MachineName,
        server: Address,
    ) -> Result<(), String> {
        if self.spawning.len() >= MAX_SPAWNING {
            return Err(format!(
                "too many spawns in flight (at most {MAX_SPAWNING})"
            ));
        }
        self.spawning.insert(
            id,
            Spawning {
                name,
                server,
                asked: now,
            },
        );
        Ok(())
    }

    /// Whether `id` is a request of ours to `server` still expecting
    /// replies.
    pub fn knows_request(&self, id: RequestId, server: Address) -> bool {
        self.spawning.get(&id).is_some_and(|s| s.server == server)
            // `starting` may come after the child's own `started`.
            || self
                .alive
                .values()
                .any(|c| c.start == id && c.server == server)
            || self.asked.get(&id) == Some(&server)
            || self
                .stop_ids
                .get(&id)
                .and_then(|a| self.written_off.get(a))
                .is_some_and(|w| w.server == server)
    }

    /// A server's reply: to a spawn (`starting`, `error`) or to a `stop`
    /// (`stopping`, `stopped`, `error`).
    pub fn on_reply(&mut self, _now: Instant, from: Address, reply: &Reply) -> Option<Lost> {
        let id = reply.id()?;
        if self.spawning.get(&id).is_some_and(|s| s.server == from) {
            if let Reply::Error { reason, .. } = reply {
                let spawn = self.spawning.remove(&id)?;
                return Some(Lost {
                    from,
                    name: spawn.name,
                    why: format!("not started: {reason}"),
                    reason: ExitReason::Unstarted,
                    stop: None,
                    start: Some(id),
                });
            }
            return None;
        }
        if self.asked.get(&id) == Some(&from) {
            if !matches!(reply, Reply::Stopping { .. }) {
                self.asked.remove(&id);
            }
            return None;
        }
        let address = *self.stop_ids.get(&id)?;
        let entry = self.written_off.get_mut(&address)?;
        if entry.server != from {
            return None;
        }
        match reply {
            // `error`: the server knows no machine on that port. Most often
            // it is gone; but a child that had not registered yet is not
            // known by its port either, so the entry stays: a sign of life
            // from it brings another stop ([`Children::still_alive`]).
            Reply::Stopping { .. } | Reply::Error { .. } => entry.answered = true,
            Reply::Stopped { .. } => {
                self.written_off.remove(&address);
                self.stop_ids.remove(&id);
            }
            _ => {}
        }
        None
    }

    /// A lifecycle word from `from`, which is no child: if it is a child
    /// written off whose server answered the last stop, it still runs, so
    /// another stop is due (at most once per retry interval): returns it.
    pub fn still_alive(
        &mut self,
        now: Instant,
        from: Address,
    ) -> Option<(Address, RequestId, u16)> {
        let retry = self.retry;
        let entry = self.written_off.get_mut(&from)?;
        if !entry.answered || now < entry.next_retry {
            return None;
        }
        entry.next_retry = now + retry;
        Some((entry.server, entry.id, from.port()))
    }

    /// `started <name> <start>` from `from`.
    pub fn on_started(
        &mut self,
        now: Instant,
        from: Address,
        name: &MachineName,
        start: Option<RequestId>,
    ) -> Started {
        let Some(id) = start else {
            return Started::Stranger;
        };
        if self.spawning.get(&id).is_some_and(|s| &s.name == name) {
            let Some(spawn) = self.spawning.remove(&id) else {
                return Started::Stranger;
            };
            // A new child on the port of one written off: that one is
            // gone, and its stop must not hit the new one.
            if let Some(old) = self.written_off.remove(&from) {
                self.stop_ids.remove(&old.id);
            }
            self.alive.insert(
                from,
                Child {
                    name: spawn.name,
                    server: spawn.server,
                    start: id,
                    last_heard: now,
                },
            );
            return Started::Child;
        }
        if self.late.get(&id).is_some_and(|l| &l.name == name) {
            if let Some(late) = self.late.remove(&id) {
                return Started::Late {
                    server: late.server,
                };
            }
        }
        Started::Stranger
    }

    /// `pulsed` or `errored` from `from`: true if it is a child of ours.
    pub fn heard(&mut self, now: Instant, from: Address, name: &MachineName) -> bool {
        match self.alive.get_mut(&from) {
            Some(child) if &child.name == name => {
                child.last_heard = now;
                true
            }
            _ => false,
        }
    }

    /// `upgraded <name> <from>` from `from`: the child `from` named `old`
    /// is called `name` now; the spawn's id if it was a child of ours.
    pub fn upgraded(
        &mut self,
        now: Instant,
        from: Address,
        old: &MachineName,
        name: &MachineName,
    ) -> Option<RequestId> {
        let child = self.alive.get_mut(&from).filter(|c| &c.name == old)?;
        child.name = name.clone();
        child.last_heard = now;
        Some(child.start)
    }

    /// `exited` from `from`: the spawn's id if it was a child of ours.
    pub fn exited(&mut self, from: Address, name: &MachineName) -> Option<RequestId> {
        if self.alive.get(&from).is_some_and(|c| &c.name == name) {
            self.alive.remove(&from).map(|c| c.start)
        } else {
            None
        }
    }

    /// The spawn id of the child at `from`, if it is one.
    pub fn start_of(&self, from: Address) -> Option<RequestId> {
        self.alive.get(&from).map(|c| c.start)
    }

    /// `died <start> <address> <name> <reason>` from `from`.
    pub fn died(
        &mut self,
        from: Address,
        start: Option<RequestId>,
        address: Option<Address>,
        name: &MachineName,
        reason: ExitReason,
    ) -> Died {
        if let Some(address) = address {
            if self
                .alive
                .get(&address)
                .is_some_and(|c| c.server == from && &c.name == name)
            {
                let start = self.alive.remove(&address).map(|c| c.start);
                return Died::Lost(Lost {
                    from: address,
                    name: name.clone(),
                    why: describe(reason),
                    reason,
                    stop: None,
                    start,
                });
            }
            if self
                .written_off
                .get(&address)
                .is_some_and(|w| w.server == from)
            {
                if let Some(w) = self.written_off.remove(&address) {
                    self.stop_ids.remove(&w.id);
                }
                return Died::Gone;
            }
        }
        if let Some(id) = start {
            if self
                .spawning
                .get(&id)
                .is_some_and(|s| s.server == from && &s.name == name)
            {
                self.spawning.remove(&id);
                return Died::Lost(Lost {
                    from,
                    name: name.clone(),
                    why: describe(reason),
                    reason,
                    stop: None,
                    start: Some(id),
                });
            }
            if self
                .late
                .get(&id)
                .is_some_and(|l| l.server == from && &l.name == name)
            {
                self.late.remove(&id);
                return Died::Gone;
            }
        }
        Died::Stranger
    }

    /// Writes off the child at `address`: its stop (request `id`) is
    /// retried until its server answers.
    pub fn write_off(
        &mut self,
        now: Instant,
        address: Address,
        _name: MachineName,
        server: Address,
        id: RequestId,
    ) {
        if self.written_off.len() >= MAX_WRITTEN_OFF {
            let oldest = self
                .written_off
                .iter()
                .min_by_key(|(_, w)| w.until)
                .map(|(a, w)| (*a, w.id));
            if let Some((a, id)) = oldest {
                self.written_off.remove(&a);
                self.stop_ids.remove(&id);
            }
        }
        if let Some(old) = self.written_off.insert(
            address,
            WrittenOff {
                server,
                id,
                interval: self.retry,
                next_retry: now + self.retry,
                until: now + self.timeout * WRITE_OFF_TIMEOUTS,
                answered: false,
            },
        ) {
            self.stop_ids.remove(&old.id);
        }
        self.stop_ids.insert(id, address);
    }

    /// Children silent for the timeout, written off (a stop for each, with
    /// an id from `next_id`), and spawns unanswered as long; both reported
    /// lost. Forgets written-off children and late spawns past their time.
    pub fn silent(&mut self, now: Instant, mut next_id: impl FnMut() -> RequestId) -> Vec<Lost> {
        let timeout = self.timeout;
        let mut lost = Vec::new();
        let silent: Vec<Address> = self
            .alive
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_heard) >= timeout)
            .map(|(a, _)| *a)
            .collect();
        for address in silent {
            let Some(child) = self.alive.remove(&address) else {
                continue;
            };
            let id = next_id();
            self.write_off(now, address, child.name.clone(), child.server, id);
            lost.push(Lost {
                from: address,
                name: child.name,
                why: "heartbeat timeout".to_owned(),
                reason: ExitReason::Heartbeat,
                stop: Some((child.server, id, address.port())),
                start: Some(child.start),
            });
        }
        let unstarted: Vec<RequestId> = self
            .spawning
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.asked) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in unstarted {
            let Some(spawn) = self.spawning.remove(&id) else {
                continue;
            };
            if self.late.len() >= MAX_WRITTEN_OFF {
                let oldest = self
                    .late
                    .iter()
                    .min_by_key(|(_, l)| l.until)
                    .map(|(i, _)| *i);
                if let Some(oldest) = oldest {
                    self.late.remove(&oldest);
                }
            }
            self.late.insert(
                id,
                Late {
                    name: spawn.name.clone(),
                    server: spawn.server,
                    until: now + timeout * WRITE_OFF_TIMEOUTS,
                },
            );
            lost.push(Lost {
                from: spawn.server,
                name: spawn.name,
                why: "did not start within the heartbeat timeout".to_owned(),
                reason: ExitReason::Unstarted,
                stop: None,
                start: Some(id),
            });
        }
        let expired: Vec<(Address, RequestId)> = self
            .written_off
            .iter()
            .filter(|(_, w)| now >= w.until)
            .map(|(a, w)| (*a, w.id))
            .collect();
        for (address, id) in expired {
            self.written_off.remove(&address);
            self.stop_ids.remove(&id);
        }
        self.late.retain(|_, l| now < l.until);
        lost
    }

    /// The stops due for a retry at `now`: server, id, port.
    pub fn due_stops(&mut self, now: Instant) -> Vec<(Address, RequestId, u16)> {
        let most = self.timeout.max(self.retry);
        self.written_off
            .iter_mut()
            .filter(|(_, w)| !w.answered && w.next_retry <= now)
            .map(|(address, w)| {
                w.interval = (w.interval * 2).min(most);
                w.next_retry = now + w.interval;
                (w.server, w.id, address.port())
            })
            .collect()
    }

    /// The earliest time something is due: a child's or a spawn's
    /// timeout, a stop retry, an expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.timeout;
        let alive = self.alive.values().map(|c| c.last_heard + timeout);
        let spawning = self.spawning.values().map(|s| s.asked + timeout);
        let written_off = self.written_off.values().map(|w| {
            if w.answered {
                w.until
            } else {
                w.next_retry.min(w.until)
            }
        });
        let late = self.late.values().map(|l| l.until);
        alive.chain(spawning).chain(written_off).chain(late).min()
    }

    /// On exit: a stop for every child alive and every written-off child
    /// whose server has not answered, into `out`. Forgets them all.
    pub fn stop_all(
        &mut self,
        _now: Instant,
        mut next_id: impl FnMut() -> RequestId,
        out: &mut Vec<(Address, RequestId, u16)>,
    ) {
        for (address, child) in std::mem::take(&mut self.alive) {
            out.push((child.server, next_id(), address.port()));
        }
        for (address, w) in std::mem::take(&mut self.written_off) {
            if !w.answered {
                out.push((w.server, w.id, address.port()));
            }
        }
        self.stop_ids.clear();
        self.spawning.clear();
        self.late.clear();
    }
}

/// The `errored` text for a death a server reported.
pub fn describe(reason: ExitReason) -> String {
    match reason {
        ExitReason::Signal(n) => format!("killed by signal {n}{}", signal_name(n)),
        ExitReason::Status(n) => format!("exit status {n}"),
        ExitReason::Unknown => "ended without exiting in order (how is unknown)".to_owned(),
        other => other.to_string(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}
