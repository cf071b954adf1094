//! `wink status <machine>` and `wink tree [SERVER…]`: what machines say of
//! themselves (`status <id>`, answered by their runtime with
//! `status-report <id> …`), one machine, or every machine of some
//! servers drawn as the tree of who started whom.
//!
//! The tree: each server's `list` gives its machines and their parents;
//! every machine is then asked `status` (all at once, answers awaited up
//! to `--timeout`); a machine whose parent is another listed machine is
//! drawn under it, the others under their server.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use wink::control::{Reply, Request, RequestId, Row, StatusReport, STATUS_REPORT};
use wink::Address;

use crate::client::{answer, Client, Failure};

/// Ask a machine how it is: state, uptime, children, message counters,
/// memory and CPU.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The machine's address: :<port> or <ip>:<port>.
    pub machine: Address,
}

/// Draw the machines of one or several servers as the tree of who
/// started whom, with each machine's state and uptime.
#[derive(Debug, clap::Args)]
pub struct TreeArgs {
    /// The servers: addresses, or IPs (port 42000) [default: --server].
    #[arg(value_parser = crate::list::parse_host)]
    pub servers: Vec<Address>,
    /// One JSON document instead of the drawing.
    #[arg(long)]
    pub json: bool,
}

/// `wink status <machine>`: its report, one field a line.
pub fn status(client: &mut Client, args: StatusArgs) -> Result<(), Failure> {
    let machine = args.machine;
    let timeout = client.timeout();
    let reports = ask_status(client, &[machine], 1, timeout)?;
    let Some(report) = reports.get(&machine) else {
        return Err(crate::client::no_answer(machine, client.timeout()));
    };
    crate::client::print(describe(machine, report))
}

/// The lines `wink status` prints for `report`.
fn describe(machine: Address, r: &StatusReport) -> Vec<String> {
    vec![
        format!("{machine} {}", r.name),
        format!("  state       {}", r.state),
        format!("  parent      {}", r.parent),
        format!("  uptime      {}", uptime(r.uptime_ms)),
        format!("  children    {} ({} restarts)", r.children, r.restarts),
        format!(
            "  messages    {} in, {} out, {} retransmitted, {} duplicates, {} given up",
            r.received, r.sent, r.retransmitted, r.duplicates, r.gave_up
        ),
        format!(
            "  process     {:.1} MB resident, {} ms CPU",
            r.rss_bytes as f64 / 1e6,
            r.cpu_ms
        ),
    ]
}

/// Asks every machine of `machines` for its status at once, with ids
/// from `first_id` on: the reports that came within `wait`, by address.
pub fn ask_status(
    client: &mut Client,
    machines: &[Address],
    first_id: u64,
    wait: Duration,
) -> Result<HashMap<Address, StatusReport>, Failure> {
    let mut asked: HashMap<Address, RequestId> = HashMap::new();
    for (i, &machine) in machines.iter().enumerate() {
        let id = RequestId(first_id.saturating_add(i as u64));
        client.send(machine, format!("{} {id}", wink::control::STATUS))?;
        asked.insert(machine, id);
    }
    let mut reports = HashMap::new();
    let give_up = Instant::now() + wait;
    while reports.len() < asked.len() {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let report = client.receive(Some(left), |from, text| {
            if !text.starts_with(STATUS_REPORT) {
                return None;
            }
            let report: StatusReport = text.parse().ok()?;
            (asked.get(&from) == Some(&report.id)).then_some((from, report))
        })?;
        match report {
            Some((from, report)) => {
                reports.insert(from, report);
            }
            None => break,
        }
    }
    Ok(reports)
}

/// The machines `server` lists.
pub fn list(client: &mut Client, server: Address, id: RequestId) -> Result<Vec<Row>, Failure> {
    client.send(server, Request::List { id }.to_string())?;
    let mut rows = Vec::new();
    loop {
        let reply = client.receive(Some(client.timeout()), |from, text| {
            answer(server, id, from, text)
        })?;
        match reply {
            Some(Reply::Machine { row, .. }) => rows.push(row),
            Some(Reply::Listed { .. }) => return Ok(rows),
            Some(Reply::Error { reason, .. }) => {
                return Err(Failure::new(format!("{server}: {reason}")))
            }
            Some(other) => return Err(crate::client::unexpected(server, &other)),
            None => return Err(crate::client::no_answer(server, client.timeout())),
        }
    }
}

