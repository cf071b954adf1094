//! Unit tests of the server core, one behaviour each, on a fake clock.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

const GRACE: Duration = Duration::from_secs(5);

fn addr(text: &str) -> Address {
    text.parse().unwrap()
}

fn me() -> Address {
    addr("127.0.0.1:42000")
}

/// A `wink` command (or any requester that is no machine).
fn cli() -> Address {
    addr("127.0.0.1:50000")
}

fn name(text: &str) -> MachineName {
    text.parse().unwrap()
}

/// A core on a fake clock, and helpers that read its effects.
struct Fixture {
    core: ServerCore,
    now: Instant,
    /// The addresses the core said to forget, kept apart from the other
    /// effects.
    forgotten: Vec<Address>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(ServerConfig::default())
    }

    fn with(config: ServerConfig) -> Self {
        let now = Instant::now();
        Fixture {
            core: ServerCore::new(me(), config, crate::log::discard(), now),
            now,
            forgotten: Vec::new(),
        }
    }

    fn later(&mut self, by: Duration) {
        self.now += by;
        self.core.handle_timeout(self.now);
    }

    fn msg(&mut self, from: Address, text: &str) {
        self.core.handle_message(self.now, from, text);
    }

    fn effects(&mut self) -> Vec<ServerEffect> {
        let mut effects = Vec::new();
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                ServerEffect::Forget { address } => self.forgotten.push(address),
                other => effects.push(other),
            }
        }
        effects
    }

    /// Every effect, which must all be sends, as `(to, text)`.
    fn sends(&mut self) -> Vec<(Address, String)> {
        self.effects()
            .into_iter()
            .map(|effect| match effect {
                ServerEffect::Send { to, text } => (to, text),
                other => panic!("expected only sends, got {other:?}"),
            })
            .collect()
    }

    /// Every effect, which must be one send to `to`: its text.
    fn reply(&mut self, to: Address) -> String {
        match self.sends().as_slice() {
            [(at, text)] if *at == to => text.clone(),
            other => panic!("expected one reply to {to}, got {other:?}"),
        }
    }

    /// Sends `start`, expects exactly one spawn: its token and the effect.
    fn start(&mut self, from: Address, text: &str) -> (SpawnToken, ServerEffect) {
        self.msg(from, text);
        match self.effects().as_slice() {
            [spawn @ ServerEffect::Spawn { token, .. }] => (*token, spawn.clone()),
            other => panic!("expected one spawn for `{text}`, got {other:?}"),
        }
    }

    /// Starts a machine from `from` at `port` with `parent`, forks it as
    /// `pid` and registers it from `127.0.0.1:<port>`.
    fn run(&mut self, from: Address, id: u64, machine: &str, port: u16, parent: &str, pid: u32) {
        let (token, _) = self.start(from, &format!("start {id} {machine} :{port} {parent}"));
        self.core.handle_spawned(self.now, token, Ok(pid));
        assert_eq!(self.reply(from), format!("starting {id} {pid}"));
        let at = me().with_port(port);
        let parent = if parent == "server" { me() } else { from };
        self.msg(at, &format!("register 1 {machine} {pid} {parent} {id}"));
        assert_eq!(self.reply(at), "registered 1");
    }

    fn exited(&mut self, pid: u32, how: ProcessExit) {
        self.core.handle_exited(self.now, pid, how);
    }
}

fn signal(pid: u32, signal: Signal) -> ServerEffect {
    ServerEffect::Signal { pid, signal }
}

fn send(to: Address, text: &str) -> ServerEffect {
    ServerEffect::Send {
        to,
        text: text.to_owned(),
    }
}

#[test]
fn a_start_is_forked_with_the_requester_as_parent() {
    let mut s = Fixture::new();
    let (token, spawn) = s.start(cli(), "start 7 family/Child#Bob :7000 requester a b");
    assert_eq!(
        spawn,
        ServerEffect::Spawn {
            token,
            name: name("family/Child#Bob"),
            address: addr("127.0.0.1:7000"),
            parent: cli(),
            start: RequestId(7),
            args: vec!["a".into(), "b".into()],
        }
    );
    s.core.handle_spawned(s.now, token, Ok(41977));
    assert_eq!(s.reply(cli()), "starting 7 41977");
    assert_eq!(s.core.machines(), 1);
    assert_eq!(s.core.stats().spawned, 1);
}

#[test]
fn a_refused_start_repeats_the_request_id() {
    let mut s = Fixture::new();
    let (token, _) = s.start(cli(), "start 7 family/Missing :0 requester");
    s.core
        .handle_spawned(s.now, token, Err("`family/Missing`: no executable".into()));
    assert_eq!(
        s.reply(cli()),
        "error 7 start `family/Missing`: no executable"
    );
    s.msg(cli(), "start 8 echo/Echo :42000 requester");
    assert_eq!(
        s.reply(cli()),
        "error 8 start 127.0.0.1:42000 is where this server listens"
    );
    s.core.shutdown(s.now);
    s.msg(cli(), "start 9 echo/Echo :0 requester");
    assert_eq!(s.reply(cli()), "error 9 start the server is shutting down");
    assert_eq!(s.core.stats().refused, 3);
    assert_eq!(s.core.machines(), 0);
}

