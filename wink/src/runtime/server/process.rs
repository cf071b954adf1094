//! Machine processes for the server: forking one from the served
//! directory, checking a process that asks to be adopted, and watching,
//! signalling and reaping them through pidfds, so that a pid the kernel
//! has reused is never signalled. Everything here may block (fork, the
//! file system, `/proc`): the driver runs it on worker threads, except
//! [`signal`], [`reap`] and [`has_ended`], which never block.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{
    pidfd_open, pidfd_send_signal, waitid, Pid, PidfdFlags, WaitId, WaitIdOptions,
};

use crate::address::Address;
use crate::auth::KEY_FILE_ENV;
use crate::control::RequestId;
use crate::name::MachineName;
use crate::runtime::{machine_tunables, LOG_DIR_ENV, SERVER_ENV, START_ID_ENV, TUNABLES_ENV};
use crate::server::{ProcessExit, Signal};

/// What every spawn and check needs to know about the server.
#[derive(Debug)]
pub(super) struct Served {
    /// The served directory, canonical.
    pub(super) dir: PathBuf,
    /// Where machines write their logs, if not to stdout.
    pub(super) log_dir: Option<PathBuf>,
    /// The cluster's key file, if any.
    pub(super) key_file: Option<PathBuf>,
    /// The server's address.
    pub(super) me: Address,
}

/// One machine to fork.
#[derive(Debug)]
pub(super) struct Spawn {
    pub(super) name: MachineName,
    pub(super) address: Address,
    pub(super) parent: Address,
    pub(super) start: RequestId,
    pub(super) args: Vec<String>,
}

/// A forked machine process and a pidfd on it.
#[derive(Debug)]
pub(super) struct Forked {
    pub(super) pid: u32,
    pub(super) pidfd: OwnedFd,
}

/// Why a start was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    #[error("`{name}`: no executable at {}: {source}", .path.display())]
    Missing {
        name: MachineName,
        path: PathBuf,
        source: io::Error,
    },
    #[error("`{name}` resolves to {}, outside the served directory", .path.display())]
    Outside { name: MachineName, path: PathBuf },
    #[error("`{name}`: {} is not an executable file", .path.display())]
    NotExecutable { name: MachineName, path: PathBuf },
    #[error("`{name}`: cannot start {}: {source}", .path.display())]
    Spawn {
        name: MachineName,
        path: PathBuf,
        source: io::Error,
    },
    #[error("`{name}`: cannot watch process {pid}: {source}")]
    Watch {
        name: MachineName,
        pid: u32,
        source: io::Error,
    },
}

/// Why a process was not adopted.
#[derive(Debug, thiserror::Error)]
pub(super) enum AdoptError {
    #[error("pid {pid}: no such process")]
    NoSuchProcess { pid: u32 },
    #[error("pid {pid}: cannot watch it: {source}")]
    Watch { pid: u32, source: io::Error },
    #[error("pid {pid}: cannot read its executable: {source}")]
    Executable { pid: u32, source: io::Error },
    #[error("pid {pid} runs {}, outside the served directory", .exe.display())]
    Outside { pid: u32, exe: PathBuf },
    #[error("pid {pid}: cannot read its sockets: {source}")]
    Sockets { pid: u32, source: io::Error },
    #[error("pid {pid} holds no UDP socket on port {port}")]
    NoSocket { pid: u32, port: u16 },
    #[error("pid {pid} ended while it was checked")]
    Ended { pid: u32 },
}

/// The executable for `name`: `<dir>/<package>/<executable>`, if it is
/// inside the served directory after following symlinks, and executable.
pub(super) fn resolve(dir: &Path, name: &MachineName) -> Result<PathBuf, StartError> {
    let path = dir.join(name.binary_path());
    let real = path.canonicalize().map_err(|source| StartError::Missing {
        name: name.clone(),
        path: path.clone(),
        source,
    })?;
    if !real.starts_with(dir) {
        return Err(StartError::Outside {
            name: name.clone(),
            path: real,
        });
    }
    let executable = fs::metadata(&real)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !executable {
        return Err(StartError::NotExecutable {
            name: name.clone(),
            path: real,
        });
    }
    Ok(real)
}

