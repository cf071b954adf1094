//! The only I/O: the loops that move bytes between a UDP socket, the
//! clock, signals and the sans-IO cores (a machine's
//! [`Node`](crate::node::Node), the [`ServerCore`](crate::server::ServerCore)).
//!
//! A machine process is one thread: its loop blocks in one `ppoll` on the
//! socket, a `signalfd` and a `timerfd` armed for the earliest deadline
//! (re-armed only when that deadline comes closer), reads and writes
//! single datagrams with `recvfrom`/`sendto` and bursts with
//! `recvmmsg`/`sendmmsg`. No reactor, no helper thread.
//!
//! - [`socket`]: real UDP, or a fault-injecting socket for tests.
//! - [`Endpoint`]: a socket plus reliable delivery; the server and the CLI
//!   use it directly.
//! - [`Signals`]: SIGTERM and SIGINT as a descriptor to wait on.
//! - [`run_machine`]: one machine on an endpoint, until it exits.
//! - [`run`]: the whole process, for a machine binary's `main`.
//! - [`serve`]: the server's process: a [`ServerCore`](crate::server::ServerCore)
//!   on an endpoint, with processes and signals.

mod alarm;
mod config;
mod endpoint;
mod machine;
mod server;
mod signals;
pub mod socket;

pub use crate::node::{Ending, Identity};
pub use config::{Config, ConfigError, MAX_WINDOW};
pub use endpoint::{Endpoint, Inbox, Ready};
pub use machine::{run_machine, Finish};
pub use server::{serve, serve_until, ServeError, ServeSettings};
pub use signals::{take_all, unblock_in_child, Asked, Signals, RELOAD};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

use crate::address::Address;
use crate::control::UpgradeOrder;
use crate::hsm::{Hsm, Machine, StateId};
use crate::name::MachineName;
use crate::upgrade::{Carried, CARRIED_FD_ENV, SOCKET_FD_ENV};
use socket::Udp;

/// The port a host's server listens on unless told otherwise.
pub const DEFAULT_SERVER_PORT: u16 = 42000;

/// The environment variable holding the server's address; the server sets
/// it for the machines it starts.
pub const SERVER_ENV: &str = "WINK_SERVER";

/// The environment variable holding the id of the `start` request that
/// made the machine; the server sets it for the machines it starts, and
/// the machine's `started` repeats it so its parent can match it.
pub const START_ID_ENV: &str = "WINK_START_ID";

/// The environment variable naming a directory for per-machine log files;
/// without it, machines log to stdout.
pub const LOG_DIR_ENV: &str = "WINK_LOG_DIR";

/// The environment variable glibc reads its allocator settings from; the
/// server adds [`NO_THREAD_CACHE`] to it for the machines it starts (see
/// [`machine_tunables`]).
pub const TUNABLES_ENV: &str = "GLIBC_TUNABLES";

/// The glibc setting that turns off its per-thread cache of freed blocks.
pub const NO_THREAD_CACHE: &str = "glibc.malloc.tcache_count=0";

/// The `GLIBC_TUNABLES` a machine process is started with: `current` (the
/// server's own, if any) with [`NO_THREAD_CACHE`] added, unless `current`
/// sets that count itself. glibc's cache keeps up to 7 freed blocks of each
/// small size where they lie; after a flood of forged senders those lie
/// all over the grown heap, each holding a page that `malloc_trim` cannot
/// give back (a few hundred KB: 10% of a machine's memory). Without the
/// cache the memory goes back once the flood's peers are forgotten; the
/// messaging benchmarks show no cost.
pub fn machine_tunables(current: Option<&std::ffi::OsStr>) -> std::ffi::OsString {
    match current {
        Some(current)
            if current
                .to_string_lossy()
                .contains("glibc.malloc.tcache_count=") =>
        {
            current.to_os_string()
        }
        Some(current) if !current.is_empty() => {
            let mut tunables = current.to_os_string();
            tunables.push(":");
            tunables.push(NO_THREAD_CACHE);
            tunables
        }
        _ => NO_THREAD_CACHE.into(),
    }
}

/// What a machine binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Invocation {
    Run {
        name: MachineName,
        address: Address,
        parent: Address,
        args: Vec<String>,
    },
    Describe(String),
    Help,
}

fn usage(program: &str) -> String {
    format!(
        "usage: {program} <name> <address> <parent> [args…]\n       {program} --describe [text|dot|mermaid]\n\
         \n  <name>     the machine's name, package/executable[#tag]\
         \n  <address>  where to listen: :<port>, <ip>:<port> (port 0: any free port)\
         \n  <parent>   where to send lifecycle messages\
         \n\nNormally started by `wink-server`; see `wink start`."
    )
}

