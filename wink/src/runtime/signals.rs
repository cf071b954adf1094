//! SIGTERM, SIGINT and SIGHUP as a file descriptor (a `signalfd`), so that
//! a loop blocked on its socket sees them in the same `ppoll` or
//! `epoll_wait`, with no handler and no helper thread. SIGTERM and SIGINT
//! ask for an orderly exit; SIGHUP for the cluster's key file to be read
//! again ([`RELOAD`]).
//!
//! [`RELOAD`]: RELOAD

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The signals [`Signals`] takes.
const STOPS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The signal that asks a server or machine to read its key file again
/// (and a server to pass it on to its machines).
pub const RELOAD: i32 = libc::SIGHUP;

/// SIGTERM, SIGINT and SIGHUP, blocked and readable from a file descriptor.
#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, and so in every
    /// thread it starts afterwards, and opens a descriptor that is
    /// readable while one of them is pending. Make it before starting
    /// threads (each keeps the mask it started with) and before binding
    /// the socket: until then a signal ends the process the default way,
    /// before anyone could have heard of it.
    ///
    /// A process started later inherits the blocked signals (the standard
    /// library does not reset them): start it with
    /// [`unblock_in_child`].
    pub fn new() -> io::Result<Self> {
        let fd = block_and_open(&STOPS)?;
        Ok(Signals { fd })
    }

    /// The signal pending, taken off the descriptor; `None` when none is.
    pub fn take(&self) -> io::Result<Option<i32>> {
        take_from(self.fd.as_fd())
    }
}

/// What the signals pending on a stop descriptor ask for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// SIGTERM or SIGINT: exit in order.
    pub stop: bool,
    /// SIGHUP ([`RELOAD`]): read the key file again.
    pub reload: bool,
}

/// Takes every signal pending on `fd`, a stop descriptor that polled
/// readable. One that is readable but holds no signal (not a signalfd: a
/// test's socket) asks to stop, as does one that cannot be read.
pub fn take_all(fd: BorrowedFd<'_>) -> Asked {
    let mut asked = Asked::default();
    let mut first = true;
    loop {
        match take_from(fd) {
            Ok(Some(RELOAD)) => asked.reload = true,
            Ok(Some(_)) => asked.stop = true,
            Ok(None) => {
                asked.stop |= first;
                return asked;
            }
            Err(_) => {
                asked.stop = true;
                return asked;
            }
        }
        first = false;
    }
}

/// The signal pending on the signalfd `fd` (a [`Signals`]' descriptor),
/// taken off it; `None` when none is.
fn take_from(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // A `struct signalfd_siginfo`, whose first field is the signal.
    let mut info = [0u8; 128];
    match rustix::io::read(fd, &mut info) {
        Ok(128) => {
            let mut signal = [0u8; 4];
            signal.copy_from_slice(&info[..4]);
            Ok(Some(u32::from_ne_bytes(signal) as i32))
        }
        Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Makes `command` start its process with SIGTERM and SIGINT unblocked. A
/// new process inherits the signal mask of the thread that forks it, so a
/// machine forked by a server thread that has them blocked (see
/// [`Signals::new`]) would otherwise ignore a stop request until SIGKILL.
pub fn unblock_in_child(command: &mut Command) -> io::Result<()> {
    // SIGHUP stays blocked: until the machine makes its own `Signals`, a
    // SIGHUP its server passes on (read the key file again) waits pending
    // instead of ending it.
    let set = sigset(&[libc::SIGTERM, libc::SIGINT])?;
    // SAFETY: the closure runs in the child between fork and exec; it only
    // calls `pthread_sigmask`, which is async-signal-safe, on a set made
    // beforehand, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            match libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) {
                0 => Ok(()),
                status => Err(io::Error::from_raw_os_error(status)),
            }
        });
    }
    Ok(())
}

/// The set of `signals`.
fn sigset(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initialises the set before it is read;
    // `sigaddset` takes valid signal numbers.
    unsafe {
        if libc::sigemptyset(set.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut set = set.assume_init();
        for &signal in signals {
            if libc::sigaddset(&mut set, signal) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(set)
    }
}

/// Blocks `signals` in this thread and opens a non-blocking, close-on-exec
/// signalfd for them: the C library's `pthread_sigmask` and `signalfd`,
/// which rustix does not wrap.
fn block_and_open(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let set = sigset(signals)?;
    // SAFETY: `pthread_sigmask` and `signalfd` only read the set.
    // `signalfd(-1, …)` returns a new descriptor that nothing else owns,
    // which `OwnedFd` then closes.
    unsafe {
        let status = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status));
        }
        // An ignored signal is discarded, never queued for the descriptor:
        // a process started with SIGHUP or SIGINT ignored (by `nohup`, or a
        // shell's background job) would not hear them. Blocked already,
        // the default action cannot happen meanwhile.
        for &signal in signals {
            if libc::signal(signal, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{poll, PollFd, PollFlags};

    #[test]
    fn a_signal_to_this_thread_is_read_from_the_descriptor() {
        // On a thread of its own: the mask is per thread, and a signal sent
        // to this thread alone reaches no other test.
        std::thread::spawn(|| {
            let signals = Signals::new().unwrap();
            assert_eq!(signals.take().unwrap(), None);
            // SAFETY: raising a blocked signal at this very thread.
            let status = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) };
            assert_eq!(status, 0);
            let mut fds = [PollFd::new(&signals, PollFlags::IN)];
            assert_eq!(poll(&mut fds, None).unwrap(), 1);
            assert_eq!(signals.take().unwrap(), Some(libc::SIGTERM));
            assert_eq!(signals.take().unwrap(), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_process_started_from_a_blocking_thread_has_the_signals_unblocked() {
        let blocked = |unblock: bool| {
            std::thread::spawn(move || {
                let _signals = Signals::new().unwrap();
                let mut command = Command::new("grep");
                command.args(["SigBlk", "/proc/self/status"]);
                if unblock {
                    unblock_in_child(&mut command).unwrap();
                }
                let out = command.output().unwrap();
                String::from_utf8(out.stdout).unwrap()
            })
            .join()
            .unwrap()
        };
        // SIGHUP is bit 0, SIGINT bit 1, SIGTERM bit 14: SIGHUP stays
        // blocked, to wait for the machine's own descriptor.
        assert!(blocked(false).trim_end().ends_with("4003"), "inherited");
        assert_eq!(blocked(true).trim_end(), "SigBlk:\t0000000000000001");
    }
}
