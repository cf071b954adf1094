//! A socket plus the reliable-delivery bookkeeping: the piece every Wink
//! process (machine, server, CLI) talks through.
//!
//! Nothing here starts a thread or keeps a reactor: [`Endpoint::send`],
//! [`Endpoint::receive_ready`] and [`Endpoint::handle_timeout`] only change
//! the transport's books, [`Endpoint::flush`] writes everything due with
//! one `sendmmsg` per batch, and [`Endpoint::wait`] flushes, then blocks in
//! one `ppoll` until the socket (or one more descriptor) is ready or a
//! deadline passes.

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use super::socket::{Batch, Socket, Udp, MAX_BATCH};
use crate::address::Address;
use crate::transport::{SendError, Stats, Transport, TransportConfig, TransportEvent};

/// Messages delivered by one call of [`Endpoint::receive_ready`], kept in
/// one reusable buffer so receiving allocates nothing once warmed up.
#[derive(Debug, Default)]
pub struct Inbox {
    text: String,
    messages: Vec<(Address, Range<usize>)>,
}

impl Inbox {
    /// Forgets every message.
    pub fn clear(&mut self) {
        self.text.clear();
        self.messages.clear();
    }

    /// How many messages there are.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The `i`th message and its sender.
    pub fn get(&self, i: usize) -> Option<(Address, &str)> {
        let (from, range) = self.messages.get(i)?;
        Some((*from, &self.text[range.clone()]))
    }

    fn push(&mut self, from: Address, text: &str) {
        let start = self.text.len();
        self.text.push_str(text);
        self.messages.push((from, start..self.text.len()));
    }
}

/// What an [`Endpoint::wait_with`] found ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// The socket has datagrams (or an error) to read.
    pub readable: bool,
    /// The other descriptor is readable.
    pub other: bool,
}

/// A bound UDP socket with reliable, ordered, once-only delivery to and
/// from any number of peers.
///
/// The endpoint never blocks but in [`Endpoint::wait`] (and the helpers
/// built on it, [`Endpoint::recv_timeout`] and [`Endpoint::settle`], for
/// simple clients such as the `wink` command). A driver loop goes:
/// `wait` (which writes what is queued first), [`Endpoint::receive_ready`]
/// if the socket is readable, hand the messages on, queue replies with
/// [`Endpoint::send`], [`Endpoint::handle_timeout`], and round again.
#[derive(Debug)]
pub struct Endpoint<S: Socket = Udp> {
    socket: S,
    transport: Transport,
    local: Address,
    /// Datagrams received by the last `receive_ready`.
    rx: Batch,
    /// Datagrams to send; those before `sent` are out. What the socket
    /// would not take waits here until it is writable again.
    tx: Batch,
    sent: usize,
    inbox: Inbox,
    next: usize,
    send_errors: u64,
    /// The most bytes buffered and peers held since memory was last given
    /// back.
    high_water: (usize, usize),
}

impl Endpoint<Udp> {
    /// Binds a UDP socket at `address` (port 0: any free port).
    pub fn bind(address: Address, config: TransportConfig) -> io::Result<Self> {
        Self::with_socket(Udp::bind(address.socket_addr())?, config)
    }
}