fn parse_invocation(args: &[String]) -> Result<Invocation, String> {
    match args.get(1).map(String::as_str) {
        None => Err("missing <name> <address> <parent>".to_owned()),
        Some("-h" | "--help" | "help") => Ok(Invocation::Help),
        Some("--describe") => {
            let format = args.get(2).cloned().unwrap_or_else(|| "text".to_owned());
            match format.as_str() {
                "text" | "dot" | "mermaid" => Ok(Invocation::Describe(format)),
                other => Err(format!(
                    "unknown description format `{other}`: text, dot or mermaid"
                )),
            }
        }
        Some(name) => {
            let name: MachineName = name.parse().map_err(|e| format!("{e}"))?;
            let address = args
                .get(2)
                .ok_or("missing <address> and <parent>")?
                .parse()
                .map_err(|e| format!("<address>: {e}"))?;
            let parent = args
                .get(3)
                .ok_or("missing <parent>")?
                .parse()
                .map_err(|e| format!("<parent>: {e}"))?;
            Ok(Invocation::Run {
                name,
                address,
                parent,
                args: args[4..].to_vec(),
            })
        }
    }
}

/// Runs a machine as this process: reads `<name> <address> <parent>
/// [args…]` from the command line, sets up logging (stdout, or a file in
/// `$WINK_LOG_DIR`), binds the address, runs until the machine exits, errors
/// or gets `SIGTERM`/`SIGINT`, and returns the exit status: 0 after an
/// orderly exit (also when orphaned), 1 after an error, 2 for a bad command
/// line or environment.
///
/// `<binary> --describe [text|dot|mermaid]` prints the machine's states.
///
/// `$WINK_INITIAL_STATE`, if set, names the state to start in instead of
/// the `#[initial]` one.
pub fn run<M: Machine>(machine: M) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let program = args.first().map_or("machine", String::as_str).to_owned();
    match run_with(machine, &program, &args) {
        Ok(code) => code,
        Err(Failure { message, code }) => {
            eprintln!("{program}: {message}");
            ExitCode::from(code)
        }
    }
}

/// Why [`run`] could not run the machine, and the exit status that says so.
struct Failure {
    message: String,
    code: u8,
}

/// A bad command line or environment: exit status 2.
fn usage_error(message: impl std::fmt::Display) -> Failure {
    Failure {
        message: message.to_string(),
        code: 2,
    }
}

fn run_with<M: Machine>(machine: M, program: &str, args: &[String]) -> Result<ExitCode, Failure> {
    let (name, address, parent, args) = match parse_invocation(args) {
        Ok(Invocation::Run {
            name,
            address,
            parent,
            args,
        }) => (name, address, parent, args),
        Ok(Invocation::Describe(format)) => {
            let d = M::description();
            let text = match format.as_str() {
                "dot" => d.to_dot(),
                "mermaid" => d.to_mermaid(),
                _ => d.to_text(),
            };
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Invocation::Help) => {
            println!("{}", usage(program));
            return Ok(ExitCode::SUCCESS);
        }
        Err(problem) => return Err(usage_error(format!("{problem}\n{}", usage(program)))),
    };
    // A machine upgraded to this program takes over the socket and what
    // the program before carried.
    let taken = take_over().map_err(|e| Failure {
        message: format!("cannot take over from the program before: {e}"),
        code: 1,
    })?;
    let (hsm, resume) = match taken {
        Some((carried, socket)) => {
            let (hsm, takeover) = crate::node::restore(machine, &carried);
            (hsm, Some((carried, socket, takeover)))
        }
        None => (initial(machine)?, None),
    };
    let mut config = Config::from_env().map_err(usage_error)?;
    // The server passes its key file on; by hand, WINK_KEY_FILE names one.
    if let Some((file, keys)) = crate::auth::load_keys(None)
        .map_err(|e| usage_error(format!("{}: {e}", crate::auth::KEY_FILE_ENV)))?
    {
        config.transport.keys = Some(keys);
        config.key_file = Some(file);
        config.check_for_keys().map_err(usage_error)?;
    }
    let server = match std::env::var(SERVER_ENV) {
        Ok(server) => server
            .parse::<Address>()
            .map_err(|e| usage_error(format!("{SERVER_ENV}: {e}")))?,
        Err(_) => default_server(address),
    };
    let log = match std::env::var_os(LOG_DIR_ENV) {
        Some(dir) => crate::log::to_file(std::path::Path::new(&dir), &name).map_err(usage_error)?,
        None => crate::log::stdout(),
    };
    let failure = |message: String| Failure { message, code: 1 };
    // Before the socket: from the moment anyone can hear of this machine,
    // a stop request is an orderly exit.
    let signals = Signals::new().map_err(|e| failure(format!("cannot watch signals: {e}")))?;
    let (mut endpoint, resume) = match resume {
        Some((carried, socket, takeover)) => {
            let endpoint = Endpoint::resume(socket, config.transport.clone(), &carried.transport)
                .map_err(|e| failure(format!("cannot take over the socket: {e}")))?;
            (endpoint, Some((carried, takeover)))
        }
        None => {
            let endpoint = Endpoint::bind(address, config.transport.clone()).map_err(|e| {
                slog::error!(log, "{} cannot bind {}: {}", name, address, e);
                failure(format!("cannot bind {address}: {e}"))
            })?;
            (endpoint, None)
        }
    };
    // In JSON every record says which machine it is of (in text, the
    // runtime's lines begin with it).
    let log = if crate::log::Format::from_env() == Ok(crate::log::Format::Json) {
        log.new(slog::o!("machine" => name.to_string(), "at" => endpoint.local_addr().to_string()))
    } else {
        log
    };
    let start = match std::env::var(START_ID_ENV) {
        Ok(id) => Some(
            id.parse::<crate::control::RequestId>()
                .map_err(|e| usage_error(format!("{START_ID_ENV}: {e}")))?,
        ),
        Err(_) => None,
    };
    let identity = Identity {
        name,
        parent,
        server,
        args: args.clone(),
        start,
        pid: std::process::id(),
    };
    let finish = run_machine(
        hsm,
        &mut endpoint,
        identity,
        config,
        log.clone(),
        Some(signals.as_fd()),
        resume.as_ref().map(|(c, t)| (c, t.clone())),
    );
    let result = match finish {
        Ok(Finish::Ended(ending)) if ending.reason == crate::control::ExitReason::Error => {
            Ok(ExitCode::FAILURE)
        }
        Ok(Finish::Ended(_)) => Ok(ExitCode::SUCCESS),
        Ok(Finish::Upgrade(order, carried)) => {
            let e = become_upgraded(&order, &carried, &endpoint, parent, &args);
            slog::error!(
                log,
                "{} cannot run {} for its upgrade: {}",
                endpoint.local_addr(),
                order.path.display(),
                e
            );
            Err(failure(format!(
                "cannot run {} for the upgrade: {e}",
                order.path.display()
            )))
        }
        Err(e) => {
            let at = endpoint.local_addr();
            slog::error!(log, "{}: socket failed: {}", at, e);
            Err(failure(format!("{at}: socket failed: {e}")))
        }
    };
    // Log lines standard output could not take yet get a last chance.
    crate::log::finish_stdout(LOG_FINISH);
    result
}