#[test]
fn a_bad_request_gets_one_error_reply() {
    let mut s = Fixture::new();
    s.msg(cli(), "launch x/y");
    assert_eq!(
        s.reply(cli()),
        "error - launch unknown request `launch`; expected one of start, stop, list, register, unregister"
    );
    s.msg(cli(), "start 3 ../../bin/sh :0 requester");
    assert!(s.reply(cli()).starts_with("error 3 start machine name"));
    s.msg(cli(), "stop 4 http");
    assert_eq!(
        s.reply(cli()),
        "error 4 stop `http` is not a port (0-65535)"
    );
    assert_eq!(s.core.stats().bad_requests, 3);
}

#[test]
fn an_over_long_request_gets_one_short_error_reply() {
    let mut s = Fixture::new();
    let long = format!("start 5 echo/{} :0 requester", "E".repeat(60_000));
    s.msg(cli(), &long);
    let reply = s.reply(cli());
    assert!(reply.starts_with("error 5 start machine name"), "{reply}");
    assert!(reply.len() < 1200, "{} bytes", reply.len());
    assert!(reply.contains("is 60005 bytes long"), "{reply}");
    assert!(!reply.contains("machine name machine name"), "{reply}");
}

#[test]
fn a_start_beyond_the_limit_is_refused_naming_it() {
    let mut s = Fixture::with(ServerConfig {
        max_machines: 2,
        ..ServerConfig::default()
    });
    let (first, _) = s.start(cli(), "start 1 echo/Echo :0 requester");
    let (_second, _) = s.start(cli(), "start 2 echo/Echo :0 requester");
    // Two forks outstanding count as two machines.
    s.msg(cli(), "start 3 echo/Echo :0 requester");
    assert_eq!(
        s.reply(cli()),
        "error 3 start limit: at most 2 machines on this server (--max-machines)"
    );
    s.core.handle_spawned(s.now, first, Ok(100));
    s.sends();
    s.msg(cli(), "start 4 echo/Echo :0 requester");
    assert!(s
        .reply(cli())
        .starts_with("error 4 start limit: at most 2 machines"));
    // One ends: there is room again.
    s.exited(100, ProcessExit::Status(0));
    s.effects();
    s.start(cli(), "start 5 echo/Echo :0 requester");
}

#[test]
fn a_burst_of_starts_is_paced() {
    let mut s = Fixture::with(ServerConfig {
        starts_per_second: 5,
        ..ServerConfig::default()
    });
    for id in 0..5 {
        s.start(cli(), &format!("start {id} echo/Echo :0 requester"));
    }
    s.msg(cli(), "start 5 echo/Echo :0 requester");
    assert_eq!(
        s.reply(cli()),
        "error 5 start limit: at most 5 starts per second (--max-starts-per-second)"
    );
    s.later(Duration::from_millis(199));
    s.msg(cli(), "start 6 echo/Echo :0 requester");
    assert!(s
        .reply(cli())
        .starts_with("error 6 start limit: at most 5 starts"));
    s.later(Duration::from_millis(1));
    s.start(cli(), "start 7 echo/Echo :0 requester");
}

#[test]
fn kill_after_grace() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.msg(cli(), "stop 2 7000");
    assert_eq!(
        s.effects(),
        [
            signal(100, Signal::Term),
            send(cli(), "stopping 2 7000 5000")
        ]
    );
    assert_eq!(s.core.poll_timeout(), Some(s.now + GRACE));
    // A second stop neither signals again nor moves the deadline: it is
    // told the time left.
    s.later(Duration::from_secs(1));
    s.msg(cli(), "stop 3 :7000 60000");
    assert_eq!(s.reply(cli()), "stopping 3 7000 4000");
    s.later(GRACE - Duration::from_secs(1) - Duration::from_millis(1));
    assert_eq!(s.effects(), []);
    s.later(Duration::from_millis(1));
    assert_eq!(s.effects(), [signal(100, Signal::Kill)]);
    assert_eq!(s.core.poll_timeout(), None);
    s.exited(100, ProcessExit::Signal(9));
    assert_eq!(
        s.sends(),
        [
            (cli(), "died 1 127.0.0.1:7000 echo/Echo signal:9".into()),
            (cli(), "stopped 2 7000".into()),
            (cli(), "stopped 3 7000".into()),
        ]
    );
    assert_eq!(s.core.stats().kills, 1);
}

#[test]
fn a_stop_may_give_its_own_grace_period() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.msg(cli(), "stop 2 7000 250");
    assert_eq!(
        s.effects(),
        [
            signal(100, Signal::Term),
            send(cli(), "stopping 2 7000 250")
        ]
    );
    assert_eq!(
        s.core.poll_timeout(),
        Some(s.now + Duration::from_millis(250))
    );
    s.later(Duration::from_millis(250));
    assert_eq!(s.effects(), [signal(100, Signal::Kill)]);
    // Zero: SIGKILL at once (OTP's brutal_kill).
    s.run(cli(), 3, "echo/Echo", 7001, "requester", 101);
    s.msg(cli(), "stop 4 7001 0");
    assert_eq!(
        s.effects(),
        [signal(101, Signal::Term), send(cli(), "stopping 4 7001 0")]
    );
    assert_eq!(s.core.poll_timeout(), Some(s.now));
    // Longer than an hour is refused.
    s.msg(cli(), "stop 5 7001 3600001");
    assert!(s.reply(cli()).starts_with("error 5 stop "), "refused");
}

