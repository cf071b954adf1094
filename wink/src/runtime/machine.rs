//! The running machine: the event loop that moves messages between the
//! endpoint, the timers and the state machine, and keeps the lifecycle.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::io;
use std::time::Instant;

use futures_lite::future;
use slog::{info, warn, Logger};

use super::endpoint::{Endpoint, Inbox};
use super::socket::Socket;
use super::Config;
use crate::address::Address;
use crate::hsm::{Context, Effect, Hsm, Machine, MachineError};
use crate::name::MachineName;
use crate::transport::TransportEvent;

/// Who a machine is and where it belongs, as given on its command line.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The machine's name.
    pub name: MachineName,
    /// Its parent's address: lifecycle messages go there.
    pub parent: Address,
    /// Its host's server: `register`, `unregister` and spawns go there.
    pub server: Address,
    /// The arguments after name, address and parent.
    pub args: Vec<String>,
}

/// How a machine's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It exited in order: it asked to, or was asked to stop.
    Exited,
    /// It errored with this message.
    Errored(String),
}

/// A message to send at a time; ordered by time, then by when it was asked
/// for.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: Instant,
    order: u64,
    to: Address,
    message: String,
}

/// A child this machine heard from.
#[derive(Debug)]
struct Child {
    name: String,
    server: Address,
    last_heard: Instant,
}

/// A spawn request not yet answered by the child's `started`.
#[derive(Debug)]
struct Spawning {
    server: Address,
    name: String,
    asked: Instant,
}

/// The lifecycle messages a child sends its parent. A machine without a
/// receiver for one of them ignores it instead of erroring.
const LIFECYCLE: [&str; 4] = ["started", "pulsed", "errored", "exited"];

struct Runner<'a, M: Machine, S: Socket> {
    endpoint: &'a mut Endpoint<S>,
    hsm: Hsm<M>,
    cx: Context<M>,
    config: Config,
    log: Logger,
    /// `<address> <name>`, the start of every log line.
    who: String,
    identity: Identity,
    scheduled: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    children: HashMap<Address, Child>,
    /// Spawn requests not yet answered by `started`, oldest first.
    spawning: Vec<Spawning>,
    next_pulse: Instant,
    next_heartbeat_check: Instant,
    ending: Option<Ending>,
    inbox: Inbox,
    effects: Vec<Effect>,
    /// Children reported lost: their lifecycle messages are not delivered.
    written_off: HashSet<Address>,
}

/// Runs `machine` on `endpoint` until it exits, errors, or `stop` completes
/// (a signal, say). Sends `started` and `register` first, and `errored`,
/// `exited`, `unregister` and stop requests for its children last, waiting
/// up to [`Config::linger`] for those to be acknowledged.
pub async fn run_machine<M: Machine, S: Socket>(
    hsm: Hsm<M>,
    endpoint: &mut Endpoint<S>,
    identity: Identity,
    config: Config,
    log: Logger,
    stop: impl Future<Output = ()>,
) -> io::Result<Ending> {
    let now = Instant::now();
    let me = endpoint.local_addr();
    let mut cx = Context::new(
        me,
        identity.name.clone(),
        identity.parent,
        identity.server,
        identity.args.clone(),
        log.clone(),
        now,
    );
    cx.set_log_steps(config.log_messages);
    let mut runner = Runner {
        who: format!("{me} {}", identity.name),
        endpoint,
        hsm,
        cx,
        next_pulse: now + config.pulse,
        next_heartbeat_check: now + config.heartbeat_timeout,
        config,
        log,
        identity,
        scheduled: BinaryHeap::new(),
        order: 0,
        children: HashMap::new(),
        spawning: Vec::new(),
        ending: None,
        inbox: Inbox::default(),
        effects: Vec::new(),
        written_off: HashSet::new(),
    };
    runner.start();
    let mut stop = std::pin::pin!(stop);
    while runner.ending.is_none() {
        let deadline = runner.next_deadline();
        // `or` polls its first future first: the stop request goes there,
        // so a busy socket cannot starve it.
        let woke = future::or(
            async {
                stop.as_mut().await;
                Ok(true)
            },
            async { runner.endpoint.wait(Some(deadline)).await.map(|()| false) },
        )
        .await?;
        if woke {
            info!(runner.log, "{} stopping", runner.who);
            runner.ending = Some(Ending::Exited);
            break;
        }
        runner.turn(Instant::now())?;
    }
    runner.finish().await
}

