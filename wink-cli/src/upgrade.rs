//! `wink upgrade <machine-address> [--to <name>]`: ask the machine's server
//! to replace its program, live.
//!
//! The server answers `relayed <id> <address> upgraded <name> <from>` once
//! the machine runs the new program and registered again under `<name>`,
//! or `error <id> upgrade <reason>` (no such machine, no such binary, the
//! machine refused or died meanwhile).

use std::time::Duration;

use wink::control::{Lifecycle, Reply, Request, RequestId};
use wink::{Address, MachineName};

use crate::client::{no_answer, unexpected, Client, Conversation, Failure, Next};
use crate::stop::server_of;

/// Replace a machine's program without stopping it: same address, same
/// process, same parent.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The machine's address: :<port> or <ip>:<port>.
    pub machine: Address,
    /// The machine it becomes (`package/executable[#tag]`); by default its
    /// own name, for a new build of its binary.
    #[arg(long)]
    pub to: Option<MachineName>,
}

/// Upgrades the machine through its server (`server` for this host's).
pub fn run(client: &mut Client, server: Address, args: Args) -> Result<(), Failure> {
    client.ask(Upgrade {
        server: server_of(args.machine, server),
        machine: args.machine,
        to: args.to,
    })
}

/// The conversation of `wink upgrade`.
#[derive(Debug)]
pub struct Upgrade {
    server: Address,
    machine: Address,
    to: Option<MachineName>,
}

impl Conversation for Upgrade {
    fn server(&self) -> Address {
        self.server
    }

    fn request(&self, id: RequestId) -> Request {
        Request::Upgrade {
            id,
            port: self.machine.port(),
            name: self.to.clone(),
        }
    }

    fn handle(&mut self, reply: Reply, out: &mut Vec<String>) -> Next {
        match reply {
            Reply::Relayed {
                address,
                lifecycle: Lifecycle::Upgraded { name, from },
                ..
            } => {
                let at = address.unwrap_or(self.machine);
                out.push(format!("upgraded {at} {from} to {name}"));
                Next::Done(Ok(()))
            }
            Reply::Error { reason, .. } => {
                Next::Done(Err(Failure::new(format!("{}: {reason}", self.server))))
            }
            other => Next::Done(Err(unexpected(self.server, &other))),
        }
    }

    fn silence(&self, waited: Duration) -> Failure {
        no_answer(self.server, waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay;

    const ID: RequestId = RequestId(1);
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn upgrade(to: Option<&str>) -> Upgrade {
        Upgrade {
            server: "127.0.0.1:42000".parse().unwrap(),
            machine: "127.0.0.1:7005".parse().unwrap(),
            to: to.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn the_request_names_the_port_and_the_new_name() {
        assert_eq!(
            upgrade(None).request(RequestId(9)).to_string(),
            "upgrade 9 7005"
        );
        assert_eq!(
            upgrade(Some("count/Counter2"))
                .request(RequestId(9))
                .to_string(),
            "upgrade 9 7005 count/Counter2"
        );
    }

    #[test]
    fn done_once_the_machine_runs_the_new_program() {
        let u = upgrade(None);
        let server = u.server;
        let answer = "relayed 1 127.0.0.1:7005 upgraded count/Counter count/Counter";
        let outcome = replay(u, ID, TIMEOUT, &[(server, answer)]);
        assert_eq!(
            outcome.lines,
            ["upgraded 127.0.0.1:7005 count/Counter to count/Counter"]
        );
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn a_refusal_fails_with_the_reason() {
        let u = upgrade(None);
        let server = u.server;
        let answer = "error 1 upgrade it has children";
        let outcome = replay(u, ID, TIMEOUT, &[(server, answer)]);
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new("127.0.0.1:42000: it has children")))
        );
    }
}