#[test]
fn a_machine_that_exits_on_sigterm_is_not_killed() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.msg(cli(), "stop 2 7000");
    s.effects();
    s.msg(addr("127.0.0.1:7000"), "unregister 9");
    s.exited(100, ProcessExit::Status(0));
    assert_eq!(s.reply(cli()), "stopped 2 7000");
    s.later(GRACE);
    assert_eq!(s.effects(), []);
    assert_eq!(s.core.poll_timeout(), None);
}

#[test]
fn a_stop_of_a_port_without_a_machine_is_refused() {
    let mut s = Fixture::new();
    s.msg(cli(), "stop 4 7000");
    assert_eq!(
        s.reply(cli()),
        "error 4 stop no machine started by this server listens on port 7000"
    );
    // A machine that has not said where it listens has no port to stop.
    let (token, _) = s.start(cli(), "start 5 echo/Echo :0 requester");
    s.core.handle_spawned(s.now, token, Ok(100));
    s.sends();
    s.msg(cli(), "stop 6 0");
    assert!(s.reply(cli()).starts_with("error 6 stop no machine"));
}

#[test]
fn stoppers_are_bounded() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    for id in 0..MAX_STOPPERS as u64 {
        s.msg(cli(), &format!("stop {} 7000", 10 + id));
    }
    s.effects();
    s.msg(cli(), "stop 99 7000");
    assert_eq!(
        s.reply(cli()),
        "error 99 stop 16 stop requests already wait for the machine on port 7000"
    );
}

#[test]
fn an_orderly_exit_is_not_reported() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.msg(addr("127.0.0.1:7000"), "unregister 2");
    assert_eq!(s.effects(), [], "unregister has no reply");
    s.exited(100, ProcessExit::Status(1));
    assert_eq!(s.effects(), []);
    assert_eq!(s.core.machines(), 0);
}

#[test]
fn a_forged_unregister_does_not_hide_a_kill() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    // From a stranger: dropped, no reply.
    s.msg(addr("127.0.0.1:6666"), "unregister 1");
    assert_eq!(s.effects(), []);
    assert_eq!(s.core.stats().dropped, 1);
    // Even from the machine's own address (forged, or said just before a
    // kill -9), a death by signal is reported.
    s.msg(addr("127.0.0.1:7000"), "unregister 2");
    s.exited(100, ProcessExit::Signal(9));
    assert_eq!(s.reply(cli()), "died 1 127.0.0.1:7000 echo/Echo signal:9");
}

#[test]
fn a_death_before_register_is_reported_without_an_address() {
    let mut s = Fixture::new();
    let (token, _) = s.start(cli(), "start 3 family/Child :0 requester");
    s.core.handle_spawned(s.now, token, Ok(100));
    s.sends();
    s.exited(100, ProcessExit::Status(3));
    assert_eq!(s.reply(cli()), "died 3 - family/Child status:3");
}

#[test]
fn lifecycle_from_a_stranger_is_dropped() {
    let mut s = Fixture::new();
    let stranger = addr("127.0.0.1:6666");
    for text in [
        "started echo/Echo 1",
        "pulsed echo/Echo",
        "errored echo/Echo AHHH",
        "exited echo/Echo normal",
        "died 1 - echo/Echo signal:9",
        "starting 1 4242",
        "registered 1",
        "error 1 start no",
        "exited echo/Echo nonsense",
    ] {
        s.msg(stranger, text);
    }
    assert_eq!(s.effects(), []);
    assert_eq!(s.core.stats().dropped, 9);

    // A machine whose parent is another machine: its server hears its
    // pulses, nothing else.
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    let machine = addr("127.0.0.1:7000");
    s.msg(machine, "pulsed echo/Echo");
    assert_eq!(s.core.stats().pulses, 1);
    s.msg(machine, "pulsed other/Name");
    s.msg(machine, "exited echo/Echo normal");
    s.msg(machine, "died 1 127.0.0.1:7000 echo/Echo signal:9");
    assert_eq!(s.effects(), []);
    assert_eq!(s.core.stats().dropped, 12);
    // `exited` to the server did not make it orderly.
    s.exited(100, ProcessExit::Status(0));
    assert_eq!(s.reply(cli()), "died 1 127.0.0.1:7000 echo/Echo status:0");
}

