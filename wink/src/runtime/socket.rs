//! The datagram socket under an endpoint: real UDP, or one that loses,
//! duplicates and reorders packets on purpose, for tests.
//!
//! Sockets never block. Datagrams move in [`Batch`]es of preallocated
//! buffers: [`Udp`] sends a whole batch with one `sendmmsg` and receives one
//! with one `recvmmsg`; any other [`Socket`] gets per-datagram defaults, so
//! a test socket only has to say how it sends and receives one datagram.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::wire::MAX_DATAGRAM;

/// The bytes of one datagram buffer: one more than the largest datagram
/// accepted, so that a larger one shows as too long instead of being
/// silently cut to size.
pub const SLOT: usize = MAX_DATAGRAM + 1;

/// Datagrams in one batch at most: one system call moves up to this many.
pub const MAX_BATCH: usize = 64;

/// What an endpoint needs from a socket. Nothing blocks: a socket that
/// cannot take or give a datagram now says `WouldBlock`, and the endpoint
/// waits on the file descriptor ([`AsFd`]) for it to be readable or
/// writable.
pub trait Socket: AsFd {
    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Sends one datagram, or `WouldBlock`.
    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
    /// Receives one datagram, or `WouldBlock`.
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;

    /// Sends the datagrams of `batch` from index `from` on, in order, and
    /// returns how many went (at least one), or the error of the first
    /// (`WouldBlock` when the socket's buffer is full). By default one
    /// [`Socket::try_send_to`] each.
    fn try_send_batch(&self, batch: &Batch, from: usize) -> io::Result<usize> {
        send_each(self, batch, from)
    }

    /// Empties `batch` and fills it with the datagrams waiting, up to
    /// `max` (and its capacity); none waiting leaves it empty (not an
    /// error). A batch left shorter than that means the socket's queue is
    /// empty. By default one [`Socket::try_recv_from`] each, until
    /// `WouldBlock`.
    fn try_recv_batch(&self, batch: &mut Batch, max: usize) -> io::Result<()> {
        recv_each(self, batch, max)
    }
}