/// The machine as `WINK_INITIAL_STATE` says it starts.
fn initial<M: Machine>(machine: M) -> Result<Hsm<M>, Failure> {
    Ok(match std::env::var("WINK_INITIAL_STATE") {
        Err(_) => Hsm::new(machine),
        Ok(state) => {
            let Some(initial) = M::State::from_name(&state) else {
                return Err(usage_error(format!(
                    "WINK_INITIAL_STATE={state:?} is not a state of {}",
                    M::description().machine
                )));
            };
            Hsm::starting_in(machine, initial)
        }
    })
}

/// What the program before carried, and its socket, if this program is
/// the one a machine was upgraded to ([`CARRIED_FD_ENV`] and
/// [`SOCKET_FD_ENV`] name their descriptors).
fn take_over() -> Result<Option<(Carried, Udp)>, String> {
    let (Some(carried), Some(socket)) = (
        std::env::var_os(CARRIED_FD_ENV),
        std::env::var_os(SOCKET_FD_ENV),
    ) else {
        return Ok(None);
    };
    // Not for the machine's own children, nor a later upgrade.
    std::env::remove_var(CARRIED_FD_ENV);
    std::env::remove_var(SOCKET_FD_ENV);
    let fd = |value: &std::ffi::OsStr, what: &str| -> Result<OwnedFd, String> {
        let fd: i32 = value
            .to_str()
            .and_then(|v| v.parse().ok())
            .filter(|fd| *fd > 2)
            .ok_or_else(|| format!("{what}: {value:?} is no descriptor"))?;
        // The program before left this descriptor open for us alone, and
        // nothing else in this process has it.
        rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) })
            .map_err(|e| format!("{what}: descriptor {fd}: {e}"))?;
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let mut file = std::fs::File::from(fd(&carried, CARRIED_FD_ENV)?);
    let socket = fd(&socket, SOCKET_FD_ENV)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| format!("cannot read what it carried: {e}"))?;
    let carried = Carried::decode(&bytes)?;
    let socket = Udp::from_fd(socket).map_err(|e| format!("the socket handed over: {e}"))?;
    Ok(Some((carried, socket)))
}