#[test]
fn a_server_parented_machine_is_relayed_to_its_follower() {
    let mut s = Fixture::new();
    let (token, spawn) = s.start(cli(), "start 3 echo/Echo :0 server");
    let ServerEffect::Spawn { parent, .. } = spawn else {
        unreachable!()
    };
    assert_eq!(parent, me());
    s.core.handle_spawned(s.now, token, Ok(100));
    assert_eq!(s.reply(cli()), "starting 3 100");
    // Its `started` tells where it listens.
    let at = addr("127.0.0.1:6000");
    s.msg(at, "started echo/Echo 3");
    assert_eq!(
        s.reply(cli()),
        "relayed 3 127.0.0.1:6000 started echo/Echo 3"
    );
    s.msg(at, "register 1 echo/Echo 100 127.0.0.1:42000 3");
    assert_eq!(s.reply(at), "registered 1");
    s.msg(at, "pulsed echo/Echo");
    assert_eq!(s.reply(cli()), "relayed 3 127.0.0.1:6000 pulsed echo/Echo");
    s.msg(at, "errored echo/Echo AHHHHH");
    assert_eq!(
        s.reply(cli()),
        "relayed 3 127.0.0.1:6000 errored echo/Echo AHHHHH"
    );
    s.msg(at, "exited echo/Echo error");
    assert_eq!(
        s.reply(cli()),
        "relayed 3 127.0.0.1:6000 exited echo/Echo error"
    );
    s.exited(100, ProcessExit::Status(1));
    assert_eq!(s.effects(), [], "it exited in order");
    assert_eq!(s.core.stats().relayed, 4);
}

#[test]
fn the_death_of_a_server_parented_machine_is_relayed_as_errored_and_exited() {
    let mut s = Fixture::new();
    s.run(cli(), 3, "echo/Echo", 7000, "server", 100);
    s.exited(100, ProcessExit::Signal(9));
    assert_eq!(
        s.sends(),
        [
            (
                cli(),
                "relayed 3 127.0.0.1:7000 errored echo/Echo killed by signal 9 (SIGKILL)".into()
            ),
            (
                cli(),
                "relayed 3 127.0.0.1:7000 exited echo/Echo signal:9".into()
            ),
        ]
    );
}

#[test]
fn a_follower_that_stopped_answering_is_dropped() {
    let mut s = Fixture::new();
    s.run(cli(), 3, "echo/Echo", 7000, "server", 100);
    s.core.handle_gave_up(s.now, cli());
    s.msg(addr("127.0.0.1:7000"), "pulsed echo/Echo");
    s.exited(100, ProcessExit::Signal(9));
    assert_eq!(s.effects(), []);
    assert_eq!(s.core.stats().pulses, 1);
}

#[test]
fn a_started_that_several_machines_could_have_sent_waits_for_register() {
    let mut s = Fixture::new();
    // Two `wink` commands, each counting its requests from 1.
    let (cli_a, cli_b) = (addr("127.0.0.1:50001"), addr("127.0.0.1:50002"));
    let (a, _) = s.start(cli_a, "start 1 echo/Echo :0 server");
    let (b, _) = s.start(cli_b, "start 1 echo/Echo :0 server");
    s.core.handle_spawned(s.now, a, Ok(100));
    s.core.handle_spawned(s.now, b, Ok(200));
    s.sends();
    let at = addr("127.0.0.1:6200");
    s.msg(at, "started echo/Echo 1");
    assert_eq!(s.effects(), [], "held until it says which it is");
    s.msg(at, "register 1 echo/Echo 200 127.0.0.1:42000 1");
    assert_eq!(
        s.sends(),
        [
            (at, "registered 1".into()),
            (cli_b, "relayed 1 127.0.0.1:6200 started echo/Echo 1".into()),
        ]
    );
}

#[test]
fn a_machine_heard_before_its_fork_is_reported_is_not_taken_for_a_stranger() {
    let mut s = Fixture::new();
    let (token, _) = s.start(cli(), "start 3 echo/Echo :0 server");
    // The machine runs before the driver hears back from fork.
    let at = addr("127.0.0.1:6000");
    s.msg(at, "started echo/Echo 3");
    s.msg(at, "register 1 echo/Echo 100 127.0.0.1:42000 3");
    assert_eq!(s.effects(), []);
    s.core.handle_spawned(s.now, token, Ok(100));
    assert_eq!(
        s.sends(),
        [
            (cli(), "starting 3 100".into()),
            (cli(), "relayed 3 127.0.0.1:6000 started echo/Echo 3".into()),
            (at, "registered 1".into()),
        ]
    );
    assert_eq!(s.core.stats().dropped, 0);
}

#[test]
fn an_orderly_exit_heard_before_the_fork_is_reported_is_no_death() {
    // Found by an end-to-end test: a child that errors at once can say
    // `register`, `unregister` and exit before the driver reports its fork.
    let mut s = Fixture::new();
    let parent = addr("127.0.0.1:5000");
    let (token, _) = s.start(parent, "start 3 family/Child :0 requester");
    let at = addr("127.0.0.1:6000");
    s.msg(at, "register 1 family/Child 100 127.0.0.1:5000 3");
    s.msg(at, "unregister 2");
    assert_eq!(s.effects(), []);
    s.core.handle_spawned(s.now, token, Ok(100));
    s.core
        .handle_exited(s.now, 100, crate::server::ProcessExit::Status(1));
    let sends = s.sends();
    assert!(
        sends.iter().all(|(_, text)| !text.starts_with("died ")),
        "{sends:?}"
    );
    assert_eq!(s.core.stats().dropped, 0);
}

