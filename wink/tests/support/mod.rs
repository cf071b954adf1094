//! Test support for the transport's integration tests.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use wink::runtime::socket::{Batch, Socket, Udp};

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

/// A UDP socket that loses, duplicates and reorders what it sends. It
/// sends one datagram at a time (the trait's defaults) and receives
/// batches like [`Udp`].
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

impl AsFd for Faulty {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
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

    fn try_recv_batch(&self, batch: &mut Batch, max: usize) -> io::Result<()> {
        self.inner.try_recv_batch(batch, max)
    }
}