/// Runs the program of an upgrade in this process (`execve`), handing it
/// the socket and what is carried; returns only if it cannot.
fn become_upgraded(
    order: &UpgradeOrder,
    carried: &Carried,
    endpoint: &Endpoint,
    parent: Address,
    args: &[String],
) -> std::io::Error {
    use std::io::{Seek, Write};
    use std::os::unix::process::CommandExt;
    let bytes = match carried.encode() {
        Ok(bytes) => bytes,
        Err(e) => return std::io::Error::other(e),
    };
    // An anonymous file, left open across the exec.
    let raw = unsafe { libc::memfd_create(c"wink-upgrade".as_ptr(), 0) };
    if raw < 0 {
        return std::io::Error::last_os_error();
    }
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    if let Err(e) = file.write_all(&bytes).and_then(|()| file.rewind()) {
        return e;
    }
    // The socket stays open across the exec: datagrams that arrive
    // meanwhile wait in it for the new program.
    if let Err(e) = rustix::io::fcntl_setfd(endpoint.as_fd(), rustix::io::FdFlags::empty()) {
        return e.into();
    }
    let socket = endpoint.as_fd().as_raw_fd();
    crate::log::finish_stdout(LOG_FINISH);
    std::process::Command::new(&order.path)
        .arg(order.name.to_string())
        .arg(endpoint.local_addr().to_string())
        .arg(parent.to_string())
        .args(args)
        .env(CARRIED_FD_ENV, file.as_raw_fd().to_string())
        .env(SOCKET_FD_ENV, socket.to_string())
        .env_remove("WINK_INITIAL_STATE")
        .exec()
}

/// This process's resident memory (bytes) and CPU time, user and system
/// (milliseconds), from `/proc/self`; zero for what cannot be read.
pub fn vitals() -> (u64, u64) {
    let page = rustix::param::page_size() as u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_ascii_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page);
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // After the command's `(…)`, which may hold spaces: state is
            // field 3, utime 14, stime 15.
            let after = s.rsplit_once(')')?.1;
            let mut fields = after.split_ascii_whitespace().skip(11);
            let utime: u64 = fields.next()?.parse().ok()?;
            let stime: u64 = fields.next()?.parse().ok()?;
            Some((utime + stime) * 1000 / ticks)
        })
        .unwrap_or(0);
    (rss, cpu)
}

/// How long an exiting machine waits for a slow reader of its standard
/// output to take the log lines still held back.
const LOG_FINISH: Duration = Duration::from_secs(1);

/// The server of the host `address` is on: the same IP (loopback when
/// `address` is unspecified), port [`DEFAULT_SERVER_PORT`].
pub fn default_server(address: Address) -> Address {
    let ip = if address.ip().is_unspecified() {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        address.ip()
    };
    Address::new(std::net::SocketAddr::new(ip, DEFAULT_SERVER_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        std::iter::once("bin")
            .chain(list.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn machines_start_without_glibcs_thread_cache_unless_told_otherwise() {
        use std::ffi::OsStr;
        assert_eq!(machine_tunables(None), NO_THREAD_CACHE);
        assert_eq!(machine_tunables(Some(OsStr::new(""))), NO_THREAD_CACHE);
        assert_eq!(
            machine_tunables(Some(OsStr::new("glibc.malloc.check=3"))),
            "glibc.malloc.check=3:glibc.malloc.tcache_count=0"
        );
        assert_eq!(
            machine_tunables(Some(OsStr::new("glibc.malloc.tcache_count=7"))),
            "glibc.malloc.tcache_count=7"
        );
    }

    #[test]
    fn command_line_gives_name_address_parent_and_args() {
        let inv =
            parse_invocation(&args(&["family/Child", ":0", "127.0.0.1:5000", "x", "y"])).unwrap();
        let Invocation::Run {
            name,
            address,
            parent,
            args,
        } = inv
        else {
            panic!("{inv:?}")
        };
        assert_eq!(name.to_string(), "family/Child");
        assert_eq!(address.port(), 0);
        assert_eq!(parent.to_string(), "127.0.0.1:5000");
        assert_eq!(args, ["x", "y"]);
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert_eq!(
            parse_invocation(&args(&[])).unwrap_err(),
            "missing <name> <address> <parent>"
        );
        assert_eq!(
            parse_invocation(&args(&["a/b", ":1"])).unwrap_err(),
            "missing <parent>"
        );
        assert!(parse_invocation(&args(&["a/b", "nowhere", ":1"]))
            .unwrap_err()
            .starts_with("<address>: "));
        assert!(parse_invocation(&args(&["../b", ":1", ":2"])).is_err());
        assert_eq!(
            parse_invocation(&args(&["--describe", "svg"])).unwrap_err(),
            "unknown description format `svg`: text, dot or mermaid"
        );
    }

    #[test]
    fn default_server_is_on_the_machines_host() {
        assert_eq!(
            default_server("0.0.0.0:5".parse().unwrap()).to_string(),
            "127.0.0.1:42000"
        );
        assert_eq!(
            default_server("10.1.2.3:5".parse().unwrap()).to_string(),
            "10.1.2.3:42000"
        );
    }
}