#[test]
fn register_checks_the_name_and_the_address() {
    let mut s = Fixture::new();
    let (token, _) = s.start(cli(), "start 1 echo/Echo :7000 requester");
    s.core.handle_spawned(s.now, token, Ok(100));
    s.sends();
    let other = addr("127.0.0.1:7001");
    s.msg(other, "register 2 other/Name 100 127.0.0.1:50000 1");
    assert_eq!(
        s.reply(other),
        "error 2 register pid 100 is echo/Echo, not other/Name"
    );
    s.msg(other, "register 3 echo/Echo 100 127.0.0.1:50000 1");
    assert_eq!(
        s.reply(other),
        "error 3 register pid 100 is registered at 127.0.0.1:7000"
    );
    let at = addr("127.0.0.1:7000");
    s.msg(at, "register 4 echo/Echo 100 127.0.0.1:50000 1");
    assert_eq!(s.reply(at), "registered 4");
    // Again: the same answer, nothing moves.
    s.msg(at, "register 5 echo/Echo 100 127.0.0.1:50000 1");
    assert_eq!(s.reply(at), "registered 5");
    s.msg(other, "register 6 echo/Echo 100 127.0.0.1:50000 1");
    assert!(s
        .reply(other)
        .starts_with("error 6 register pid 100 is registered at"));
}

#[test]
fn a_register_from_an_unknown_pid_is_adopted_after_checks() {
    let mut s = Fixture::new();
    let at = addr("127.0.0.1:7000");
    let parent = addr("127.0.0.1:5000");
    s.msg(at, "register 1 echo/Echo 999 127.0.0.1:5000 4");
    let token = match s.effects().as_slice() {
        [ServerEffect::Adopt {
            token,
            pid: 999,
            address,
            name: n,
        }] if *address == at && *n == name("echo/Echo") => *token,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.core.machines(), 0, "not before the checks");
    s.later(Duration::from_secs(3));
    s.core.handle_adopted(s.now, token, Ok(()));
    assert_eq!(s.reply(at), "registered 1");
    s.later(Duration::from_secs(2));
    s.msg(cli(), "list 8");
    assert_eq!(
        s.sends(),
        [
            (
                cli(),
                "machine 8 127.0.0.1:7000 999 echo/Echo 127.0.0.1:5000 2".into()
            ),
            (cli(), "listed 8 1".into()),
        ]
    );
    // Not this process's child: how it ended is unknown, and reported even
    // after an unregister.
    s.msg(at, "unregister 2");
    s.exited(999, ProcessExit::Unknown);
    assert_eq!(s.reply(parent), "died 4 127.0.0.1:7000 echo/Echo unknown");
}

#[test]
fn a_register_that_fails_the_checks_is_refused() {
    let mut s = Fixture::new();
    let at = addr("127.0.0.1:7000");
    s.msg(at, "register 1 echo/Echo 1 127.0.0.1:5000 -");
    let [ServerEffect::Adopt { token, .. }] = s.effects()[..] else {
        panic!()
    };
    s.core.handle_adopted(
        s.now,
        token,
        Err("pid 1 runs /usr/lib/systemd/systemd, outside the served directory".into()),
    );
    assert_eq!(
        s.reply(at),
        "error 1 register pid 1 runs /usr/lib/systemd/systemd, outside the served directory"
    );
    assert_eq!(s.core.machines(), 0);
    // Not while shutting down, and never a signal for it.
    s.core.shutdown(s.now);
    s.msg(at, "register 2 echo/Echo 1 127.0.0.1:5000 -");
    assert_eq!(s.reply(at), "error 2 register the server is shutting down");
}

#[test]
fn orphans_are_stopped() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "family/Parent", 6000, "requester", 100);
    let parent = addr("127.0.0.1:6000");
    // The parent starts two children; a third machine is the cli's.
    s.run(parent, 2, "family/Child#A", 6001, "requester", 101);
    s.run(parent, 3, "family/Child#B", 6002, "requester", 102);
    s.run(cli(), 4, "echo/Echo", 6003, "requester", 103);
    s.exited(100, ProcessExit::Signal(9));
    let mut effects = s.effects();
    effects.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        effects,
        [
            send(cli(), "died 1 127.0.0.1:6000 family/Parent signal:9"),
            signal(101, Signal::Term),
            signal(102, Signal::Term),
        ]
    );
    assert_eq!(s.core.stats().orphans_stopped, 2);
}

#[test]
fn a_deferred_start_runs_after_the_port_is_free() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.msg(cli(), "start 2 echo/Echo#New :7000 requester");
    assert_eq!(s.effects(), [signal(100, Signal::Term)]);
    // Another start on that port waits behind it.
    s.msg(cli(), "start 3 echo/Echo#Newer :7000 requester");
    assert_eq!(s.effects(), []);
    s.msg(addr("127.0.0.1:7000"), "unregister 1");
    s.exited(100, ProcessExit::Status(0));
    let [ServerEffect::Spawn {
        token, ref name, ..
    }] = s.effects()[..]
    else {
        panic!()
    };
    assert_eq!(name.to_string(), "echo/Echo#New");
    s.core.handle_spawned(s.now, token, Ok(200));
    // The newer start now stops the new machine.
    assert_eq!(
        s.effects(),
        [send(cli(), "starting 2 200"), signal(200, Signal::Term)]
    );
    s.exited(200, ProcessExit::Signal(15));
    let effects = s.effects();
    assert!(
        matches!(&effects[..], [ServerEffect::Send { .. }, ServerEffect::Spawn { name, .. }] if name.to_string() == "echo/Echo#Newer"),
        "{effects:?}"
    );
}

