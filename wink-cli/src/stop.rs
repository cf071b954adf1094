//! `wink stop <machine-address>`: ask the machine's server to stop it.
//!
//! The server answers `stopping <id> <port> <grace-ms>` at once (the
//! machine got SIGTERM and has the grace period to exit before SIGKILL),
//! then `stopped <id> <port>` once its process is gone.

use std::time::Duration;

use wink::control::{Reply, Request, RequestId};
use wink::runtime::DEFAULT_SERVER_PORT;
use wink::Address;

use crate::client::{
    no_answer, seconds, unexpected, Client, Conversation, Failure, Next, Patience,
};

/// Stop a machine a server started.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The machine's address: :<port> or <ip>:<port>.
    pub machine: Address,
}

/// Stops the machine through its server (`server` for this host's).
pub fn run(client: &mut Client, server: Address, args: Args) -> Result<(), Failure> {
    client.ask(Stop::new(server_of(args.machine, server), args.machine))
}

/// The server of the host `machine` is on: `server` (the `--server`) if
/// the machine is on its IP or both are loopback, else `<machine ip>:42000`.
pub fn server_of(machine: Address, server: Address) -> Address {
    if machine.ip() == server.ip() || (machine.is_loopback() && server.is_loopback()) {
        server
    } else {
        machine.with_port(DEFAULT_SERVER_PORT)
    }
}

/// The conversation of `wink stop`.
#[derive(Debug)]
pub struct Stop {
    server: Address,
    machine: Address,
    /// The grace period the server gave, once it said `stopping`.
    grace: Option<Duration>,
}

impl Stop {
    /// Stopping `machine` through `server`.
    pub fn new(server: Address, machine: Address) -> Self {
        Stop {
            server,
            machine,
            grace: None,
        }
    }
}

impl Conversation for Stop {
    fn server(&self) -> Address {
        self.server
    }

    fn request(&self, id: RequestId) -> Request {
        Request::Stop {
            id,
            port: self.machine.port(),
            grace_ms: None,
        }
    }

    fn handle(&mut self, reply: Reply, out: &mut Vec<String>) -> Next {
        match reply {
            Reply::Stopping { port, grace_ms, .. } if port == self.machine.port() => {
                // The machine has until the grace period ends to exit.
                let grace = Duration::from_millis(grace_ms);
                self.grace = Some(grace);
                Next::Wait(Patience::Longer(grace))
            }
            Reply::Stopped { port, .. } if port == self.machine.port() => {
                out.push(format!("stopped {}", self.machine));
                Next::Done(Ok(()))
            }
            Reply::Error { reason, .. } => {
                Next::Done(Err(Failure::new(format!("{}: {reason}", self.server))))
            }
            other => Next::Done(Err(unexpected(self.server, &other))),
        }
    }

    fn silence(&self, waited: Duration) -> Failure {
        match self.grace {
            Some(_) => Failure::new(format!(
                "{} did not stop within {}",
                self.machine,
                seconds(waited)
            )),
            None => no_answer(self.server, waited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay;

    const ID: RequestId = RequestId(1);
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    fn stop() -> Stop {
        Stop::new(address("127.0.0.1:42000"), address("127.0.0.1:42101"))
    }

    #[test]
    fn the_request_names_the_port() {
        assert_eq!(stop().request(RequestId(9)).to_string(), "stop 9 42101");
    }

    #[test]
    fn stopping_extends_the_wait_by_the_grace_period() {
        let mut stop = stop();
        let mut out = Vec::new();
        let reply = "stopping 1 42101 2500".parse().unwrap();
        assert_eq!(
            stop.handle(reply, &mut out),
            Next::Wait(Patience::Longer(Duration::from_millis(2500)))
        );
        assert!(out.is_empty());
        let server = stop.server;
        let outcome = replay(stop, ID, TIMEOUT, &[(server, "stopped 1 42101")]);
        assert_eq!(outcome.lines, vec!["stopped 127.0.0.1:42101".to_owned()]);
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn a_machine_that_outlives_the_grace_period_fails() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(stop(), ID, TIMEOUT, &[(server, "stopping 1 42101 2500")]);
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "127.0.0.1:42101 did not stop within 7.5s"
            )))
        );
    }

    #[test]
    fn a_refusal_fails_with_the_servers_reason() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(
            stop(),
            ID,
            TIMEOUT,
            &[(
                server,
                "error 1 stop no machine started by this server listens on port 42101",
            )],
        );
        assert!(outcome.lines.is_empty());
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "127.0.0.1:42000: no machine started by this server listens on port 42101"
            )))
        );
    }

    #[test]
    fn replies_with_another_id_or_from_a_stranger_are_ignored() {
        let server = address("127.0.0.1:42000");
        let stranger = address("127.0.0.1:42101");
        let outcome = replay(
            stop(),
            ID,
            TIMEOUT,
            &[
                (stranger, "stopped 1 42101"),
                (server, "stopped 2 42101"),
                (server, "error 3 stop no"),
            ],
        );
        assert!(outcome.lines.is_empty());
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "no answer from 127.0.0.1:42000 within 5.0s (is it running?)"
            )))
        );
    }

    #[test]
    fn an_answer_about_another_port_fails() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(stop(), ID, TIMEOUT, &[(server, "stopped 1 7")]);
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "127.0.0.1:42000: unexpected answer `stopped 1 7`"
            )))
        );
    }

    #[test]
    fn a_machine_on_another_host_is_stopped_by_that_hosts_server() {
        let server = address("127.0.0.1:42000");
        assert_eq!(server_of(address("127.0.0.1:7"), server), server);
        assert_eq!(
            server_of(address("127.0.0.2:7"), server),
            server,
            "loopback"
        );
        assert_eq!(
            server_of(address("10.0.0.2:7"), server),
            address("10.0.0.2:42000")
        );
        let remote = address("10.0.0.2:42100");
        assert_eq!(server_of(address("10.0.0.2:7"), remote), remote);
    }
}
