//! `wink start [-f] <name> [<target>] [args…]`: start a machine whose
//! parent is the server, so it outlives this command.
//!
//! The server answers `starting <id> <pid>` once it forked the machine, then
//! relays the machine's lifecycle as `relayed <id> <address|-> <lifecycle>`.
//! Without `-f` the command ends when the machine says `started`; with `-f`
//! it prints every relayed lifecycle message until `exited`.

use std::time::Duration;

use wink::control::{ExitReason, Lifecycle, Parent, Reply, Request, RequestId, Target};
use wink::{Address, MachineName};

use crate::client::{
    no_answer, seconds, unexpected, Client, Conversation, Failure, Next, Patience,
};

/// Start a machine (its parent is the server) and wait until it says
/// `started`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow its lifecycle (`pulsed`, `errored`, `exited`) until it exits;
    /// fail if it errored or did not exit in order.
    #[arg(short, long)]
    pub follow: bool,
    /// The machine: package/executable[#tag].
    pub name: MachineName,
    /// Where it listens: :<port> on the server's IP, or <ip>:<port>
    /// [default: :0, any free port].
    pub target: Option<Target>,
    /// Arguments for the machine, each passed whole (spaces, quotes and
    /// all: they travel quoted).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Starts the machine through `server`.
pub fn run(client: &mut Client, server: Address, args: Args) -> Result<(), Failure> {
    client.ask(Start::new(server, args))
}

/// How far the start got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for `starting`.
    Forking,
    /// Forked as process `pid`; waiting for `started`.
    Forked { pid: u32 },
    /// It said `started` (only `-f` gets here).
    Running,
}

/// The conversation of `wink start`.
#[derive(Debug)]
pub struct Start {
    server: Address,
    name: MachineName,
    target: Target,
    args: Vec<String>,
    follow: bool,
    stage: Stage,
    /// What a relayed `errored` said.
    errored: Option<String>,
}

impl Start {
    /// Starting `args.name` through `server`.
    pub fn new(server: Address, args: Args) -> Self {
        Start {
            server,
            name: args.name,
            target: args.target.unwrap_or(Target::Port(0)),
            args: args.args,
            follow: args.follow,
            stage: Stage::Forking,
            errored: None,
        }
    }

    /// How long to wait next: without a limit once it runs.
    fn patience(&self) -> Patience {
        match self.stage {
            Stage::Running => Patience::Forever,
            Stage::Forking | Stage::Forked { .. } => Patience::Timeout,
        }
    }

    fn relayed(
        &mut self,
        address: Option<Address>,
        lifecycle: Lifecycle,
        out: &mut Vec<String>,
    ) -> Next {
        let line = match address {
            Some(address) => format!("{address} {}", lifecycle.for_receivers()),
            None => format!("- {}", lifecycle.for_receivers()),
        };
        match lifecycle {
            Lifecycle::Started { .. } => {
                if self.stage == Stage::Running {
                    return Next::Wait(Patience::Forever);
                }
                out.push(line);
                if !self.follow {
                    return Next::Done(Ok(()));
                }
                self.stage = Stage::Running;
                Next::Wait(Patience::Forever)
            }
            // `orphaned` is a parent's word to a child, never relayed; should
            // one come, it is shown and changes nothing.
            Lifecycle::Pulsed { .. } | Lifecycle::Orphaned { .. } | Lifecycle::Upgraded { .. } => {
                if self.follow {
                    out.push(line);
                }
                Next::Wait(self.patience())
            }
            Lifecycle::Errored { message, .. } => {
                if self.follow {
                    out.push(line);
                }
                self.errored = Some(message);
                Next::Wait(self.patience())
            }
            // A server relays what a parent's receivers see, never `died`;
            // should it come, it ends the machine all the same.
            Lifecycle::Exited { reason, .. } | Lifecycle::Died { reason, .. } => {
                if self.follow {
                    out.push(line);
                }
                Next::Done(self.exited(reason))
            }
        }
    }

    /// The end, once the machine exited for `reason`.
    fn exited(&self, reason: ExitReason) -> Result<(), Failure> {
        let name = &self.name;
        let errored = |when: &str| match self.errored.as_deref() {
            Some("") => Some(format!("{name} errored{when}")),
            Some(message) => Some(format!("{name} errored{when}: {message}")),
            None => None,
        };
        if self.stage != Stage::Running {
            let said = errored(" before it started")
                .unwrap_or_else(|| format!("{name} exited before it started: {reason}"));
            return Err(Failure::new(said));
        }
        if let Some(said) = errored("") {
            return Err(Failure::new(said));
        }
        if !reason.is_orderly() || reason == ExitReason::Error {
            return Err(Failure::new(format!("{name} exited: {reason}")));
        }
        Ok(())
    }
}