#[test]
fn a_shutdown_refuses_deferred_starts_and_stops_every_machine() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.run(cli(), 2, "echo/Echo#2", 7001, "requester", 101);
    s.msg(cli(), "start 3 echo/Echo#3 :7000 requester");
    s.effects();
    let (token, _) = s.start(cli(), "start 4 echo/Echo#4 :0 requester");
    assert!(!s.core.is_done(s.now));
    s.core.shutdown(s.now);
    let mut effects = s.effects();
    effects.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        effects,
        [
            send(cli(), "error 3 start the server is shutting down"),
            signal(101, Signal::Term),
        ],
        "100 had its SIGTERM already"
    );
    assert!(!s.core.is_done(s.now));
    // A fork reported during the shutdown is stopped at once.
    s.core.handle_spawned(s.now, token, Ok(102));
    assert_eq!(
        s.effects(),
        [send(cli(), "starting 4 102"), signal(102, Signal::Term)]
    );
    for pid in [100, 101, 102] {
        s.exited(pid, ProcessExit::Status(0));
    }
    s.effects();
    assert!(s.core.is_done(s.now));
}

#[test]
fn a_shutdown_ends_after_twice_the_grace_period() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.core.shutdown(s.now);
    assert_eq!(s.effects(), [signal(100, Signal::Term)]);
    s.later(GRACE);
    assert_eq!(s.effects(), [signal(100, Signal::Kill)]);
    assert_eq!(s.core.poll_timeout(), Some(s.now + GRACE));
    assert!(!s.core.is_done(s.now + GRACE - Duration::from_millis(1)));
    assert!(s.core.is_done(s.now + GRACE));
}

#[test]
fn list_is_ordered_by_port() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo#B", 7002, "requester", 102);
    s.run(cli(), 2, "echo/Echo#A", 7001, "server", 101);
    let (token, _) = s.start(cli(), "start 3 echo/Echo#C :0 requester");
    s.core.handle_spawned(s.now, token, Ok(103));
    s.sends();
    s.later(Duration::from_millis(2500));
    s.msg(cli(), "list 9");
    let texts: Vec<String> = s.sends().into_iter().map(|(_, text)| text).collect();
    assert_eq!(
        texts,
        [
            "machine 9 - 103 echo/Echo#C 127.0.0.1:50000 2",
            "machine 9 127.0.0.1:7001 101 echo/Echo#A 127.0.0.1:42000 2",
            "machine 9 127.0.0.1:7002 102 echo/Echo#B 127.0.0.1:50000 2",
            "listed 9 3",
        ]
    );
}

