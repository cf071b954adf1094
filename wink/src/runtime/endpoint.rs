//! A socket plus the reliable-delivery bookkeeping: the piece every Wink
//! process (machine, server, CLI) talks through.
//!
//! Nothing here starts a thread or keeps a reactor: [`Endpoint::send`],
//! [`Endpoint::receive_ready`] and [`Endpoint::handle_timeout`] only change
//! the transport's books, [`Endpoint::flush`] writes everything due with
//! one `sendmmsg` per batch, and [`Endpoint::wait`] flushes, then blocks in
//! one `ppoll` until the socket (or one more descriptor) is ready or its
//! [`Alarm`] rings for the deadline.

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags, Timespec};

use super::alarm::Alarm;
use super::socket::{Batch, Socket, Udp, MAX_BATCH};
use crate::address::Address;
use crate::transport::{self, SendError, Stats, Transport, TransportConfig, TransportEvent};

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
    /// Wakes [`Endpoint::wait`] at its deadline.
    alarm: Alarm,
    /// The most bytes buffered and peers held since memory was last given
    /// back.
    high_water: (usize, usize),
    /// When the transport was last told the system's clock.
    clock_set: Instant,
    /// How many datagrams the next read asks for.
    read_size: ReadSize,
}

/// How many datagrams the next read asks for. A ping-pong reads one
/// datagram at a time: `recvmmsg` for more than one tries the queue again
/// after the first and costs a microsecond or two more for nothing. A
/// burst reads a whole batch per call: one datagram per wake-up there
/// would cost a wait and a read per datagram. Which of the two is under
/// way shows in what the reads bring:
///
/// - batches, until [`ReadSize::TO_SINGLE`] in a row found one datagram
///   or none;
/// - then single reads, and after [`ReadSize::TO_PROBE`] in a row that
///   each found one, a batch (a probe) in case a burst is waiting: several
///   found go back to batches, one or none back to single reads. A
///   ping-pong pays for one probe in `TO_PROBE + 1` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadSize {
    /// Batches; how many in a row found one datagram or none.
    Batch(usize),
    /// Single reads; how many in a row found one.
    Single(usize),
    /// One batch, then back to single reads unless it found several.
    Probe,
}

impl ReadSize {
    const TO_SINGLE: usize = 8;
    const TO_PROBE: usize = 4;

    /// Batches at first.
    const START: ReadSize = ReadSize::Batch(0);

    /// How many datagrams the read asks for.
    fn limit(self) -> usize {
        match self {
            ReadSize::Single(_) => 1,
            ReadSize::Batch(_) | ReadSize::Probe => MAX_BATCH,
        }
    }

    /// The size for the read after this one, which found `got`
    /// datagrams.
    fn after(self, got: usize) -> ReadSize {
        match self {
            _ if got > 1 => ReadSize::Batch(0),
            ReadSize::Batch(few) if few + 1 >= Self::TO_SINGLE => ReadSize::Single(0),
            ReadSize::Batch(few) => ReadSize::Batch(few + 1),
            ReadSize::Single(hits) if got == 1 && hits + 1 >= Self::TO_PROBE => ReadSize::Probe,
            ReadSize::Single(hits) if got == 1 => ReadSize::Single(hits + 1),
            ReadSize::Single(_) | ReadSize::Probe => ReadSize::Single(0),
        }
    }
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
    /// An endpoint on an already bound socket, with an incarnation from
    /// the time it starts (see [`transport::incarnation_at`]).
    pub fn with_socket(socket: S, config: TransportConfig) -> io::Result<Self> {
        let incarnation = transport::incarnation_at(unix_time(), fastrand::u32(..));
        Self::with_transport(socket, Transport::new(incarnation, config))
    }

    /// An endpoint on a socket handed over by the program before (a live
    /// upgrade), going on with its transport's streams (see
    /// [`Transport::resume`]).
    pub fn resume(
        socket: S,
        config: TransportConfig,
        handover: &transport::Handover,
    ) -> io::Result<Self> {
        Self::with_transport(socket, Transport::resume(handover, config, Instant::now()))
    }