/// One machine in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    row: Row,
    /// Its own report, if it answered in time.
    report: Option<StatusReport>,
}

/// `wink tree`: every machine of `servers` under its parent.
pub fn tree(client: &mut Client, server: Address, args: TreeArgs) -> Result<(), Failure> {
    let servers = if args.servers.is_empty() {
        vec![server]
    } else {
        args.servers
    };
    let mut listed = Vec::new();
    for (i, &server) in servers.iter().enumerate() {
        let id = RequestId(1_000_000 + i as u64);
        listed.push((server, list(client, server, id)?));
    }
    let addresses: Vec<Address> = listed
        .iter()
        .flat_map(|(_, rows)| rows.iter().filter_map(|r| r.address))
        .collect();
    let timeout = client.timeout();
    let mut reports = ask_status(client, &addresses, 1, timeout)?;
    let forest: Vec<(Address, Vec<Node>)> = listed
        .into_iter()
        .map(|(server, rows)| {
            let nodes = rows
                .into_iter()
                .map(|row| {
                    let report = row.address.and_then(|a| reports.remove(&a));
                    Node { row, report }
                })
                .collect();
            (server, nodes)
        })
        .collect();
    let lines = if args.json {
        vec![json(&forest)]
    } else {
        draw(&forest)
    };
    crate::client::print(lines)
}

/// The children of each machine (by its address), and the machines under
/// each server (those whose parent is no listed machine), in port order.
fn shape(forest: &[(Address, Vec<Node>)]) -> (BTreeMap<Address, Vec<&Node>>, Vec<Vec<&Node>>) {
    let known: Vec<Address> = forest
        .iter()
        .flat_map(|(_, nodes)| nodes.iter().filter_map(|n| n.row.address))
        .collect();
    let mut children: BTreeMap<Address, Vec<&Node>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (_, nodes) in forest {
        let mut top = Vec::new();
        for node in nodes {
            let parent = node.row.parent;
            if known.contains(&parent) && node.row.address != Some(parent) {
                children.entry(parent).or_default().push(node);
            } else {
                top.push(node);
            }
        }
        roots.push(top);
    }
    (children, roots)
}

/// The tree drawn as `pstree` does: each server, then its machines, each
/// child under its parent.
fn draw(forest: &[(Address, Vec<Node>)]) -> Vec<String> {
    let (children, roots) = shape(forest);
    let mut lines = Vec::new();
    for ((server, nodes), top) in forest.iter().zip(roots) {
        lines.push(format!("{server} (server, {} machines)", nodes.len()));
        let last = top.len();
        for (i, node) in top.into_iter().enumerate() {
            draw_node(node, "", i + 1 == last, &children, &mut lines, 0);
        }
    }
    lines
}

fn draw_node(
    node: &Node,
    prefix: &str,
    last: bool,
    children: &BTreeMap<Address, Vec<&Node>>,
    lines: &mut Vec<String>,
    depth: usize,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let mut line = format!("{prefix}{branch}{}", node.row.name);
    let _ = write!(
        line,
        "  {}",
        node.row
            .address
            .map_or_else(|| "-".to_owned(), |a| a.to_string())
    );
    match &node.report {
        Some(r) => {
            let _ = write!(line, "  {}  up {}", r.state, uptime(r.uptime_ms));
        }
        None => line.push_str("  (no status)"),
    }
    lines.push(line);
    // A parent loop is impossible in one listing, but the depth bound
    // keeps a strange one from drawing forever.
    let Some(address) = node.row.address else {
        return;
    };
    let Some(kids) = children.get(&address).filter(|_| depth < 64) else {
        return;
    };
    let prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    for (i, kid) in kids.iter().enumerate() {
        draw_node(
            kid,
            &prefix,
            i + 1 == kids.len(),
            children,
            lines,
            depth + 1,
        );
    }
}

/// The tree as JSON: `[{"server": …, "machines": [{"name", "address",
/// "pid", "state", "uptime_ms", "children": […]}]}]`, each machine's
/// other status fields with it.
fn json(forest: &[(Address, Vec<Node>)]) -> String {
    let (children, roots) = shape(forest);
    let servers: Vec<serde_json::Value> = forest
        .iter()
        .zip(roots)
        .map(|((server, _), top)| {
            let machines: Vec<serde_json::Value> = top
                .into_iter()
                .map(|n| json_node(n, &children, 0))
                .collect();
            serde_json::json!({ "server": server.to_string(), "machines": machines })
        })
        .collect();
    serde_json::Value::Array(servers).to_string()
}