#[test]
fn tables_stay_bounded_over_10000_restarts() {
    let mut s = Fixture::new();
    s.run(cli(), 0, "family/Parent", 6000, "server", 1);
    let parent = addr("127.0.0.1:6000");
    for i in 1..=10_000u32 {
        // Each life: a start, a fork, a register, a pulse; then a stop,
        // a kill or a crash, in turn.
        s.later(Duration::from_millis(10));
        let port = 7000 + (i % 3) as u16;
        let pid = 1000 + i;
        s.run(parent, u64::from(i), "family/Child", port, "requester", pid);
        s.msg(me().with_port(port), "pulsed family/Child");
        match i % 3 {
            0 => {
                s.msg(parent, &format!("stop {i} {port}"));
                s.exited(pid, ProcessExit::Status(0));
            }
            1 => {
                s.msg(parent, &format!("stop {i} {port}"));
                s.later(GRACE);
                s.exited(pid, ProcessExit::Signal(9));
            }
            _ => s.exited(pid, ProcessExit::Signal(11)),
        }
        s.effects();
        if i % 1000 == 0 {
            s.core.handle_gave_up(s.now, addr("127.0.0.1:1"));
            let sizes = s.core.table_sizes();
            // The parent alone: one machine, in every index but the
            // unconfirmed; one follower; nothing else.
            assert_eq!(
                sizes,
                [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "after {i}"
            );
        }
    }
    assert_eq!(s.core.stats().reaped, 10_000);
}

#[test]
fn kill_timers_of_reaped_machines_do_not_pile_up() {
    let mut s = Fixture::new();
    for i in 0..1000u32 {
        s.run(cli(), u64::from(i), "echo/Echo", 7000, "requester", 100 + i);
        s.msg(cli(), &format!("stop {i} 7000"));
        s.exited(100 + i, ProcessExit::Status(0));
        s.effects();
        s.now += Duration::from_millis(2);
    }
    assert!(s.core.timers.len() <= 65, "{}", s.core.timers.len());
    assert_eq!(s.core.poll_timeout(), None);
}

#[test]
fn process_exits_read_as_before() {
    assert_eq!(ProcessExit::Status(0).to_string(), "exit status 0");
    assert_eq!(
        ProcessExit::Signal(9).to_string(),
        "killed by signal 9 (SIGKILL)"
    );
    assert_eq!(ProcessExit::Signal(64).to_string(), "killed by signal 64");
    assert_eq!(
        ProcessExit::Unknown.to_string(),
        "ended (status unknown: recovered after a server restart)"
    );
    assert_eq!(ProcessExit::Signal(9).reason(), ExitReason::Signal(9));
}

/// A writer the test keeps a handle on.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_log_says_what_happened_in_the_words_tests_grep_for() {
    let out = Shared::default();
    let now = Instant::now();
    let mut core = ServerCore::new(
        me(),
        ServerConfig::default(),
        crate::log::to_writer(out.clone()),
        now,
    );
    core.handle_message(now, cli(), "start 1 family/Parent :6000 requester");
    let Some(ServerEffect::Spawn { token, .. }) = core.poll_effect() else {
        panic!()
    };
    core.handle_spawned(now, token, Ok(100));
    let parent = addr("127.0.0.1:6000");
    core.handle_message(
        now,
        parent,
        "register 1 family/Parent 100 127.0.0.1:50000 1",
    );
    core.handle_message(now, parent, "start 2 family/Child :6001 requester");
    let Some(ServerEffect::Spawn { token, .. }) =
        std::iter::from_fn(|| core.poll_effect()).find(|e| matches!(e, ServerEffect::Spawn { .. }))
    else {
        panic!()
    };
    core.handle_spawned(now, token, Ok(101));
    core.handle_exited(now, 100, ProcessExit::Signal(9));
    core.handle_timeout(now + GRACE);
    core.shutdown(now + GRACE);
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    for line in [
        "< 127.0.0.1:50000 start 1 family/Parent :6000 requester",
        "> 127.0.0.1:50000 starting 1 100",
        "Forked: 100 family/Parent 127.0.0.1:6000",
        "Reaped: 100 family/Parent killed by signal 9 (SIGKILL)",
        "101 lost its parent 127.0.0.1:6000: stopping it",
        "101 family/Child ignored SIGTERM: SIGKILL",
        "stopping 1 machines",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}

#[test]
fn with_message_logging_off_requests_and_replies_are_not_logged() {
    let out = Shared::default();
    let now = Instant::now();
    let config = ServerConfig {
        log_messages: false,
        ..ServerConfig::default()
    };
    let mut core = ServerCore::new(me(), config, crate::log::to_writer(out.clone()), now);
    core.handle_message(now, cli(), "start 1 family/Parent :6000 requester");
    let Some(ServerEffect::Spawn { token, .. }) = core.poll_effect() else {
        panic!()
    };
    core.handle_spawned(now, token, Ok(100));
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text, "Forked: 100 family/Parent 127.0.0.1:6000\n");
}

#[test]
fn a_pid_given_again_ends_the_record_that_had_it() {
    let mut s = Fixture::new();
    let at = addr("127.0.0.1:7000");
    s.msg(at, "register 1 echo/Echo 999 127.0.0.1:5000 4");
    let [ServerEffect::Adopt { token, .. }] = s.effects()[..] else {
        panic!()
    };
    s.core.handle_adopted(s.now, token, Ok(()));
    s.sends();
    // The adopted process ended and its own parent reaped it; the kernel
    // gave its pid to a new fork before the server heard.
    let (spawn, _) = s.start(cli(), "start 2 echo/Echo :0 requester");
    s.core.handle_spawned(s.now, spawn, Ok(999));
    assert_eq!(
        s.sends(),
        [
            (
                addr("127.0.0.1:5000"),
                "died 4 127.0.0.1:7000 echo/Echo unknown".into()
            ),
            (cli(), "starting 2 999".into()),
        ]
    );
    assert_eq!(s.core.machines(), 1);
}

#[test]
fn a_register_again_while_it_is_checked_waits_for_the_same_answer() {
    let mut s = Fixture::new();
    let at = addr("127.0.0.1:7000");
    s.msg(at, "register 1 echo/Echo 999 127.0.0.1:5000 -");
    let [ServerEffect::Adopt { token, .. }] = s.effects()[..] else {
        panic!()
    };
    s.msg(at, "register 2 echo/Echo 999 127.0.0.1:5000 -");
    assert_eq!(s.effects(), [], "one check");
    let elsewhere = addr("127.0.0.1:7001");
    s.msg(elsewhere, "register 3 echo/Echo 999 127.0.0.1:5000 -");
    assert_eq!(
        s.reply(elsewhere),
        "error 3 register pid 999 is being checked for another register"
    );
    s.core.handle_adopted(s.now, token, Ok(()));
    assert_eq!(
        s.sends(),
        [(at, "registered 1".into()), (at, "registered 2".into())]
    );
    // Another process cannot be adopted at that address.
    s.msg(at, "register 4 echo/Echo 1000 127.0.0.1:5000 -");
    assert_eq!(
        s.reply(at),
        "error 4 register 127.0.0.1:7000 is registered to pid 999"
    );
}

