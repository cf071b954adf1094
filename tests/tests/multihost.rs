//! Two hosts on one machine: two network namespaces joined by a veth pair,
//! a `wink-server` in each. A parent on the first host starts a child on the
//! second, through the second host's server, and the child talks back across
//! the link.
//!
//! Needs root (to make namespaces), which CI has. Without it the test says
//! so on stderr and returns.

use std::ffi::OsStr;
use std::process::Command;

use wink_tests::{binary, Process, Result, Staged, PATIENCE};

const HOST_A: &str = "10.199.0.1";
const HOST_B: &str = "10.199.0.2";

/// Two namespaces and the veth pair between them, removed on drop (even
/// when the test fails): deleting a namespace deletes its end of the pair.
struct Hosts {
    a: String,
    b: String,
}

impl Hosts {
    /// `Ok(None)` when namespaces cannot be made here (not root).
    fn create() -> Result<Option<Hosts>, String> {
        let id = std::process::id();
        let (a, b) = (format!("wink{id}a"), format!("wink{id}b"));
        if let Err(e) = ip(&["netns", "add", &a]) {
            if e.contains("Permission denied") || e.contains("Operation not permitted") {
                return Ok(None);
            }
            return Err(e);
        }
        let hosts = Hosts { a, b };
        ip(&["netns", "add", &hosts.b])?;
        let (va, vb) = (format!("wa{id}"), format!("wb{id}"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        for (ns, dev, addr) in [(&hosts.a, &va, HOST_A), (&hosts.b, &vb, HOST_B)] {
            ip(&["link", "set", dev, "netns", ns])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(Some(hosts))
    }

    /// `program args…` run inside namespace `ns`.
    fn command(ns: &str, program: &OsStr, args: &[&OsStr]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program).args(args);
        command
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn serve(ns: &str, staged: &Staged, address: &str) -> Result<Process> {
    let server = binary("wink-server")?;
    let command = Hosts::command(
        ns,
        server.as_os_str(),
        &[
            OsStr::new("serve"),
            staged.path().as_os_str(),
            OsStr::new("--address"),
            OsStr::new(address),
        ],
    );
    let mut process = Process::spawn(format!("wink-server {address}"), command)?;
    process.expect_line(&format!("Address: {address}"), PATIENCE)?;
    Ok(process)
}

#[test]
fn parent_on_one_host_starts_a_child_on_another() {
    let hosts = match Hosts::create() {
        Ok(Some(hosts)) => hosts,
        Ok(None) => {
            eprintln!("multihost: not run: making network namespaces needs root");
            return;
        }
        Err(e) => panic!("cannot make the test hosts: {e}"),
    };
    let staged = Staged::new().expect("stage");
    let server_a = format!("{HOST_A}:42000");
    let server_b = format!("{HOST_B}:42000");
    let mut a = serve(&hosts.a, &staged, &server_a).expect("server on host A");
    let mut b = serve(&hosts.b, &staged, &server_b).expect("server on host B");

    // On host A: a Host that starts its Greeter on host B.
    let wink = binary("wink").expect("wink is built");
    let at_b = format!("{HOST_B}:7005");
    let args: Vec<&OsStr> = ["-s", &server_a, "start", "greeter/Host", ":0", &at_b, "Bob"]
        .into_iter()
        .map(OsStr::new)
        .collect();
    let mut start = Hosts::command(&hosts.a, wink.as_os_str(), &args);
    let out = start.output().expect("run wink");
    assert!(
        out.status.success(),
        "wink start: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Host B's server starts the greeter, with host A's machine as parent.
    let request = b
        .expect_all(&["< ", " start greeter/Greeter#Bob ", &at_b], PATIENCE)
        .expect("the request came from host A");
    assert!(request.text.contains(&format!("< {HOST_A}:")), "{request}");
    b.expect_all(&["Forked: ", "greeter/Greeter#Bob", &at_b], PATIENCE)
        .expect("host B starts the greeter");

    // The greeting crosses back to host A.
    a.expect_line(&format!("Host: Bob says hello from {at_b}"), PATIENCE)
        .expect("host A hears the greeting from host B");
    a.expect_all(&["Host: exited greeter/Greeter#Bob"], PATIENCE)
        .expect("and the greeter's exit");
    b.expect_all(
        &["Reaped: ", "greeter/Greeter#Bob", "exit status 0"],
        PATIENCE,
    )
    .expect("host B reaps it");
}