/// Forks `<path> <name> <address> <parent> [args…]` with `WINK_SERVER`,
/// `WINK_START_ID`, `GLIBC_TUNABLES` (see [`machine_tunables`]) and, if
/// configured, `WINK_LOG_DIR` and `WINK_KEY_FILE`; stdin is null,
/// stdout and stderr are the server's (each machine writes its log lines
/// through a non-blocking descriptor of its own: see [`crate::log`]), and
/// SIGTERM and SIGINT are not blocked. Blocks for the fork and exec.
pub(super) fn spawn(served: &Served, spawn: &Spawn) -> Result<Forked, StartError> {
    let path = resolve(&served.dir, &spawn.name)?;
    let mut command = Command::new(&path);
    command
        .arg(spawn.name.to_string())
        .arg(spawn.address.to_string())
        .arg(spawn.parent.to_string())
        .args(&spawn.args)
        .env(SERVER_ENV, served.me.to_string())
        .env(START_ID_ENV, spawn.start.to_string())
        .env(
            TUNABLES_ENV,
            machine_tunables(std::env::var_os(TUNABLES_ENV).as_deref()),
        )
        .stdin(Stdio::null());
    if let Some(dir) = &served.log_dir {
        command.env(LOG_DIR_ENV, dir);
    }
    // The machine reads the key from the file, as the server did: the key
    // is never in an argument, an environment or a log.
    match &served.key_file {
        Some(file) => command.env(KEY_FILE_ENV, file),
        None => command.env_remove(KEY_FILE_ENV),
    };
    let spawn_error = |source| StartError::Spawn {
        name: spawn.name.clone(),
        path: path.clone(),
        source,
    };
    // The server's threads have SIGTERM and SIGINT blocked; the machine
    // must not.
    crate::runtime::unblock_in_child(&mut command).map_err(spawn_error)?;
    let mut child = command.spawn().map_err(spawn_error)?;
    let pid = child.id();
    // The child is not reaped until we say so, so its pid is its own even
    // if it has already exited.
    match pidfd_open(Pid::from_child(&child), PidfdFlags::empty()) {
        Ok(pidfd) => Ok(Forked { pid, pidfd }),
        Err(errno) => {
            // Unwatched, it would be a machine the server cannot signal:
            // end it now.
            let _ = child.kill();
            let _ = child.wait();
            Err(StartError::Watch {
                name: spawn.name.clone(),
                pid,
                source: errno.into(),
            })
        }
    }
}

/// Checks that process `pid` is a machine of the served directory
/// listening at `address`, and returns a pidfd on it: its executable is
/// inside the directory, and it holds a UDP socket bound to the address's
/// port. The pidfd is opened first and checked last, so every check was
/// about the process it names, not a later one with the same pid.
pub(super) fn check_adoptee(dir: &Path, pid: u32, address: Address) -> Result<OwnedFd, AdoptError> {
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(AdoptError::NoSuchProcess { pid })?;
    let pidfd = pidfd_open(raw, PidfdFlags::empty()).map_err(|errno| match errno {
        Errno::SRCH => AdoptError::NoSuchProcess { pid },
        errno => AdoptError::Watch {
            pid,
            source: errno.into(),
        },
    })?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let exe =
        fs::read_link(proc.join("exe")).map_err(|source| AdoptError::Executable { pid, source })?;
    // A binary replaced since it started reads `<path> (deleted)`: still
    // inside the directory.
    if !exe.starts_with(dir) {
        return Err(AdoptError::Outside { pid, exe });
    }
    let sockets = |source| AdoptError::Sockets { pid, source };
    let mut inodes = Vec::new();
    for table in ["net/udp", "net/udp6"] {
        match fs::read_to_string(proc.join(table)) {
            Ok(text) => inodes.extend(udp_inodes(&text, address.port())),
            // No IPv6 in its network namespace.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(sockets(e)),
        }
    }
    let wanted: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let mut holds = false;
    if !wanted.is_empty() {
        for entry in fs::read_dir(proc.join("fd")).map_err(sockets)? {
            let Ok(entry) = entry else { continue };
            if let Ok(target) = fs::read_link(entry.path()) {
                if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                    holds = true;
                    break;
                }
            }
        }
    }
    if !holds {
        return Err(AdoptError::NoSocket {
            pid,
            port: address.port(),
        });
    }
    if has_ended(&pidfd) {
        return Err(AdoptError::Ended { pid });
    }
    Ok(pidfd)
}