#[test]
fn a_reaped_machine_is_forgotten_by_the_transport() {
    let mut s = Fixture::new();
    s.run(cli(), 1, "echo/Echo", 7000, "requester", 100);
    s.exited(100, ProcessExit::Status(0));
    s.effects();
    assert_eq!(s.forgotten, [me().with_port(7000)]);
}

/// Runs `count/Counter` on port 7005 as pid 40 (parent: the server) and
/// asks for its upgrade from the cli with `text`: the effect asked of the
/// driver.
fn upgrading(s: &mut Fixture, text: &str) -> Vec<ServerEffect> {
    s.run(cli(), 1, "count/Counter", 7005, "server", 40);
    s.effects();
    s.msg(cli(), text);
    s.effects()
}

#[test]
fn an_upgrade_resolves_the_binary_orders_the_machine_and_answers_once_it_registers() {
    let mut s = Fixture::new();
    let machine = me().with_port(7005);
    let effects = upgrading(&mut s, "upgrade 9 7005 count/Counter#v2");
    assert_eq!(
        effects,
        [ServerEffect::Resolve {
            pid: 40,
            name: name("count/Counter#v2")
        }]
    );
    s.core
        .handle_resolved(s.now, 40, Ok("/srv/count/Counter".into()));
    assert_eq!(
        s.reply(machine),
        "upgrade 9 count/Counter#v2 /srv/count/Counter"
    );
    // A second upgrade meanwhile is refused.
    s.msg(cli(), "upgrade 10 7005");
    assert_eq!(
        s.reply(cli()),
        "error 10 upgrade the machine on port 7005 is being upgraded already"
    );
    // The new program registers under its new name, same pid ...
    s.msg(
        machine,
        &format!("register 5 count/Counter#v2 40 {} 1", me()),
    );
    assert_eq!(s.reply(machine), "registered 5");
    s.msg(cli(), "list 11");
    let rows = s.sends();
    assert!(rows[0].1.contains(" 40 count/Counter#v2 "), "{rows:?}");
    // ... and says `upgraded` (here to the server, its parent): that
    // completes the upgrade, and the follower of its start hears it too.
    s.msg(machine, "upgraded count/Counter#v2 count/Counter");
    let relayed = format!("{machine} upgraded count/Counter#v2 count/Counter");
    assert_eq!(
        s.sends(),
        [
            (cli(), format!("relayed 9 {relayed}")),
            (cli(), format!("relayed 1 {relayed}"))
        ]
    );
}

#[test]
fn only_the_new_programs_upgraded_completes_an_upgrade_and_one_that_never_comes_fails() {
    let mut s = Fixture::new();
    let machine = me().with_port(7005);
    upgrading(&mut s, "upgrade 9 7005");
    s.core.handle_resolved(s.now, 40, Ok("/srv/x".into()));
    s.effects();
    // The old program's late `register` retry, same name: not the new one.
    s.msg(machine, &format!("register 6 count/Counter 40 {} 1", me()));
    assert_eq!(s.reply(machine), "registered 6");
    s.later(UPGRADE_TIMEOUT);
    assert_eq!(
        s.reply(cli()),
        "error 9 upgrade no word from the machine's new program within 30 s"
    );
    // Done with: a new upgrade may be asked for.
    s.msg(cli(), "upgrade 10 7005");
    assert!(matches!(
        s.effects()[..],
        [ServerEffect::Resolve { pid: 40, .. }]
    ));
}

#[test]
fn an_upgrade_is_refused_for_no_machine_no_binary_a_refusal_or_a_death() {
    let mut s = Fixture::new();
    s.msg(cli(), "upgrade 2 7005");
    assert_eq!(
        s.reply(cli()),
        "error 2 upgrade no machine started by this server listens on port 7005"
    );
    upgrading(&mut s, "upgrade 3 7005");
    s.core
        .handle_resolved(s.now, 40, Err("no executable".into()));
    assert_eq!(s.reply(cli()), "error 3 upgrade no executable");

    // The machine refuses: its error goes to the requester.
    let machine = me().with_port(7005);
    s.msg(cli(), "upgrade 4 7005");
    s.effects();
    s.core.handle_resolved(s.now, 40, Ok("/srv/x".into()));
    s.effects();
    s.msg(machine, "error 4 upgrade it has children");
    assert_eq!(s.reply(cli()), "error 4 upgrade it has children");
    // An error about anything else is dropped.
    s.msg(machine, "error 4 upgrade again");
    assert!(s.sends().is_empty());

    // The machine dies meanwhile.
    s.msg(cli(), "upgrade 5 7005");
    s.effects();
    s.core.handle_resolved(s.now, 40, Ok("/srv/x".into()));
    s.effects();
    s.exited(40, ProcessExit::Signal(9));
    let sends = s.sends();
    assert!(
        sends.contains(&(
            cli(),
            "error 5 upgrade the machine exited during its upgrade: killed by signal 9 (SIGKILL)"
                .to_owned()
        )),
        "{sends:?}"
    );
}