/// [`Socket::try_send_batch`] as one [`Socket::try_send_to`] per datagram.
fn send_each<S: Socket + ?Sized>(socket: &S, batch: &Batch, from: usize) -> io::Result<usize> {
    let mut sent = 0;
    for (to, datagram) in batch.iter().skip(from) {
        match socket.try_send_to(datagram, to) {
            Ok(_) => sent += 1,
            Err(e) if sent == 0 => return Err(e),
            // Told on the next call, which starts with this one.
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// [`Socket::try_recv_batch`] as one [`Socket::try_recv_from`] per
/// datagram, until `WouldBlock`.
fn recv_each<S: Socket + ?Sized>(socket: &S, batch: &mut Batch, max: usize) -> io::Result<()> {
    batch.clear();
    while batch.len() < max {
        let Some(buf) = batch.spare() else {
            break;
        };
        match socket.try_recv_from(buf) {
            Ok((len, from)) => batch.push(from, len),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if batch.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(())
}

/// Datagrams in preallocated buffers of [`SLOT`] bytes each, with their
/// peers: what is about to be sent or what was just received. A batch
/// allocates once, when made; the memory of a buffer is only touched as far
/// as datagrams fill it.
pub struct Batch {
    bytes: Box<[u8]>,
    /// Peer and length of each filled slot, in order.
    slots: Vec<(SocketAddr, usize)>,
    /// Each slot's peer as a C socket address, for the system calls.
    names: Box<[(libc::sockaddr_storage, libc::socklen_t)]>,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("capacity", &self.capacity())
            .field("slots", &self.slots)
            .finish()
    }
}

impl Batch {
    /// Room for `capacity` datagrams (1 to [`MAX_BATCH`]; other values are
    /// brought into that range).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_BATCH);
        // SAFETY: `sockaddr_storage` is a plain C struct of integers and
        // byte arrays, for which all zeroes is a valid value.
        let empty: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Batch {
            bytes: vec![0; capacity * SLOT].into_boxed_slice(),
            slots: Vec::with_capacity(capacity),
            names: vec![(empty, 0); capacity].into_boxed_slice(),
        }
    }

    /// Gives the pages of its buffers back to the system and forgets every
    /// datagram: a slot's memory is touched again only when a datagram
    /// fills it. For after a burst of large datagrams, which leaves every
    /// slot's pages resident.
    pub fn give_back(&mut self) {
        self.clear();
        let page = rustix::param::page_size();
        let start = self.bytes.as_mut_ptr();
        // The whole pages inside the buffer.
        let skip = start.align_offset(page).min(self.bytes.len());
        let len = (self.bytes.len() - skip) / page * page;
        if len == 0 {
            return;
        }
        // SAFETY: the range is whole pages inside `bytes`, which this batch
        // owns and no reference into it is alive (`&mut self`). The
        // allocator's memory is private and anonymous: after
        // `MADV_DONTNEED` its bytes read as zeroes, a valid `u8` each, as
        // `Batch::new` made them.
        unsafe {
            libc::madvise(start.add(skip).cast(), len, libc::MADV_DONTNEED);
        }
    }

    /// How many datagrams it holds at most.
    pub fn capacity(&self) -> usize {
        self.names.len()
    }

    /// How many datagrams it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether it has no free slot.
    pub fn is_full(&self) -> bool {
        self.slots.len() == self.capacity()
    }

    /// Forgets every datagram.
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// The `i`th datagram and its peer.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let &(peer, len) = self.slots.get(i)?;
        Some((peer, &self.bytes[i * SLOT..i * SLOT + len]))
    }

    /// Every datagram with its peer, in order.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The whole buffer of the next free slot, to be filled and then
    /// [`Batch::push`]ed; `None` when the batch is full.
    pub fn spare(&mut self) -> Option<&mut [u8]> {
        let i = self.slots.len();
        (i < self.capacity()).then(|| &mut self.bytes[i * SLOT..(i + 1) * SLOT])
    }

    /// Takes the next free slot as holding `len` bytes (at most [`SLOT`])
    /// to or from `peer`. Does nothing when the batch is full.
    pub fn push(&mut self, peer: SocketAddr, len: usize) {
        let i = self.slots.len();
        if let Some(name) = self.names.get_mut(i) {
            let addr = socket2::SockAddr::from(peer);
            let name_len = addr.len();
            *name = (addr.as_storage(), name_len);
            self.slots.push((peer, len.min(SLOT)));
        }
    }
}

/// Socket buffer size asked for, so that bursts queue in the kernel instead
/// of being dropped. Linux caps it at `net.core.rmem_max` unless the process
/// may override the cap (root), which is tried first.
pub const BUFFER_BYTES: usize = 8 << 20;

/// A non-blocking UDP socket that moves batches with `sendmmsg` and
/// `recvmmsg`.
#[derive(Debug)]
pub struct Udp {
    socket: UdpSocket,
}

impl Udp {
    /// The bound UDP socket `fd` (handed over at a live upgrade), made
    /// non-blocking.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> io::Result<Self> {
        // Left open across the exec that handed it over; not across any
        // later one.
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        let socket = UdpSocket::from(fd);
        socket.set_nonblocking(true)?;
        socket.local_addr()?;
        Ok(Udp { socket })
    }

    /// Binds `addr` with large socket buffers.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let domain = socket2::Domain::for_address(addr);
        let socket =
            socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        set_buffers(&socket);
        socket.bind(&addr.into())?;
        socket.set_nonblocking(true)?;
        Ok(Udp {
            socket: UdpSocket::from(socket),
        })
    }
}

fn set_buffers(socket: &socket2::Socket) {
    use rustix::net::sockopt;
    // Forcing past the system cap needs CAP_NET_ADMIN; without it, ask
    // politely and take what the kernel gives.
    if sockopt::set_socket_recv_buffer_size_force(socket, BUFFER_BYTES).is_err() {
        let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
    }
    if sockopt::set_socket_send_buffer_size_force(socket, BUFFER_BYTES).is_err() {
        let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    }
}