fn json_node(
    node: &Node,
    children: &BTreeMap<Address, Vec<&Node>>,
    depth: usize,
) -> serde_json::Value {
    let kids: Vec<serde_json::Value> = node
        .row
        .address
        .and_then(|a| children.get(&a))
        .filter(|_| depth < 64)
        .map(|kids| {
            kids.iter()
                .map(|k| json_node(k, children, depth + 1))
                .collect()
        })
        .unwrap_or_default();
    let mut value = serde_json::json!({
        "name": node.row.name.to_string(),
        "address": node.row.address.map(|a| a.to_string()),
        "pid": node.row.pid,
        "parent": node.row.parent.to_string(),
        "children": kids,
    });
    if let Some(r) = &node.report {
        value["state"] = r.state.clone().into();
        value["uptime_ms"] = r.uptime_ms.into();
        value["received"] = r.received.into();
        value["sent"] = r.sent.into();
        value["retransmitted"] = r.retransmitted.into();
        value["gave_up"] = r.gave_up.into();
        value["rss_bytes"] = r.rss_bytes.into();
        value["cpu_ms"] = r.cpu_ms.into();
    }
    value
}

/// `3s`, `4m12s`, `2h05m`.
pub fn uptime(ms: u64) -> String {
    let s = Duration::from_millis(ms).as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(address: &str, name: &str, parent: &str) -> Row {
        Row {
            address: Some(address.parse().unwrap()),
            pid: 1,
            name: name.parse().unwrap(),
            parent: parent.parse().unwrap(),
            uptime: 0,
        }
    }

    fn node(address: &str, name: &str, parent: &str, state: &str) -> Node {
        let row = row(address, name, parent);
        let report = StatusReport {
            id: RequestId(1),
            name: row.name.clone(),
            state: state.to_owned(),
            parent: row.parent,
            uptime_ms: 12_000,
            children: 0,
            restarts: 0,
            received: 0,
            sent: 0,
            retransmitted: 0,
            duplicates: 0,
            gave_up: 0,
            rss_bytes: 0,
            cpu_ms: 0,
        };
        Node {
            row,
            report: Some(report),
        }
    }

    #[test]
    fn children_are_drawn_under_their_parents_across_servers() {
        let a: Address = "127.0.0.1:42000".parse().unwrap();
        let b: Address = "10.0.0.2:42000".parse().unwrap();
        let forest = vec![
            (
                a,
                vec![
                    node("127.0.0.1:7000", "family/Parent", "127.0.0.1:42000", "Main"),
                    node(
                        "127.0.0.1:7001",
                        "family/Child",
                        "127.0.0.1:7000",
                        "Running",
                    ),
                    node("127.0.0.1:7002", "echo/Echo", "127.0.0.1:42000", "Echoing"),
                ],
            ),
            (
                b,
                vec![node(
                    "10.0.0.2:7003",
                    "crew/Worker#a",
                    "127.0.0.1:7000",
                    "Working",
                )],
            ),
        ];
        assert_eq!(
            draw(&forest),
            [
                "127.0.0.1:42000 (server, 3 machines)",
                "├─ family/Parent  127.0.0.1:7000  Main  up 12s",
                "│  ├─ family/Child  127.0.0.1:7001  Running  up 12s",
                "│  └─ crew/Worker#a  10.0.0.2:7003  Working  up 12s",
                "└─ echo/Echo  127.0.0.1:7002  Echoing  up 12s",
                "10.0.0.2:42000 (server, 1 machines)",
            ]
        );
        let json: serde_json::Value = serde_json::from_str(&json(&forest)).unwrap();
        assert_eq!(
            json[0]["machines"][0]["children"][1]["name"],
            "crew/Worker#a"
        );
        assert_eq!(json[0]["machines"][0]["state"], "Main");
    }

    #[test]
    fn uptimes_read_as_a_person_would() {
        assert_eq!(uptime(3_400), "3s");
        assert_eq!(uptime(252_000), "4m12s");
        assert_eq!(uptime(7_500_000), "2h05m");
    }
}
