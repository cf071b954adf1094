//! The wake-up for a loop's next deadline, as a timer descriptor armed
//! only when the deadline comes closer.
//!
//! A `ppoll` with a timeout arms a kernel timer on every call and cancels
//! it when a datagram comes first, which on a virtual machine means
//! reprogramming the (emulated) timer device twice per wait: about 5 µs a
//! wait here, as much as the rest of a loopback round trip. A loop with a
//! retransmission pending always has a deadline a millisecond or so ahead,
//! and each message moves it a little later. An [`Alarm`] is armed for a
//! deadline and left alone while later deadlines come: it then rings
//! early, the loop finds nothing due and arms it again, once per deadline
//! rather than once per message.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

/// A `timerfd` on the monotonic clock, readable once the time it was
/// armed for has come.
#[derive(Debug)]
pub struct Alarm {
    fd: OwnedFd,
    /// When it rings, if armed.
    armed: Option<Instant>,
}

impl Alarm {
    /// A new, unarmed alarm.
    pub fn new() -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(Alarm { fd, armed: None })
    }

    /// Makes sure it rings by `deadline` (it may ring earlier), arming it
    /// only if it is not armed already for `deadline` or before.
    pub fn ring_by(&mut self, now: Instant, deadline: Instant) -> io::Result<()> {
        if !needs_arming(self.armed, now, deadline) {
            return Ok(());
        }
        // A zero value would disarm it: at least a nanosecond.
        let left = deadline
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        let value = Itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value: timespec(left),
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &value)?;
        self.armed = Some(deadline);
        Ok(())
    }

    /// After a wait found it readable: takes the ring off the descriptor,
    /// and it is unarmed.
    pub fn clear(&mut self) -> io::Result<()> {
        self.armed = None;
        let mut ticks = [0u8; 8];
        match rustix::io::read(&self.fd, &mut ticks) {
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for Alarm {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether an alarm armed for `armed` must be armed again to ring by
/// `deadline`: when it is not armed, when it rings after `deadline`, or
/// when its time has passed (it has rung, or is about to, and is not
/// cleared yet: arming it anew keeps the next ring for `deadline`).
fn needs_arming(armed: Option<Instant>, now: Instant, deadline: Instant) -> bool {
    armed.is_none_or(|armed| armed > deadline || armed <= now)
}

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{poll, PollFd, PollFlags};

    #[test]
    fn an_alarm_armed_earlier_is_left_alone_and_a_later_one_is_moved() {
        let now = Instant::now();
        let ms = Duration::from_millis(1);
        assert!(needs_arming(None, now, now + ms));
        // Armed for 1 ms: a deadline at 2 ms needs nothing (it rings
        // early), one at half a millisecond moves it.
        assert!(!needs_arming(Some(now + ms), now, now + 2 * ms));
        assert!(!needs_arming(Some(now + ms), now, now + ms));
        assert!(needs_arming(Some(now + ms), now, now + ms / 2));
        // Its time has come: armed again, whatever the deadline.
        assert!(needs_arming(Some(now + ms), now + ms, now + 2 * ms));
    }

    fn rung(alarm: &Alarm, timeout: Option<Duration>) -> bool {
        let timeout = timeout.map(timespec);
        let mut fds = [PollFd::new(alarm, PollFlags::IN)];
        poll(&mut fds, timeout.as_ref()).unwrap();
        !fds[0].revents().is_empty()
    }

    #[test]
    fn an_alarm_rings_by_its_deadline_and_is_quiet_once_cleared() {
        let mut alarm = Alarm::new().unwrap();
        assert!(!rung(&alarm, Some(Duration::ZERO)));
        let armed_at = Instant::now();
        alarm
            .ring_by(armed_at, armed_at + Duration::from_millis(2))
            .unwrap();
        // Nothing else can wake this poll: it returns when the alarm rings.
        assert!(rung(&alarm, None));
        assert!(armed_at.elapsed() >= Duration::from_millis(2));
        alarm.clear().unwrap();
        assert!(!rung(&alarm, Some(Duration::ZERO)));
    }

    #[test]
    fn a_deadline_already_passed_rings_at_once() {
        let mut alarm = Alarm::new().unwrap();
        let now = Instant::now();
        alarm.ring_by(now + Duration::from_millis(1), now).unwrap();
        assert!(rung(&alarm, None));
    }
}
