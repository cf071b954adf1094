//! Hosts on one machine: network namespaces joined by veth pairs, for the
//! tests of what crosses a network (and what a cut link does).
//!
//! Making namespaces needs root, which CI has. Where they cannot be made,
//! [`Hosts::create`] says so and the test returns — except when `CI` is set:
//! then it fails, so a test that needs root can never pass by skipping
//! itself in CI.

use std::ffi::OsStr;
use std::process::Command;

use crate::{binary, Process, Result, Staged, PATIENCE};

/// Two namespaces and the veth pair between them, `10.199.<n>.1` in the
/// first and `10.199.<n>.2` in the second, removed on drop (even when the
/// test fails): deleting a namespace deletes its end of the pair.
pub struct Hosts {
    /// The first host's namespace.
    pub a: String,
    /// The second host's namespace.
    pub b: String,
    /// The first host's IP.
    pub ip_a: String,
    /// The second host's IP.
    pub ip_b: String,
    /// The first host's end of the link.
    pub dev_a: String,
}

impl Hosts {
    /// Two hosts, or `None` (after saying why on stderr) when namespaces
    /// cannot be made here and `CI` is not set. `test` names them apart
    /// from those of other tests running at once; `subnet` (0–255) keeps
    /// their addresses apart.
    pub fn create(test: &str, subnet: u8) -> Option<Hosts> {
        match Self::try_create(test, subnet) {
            Ok(Some(hosts)) => Some(hosts),
            Ok(None) if std::env::var_os("CI").is_some() => panic!(
                "{test}: CI is set but network namespaces cannot be made (this test needs root)"
            ),
            Ok(None) => {
                eprintln!("{test}: not run: making network namespaces needs root");
                None
            }
            Err(e) => panic!("{test}: cannot make the test hosts: {e}"),
        }
    }

    /// Like [`Hosts::create`], for programs rather than tests: `Ok(None)`
    /// when namespaces cannot be made here (not root), whatever `CI` says.
    pub fn try_create(test: &str, subnet: u8) -> Result<Option<Hosts>, String> {
        let id = std::process::id();
        let (a, b) = (format!("w{id}{test}a"), format!("w{id}{test}b"));
        if let Err(e) = ip(&["netns", "add", &a]) {
            if e.contains("Permission denied")
                || e.contains("Operation not permitted")
                || e.contains("cannot run ip")
            {
                return Ok(None);
            }
            return Err(e);
        }
        let hosts = Hosts {
            a,
            b,
            ip_a: format!("10.199.{subnet}.1"),
            ip_b: format!("10.199.{subnet}.2"),
            dev_a: format!("a{id}{subnet}"),
        };
        ip(&["netns", "add", &hosts.b])?;
        let dev_b = format!("b{id}{subnet}");
        ip(&[
            "link",
            "add",
            &hosts.dev_a,
            "type",
            "veth",
            "peer",
            "name",
            &dev_b,
        ])?;
        for (ns, dev, addr) in [
            (&hosts.a, &hosts.dev_a, &hosts.ip_a),
            (&hosts.b, &dev_b, &hosts.ip_b),
        ] {
            ip(&["link", "set", dev, "netns", ns])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(Some(hosts))
    }

    /// `program args…` run inside namespace `ns`.
    pub fn command(ns: &str, program: &OsStr, args: &[&OsStr]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program).args(args);
        command
    }

    /// Cuts the link (the first host's end goes down): a partition.
    pub fn cut(&self) -> Result<(), String> {
        ip(&["-n", &self.a, "link", "set", &self.dev_a, "down"])
    }

    /// Mends the link.
    pub fn mend(&self) -> Result<(), String> {
        ip(&["-n", &self.a, "link", "set", &self.dev_a, "up"])
    }

    /// Drops each packet crossing the first host's end of the link with
    /// `probability` (0 to 1), in both directions: iptables `statistic`
    /// rules in the first host's namespace (they go with it). The two
    /// directions lose independently, so a request and its answer both
    /// arrive with probability `(1 - p)²`. `tc netem` would do the same but
    /// is missing from the kernels this runs on.
    ///
    /// A packet the `OUTPUT` rule drops makes the sender's `sendto` fail
    /// with `EPERM`; Wink's endpoint counts that as a lost datagram.
    pub fn lose(&self, probability: f64) -> Result<(), String> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(format!("a loss probability is 0 to 1, not {probability}"));
        }
        let p = probability.to_string();
        for (chain, direction) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            iptables(
                &self.a,
                &[
                    "-A",
                    chain,
                    direction,
                    &self.dev_a,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    /// `wink-server serve <staged> --address <address>` in namespace `ns`,
    /// with `env`, once it says where it listens.
    pub fn serve(
        ns: &str,
        staged: &Staged,
        address: &str,
        env: &[(&str, &str)],
    ) -> crate::Result<Process> {
        let server = binary("wink-server")?;
        let mut command = Hosts::command(
            ns,
            server.as_os_str(),
            &[
                OsStr::new("serve"),
                staged.path().as_os_str(),
                OsStr::new("--address"),
                OsStr::new(address),
                OsStr::new("--grace-ms"),
                OsStr::new("1000"),
            ],
        );
        for (name, value) in env {
            command.env(name, value);
        }
        let mut process = Process::spawn(format!("wink-server {address}"), command)?;
        process.expect_line(&format!("Address: {address}"), PATIENCE)?;
        Ok(process)
    }

    /// Runs `wink args…` in namespace `ns` to completion.
    pub fn wink(ns: &str, args: &[&str]) -> crate::Result<std::process::Output> {
        let wink = binary("wink")?;
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        Hosts::command(ns, wink.as_os_str(), &args)
            .output()
            .map_err(|e| crate::Error::new(format!("cannot run wink: {e}")))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// Whether `iptables` (or `iptables-legacy`) can be run here.
pub fn have_iptables() -> bool {
    ["iptables", "iptables-legacy"].iter().any(|program| {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// Runs `iptables args…` in namespace `ns`.
///
/// `iptables` is the nf_tables variant on Debian 12 (iptables 1.8.9), and
/// its `statistic` match works in a fresh namespace there (checked on a
/// 6.18 kernel: 30% set, 30% dropped each way); so does
/// `iptables-legacy`, tried when the first fails (a kernel without
/// nf_tables, say). Rules live in the namespace and go with it.
pub fn iptables(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut failures = Vec::new();
    for program in ["iptables", "iptables-legacy"] {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run ip netns exec {ns} {program}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        failures.push(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Err(format!(
        "in namespace {ns}: {} (is iptables installed? `apt-get install iptables`)",
        failures.join("; ")
    ))
}

/// Runs `ip args…`.
pub fn ip(args: &[&str]) -> Result<(), String> {
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