    /// Gives up on everything still in flight or queued (see
    /// [`Transport::give_up_everything`]): [`Endpoint::poll_event`] reports
    /// each.
    pub fn give_up_everything(&mut self) {
        self.transport.give_up_everything();
    }

    /// Takes no new messages from now on (see [`Transport::close`]); acks
    /// are still taken, so [`Endpoint::settle`] sees what was sent
    /// through.
    pub fn close(&mut self) {
        self.transport.close();
    }

    /// What the next program needs to go on (see [`Transport::handover`]).
    pub fn handover(&self) -> transport::Handover {
        self.transport.handover()
    }

    fn with_transport(socket: S, mut transport: Transport) -> io::Result<Self> {
        let local = Address::from(socket.local_addr()?);
        let now = Instant::now();
        let unix = unix_time();
        transport.set_clock(now, unix);
        transport.set_local_addr(local.socket_addr());
        if transport.config().keys.is_some() && local.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "with a cluster key, bind a specific address, not {local}: a sealed datagram names the address it is sent to"
                ),
            ));
        }
        Ok(Endpoint {
            socket,
            transport,
            clock_set: now,
            local,
            rx: Batch::new(MAX_BATCH),
            tx: Batch::new(MAX_BATCH),
            sent: 0,
            inbox: Inbox::default(),
            next: 0,
            send_errors: 0,
            alarm: Alarm::new().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot make the endpoint's timer descriptor: {e}"),
                )
            })?,
            read_size: ReadSize::START,
            high_water: (0, 0),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> Address {
        self.local
    }

    /// Seals with, and accepts, `keys` from now on (see
    /// [`Transport::set_keys`]).
    pub fn set_keys(&mut self, keys: Option<std::sync::Arc<crate::auth::Keys>>) {
        self.transport.set_keys(keys);
    }

    /// Reads the key file `file` again and uses its keys, logging what it
    /// did as `who`; on an error the keys in use stay. For SIGHUP
    /// ([`super::RELOAD`]).
    pub fn reload_keys(&mut self, file: &std::path::Path, log: &slog::Logger, who: &str) {
        match crate::auth::Keys::read(file) {
            Ok(keys) => {
                let ids: Vec<String> = keys.iter().map(|k| k.id().to_string()).collect();
                slog::info!(
                    log,
                    "{} read the key file {} again: sealing with key {}, accepting keys {}",
                    who,
                    file.display(),
                    keys.current().id(),
                    ids.join(", ")
                );
                self.set_keys(Some(std::sync::Arc::new(keys)));
            }
            Err(e) => slog::warn!(
                log,
                "{} cannot read the key file again, keeping the keys in use: {}",
                who,
                e
            ),
        }
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
    /// readable ([`Ready::readable`]). A read asks for one datagram or a
    /// whole batch, from what the reads before brought (see `ReadSize`);
    /// either way more may be waiting (the next wait says so).
    pub fn receive_ready(&mut self, now: Instant, inbox: &mut Inbox) -> io::Result<()> {
        let received = self
            .socket
            .try_recv_batch(&mut self.rx, self.read_size.limit());
        self.read_size = self.read_size.after(self.rx.len());
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
        if now.saturating_duration_since(self.clock_set) >= CLOCK_EVERY {
            // Sealed datagrams carry the system's clock: follow it.
            self.transport.set_clock(now, unix_time());
            self.clock_set = now;
        }
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
        if self.transport.gave_back() || shrunk {
            self.high_water = (held, peers);
            // Datagrams a flood brought were up to 64 KiB each: the
            // batches' pages go back too, and come back as traffic needs.
            self.rx.give_back();
            self.tx.give_back();
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
    /// [`Signals`](super::Signals) descriptor, say): one `ppoll` on the
    /// socket, the alarm and `other`, which wakes by the deadline to the
    /// nanosecond.
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
        // No timeout for `ppoll` to arm and cancel on every call: the
        // alarm wakes it (see `alarm`), or it does not sleep at all.
        let now = Instant::now();
        let timeout = match deadline {
            Some(deadline) if deadline <= now => Some(Timespec::default()),
            Some(deadline) => {
                self.alarm.ring_by(now, deadline)?;
                None
            }
            None => None,
        };
        let mut socket_flags = PollFlags::IN;
        if self.wants_write() {
            socket_flags |= PollFlags::OUT;
        }
        let mut ready = Ready::default();
        let writable;
        let rang;
        {
            let socket = PollFd::new(&self.socket, socket_flags);
            let alarm = PollFd::new(&self.alarm, PollFlags::IN);
            let polled = match other {
                Some(other) => {
                    let mut fds = [socket, alarm, PollFd::new(&other, PollFlags::IN)];
                    let polled = rustix::event::poll(&mut fds, timeout.as_ref());
                    ready.other = !fds[2].revents().is_empty();
                    (polled, fds[0].revents(), fds[1].revents())
                }
                None => {
                    let mut fds = [socket, alarm];
                    let polled = rustix::event::poll(&mut fds, timeout.as_ref());
                    (polled, fds[0].revents(), fds[1].revents())
                }
            };
            match polled {
                (Ok(_), revents, alarm) => {
                    ready.readable = revents.intersects(PollFlags::IN | PollFlags::ERR);
                    writable = revents.contains(PollFlags::OUT);
                    rang = !alarm.is_empty();
                }
                // A signal with a handler (or a debugger) woke us: early.
                (Err(rustix::io::Errno::INTR), _, _) => return Ok(Ready::default()),
                (Err(e), _, _) => return Err(e.into()),
            }
        }
        if rang {
            self.alarm.clear()?;
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

/// How often the transport is told the system's clock again.
const CLOCK_EVERY: Duration = Duration::from_secs(10);

/// The system's clock, since the Unix epoch (zero if it is set before it).
fn unix_time() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
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

    #[test]
    fn reads_ask_for_one_in_a_ping_pong_and_a_batch_in_a_burst() {
        // What each read of a run asks for, when each finds `found`.
        fn asked(mut size: ReadSize, found: &[usize]) -> (Vec<usize>, ReadSize) {
            let limits = found
                .iter()
                .map(|&got| {
                    let limit = size.limit();
                    size = size.after(got);
                    limit
                })
                .collect();
            (limits, size)
        }
        let b = MAX_BATCH;
        // A burst: batches, however many each finds, as long as some find
        // several.
        let (limits, size) = asked(ReadSize::START, &[b, 3, 1, 1, 2, 1, b]);
        assert_eq!(limits, [b; 7]);
        // A ping-pong: batches until TO_SINGLE found one, then single
        // reads, with a probe every TO_PROBE + 1 reads.
        let (limits, size) = asked(size, &[1; ReadSize::TO_SINGLE]);
        assert_eq!(limits, [b; ReadSize::TO_SINGLE]);
        assert_eq!(size, ReadSize::Single(0));
        let (limits, size) = asked(size, &[1; 2 * (ReadSize::TO_PROBE + 1)]);
        let mut cycle = vec![1; ReadSize::TO_PROBE];
        cycle.push(b);
        assert_eq!(limits, [cycle.clone(), cycle].concat());
        // A probe that finds a burst: batches again.
        let (limits, size) = asked(size, &[1; ReadSize::TO_PROBE]);
        assert_eq!(
            (limits, size),
            (vec![1; ReadSize::TO_PROBE], ReadSize::Probe)
        );
        assert_eq!(size.after(5), ReadSize::Batch(0));
        // Single reads that find nothing stay single, and start counting
        // again.
        assert_eq!(ReadSize::Single(3).after(0), ReadSize::Single(0));
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