impl Conversation for Start {
    fn server(&self) -> Address {
        self.server
    }

    fn request(&self, id: RequestId) -> Request {
        Request::Start {
            id,
            name: self.name.clone(),
            target: self.target,
            parent: Parent::Server,
            args: self.args.clone(),
        }
    }

    fn handle(&mut self, reply: Reply, out: &mut Vec<String>) -> Next {
        match reply {
            Reply::Error { reason, .. } => {
                Next::Done(Err(Failure::new(format!("{}: {reason}", self.server))))
            }
            Reply::Starting { pid, .. } => {
                if self.stage == Stage::Forking {
                    self.stage = Stage::Forked { pid };
                }
                Next::Wait(self.patience())
            }
            Reply::Relayed {
                address, lifecycle, ..
            } => self.relayed(address, lifecycle, out),
            other => Next::Done(Err(unexpected(self.server, &other))),
        }
    }

    fn silence(&self, waited: Duration) -> Failure {
        match self.stage {
            Stage::Forked { pid } => Failure::new(format!(
                "{} (process {pid}) did not start within {}",
                self.name,
                seconds(waited)
            )),
            Stage::Forking | Stage::Running => no_answer(self.server, waited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay;

    const SERVER: &str = "127.0.0.1:42000";
    const ID: RequestId = RequestId(1);
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn server() -> Address {
        SERVER.parse().unwrap()
    }

    fn start(follow: bool) -> Start {
        Start {
            server: server(),
            name: "echo/Echo".parse().unwrap(),
            target: Target::Port(0),
            args: Vec::new(),
            follow,
            stage: Stage::Forking,
            errored: None,
        }
    }

    fn lines(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn the_request_makes_the_server_the_parent() {
        let mut start = start(false);
        start.target = ":42101".parse().unwrap();
        start.args = vec!["250".to_owned(), "-x".to_owned()];
        assert_eq!(
            start.request(RequestId(3)).to_string(),
            "start 3 echo/Echo :42101 server 250 -x"
        );
    }

    #[test]
    fn without_follow_it_ends_at_started() {
        let s = server();
        let outcome = replay(
            start(false),
            ID,
            TIMEOUT,
            &[
                (s, "starting 1 4242"),
                (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
                (s, "relayed 1 127.0.0.1:42101 pulsed echo/Echo"),
            ],
        );
        assert_eq!(outcome.lines, lines(&["127.0.0.1:42101 started echo/Echo"]));
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn with_follow_it_prints_the_lifecycle_until_exited() {
        let s = server();
        let outcome = replay(
            start(true),
            ID,
            TIMEOUT,
            &[
                (s, "starting 1 4242"),
                (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
                (s, "relayed 1 127.0.0.1:42101 pulsed echo/Echo"),
                (s, "relayed 1 127.0.0.1:42101 exited echo/Echo stopped"),
            ],
        );
        assert_eq!(
            outcome.lines,
            lines(&[
                "127.0.0.1:42101 started echo/Echo",
                "127.0.0.1:42101 pulsed echo/Echo",
                "127.0.0.1:42101 exited echo/Echo stopped",
            ])
        );
        assert_eq!(outcome.result, Some(Ok(())));
    }

    #[test]
    fn with_follow_it_waits_without_a_limit_once_started() {
        let s = server();
        let outcome = replay(
            start(true),
            ID,
            TIMEOUT,
            &[
                (s, "starting 1 4242"),
                (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
            ],
        );
        assert_eq!(outcome.lines, lines(&["127.0.0.1:42101 started echo/Echo"]));
        assert_eq!(outcome.result, None, "still following");
    }

    #[test]
    fn with_follow_an_error_before_the_exit_fails() {
        let s = server();
        let outcome = replay(
            start(true),
            ID,
            TIMEOUT,
            &[
                (s, "starting 1 4242"),
                (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
                (s, "relayed 1 127.0.0.1:42101 errored echo/Echo AHHHHH"),
                (s, "relayed 1 127.0.0.1:42101 exited echo/Echo error"),
            ],
        );
        assert_eq!(
            outcome.lines,
            lines(&[
                "127.0.0.1:42101 started echo/Echo",
                "127.0.0.1:42101 errored echo/Echo AHHHHH",
                "127.0.0.1:42101 exited echo/Echo error",
            ])
        );
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new("echo/Echo errored: AHHHHH")))
        );
        assert_eq!(outcome.status(), Some(1));
    }

    #[test]
    fn with_follow_an_exit_out_of_order_fails() {
        let s = server();
        for (reason, failure) in [
            ("signal:9", "echo/Echo exited: signal:9"),
            ("heartbeat", "echo/Echo exited: heartbeat"),
            ("unknown", "echo/Echo exited: unknown"),
        ] {
            let exited = format!("relayed 1 127.0.0.1:42101 exited echo/Echo {reason}");
            let outcome = replay(
                start(true),
                ID,
                TIMEOUT,
                &[
                    (s, "starting 1 4242"),
                    (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
                    (s, &exited),
                ],
            );
            assert_eq!(outcome.result, Some(Err(Failure::new(failure))), "{reason}");
        }
        let outcome = replay(
            start(true),
            ID,
            TIMEOUT,
            &[
                (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
                (s, "relayed 1 127.0.0.1:42101 exited echo/Echo normal"),
            ],
        );
        assert_eq!(outcome.result, Some(Ok(())), "normal is in order");
    }

    #[test]
    fn a_refused_start_fails_with_the_servers_reason() {
        let s = server();
        let outcome = replay(
            start(false),
            ID,
            TIMEOUT,
            &[(
                s,
                "error 1 start no executable at /srv/wink/echo/Echo: No such file or directory",
            )],
        );
        assert!(outcome.lines.is_empty());
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "127.0.0.1:42000: no executable at /srv/wink/echo/Echo: No such file or directory"
            )))
        );
    }

    #[test]
    fn an_exit_before_started_fails_saying_so() {
        let s = server();
        for follow in [false, true] {
            let outcome = replay(
                start(follow),
                ID,
                TIMEOUT,
                &[
                    (s, "starting 1 4242"),
                    (s, "relayed 1 - exited echo/Echo status:3"),
                ],
            );
            assert_eq!(
                outcome.result,
                Some(Err(Failure::new(
                    "echo/Echo exited before it started: status:3"
                ))),
                "follow: {follow}"
            );
            let errored = replay(
                start(follow),
                ID,
                TIMEOUT,
                &[
                    (s, "starting 1 4242"),
                    (s, "relayed 1 - errored echo/Echo exit status 3"),
                    (s, "relayed 1 - exited echo/Echo status:3"),
                ],
            );
            assert_eq!(
                errored.result,
                Some(Err(Failure::new(
                    "echo/Echo errored before it started: exit status 3"
                ))),
                "follow: {follow}"
            );
        }
    }

    #[test]
    fn replies_with_another_id_or_from_a_stranger_are_ignored() {
        let s = server();
        let stranger: Address = "127.0.0.1:42101".parse().unwrap();
        let outcome = replay(
            start(false),
            ID,
            TIMEOUT,
            &[
                (s, "error 2 start not yours"),
                (stranger, "error 1 start not the server"),
                (stranger, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
                (s, "relayed 7 127.0.0.1:42102 started echo/Echo 7"),
                (s, "started echo/Echo 1"),
                (s, "starting 1 4242"),
                (s, "relayed 1 127.0.0.1:42101 started echo/Echo 1"),
            ],
        );
        assert_eq!(outcome.lines, lines(&["127.0.0.1:42101 started echo/Echo"]));
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn silence_says_how_far_the_start_got() {
        let s = server();
        let unanswered = replay(start(false), ID, TIMEOUT, &[]);
        assert_eq!(
            unanswered.result,
            Some(Err(Failure::new(
                "no answer from 127.0.0.1:42000 within 5.0s (is it running?)"
            )))
        );
        let forked = replay(start(false), ID, TIMEOUT, &[(s, "starting 1 4242")]);
        assert_eq!(
            forked.result,
            Some(Err(Failure::new(
                "echo/Echo (process 4242) did not start within 5.0s"
            )))
        );
    }

    #[test]
    fn an_answer_meant_for_another_request_word_fails() {
        let s = server();
        let outcome = replay(start(false), ID, TIMEOUT, &[(s, "listed 1 0")]);
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "127.0.0.1:42000: unexpected answer `listed 1 0`"
            )))
        );
    }

    #[test]
    fn machine_arguments_travel_whole_quoted_where_they_need_it() {
        let mut start = start(false);
        start.args = vec!["two words".to_owned(), String::new(), r#"a "q""#.to_owned()];
        let request = start.request(RequestId(3)).to_string();
        assert_eq!(
            request,
            r#"start 3 echo/Echo :0 server "two words" "" "a \"q\"""#
        );
        let parsed: Request = request.parse().unwrap();
        assert!(matches!(parsed, Request::Start { args, .. } if args == start.args));
    }
}
