//! The datagram socket under an endpoint: real UDP, or one that loses,
//! duplicates and reorders packets on purpose, for tests.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};

use async_io::Async;

/// What an endpoint needs from a socket. Sends and receives never block:
/// they return `WouldBlock`, and the endpoint waits for `readable` or
/// `writable`.
pub trait Socket {
    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Sends one datagram, or `WouldBlock`.
    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
    /// Receives one datagram, or `WouldBlock`.
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// Waits until a datagram may be received.
    fn readable(&self) -> impl Future<Output = io::Result<()>>;
    /// Waits until a datagram may be sent.
    fn writable(&self) -> impl Future<Output = io::Result<()>>;
}

/// Socket buffer size asked for, so that bursts queue in the kernel instead
/// of being dropped. Linux caps it at `net.core.rmem_max` unless the process
/// may override the cap (root), which is tried first.
pub const BUFFER_BYTES: usize = 8 << 20;

/// A non-blocking UDP socket registered with smol's reactor.
#[derive(Debug)]
pub struct Udp {
    socket: Async<UdpSocket>,
}

impl Udp {
    /// Binds `addr` with large socket buffers.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let domain = socket2::Domain::for_address(addr);
        let socket =
            socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        set_buffers(&socket);
        socket.bind(&addr.into())?;
        let socket = Async::new(UdpSocket::from(socket))?;
        Ok(Udp { socket })
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

impl Socket for Udp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.get_ref().send_to(buf, to)
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.get_ref().recv_from(buf)
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> {
        self.socket.readable()
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        self.socket.writable()
    }
}

/// How a [`Faulty`] socket mistreats the datagrams it sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Chance that a datagram is dropped.
    pub loss: f64,
    /// Chance that a datagram is sent twice.
    pub duplicate: f64,
    /// Chance that a datagram is held back and sent after the next one.
    pub reorder: f64,
    /// Seed of the random choices, so a failing run can be repeated.
    pub seed: u64,
}

/// A UDP socket that loses, duplicates and reorders what it sends.
#[derive(Debug)]
pub struct Faulty {
    inner: Udp,
    faults: Faults,
    rng: RefCell<fastrand::Rng>,
    held: RefCell<Option<(Vec<u8>, SocketAddr)>>,
}

impl Faulty {
    /// Binds `addr` and applies `faults` to every datagram sent.
    pub fn bind(addr: SocketAddr, faults: Faults) -> io::Result<Self> {
        Ok(Faulty {
            inner: Udp::bind(addr)?,
            rng: RefCell::new(fastrand::Rng::with_seed(faults.seed)),
            faults,
            held: RefCell::new(None),
        })
    }
}

impl Socket for Faulty {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        let (lose, duplicate, reorder) = {
            let mut rng = self.rng.borrow_mut();
            (
                rng.f64() < self.faults.loss,
                rng.f64() < self.faults.duplicate,
                rng.f64() < self.faults.reorder,
            )
        };
        if lose {
            return Ok(buf.len());
        }
        if reorder && self.held.borrow().is_none() {
            *self.held.borrow_mut() = Some((buf.to_vec(), to));
            return Ok(buf.len());
        }
        self.inner.try_send_to(buf, to)?;
        if duplicate {
            let _ = self.inner.try_send_to(buf, to);
        }
        if let Some((held, held_to)) = self.held.borrow_mut().take() {
            let _ = self.inner.try_send_to(&held, held_to);
        }
        Ok(buf.len())
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.try_recv_from(buf)
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> {
        self.inner.readable()
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        self.inner.writable()
    }
}
