//! `wink list [host]`: the machines a server runs, as a table.
//!
//! The server answers one `machine <id> …` per machine, then `listed <id>
//! <count>`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use wink::control::{Reply, Request, RequestId, Row};
use wink::runtime::DEFAULT_SERVER_PORT;
use wink::Address;

use crate::client::{unexpected, Client, Conversation, Failure, Next, Patience};

/// List the machines a server runs.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: an IP (port 42000) or an address [default: --server].
    #[arg(value_parser = parse_host)]
    pub host: Option<Address>,
}

/// Lists the machines of `host`, or of `server` (the `--server`).
pub fn run(client: &mut Client, server: Address, args: Args) -> Result<(), Failure> {
    client.ask(List::new(args.host.unwrap_or(server)))
}

/// `10.0.0.2` or `localhost` (port 42000), or a full address.
pub fn parse_host(host: &str) -> Result<Address, String> {
    let ip = match host {
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => host.parse().ok(),
    };
    match ip {
        Some(ip) => Ok(Address::new(SocketAddr::new(ip, DEFAULT_SERVER_PORT))),
        None => host.parse().map_err(|e| format!("{e}")),
    }
}

/// The conversation of `wink list`.
#[derive(Debug)]
pub struct List {
    server: Address,
    rows: Vec<Row>,
}

impl List {
    /// Listing `server`'s machines.
    pub fn new(server: Address) -> Self {
        List {
            server,
            rows: Vec::new(),
        }
    }
}

impl Conversation for List {
    fn server(&self) -> Address {
        self.server
    }

    fn request(&self, id: RequestId) -> Request {
        Request::List { id }
    }

    fn handle(&mut self, reply: Reply, out: &mut Vec<String>) -> Next {
        match reply {
            Reply::Machine { row, .. } => {
                self.rows.push(row);
                Next::Wait(Patience::Timeout)
            }
            Reply::Listed { count, .. } => {
                let received = self.rows.len();
                if u64::try_from(received).ok() != Some(count) {
                    return Next::Done(Err(Failure::new(format!(
                        "{}: listed {count} machines but sent {received}",
                        self.server
                    ))));
                }
                out.extend(table(self.server, &self.rows));
                Next::Done(Ok(()))
            }
            Reply::Error { reason, .. } => {
                Next::Done(Err(Failure::new(format!("{}: {reason}", self.server))))
            }
            other => Next::Done(Err(unexpected(self.server, &other))),
        }
    }
}

/// The lines of the table `ADDRESS PID NAME PARENT UPTIME`; a parent that
/// is `server` itself shows as `server`.
fn table(server: Address, rows: &[Row]) -> Vec<String> {
    let header = ["ADDRESS", "PID", "NAME", "PARENT", "UPTIME"].map(str::to_owned);
    let cells: Vec<[String; 5]> = std::iter::once(header)
        .chain(rows.iter().map(|row| {
            [
                row.address
                    .map_or_else(|| "-".to_owned(), |a| a.to_string()),
                row.pid.to_string(),
                row.name.to_string(),
                if row.parent == server {
                    "server".to_owned()
                } else {
                    row.parent.to_string()
                },
                format!("{}s", row.uptime),
            ]
        }))
        .collect();
    let mut widths = [0; 5];
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    cells
        .iter()
        .map(|line| {
            let padded: Vec<String> = line
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay;
    use std::time::Duration;

    const ID: RequestId = RequestId(1);
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn the_request_is_list_with_its_id() {
        let list = List::new(address("127.0.0.1:42000"));
        assert_eq!(list.request(RequestId(4)).to_string(), "list 4");
    }

    #[test]
    fn a_parent_that_is_the_server_shows_as_server() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(
            List::new(server),
            ID,
            TIMEOUT,
            &[
                (
                    server,
                    "machine 1 127.0.0.1:42101 700 echo/Echo 127.0.0.1:42000 0",
                ),
                (
                    server,
                    "machine 1 127.0.0.1:42102 701 family/Child 127.0.0.1:42101 12",
                ),
                (server, "machine 1 - 702 time/After 127.0.0.1:42000 3"),
                (server, "listed 1 3"),
            ],
        );
        assert_eq!(
            outcome.lines,
            [
                "ADDRESS          PID  NAME          PARENT           UPTIME",
                "127.0.0.1:42101  700  echo/Echo     server           0s",
                "127.0.0.1:42102  701  family/Child  127.0.0.1:42101  12s",
                "-                702  time/After    server           3s",
            ]
        );
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn no_machines_is_a_header_alone() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(List::new(server), ID, TIMEOUT, &[(server, "listed 1 0")]);
        assert_eq!(outcome.lines, ["ADDRESS  PID  NAME  PARENT  UPTIME"]);
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn a_count_that_differs_from_the_rows_fails() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(
            List::new(server),
            ID,
            TIMEOUT,
            &[
                (
                    server,
                    "machine 1 127.0.0.1:42101 700 echo/Echo 127.0.0.1:42000 0",
                ),
                (server, "listed 1 2"),
            ],
        );
        assert!(outcome.lines.is_empty());
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new(
                "127.0.0.1:42000: listed 2 machines but sent 1"
            )))
        );
    }

    #[test]
    fn rows_with_another_id_or_from_a_stranger_are_ignored() {
        let server = address("127.0.0.1:42000");
        let stranger = address("127.0.0.1:42001");
        let outcome = replay(
            List::new(server),
            ID,
            TIMEOUT,
            &[
                (
                    server,
                    "machine 2 127.0.0.1:42101 700 echo/Echo 127.0.0.1:42000 0",
                ),
                (
                    stranger,
                    "machine 1 127.0.0.1:42101 700 echo/Echo 127.0.0.1:42000 0",
                ),
                (stranger, "listed 1 1"),
                (server, "listed 2 1"),
                (server, "listed 1 0"),
            ],
        );
        assert_eq!(outcome.lines, ["ADDRESS  PID  NAME  PARENT  UPTIME"]);
        assert_eq!(outcome.status(), Some(0));
    }

    #[test]
    fn a_refusal_fails_with_the_servers_reason() {
        let server = address("127.0.0.1:42000");
        let outcome = replay(
            List::new(server),
            ID,
            TIMEOUT,
            &[(server, "error 1 list not now")],
        );
        assert_eq!(
            outcome.result,
            Some(Err(Failure::new("127.0.0.1:42000: not now")))
        );
    }

    #[test]
    fn a_host_is_an_ip_or_an_address() {
        assert_eq!(parse_host("10.0.0.2"), Ok(address("10.0.0.2:42000")));
        assert_eq!(parse_host("localhost"), Ok(address("127.0.0.1:42000")));
        assert_eq!(parse_host("::1"), Ok(address("[::1]:42000")));
        assert_eq!(parse_host("10.0.0.2:7"), Ok(address("10.0.0.2:7")));
        assert_eq!(parse_host(":7"), Ok(address("127.0.0.1:7")));
        assert!(parse_host("example.com").is_err());
    }
}