impl<S: Socket> AsFd for Endpoint<S> {
    /// The socket's descriptor, for a caller that waits on several things
    /// at once (see [`Endpoint::wants_write`]).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl<S: Socket> Endpoint<S> {
    /// An endpoint on an already bound socket, with a random incarnation.
    pub fn with_socket(socket: S, config: TransportConfig) -> io::Result<Self> {
        let local = Address::from(socket.local_addr()?);
        let incarnation = fastrand::u64(..);
        Ok(Endpoint {
            socket,
            transport: Transport::new(incarnation, config),
            local,
            rx: Batch::new(MAX_BATCH),
            tx: Batch::new(MAX_BATCH),
            sent: 0,
            inbox: Inbox::default(),
            next: 0,
            send_errors: 0,
            high_water: (0, 0),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> Address {
        self.local
    }

    /// Forgets everything about `peer` (see [`Transport::forget`]).
    pub fn forget(&mut self, peer: Address) -> usize {
        self.transport.forget(peer.socket_addr())
    }

    /// How many peers the transport remembers.
    pub fn peers(&self) -> usize {
        self.transport.peers()
    }

    /// Bytes the transport buffers ahead of holes.
    pub fn buffered_bytes(&self) -> usize {
        self.transport.buffered_bytes()
    }

    /// Delivery counters.
    pub fn stats(&self) -> &Stats {
        self.transport.stats()
    }

    /// Queues `message` for `to` (moved, not copied); it goes out with the
    /// next [`Endpoint::flush`] (every wait flushes first).
    pub fn send(&mut self, to: Address, message: impl Into<String>) -> Result<(), SendError> {
        self.transport.send(to.socket_addr(), message)?;
        Ok(())
    }

    /// Writes every packet due, a batch per `sendmmsg`, until none is left
    /// or the socket is full (the rest goes when it is writable again:
    /// see [`Endpoint::wants_write`]).
    pub fn flush(&mut self) -> io::Result<()> {
        let now = Instant::now();
        loop {
            if self.sent == self.tx.len() {
                self.tx.clear();
                self.sent = 0;
                while let Some(buf) = self.tx.spare() {
                    match self.transport.poll_transmit(now, buf) {
                        Some((to, len)) => self.tx.push(to, len),
                        None => break,
                    }
                }
                if self.tx.is_empty() {
                    return Ok(());
                }
            }
            match self.socket.try_send_batch(&self.tx, self.sent) {
                Ok(n) => self.sent += n.max(1).min(self.tx.len() - self.sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // Only a broken socket stops the endpoint. Anything else is
                // about this one datagram or its destination (an ICMP error
                // from an earlier send, a destination the kernel refuses:
                // port 0, broadcast, a firewall, another address family):
                // it counts as lost, and the transport retries or gives up.
                Err(e) if is_fatal(&e) => return Err(e),
                Err(_) => {
                    self.send_errors += 1;
                    self.sent += 1;
                }
            }
            if self.sent == self.tx.len() && !self.tx.is_full() {
                // The transport had nothing more to give.
                self.tx.clear();
                self.sent = 0;
                return Ok(());
            }
        }
    }

    /// Whether packets wait for the socket to be writable.
    pub fn wants_write(&self) -> bool {
        self.sent < self.tx.len()
    }

    /// Datagrams the socket refused to send (counted as lost).
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Reads the datagrams waiting on the socket, up to a batch, with one
    /// `recvmmsg`, and adds the messages they delivered to `inbox`, in order
    /// per sender. Acknowledgements are queued, not written: they go with
    /// the next flush, together with any reply. Call it when the socket is
    /// readable ([`Ready::readable`]); a batch shorter than
    /// [`MAX_BATCH`] means nothing more was waiting.
    pub fn receive_ready(&mut self, now: Instant, inbox: &mut Inbox) -> io::Result<()> {
        let received = self.socket.try_recv_batch(&mut self.rx);
        for (from, datagram) in self.rx.iter() {
            // A datagram that does not decode is counted by the transport
            // and dropped: it never stops the endpoint.
            let _ = self.transport.receive(now, from, datagram, |from, text| {
                inbox.push(Address::from(from), text)
            });
        }
        match received {
            // An ICMP error for an earlier send, say: not the socket's.
            Err(e) if is_fatal(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// [`Endpoint::receive_ready`] into the endpoint's own inbox, then
    /// the acknowledgements, for [`Endpoint::recv_timeout`].
    fn refill(&mut self, now: Instant) -> io::Result<()> {
        let mut inbox = std::mem::take(&mut self.inbox);
        if self.next >= inbox.len() {
            inbox.clear();
            self.next = 0;
        }
        let result = self.receive_ready(now, &mut inbox);
        self.inbox = inbox;
        result?;
        self.flush()
    }

    /// Queues the retransmissions due at `now` and gives up on what has
    /// run out of retries (see [`Endpoint::poll_event`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transport.handle_timeout(now);
        self.give_back_memory();
    }

    /// After the transport let go of much of what it buffered (peers
    /// forgotten after a flood, say), asks the allocator to return the
    /// freed pages to the system: glibc keeps them otherwise, and a
    /// process's memory would stay at its high-water mark.
    fn give_back_memory(&mut self) {
        let held = self.transport.buffered_bytes();
        let peers = self.transport.peers();
        self.high_water = (self.high_water.0.max(held), self.high_water.1.max(peers));
        let (most_held, most_peers) = self.high_water;
        let shrunk = (most_held >= TRIM_AFTER && held < most_held / 4)
            || (most_peers >= 256 && peers < most_peers / 4);
        if shrunk {
            self.high_water = (held, peers);
            trim_heap();
        }
    }

    /// When the next retransmission is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.transport.poll_timeout()
    }

    /// The next thing the transport has to report (a message given up on).
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.transport.poll_event()
    }

    /// When a live packet last came from `peer` (see
    /// [`Transport::last_heard`]).
    pub fn last_heard(&self, peer: Address) -> Option<Instant> {
        self.transport.last_heard(peer.socket_addr())
    }

    /// Whether every message sent has been acknowledged or given up on.
    pub fn is_settled(&self) -> bool {
        !self.wants_write() && self.transport.is_idle()
    }

    /// Flushes, then sleeps until a datagram arrives, `deadline` passes or
    /// the next retransmission is due (whichever is first); if packets wait
    /// for room in the socket, also until it is writable, and writes them.
    /// May return early: callers check what is due and wait again. True if
    /// the socket is readable.
    pub fn wait(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        Ok(self.wait_with(deadline, None)?.readable)
    }

    /// [`Endpoint::wait`], also waking when `other` is readable (a
    /// [`Signals`](super::Signals) descriptor, say): one `ppoll` on both,
    /// with a timeout to the nanosecond.
    pub fn wait_with(
        &mut self,
        deadline: Option<Instant>,
        other: Option<BorrowedFd<'_>>,
    ) -> io::Result<Ready> {
        self.flush()?;
        // Only now: a retransmission is timed from when it goes out.
        let deadline = match (deadline, self.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = deadline.map(|deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        let mut socket_flags = PollFlags::IN;
        if self.wants_write() {
            socket_flags |= PollFlags::OUT;
        }
        let mut ready = Ready::default();
        let writable;
        {
            let socket = PollFd::new(&self.socket, socket_flags);
            let polled = match other {
                Some(other) => {
                    let mut fds = [socket, PollFd::new(&other, PollFlags::IN)];
                    let polled = rustix::event::poll(&mut fds, timeout.as_ref());
                    ready.other = !fds[1].revents().is_empty();
                    (polled, fds[0].revents())
                }
                None => {
                    let mut fds = [socket];
                    let polled = rustix::event::poll(&mut fds, timeout.as_ref());
                    (polled, fds[0].revents())
                }
            };
            match polled {
                (Ok(_), revents) => {
                    ready.readable = revents.intersects(PollFlags::IN | PollFlags::ERR);
                    writable = revents.contains(PollFlags::OUT);
                }
                // A signal with a handler (or a debugger) woke us: early.
                (Err(rustix::io::Errno::INTR), _) => return Ok(Ready::default()),
                (Err(e), _) => return Err(e.into()),
            }
        }
        if writable {
            self.flush()?;
        }
        Ok(ready)
    }

    /// Runs the endpoint until a message arrives or `timeout` passes.
    pub fn recv_timeout(&mut self, timeout: Duration) -> io::Result<Option<(Address, String)>> {
        let give_up = deadline_after(timeout);
        loop {
            if let Some((from, text)) = self.inbox.get(self.next) {
                self.next += 1;
                return Ok(Some((from, text.to_owned())));
            }
            let now = Instant::now();
            if now >= give_up {
                return Ok(None);
            }
            self.handle_timeout(now);
            let deadline = self.next_deadline().map_or(give_up, |d| d.min(give_up));
            if self.wait(Some(deadline))? {
                self.refill(Instant::now())?;
            }
        }
    }

    /// Runs the endpoint until every message sent is acknowledged or given
    /// up on, or `timeout` passes; incoming messages are acknowledged and
    /// kept for [`Endpoint::recv_timeout`]. True if everything settled.
    pub fn settle(&mut self, timeout: Duration) -> io::Result<bool> {
        let give_up = deadline_after(timeout);
        loop {
            let now = Instant::now();
            self.handle_timeout(now);
            self.flush()?;
            if self.is_settled() {
                return Ok(true);
            }
            if now >= give_up {
                return Ok(false);
            }
            let deadline = self.next_deadline().map_or(give_up, |d| d.min(give_up));
            if self.wait(Some(deadline))? {
                self.refill(Instant::now())?;
            }
        }
    }
}

impl<S: Socket> Drop for Endpoint<S> {
    /// Acknowledges what was received before the socket closes: acks wait
    /// up to `ack_delay` for a message to carry them, and a process that
    /// ends meanwhile would leave its peers retrying.
    fn drop(&mut self) {
        self.transport.ack_now();
        let _ = self.flush();
    }
}

/// Buffered bytes the transport must have held, and let go of three
/// quarters of, before memory is given back.
const TRIM_AFTER: usize = 1 << 20;

/// Returns the allocator's free pages to the system.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases memory the
    // allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Now plus `timeout`, or a year from now if that overflows.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// Errors that mean the socket itself is unusable.
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_the_kernel_refuses_is_a_loss_not_an_error() {
        let mut endpoint =
            Endpoint::bind("127.0.0.1:0".parse().unwrap(), TransportConfig::default()).unwrap();
        // Port 0 is no destination: sendmmsg fails with EINVAL.
        endpoint
            .send("127.0.0.1:0".parse().unwrap(), "hello")
            .unwrap();
        assert!(endpoint.flush().is_ok());
        assert_eq!(endpoint.send_errors(), 1);
        // Retransmissions fail the same way, and the endpoint goes on.
        let later = Instant::now() + Duration::from_secs(1);
        endpoint.handle_timeout(later);
        assert!(endpoint.flush().is_ok());
        assert_eq!(endpoint.send_errors(), 2);
    }

    /// An endpoint on a free loopback port, default settings.
    fn bound() -> Endpoint {
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), TransportConfig::default()).unwrap()
    }

    #[test]
    fn a_refused_datagram_does_not_hold_back_the_rest_of_its_batch() {
        let (mut a, mut b) = (bound(), bound());
        a.send("127.0.0.1:0".parse().unwrap(), "nowhere").unwrap();
        a.send(b.local_addr(), "somewhere").unwrap();
        a.flush().unwrap();
        assert_eq!(a.send_errors(), 1);
        let got = b.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got, Some((a.local_addr(), "somewhere".to_owned())));
    }

    #[test]
    fn many_messages_go_out_in_batches_and_all_arrive() {
        let (mut a, mut b) = (bound(), bound());
        let n = 3 * MAX_BATCH + 5;
        for i in 0..n {
            a.send(b.local_addr(), format!("m{i}")).unwrap();
        }
        a.flush().unwrap();
        for i in 0..n {
            let got = b.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, Some((a.local_addr(), format!("m{i}"))));
            // The sender reads the acks and sends what its window holds back.
            a.settle(Duration::ZERO).unwrap();
        }
        assert!(a.settle(Duration::from_secs(10)).unwrap());
    }
}