impl<M: Machine, S: Socket> Runner<'_, M, S> {
    fn start(&mut self) {
        info!(self.log, "{} started", self.who);
        let name = self.identity.name.to_string();
        self.send(self.identity.parent, &format!("started {name}"));
        self.send(
            self.identity.server,
            &format!("register {name} {}", std::process::id()),
        );
        let result = self.hsm.start(&mut self.cx);
        self.after_handler(result);
    }

    fn next_deadline(&self) -> Instant {
        let mut deadline = self.next_pulse.min(self.next_heartbeat_check);
        if let Some(at) = self.endpoint.next_deadline() {
            deadline = deadline.min(at);
        }
        if let Some(Reverse(first)) = self.scheduled.peek() {
            deadline = deadline.min(first.at);
        }
        deadline
    }

    /// One turn of the loop: read what arrived, then do what is due.
    fn turn(&mut self, now: Instant) -> io::Result<()> {
        self.cx.set_now(now);
        // The inbox is taken out while its messages are handled, since the
        // handlers send through the endpoint; its buffers are kept.
        let mut inbox = std::mem::take(&mut self.inbox);
        inbox.clear();
        let received = self.endpoint.receive_ready(now, &mut inbox);
        for i in 0..inbox.len() {
            if self.ending.is_some() {
                break;
            }
            if let Some((from, text)) = inbox.get(i) {
                self.deliver(from, text);
            }
        }
        self.inbox = inbox;
        received?;
        self.endpoint.handle_timeout(now)?;
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                TransportEvent::GaveUp { to, seq, message } => warn!(
                    self.log,
                    "{} gave up on message {} to {}: {}",
                    self.who,
                    seq,
                    Address::from(to),
                    message
                ),
                TransportEvent::PeerRestarted { peer, .. } => {
                    info!(
                        self.log,
                        "{} peer {} restarted",
                        self.who,
                        Address::from(peer)
                    )
                }
            }
        }
        while self.ending.is_none() && self.scheduled.peek().is_some_and(|Reverse(s)| s.at <= now) {
            if let Some(Reverse(due)) = self.scheduled.pop() {
                self.send(due.to, &due.message);
            }
        }
        if now >= self.next_pulse {
            self.next_pulse = now + self.config.pulse;
            let name = self.identity.name.to_string();
            self.send(self.identity.parent, &format!("pulsed {name}"));
        }
        if now >= self.next_heartbeat_check {
            self.check_heartbeats(now);
        }
        Ok(())
    }

    /// Hands one message to the machine, after the lifecycle bookkeeping.
    fn deliver(&mut self, from: Address, text: &str) {
        if self.config.log_messages {
            info!(self.log, "{} < {} {}", self.who, from, text);
        }
        let mut words = text.split_ascii_whitespace();
        let word = words.next().unwrap_or("");
        let now = self.cx.now();
        match word {
            // Only a new process says `started`: one at an address written
            // off before is a new child (a restart on a fixed port).
            "started" => {
                self.written_off.remove(&from);
                let name = words.next().unwrap_or("");
                match self.children.get_mut(&from) {
                    Some(child) => child.last_heard = now,
                    None => {
                        // A child is a machine this one asked a server for;
                        // anyone else saying `started` is just a message.
                        if let Some(server) = self.take_spawning(name) {
                            let name = name.to_owned();
                            let child = Child {
                                name,
                                server,
                                last_heard: now,
                            };
                            self.children.insert(from, child);
                        }
                    }
                }
            }
            _ if LIFECYCLE.contains(&word) && self.written_off.contains(&from) => {
                // Reported lost already; whatever it says now is too late.
                return;
            }
            "pulsed" | "errored" => {
                if let Some(child) = self.children.get_mut(&from) {
                    child.last_heard = now;
                }
            }
            "exited" => {
                self.children.remove(&from);
            }
            // The server's answer to a `stop` the runtime sent (for a child
            // written off, or while exiting); the machine never asked.
            "stopping" | "stopped" if self.is_server(from) => return,
            "error" if self.is_server(from) => {
                // `error <request> …`, the request word maybe quoted
                // (`` `start`: ``) and followed by a colon.
                let request = words
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c| c == '`' || c == ':');
                if request == "stop" {
                    return;
                }
                // A refused `start` is a child that never started: tell the
                // machine so, with the server's reason, like any lost child.
                if request == "start" {
                    if let Some(i) = self.spawning.iter().position(|s| s.server == from) {
                        let name = self.spawning[i].name.clone();
                        let reason = words.collect::<Vec<_>>().join(" ");
                        self.child_lost(None, name, &format!("not started: {reason}"));
                        return;
                    }
                }
            }
            "died" if self.is_server(from) => {
                // `died <address> <name> <reason>`; the address is `-` for a
                // child that died before it registered.
                let child = words.next().unwrap_or("");
                let name = words.next().unwrap_or("").to_owned();
                let reason = words.collect::<Vec<_>>().join(" ");
                match child.parse::<Address>() {
                    Ok(child) => self.child_lost(Some(child), name, &reason),
                    Err(_) if child == "-" && !name.is_empty() => {
                        self.child_lost(None, name, &reason)
                    }
                    Err(_) => warn!(
                        self.log,
                        "{} ignoring malformed `{}` from {}", self.who, text, from
                    ),
                }
                return;
            }
            _ => {}
        }
        self.dispatch(from, text, LIFECYCLE.contains(&word));
    }

    fn dispatch(&mut self, from: Address, text: &str, lifecycle: bool) {
        self.cx.set_sender(from);
        match self.hsm.dispatch(&mut self.cx, text) {
            Err(MachineError::Unhandled { .. }) if lifecycle => {
                self.after_handler(Ok(()));
            }
            result => self.after_handler(result),
        }
    }

    /// A child is gone without saying so: tell the machine as if the child
    /// had said `errored <name> <reason>` and `exited <name>`. `child` is
    /// `None` for one that died before it was heard from.
    fn child_lost(&mut self, child: Option<Address>, name: String, reason: &str) {
        let known = match child {
            // Reported already (by heartbeat, say): once is enough.
            Some(child) if self.written_off.contains(&child) => false,
            Some(child) => {
                self.children.remove(&child).is_some() || self.take_spawning(&name).is_some()
            }
            // Died before registering: a spawn not yet answered, or a child
            // that said `started` but not `register`.
            None => {
                self.take_spawning(&name).is_some() || {
                    let heard = self
                        .children
                        .iter()
                        .find(|(_, c)| c.name == name)
                        .map(|(a, _)| *a);
                    heard.is_some_and(|a| self.children.remove(&a).is_some())
                }
            }
        };
        if !known {
            // Not a child we know of (already exited, or never ours).
            return;
        }
        let sender = child.unwrap_or(self.identity.server);
        if let Some(child) = child {
            self.written_off.insert(child);
        }
        warn!(
            self.log,
            "{} child {} {} lost: {}", self.who, sender, name, reason
        );
        self.dispatch(sender, &format!("errored {name} {reason}"), true);
        if self.ending.is_none() {
            self.dispatch(sender, &format!("exited {name}"), true);
        }
    }

    fn check_heartbeats(&mut self, now: Instant) {
        let timeout = self.config.heartbeat_timeout;
        let silent: Vec<(Address, String)> = self
            .children
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_heard) >= timeout)
            .map(|(a, c)| (*a, c.name.clone()))
            .collect();
        for (child, name) in silent {
            if self.ending.is_some() {
                break;
            }
            // Written off: make sure it does not come back (it may only be
            // frozen or cut off), then report it lost.
            if let Some(server) = self.children.get(&child).map(|c| c.server) {
                self.send(server, &format!("stop {}", child.port()));
            }
            self.child_lost(Some(child), name, "heartbeat timeout");
        }
        // A spawn unanswered for as long is a child that never started.
        while let Some(i) = self
            .spawning
            .iter()
            .position(|s| now.duration_since(s.asked) >= timeout)
        {
            if self.ending.is_some() {
                break;
            }
            let name = self.spawning[i].name.clone();
            self.child_lost(None, name, "did not start within the heartbeat timeout");
        }
        let oldest = self
            .children
            .values()
            .map(|c| c.last_heard)
            .chain(self.spawning.iter().map(|s| s.asked))
            .min()
            .unwrap_or(now);
        self.next_heartbeat_check = (oldest + timeout).max(now + timeout / 8);
    }

    fn is_server(&self, from: Address) -> bool {
        from == self.identity.server
            || self.children.values().any(|c| c.server == from)
            || self.spawning.iter().any(|s| s.server == from)
    }

    fn take_spawning(&mut self, name: &str) -> Option<Address> {
        let i = self.spawning.iter().position(|s| s.name == name)?;
        Some(self.spawning.remove(i).server)
    }

    /// Carries out what the last handler asked for, or records its error.
    fn after_handler(&mut self, result: Result<(), MachineError>) {
        // Effects are few per handler (often none or one); taking them out
        // lets `apply` use the endpoint.
        let mut effects = std::mem::take(&mut self.effects);
        effects.extend(self.cx.drain_effects());
        for effect in effects.drain(..) {
            self.apply(effect);
        }
        self.effects = effects;
        if let Err(e) = result {
            self.ending.get_or_insert(Ending::Errored(e.to_string()));
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Send { to, message } => self.send(to, &message),
            Effect::SendAt { at, to, message } => {
                self.order += 1;
                self.scheduled.push(Reverse(Scheduled {
                    at,
                    order: self.order,
                    to,
                    message,
                }));
            }
            Effect::Spawn {
                name,
                address,
                args,
            } => {
                let me = self.endpoint.local_addr();
                let server = match address {
                    Some(a)
                        if !a.ip().is_loopback()
                            && !a.ip().is_unspecified()
                            && a.ip() != me.ip() =>
                    {
                        a.with_port(self.identity.server.port())
                    }
                    _ => self.identity.server,
                };
                let at = match address {
                    Some(a) if a.ip().is_unspecified() || a.ip().is_loopback() => {
                        format!(":{}", a.port())
                    }
                    Some(a) => a.to_string(),
                    None => ":0".to_owned(),
                };
                let mut request = format!("start {name} {at}");
                for arg in &args {
                    request.push(' ');
                    request.push_str(arg);
                }
                self.spawning.push(Spawning {
                    server,
                    name: name.to_string(),
                    asked: self.cx.now(),
                });
                self.send(server, &request);
            }
            Effect::Exit => {
                self.ending.get_or_insert(Ending::Exited);
            }
        }
    }

    fn send(&mut self, to: Address, message: &str) {
        if self.config.log_messages {
            info!(self.log, "{} > {} {}", self.who, to, message);
        }
        if let Err(e) = self.endpoint.send(to, message) {
            self.ending
                .get_or_insert(Ending::Errored(format!("cannot send to {to}: {e}")));
        }
    }

    /// The end: error report, exit actions, `exited`, `unregister`, stop
    /// the children, and wait a little for all of it to be acknowledged.
    async fn finish(mut self) -> io::Result<Ending> {
        let ending = self.ending.clone().unwrap_or(Ending::Exited);
        let name = self.identity.name.to_string();
        if let Ending::Errored(message) = &ending {
            info!(self.log, "{} errored: {}", self.who, message);
            self.send(self.identity.parent, &format!("errored {name} {message}"));
        }
        let stopped = self.hsm.stop(&mut self.cx);
        if let Err(e) = stopped {
            warn!(self.log, "{} while exiting: {}", self.who, e);
        }
        // Exit actions may still send; they cannot exit or error twice.
        let effects: Vec<Effect> = self.cx.drain_effects().collect();
        for effect in effects {
            if matches!(effect, Effect::Send { .. }) {
                self.apply(effect);
            }
        }
        info!(self.log, "{} exited", self.who);
        self.send(self.identity.parent, &format!("exited {name}"));
        self.send(self.identity.server, "unregister");
        let children: Vec<(Address, Address)> =
            self.children.iter().map(|(a, c)| (*a, c.server)).collect();
        for (child, server) in children {
            self.send(server, &format!("stop {}", child.port()));
        }
        self.endpoint.settle(self.config.linger).await?;
        Ok(ending)
    }
}