impl AsFd for Udp {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Socket for Udp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(buf, to)
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf)
    }

    /// One datagram (a reply in a ping-pong) goes with `sendto`, which
    /// costs the kernel less than a `sendmmsg` of one; more go with one
    /// `sendmmsg`.
    fn try_send_batch(&self, batch: &Batch, from: usize) -> io::Result<usize> {
        if batch.len() == from + 1 {
            return send_each(self, batch, from);
        }
        mmsg(self.socket.as_fd(), Mmsg::Send(batch, from))
    }

    /// One datagram asked for comes with `recvfrom`, more with one
    /// `recvmmsg`.
    fn try_recv_batch(&self, batch: &mut Batch, max: usize) -> io::Result<()> {
        if max == 1 {
            return recv_each(self, batch, max);
        }
        batch.clear();
        match mmsg(self.socket.as_fd(), Mmsg::Recv(batch, max)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// One batch system call: send `batch` from an index on, or receive into
/// an empty `batch`.
enum Mmsg<'a> {
    Send(&'a Batch, usize),
    Recv(&'a mut Batch, usize),
}

/// `sendmmsg` or `recvmmsg` (non-blocking) on `fd`: the one place this
/// crate calls the C library for socket I/O, because rustix has no
/// `recvmmsg` and its `sendmmsg` would build its headers on the heap at
/// every call. Returns how many datagrams moved; a receive pushes them into
/// the (empty) batch.
fn mmsg(fd: BorrowedFd<'_>, mut op: Mmsg<'_>) -> io::Result<usize> {
    let receiving = matches!(op, Mmsg::Recv(..));
    // Where the kernel reads or writes: the batch's buffers and names, as
    // raw pointers derived from a shared borrow when sending (the kernel
    // only reads) and from the exclusive one when receiving.
    let (bytes, names, first, count, lens) = match op {
        Mmsg::Send(batch, from) => (
            batch.bytes.as_ptr().cast_mut(),
            batch.names.as_ptr().cast_mut(),
            from,
            batch.len().saturating_sub(from),
            Some(&batch.slots),
        ),
        Mmsg::Recv(ref mut batch, max) => (
            batch.bytes.as_mut_ptr(),
            batch.names.as_mut_ptr(),
            0,
            batch.capacity().min(max),
            None,
        ),
    };
    let count = count.min(MAX_BATCH);
    if count == 0 {
        return Ok(0);
    }
    // Only the `count` headers the call uses are filled in: a receive of
    // one datagram (a ping-pong) does not pay for `MAX_BATCH`.
    let mut iov = [MaybeUninit::<libc::iovec>::uninit(); MAX_BATCH];
    let mut hdr = [MaybeUninit::<libc::mmsghdr>::uninit(); MAX_BATCH];
    let iov_at = iov.as_mut_ptr().cast::<libc::iovec>();
    for (k, header) in hdr.iter_mut().enumerate().take(count) {
        let i = first + k;
        // SAFETY (of the `add`s): slot `i` and name `i` lie inside the
        // batch, which has `capacity` of each, and `i < len ≤ capacity`
        // (sending) or `i < capacity` (receiving); `k < count ≤ MAX_BATCH`
        // lies inside `iov`.
        let name = unsafe { names.add(i) };
        let vec = unsafe { iov_at.add(k) };
        // SAFETY: writes a whole iovec into its own element of `iov`.
        unsafe {
            vec.write(libc::iovec {
                iov_base: bytes.add(i * SLOT).cast(),
                iov_len: lens.map_or(SLOT, |slots| slots[i].1),
            });
        }
        // SAFETY: all-zero is a valid `mmsghdr` (null pointers, zero
        // lengths).
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_name = name.cast();
        h.msg_hdr.msg_namelen = match lens {
            // SAFETY: `name` points at a live, initialised pair.
            Some(_) => unsafe { (*name).1 },
            None => std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        };
        h.msg_hdr.msg_iov = vec;
        h.msg_hdr.msg_iovlen = 1;
        header.write(h);
    }
    // SAFETY: the first `count` headers are initialised and point at
    // `count` iovecs, each pointing into the batch's buffer with an
    // in-bounds length (a whole SLOT when receiving, the datagram's length
    // when sending), and at `count` socket addresses of their stated size
    // in the batch; all of it outlives the call and nothing else uses it
    // meanwhile. Neither call blocks (MSG_DONTWAIT; a null timeout for
    // recvmmsg).
    let headers = hdr.as_mut_ptr().cast::<libc::mmsghdr>();
    let moved = unsafe {
        if receiving {
            libc::recvmmsg(
                fd.as_raw_fd(),
                headers,
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        } else {
            libc::sendmmsg(
                fd.as_raw_fd(),
                headers,
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        }
    };
    let moved = usize::try_from(moved).map_err(|_| io::Error::last_os_error())?;
    if let Mmsg::Recv(batch, _) = op {
        for h in hdr.iter().take(moved.min(count)) {
            // SAFETY: one of the `count` headers initialised above.
            let h = unsafe { h.assume_init_ref() };
            let k = batch.slots.len();
            let (name, _) = batch.names[k];
            // SAFETY: the kernel wrote a socket address of `msg_namelen`
            // bytes into the zeroed storage.
            let peer = unsafe { socket2::SockAddr::new(name, h.msg_hdr.msg_namelen) };
            // A UDP socket of an IP family only hears from IP addresses.
            let peer = peer
                .as_socket()
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
            batch.slots.push((peer, (h.msg_len as usize).min(SLOT)));
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// A batch of `n` datagrams to `to`, datagram `i` being `len` bytes
    /// of `i`.
    fn numbered(to: SocketAddr, n: u8, len: usize) -> Batch {
        let mut out = Batch::new(8);
        for i in 0..n {
            out.spare().unwrap()[..len].fill(i);
            out.push(to, len);
        }
        out
    }

    /// What `socket` receives in reads of at most `max` until `n` have
    /// come (loopback delivers at once, but the kernel gets a moment if
    /// not), checking no read brings more than `max`.
    fn received(socket: &Udp, max: usize, n: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Batch::new(8);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seen = Vec::new();
        while seen.len() < n && std::time::Instant::now() < deadline {
            socket.try_recv_batch(&mut got, max).unwrap();
            assert!(got.len() <= max);
            seen.extend(got.iter().map(|(from, d)| (from, d.to_vec())));
        }
        // Nothing waiting: an empty batch, not an error.
        socket.try_recv_batch(&mut got, max).unwrap();
        assert!(got.is_empty());
        seen
    }

    #[test]
    fn a_batch_that_gave_its_pages_back_is_empty_zeroed_and_usable() {
        let to = loopback();
        let mut batch = numbered(to, 8, SLOT);
        batch.give_back();
        assert!(batch.is_empty());
        for _ in 0..8 {
            let spare = batch.spare().unwrap();
            // The slots' whole pages read as zeroes (what is left of a
            // page shared with the allocator's bookkeeping may not).
            assert!(spare[PAGE_SLACK..SLOT - PAGE_SLACK].iter().all(|&b| b == 0));
            spare[..3].copy_from_slice(b"abc");
            batch.push(to, 3);
        }
        assert!(batch.iter().all(|(peer, d)| peer == to && d == b"abc"));
    }

    /// At most this much of a slot lies outside the buffer's whole pages.
    const PAGE_SLACK: usize = 4096;

    #[test]
    fn a_batch_goes_out_in_one_call_and_comes_in_in_one_call() {
        let a = Udp::bind(loopback()).unwrap();
        let b = Udp::bind(loopback()).unwrap();
        let out = numbered(b.local_addr().unwrap(), 5, 3);
        assert_eq!(a.try_send_batch(&out, 0).unwrap(), 5);
        let from = a.local_addr().unwrap();
        let expected: Vec<_> = (0..5u8).map(|i| (from, vec![i, i, i])).collect();
        assert_eq!(received(&b, 8, 5), expected);
    }

    #[test]
    fn a_read_of_one_takes_one_and_leaves_the_rest() {
        let a = Udp::bind(loopback()).unwrap();
        let b = Udp::bind(loopback()).unwrap();
        let out = numbered(b.local_addr().unwrap(), 3, 1);
        assert_eq!(a.try_send_batch(&out, 0).unwrap(), 3);
        let from = a.local_addr().unwrap();
        let expected: Vec<_> = (0..3u8).map(|i| (from, vec![i])).collect();
        assert_eq!(received(&b, 1, 3), expected);
    }

    #[test]
    fn a_batch_sent_from_an_index_skips_what_went_before() {
        let a = Udp::bind(loopback()).unwrap();
        let b = Udp::bind(loopback()).unwrap();
        let to = b.local_addr().unwrap();
        let mut out = Batch::new(4);
        for i in 0..3u8 {
            out.spare().unwrap()[0] = i;
            out.push(to, 1);
        }
        assert_eq!(a.try_send_batch(&out, 2).unwrap(), 1);
        let mut buf = [0u8; 16];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match b.try_recv_from(&mut buf) {
                Ok((1, _)) => break assert_eq!(buf[0], 2),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "nothing arrived");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_full_batch_takes_no_more() {
        let mut batch = Batch::new(2);
        let peer = loopback();
        batch.push(peer, 1);
        batch.push(peer, 2);
        assert!(batch.is_full());
        assert!(batch.spare().is_none());
        batch.push(peer, 3);
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert!(batch.is_empty());
    }
}
