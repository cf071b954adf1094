//! A socket plus the reliable-delivery bookkeeping: the piece every Wink
//! process (machine, server, CLI) talks through.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;

use super::socket::{Socket, Udp};
use crate::address::Address;
use crate::transport::{SendError, Stats, Transport, TransportConfig, TransportEvent};
use crate::wire::MAX_DATAGRAM;

/// How many datagrams one [`Endpoint::receive_ready`] takes before letting
/// the caller act on them.
const BATCH: usize = 64;

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

/// A bound UDP socket with reliable, ordered, once-only delivery to and
/// from any number of peers.
///
/// The endpoint never blocks on its own: [`Endpoint::send`] queues and writes
/// what the socket takes, [`Endpoint::receive_ready`] reads what is there,
/// [`Endpoint::wait`] sleeps until the socket or the next retransmission
/// needs attention. [`Endpoint::recv_timeout`] and [`Endpoint::settle`] wrap them for
/// simple clients such as the `wink` command.
#[derive(Debug)]
pub struct Endpoint<S: Socket = Udp> {
    socket: S,
    transport: Transport,
    local: Address,
    buf: Box<[u8]>,
    out: Box<[u8]>,
    blocked: Option<(SocketAddr, usize)>,
    inbox: Inbox,
    next: usize,
    /// One timer for every wait, re-armed only when a wait needs to wake
    /// earlier than it is set for: arming a timer costs the reactor a
    /// wake-up of its own, and most waits keep the deadline or push it
    /// later (a later one just costs one early wake-up).
    timer: Timer,
    armed: Option<Instant>,
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

impl<S: Socket> Endpoint<S> {
    /// An endpoint on an already bound socket, with a random incarnation.
    pub fn with_socket(socket: S, config: TransportConfig) -> io::Result<Self> {
        let local = Address::from(socket.local_addr()?);
        let incarnation = fastrand::u64(..);
        Ok(Endpoint {
            socket,
            transport: Transport::new(incarnation, config),
            local,
            buf: vec![0; MAX_DATAGRAM + 1].into_boxed_slice(),
            out: vec![0; MAX_DATAGRAM + 1].into_boxed_slice(),
            blocked: None,
            inbox: Inbox::default(),
            next: 0,
            timer: Timer::never(),
            armed: None,
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

    /// Queues `message` for `to` and writes what the socket takes now.
    pub fn send(&mut self, to: Address, message: &str) -> Result<(), SendError> {
        self.transport.send(to.socket_addr(), message)?;
        // A full socket buffer is not an error: the rest goes out when the
        // socket is writable again (see `wait`).
        let _ = self.flush();
        Ok(())
    }

    /// Writes queued packets until none is left or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = Instant::now();
        loop {
            let (to, len) = match self.blocked.take() {
                Some(blocked) => blocked,
                None => match self.transport.poll_transmit(now, &mut self.out) {
                    Some(packet) => packet,
                    None => return Ok(()),
                },
            };
            match self.socket.try_send_to(&self.out[..len], to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = Some((to, len));
                    return Ok(());
                }
                // Only a broken socket stops the endpoint. Anything else is
                // about this one datagram or its destination (an ICMP error
                // from an earlier send, a destination the kernel refuses:
                // port 0, broadcast, a firewall, another address family):
                // it counts as lost, and the transport retries or gives up.
                Err(e) if is_fatal(&e) => return Err(e),
                Err(_) => self.send_errors += 1,
            }
        }
    }

    /// Datagrams the socket refused to send (counted as lost).
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Reads the datagrams waiting on the socket (up to a batch) and adds
    /// the messages they delivered to `inbox`, in order per sender.
    pub fn receive_ready(&mut self, now: Instant, inbox: &mut Inbox) -> io::Result<()> {
        for _ in 0..BATCH {
            match self.socket.try_recv_from(&mut self.buf) {
                Ok((len, from)) => {
                    // A datagram that does not decode is counted by the
                    // transport and dropped: it never stops the endpoint.
                    let _ = self
                        .transport
                        .receive(now, from, &self.buf[..len], |from, text| {
                            inbox.push(Address::from(from), text)
                        });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // An ICMP error for an earlier send, say: not the socket's.
                Err(e) if !is_fatal(&e) => {}
                Err(e) => return Err(e),
            }
        }
        self.flush()
    }

    /// [`Endpoint::receive_ready`] into the endpoint's own inbox, for
    /// [`Endpoint::recv_timeout`].
    fn refill(&mut self, now: Instant) -> io::Result<()> {
        let mut inbox = std::mem::take(&mut self.inbox);
        if self.next >= inbox.len() {
            inbox.clear();
            self.next = 0;
        }
        let result = self.receive_ready(now, &mut inbox);
        self.inbox = inbox;
        result
    }

    /// Retransmits or gives up on what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> io::Result<()> {
        self.transport.handle_timeout(now);
        self.give_back_memory();
        self.flush()
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
        self.blocked.is_none() && self.transport.is_idle()
    }

    /// Sleeps until a datagram arrives, the socket takes queued packets
    /// again, or `deadline` passes (whichever is first). May return early:
    /// callers check what is due and wait again.
    pub async fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        if let Some(deadline) = deadline {
            if self.armed.is_none_or(|armed| deadline < armed) {
                self.timer.set_at(deadline);
                self.armed = Some(deadline);
            }
        }
        let Endpoint {
            socket,
            blocked,
            timer,
            armed,
            ..
        } = self;
        let io = async {
            if blocked.is_some() {
                future::or(socket.readable(), socket.writable()).await
            } else {
                socket.readable().await
            }
        };
        let alarm = async {
            if armed.is_some() {
                timer.await;
                *armed = None;
                Ok(())
            } else {
                future::pending().await
            }
        };
        future::or(io, alarm).await
    }

    /// Runs the endpoint until a message arrives or `timeout` passes.
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<(Address, String)>> {
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
            self.handle_timeout(now)?;
            let deadline = self.next_deadline().map_or(give_up, |d| d.min(give_up));
            self.wait(Some(deadline)).await?;
            self.refill(Instant::now())?;
        }
    }

    /// Runs the endpoint until every message sent is acknowledged or given
    /// up on, or `timeout` passes; incoming messages are acknowledged and
    /// kept for [`Endpoint::recv_timeout`]. True if everything settled.
    pub async fn settle(&mut self, timeout: Duration) -> io::Result<bool> {
        let give_up = deadline_after(timeout);
        loop {
            let now = Instant::now();
            self.handle_timeout(now)?;
            if self.is_settled() {
                return Ok(true);
            }
            if now >= give_up {
                return Ok(false);
            }
            let deadline = self.next_deadline().map_or(give_up, |d| d.min(give_up));
            self.wait(Some(deadline)).await?;
            self.refill(Instant::now())?;
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
        // Port 0 is no destination: sendto fails with EINVAL.
        endpoint
            .send("127.0.0.1:0".parse().unwrap(), "hello")
            .unwrap();
        assert!(endpoint.flush().is_ok());
        assert_eq!(endpoint.send_errors(), 1);
        // Retransmissions fail the same way, and the endpoint goes on.
        let later = Instant::now() + Duration::from_secs(1);
        assert!(endpoint.handle_timeout(later).is_ok());
        assert_eq!(endpoint.send_errors(), 2);
    }
}
