//! Addresses (placeholder until the real module lands).
use std::net::SocketAddr;
/// A machine's UDP address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Address(SocketAddr);
impl Address {
    /// Wraps a socket address.
    pub const fn new(addr: SocketAddr) -> Self {
        Address(addr)
    }
    /// The socket address.
    pub fn socket_addr(self) -> SocketAddr {
        self.0
    }
}
impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address(a)
    }
}
impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::str::FromStr for Address {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Address)
    }
}