/// The inodes of the sockets bound to local port `port` in a
/// `/proc/net/udp` or `/proc/net/udp6` table.
fn udp_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let local = fields.get(1)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let bound = u16::from_str_radix(hex_port, 16).ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            (bound == port && inode != 0).then_some(inode)
        })
        .collect()
}

/// Whether the process of `pidfd` has ended (its pidfd is readable).
pub(super) fn has_ended(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0)
}

/// How the process of `pidfd` ended, reaping it if it is a child of this
/// process; `None` if it still runs.
pub(super) fn reap(pidfd: &OwnedFd) -> Option<ProcessExit> {
    match waitid(
        WaitId::PidFd(pidfd.as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
    ) {
        Ok(Some(status)) => Some(match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => ProcessExit::Status(code),
            (None, Some(signal)) => ProcessExit::Signal(signal),
            (None, None) => ProcessExit::Unknown,
        }),
        Ok(None) | Err(Errno::AGAIN) => None,
        // Not a child of this process (adopted): its status is its
        // parent's to read.
        Err(Errno::CHILD) => has_ended(pidfd).then_some(ProcessExit::Unknown),
        Err(_) => Some(ProcessExit::Unknown),
    }
}

/// Sends SIGHUP to the process of `pidfd`: read the key file again.
pub(super) fn hang_up(pidfd: &OwnedFd) -> io::Result<()> {
    pidfd_send_signal(pidfd, rustix::process::Signal::HUP).map_err(io::Error::from)
}

/// Sends `signal` to the process of `pidfd` (never to another process with
/// its pid).
pub(super) fn signal(pidfd: &OwnedFd, signal: Signal) -> io::Result<()> {
    let signal = match signal {
        Signal::Term => rustix::process::Signal::TERM,
        Signal::Kill => rustix::process::Signal::KILL,
    };
    pidfd_send_signal(pidfd, signal).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:1B58 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4711 2 0000000000000000 0
  124: 00000000:A410 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4712 2 0000000000000000 0
  125: 00000000000000000000000001000000:1B58 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4713 2 0000000000000000 0
";

    #[test]
    fn udp_tables_give_the_inodes_bound_to_a_port() {
        assert_eq!(udp_inodes(TABLE, 7000), [4711, 4713]);
        assert_eq!(udp_inodes(TABLE, 42000), [4712]);
        assert_eq!(udp_inodes(TABLE, 1), Vec::<u64>::new());
        assert_eq!(udp_inodes("garbage\nmore garbage", 7000), Vec::<u64>::new());
    }

    #[test]
    fn a_process_outside_the_served_directory_is_not_adopted() {
        // A fresh directory: the test binary is not in it, wherever the
        // checkout is.
        let served = tempfile::tempdir().unwrap();
        let dir = served.path().canonicalize().unwrap();
        let error = check_adoptee(&dir, std::process::id(), "127.0.0.1:1".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside the served directory"), "{error}");
        let error = check_adoptee(&dir, 0, "127.0.0.1:1".parse().unwrap()).unwrap_err();
        assert_eq!(error.to_string(), "pid 0: no such process");
    }

    #[test]
    fn a_process_without_the_socket_is_not_adopted() {
        let me = std::env::current_exe().unwrap();
        let dir = me.parent().unwrap().canonicalize().unwrap();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let pid = std::process::id();
        let at = Address::from(socket.local_addr().unwrap());
        assert!(check_adoptee(&dir, pid, at).is_ok());
        drop(socket);
        assert_eq!(
            check_adoptee(&dir, pid, at).unwrap_err().to_string(),
            format!("pid {pid} holds no UDP socket on port {port}")
        );
    }

    #[test]
    fn a_child_is_watched_signalled_and_reaped_by_pidfd() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pidfd = pidfd_open(Pid::from_child(&child), PidfdFlags::empty()).unwrap();
        assert!(!has_ended(&pidfd));
        assert_eq!(reap(&pidfd), None);
        signal(&pidfd, Signal::Kill).unwrap();
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        poll(&mut fds, None).unwrap();
        assert_eq!(reap(&pidfd), Some(ProcessExit::Signal(9)));
        // Reaped: no zombie is left, and the pidfd still names it.
        assert!(signal(&pidfd, Signal::Kill).is_err());
        drop(child);
    }
}
