//! Machine addresses: where a machine's UDP socket is.
//!
//! An [`Address`] is an IP address and a UDP port. It is written the way the
//! seed wrote it, with a few shorthands for the common local cases:
//!
//! | text                 | means                          |
//! |----------------------|--------------------------------|
//! | `:42000`             | `127.0.0.1:42000`              |
//! | `localhost:42000`    | `127.0.0.1:42000`              |
//! | `127.0.0.1:42000`    | itself                         |
//! | `10.0.0.2:42000`     | any IPv4 address and a port    |
//! | `[::1]:42000`        | any IPv6 address, in brackets  |
//!
//! Port `0` means "any free port": the machine binds, then reports the port
//! it actually got. Host names other than `localhost` are refused: Wink does
//! not resolve names.
//!
//! ```
//! use wink::address::Address;
//!
//! let server: Address = ":42000".parse()?;
//! assert_eq!(server.to_string(), "127.0.0.1:42000");
//! assert_eq!(server.port(), 42000);
//!
//! let err = "127.0.0.1:99999".parse::<Address>().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "address `127.0.0.1:99999`: port 99999 is out of range (0-65535)"
//! );
//! # Ok::<(), wink::address::AddressError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Where a machine's UDP socket is: an IP address and a port.
///
/// Parse one from text with [`str::parse`]; display it back with
/// [`ToString`]: IPv4 as `127.0.0.1:42000`, IPv6 as `[::1]:7`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Address(SocketAddr);

impl Address {
    /// Wraps a socket address.
    pub const fn new(addr: SocketAddr) -> Self {
        Self(addr)
    }

    /// The socket address, to bind or send to.
    pub const fn socket_addr(self) -> SocketAddr {
        self.0
    }

    /// The IP address.
    pub const fn ip(self) -> IpAddr {
        self.0.ip()
    }

    /// The UDP port; `0` means "any free port" until the socket is bound.
    pub const fn port(self) -> u16 {
        self.0.port()
    }

    /// The same IP address with another port, e.g. the port a socket bound
    /// to `:0` actually got.
    #[must_use]
    pub const fn with_port(self, port: u16) -> Self {
        let mut addr = self.0;
        addr.set_port(port);
        Self(addr)
    }

    /// Whether the IP address is a loopback address (`127.0.0.0/8` or `::1`).
    pub const fn is_loopback(self) -> bool {
        self.0.ip().is_loopback()
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Self(addr)
    }
}

impl From<Address> for SocketAddr {
    fn from(addr: Address) -> Self {
        addr.0
    }
}

/// Shows `127.0.0.1:42000` or `[::1]:7`, which parses back to the same
/// address. (An IPv6 scope id, which the parser does not accept, is shown
/// as `%<id>` after the IP; flow info is not shown.)
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a text is not an [`Address`]. Each message names the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The text is empty.
    #[error("address is empty (expected `<host>:<port>`, e.g. `:42000`)")]
    Empty,
    /// No `:<port>` after the host, as in `127.0.0.1` or `[::1]`.
    #[error(
        "address `{}`: missing port (expected `<host>:<port>`, e.g. `127.0.0.1:42000`)",
        .input.escape_debug()
    )]
    MissingPort {
        /// The text given.
        input: String,
    },
    /// The port is not a decimal number.
    #[error("address `{}`: port `{}` is not a number", .input.escape_debug(), .port.escape_debug())]
    PortNotNumber {
        /// The text given.
        input: String,
        /// The text after the last `:`.
        port: String,
    },
    /// The port is a number above 65535.
    #[error("address `{}`: port {port} is out of range (0-65535)", .input.escape_debug())]
    PortOutOfRange {
        /// The text given.
        input: String,
        /// The digits of the port.
        port: String,
    },
    /// The host is neither `localhost` nor an IP address.
    #[error(
        "address `{}`: host `{}` is not `localhost` or an IP address (names are not resolved)",
        .input.escape_debug(), .host.escape_debug()
    )]
    BadHost {
        /// The text given.
        input: String,
        /// The text before the port.
        host: String,
    },
    /// An IPv6 address without brackets, as in `::1:80`.
    #[error(
        "address `{}`: an IPv6 address must be in brackets, as in `[::1]:42000`",
        .input.escape_debug()
    )]
    UnbracketedIpv6 {
        /// The text given.
        input: String,
    },
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        let (ip, port) = if let Some(bracketed) = input.strip_prefix('[') {
            parse_bracketed(input, bracketed)?
        } else {
            parse_unbracketed(input)?
        };
        let port = parse_port(input, port)?;
        Ok(Self(SocketAddr::new(ip, port)))
    }
}

/// `[<ipv6>]:<port>`; `rest` is the text after `[`. Returns the IP and the
/// port text.
fn parse_bracketed<'a>(input: &str, rest: &'a str) -> Result<(IpAddr, &'a str), AddressError> {
    let bad_host = |host: &str| AddressError::BadHost {
        input: input.to_owned(),
        host: host.to_owned(),
    };
    let Some((inside, after)) = rest.split_once(']') else {
        return Err(bad_host(input));
    };
    let ip: Ipv6Addr = inside
        .parse()
        .map_err(|_| bad_host(&input[..inside.len() + 2]))?;
    match after.strip_prefix(':') {
        Some(port) => Ok((IpAddr::V6(ip), port)),
        None => Err(AddressError::MissingPort {
            input: input.to_owned(),
        }),
    }
}

/// `:<port>`, `localhost:<port>`, `<ipv4>:<port>`. Returns the IP and the
/// port text.
fn parse_unbracketed(input: &str) -> Result<(IpAddr, &str), AddressError> {
    let Some((host, port)) = input.rsplit_once(':') else {
        return Err(
            if input.parse::<IpAddr>().is_ok() || input.eq_ignore_ascii_case("localhost") {
                AddressError::MissingPort {
                    input: input.to_owned(),
                }
            } else {
                AddressError::BadHost {
                    input: input.to_owned(),
                    host: input.to_owned(),
                }
            },
        );
    };
    let ip = if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
        IpAddr::V4(ip)
    } else if host.parse::<Ipv6Addr>().is_ok() || input.parse::<Ipv6Addr>().is_ok() {
        return Err(AddressError::UnbracketedIpv6 {
            input: input.to_owned(),
        });
    } else {
        return Err(AddressError::BadHost {
            input: input.to_owned(),
            host: host.to_owned(),
        });
    };
    Ok((ip, port))
}

/// Decimal digits only (no sign, no spaces), at most 65535.
fn parse_port(input: &str, port: &str) -> Result<u16, AddressError> {
    if port.is_empty() {
        return Err(AddressError::MissingPort {
            input: input.to_owned(),
        });
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::PortNotNumber {
            input: input.to_owned(),
            port: port.to_owned(),
        });
    }
    // Only digits, so the one way to fail is being too large.
    port.parse().map_err(|_| AddressError::PortOutOfRange {
        input: input.to_owned(),
        port: port.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{SocketAddrV4, SocketAddrV6};

    fn parse(text: &str) -> Result<Address, AddressError> {
        text.parse()
    }

    fn ok(text: &str) -> Address {
        match parse(text) {
            Ok(addr) => addr,
            Err(err) => panic!("`{text}` should parse: {err}"),
        }
    }

    fn err(text: &str) -> AddressError {
        match parse(text) {
            Ok(addr) => panic!("`{text}` should not parse, got {addr}"),
            Err(err) => err,
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> Address {
        Address::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port))
    }

    #[test]
    fn bare_port_means_loopback() {
        assert_eq!(ok(":42000"), v4(127, 0, 0, 1, 42000));
    }

    #[test]
    fn localhost_means_ipv4_loopback() {
        assert_eq!(ok("localhost:7"), v4(127, 0, 0, 1, 7));
        assert_eq!(ok("LocalHost:7"), v4(127, 0, 0, 1, 7));
    }

    #[test]
    fn ipv4_with_port_parses() {
        assert_eq!(ok("127.0.0.1:42000"), v4(127, 0, 0, 1, 42000));
        assert_eq!(ok("10.1.2.3:65535"), v4(10, 1, 2, 3, 65535));
    }

    #[test]
    fn bracketed_ipv6_parses() {
        let addr = ok("[::1]:7");
        assert_eq!(addr.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(addr.port(), 7);
        assert_eq!(ok("[fe80::1:2]:80").to_string(), "[fe80::1:2]:80");
    }

    #[test]
    fn port_zero_means_any_free_port() {
        assert_eq!(ok(":0").port(), 0);
        assert_eq!(ok("[::]:0").port(), 0);
    }

    #[test]
    fn display_is_ip_then_port() {
        assert_eq!(v4(127, 0, 0, 1, 42000).to_string(), "127.0.0.1:42000");
        assert_eq!(ok("[::1]:7").to_string(), "[::1]:7");
    }

    #[test]
    fn empty_text_is_refused() {
        assert_eq!(err(""), AddressError::Empty);
    }

    #[test]
    fn host_without_port_is_missing_port() {
        for text in [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "127.0.0.1:",
            "[::1]:",
            ":",
            "[::1]x",
        ] {
            assert!(
                matches!(err(text), AddressError::MissingPort { ref input } if input == text),
                "{text}"
            );
        }
        assert_eq!(
            err("127.0.0.1").to_string(),
            "address `127.0.0.1`: missing port (expected `<host>:<port>`, e.g. `127.0.0.1:42000`)"
        );
    }

    #[test]
    fn port_must_be_plain_digits() {
        for text in [":abc", ":+1", ":-1", ": 1", ":1 ", "127.0.0.1:4x"] {
            assert!(
                matches!(err(text), AddressError::PortNotNumber { .. }),
                "{text}"
            );
        }
        assert_eq!(
            err(":abc").to_string(),
            "address `:abc`: port `abc` is not a number"
        );
    }

    #[test]
    fn port_above_65535_is_out_of_range() {
        assert_eq!(
            err("127.0.0.1:99999").to_string(),
            "address `127.0.0.1:99999`: port 99999 is out of range (0-65535)"
        );
        assert!(matches!(err(":65536"), AddressError::PortOutOfRange { .. }));
        assert!(matches!(
            err(":123456789012345678901234567890"),
            AddressError::PortOutOfRange { .. }
        ));
    }

    #[test]
    fn host_names_other_than_localhost_are_refused() {
        assert_eq!(
            err("foo:1"),
            AddressError::BadHost {
                input: "foo:1".into(),
                host: "foo".into()
            }
        );
        assert_eq!(
            err("foo:1").to_string(),
            "address `foo:1`: host `foo` is not `localhost` or an IP address (names are not resolved)"
        );
        for text in [
            "256.0.0.1:1",
            "1.2.3:1",
            "01.2.3.4:1",
            " 127.0.0.1:1",
            "[1.2.3.4]:1",
            "[::1:1",
            "[fe80::1%eth0]:1",
            "1.2.3.4:5:6",
            "foo",
        ] {
            assert!(matches!(err(text), AddressError::BadHost { .. }), "{text}");
        }
    }

    #[test]
    fn unbracketed_ipv6_is_refused() {
        for text in ["::1:80", "::1", "fe80::1:2:80"] {
            assert!(
                matches!(err(text), AddressError::UnbracketedIpv6 { .. }),
                "{text}"
            );
        }
        assert_eq!(
            err("::1:80").to_string(),
            "address `::1:80`: an IPv6 address must be in brackets, as in `[::1]:42000`"
        );
    }

    #[test]
    fn control_characters_in_errors_are_escaped() {
        assert_eq!(
            err("a\nb:1").to_string(),
            "address `a\\nb:1`: host `a\\nb` is not `localhost` or an IP address (names are not resolved)"
        );
    }

    #[test]
    fn with_port_keeps_the_ip() {
        let addr = ok(":0").with_port(5000);
        assert_eq!(addr, v4(127, 0, 0, 1, 5000));
    }

    #[test]
    fn loopback_is_127_slash_8_and_ipv6_one() {
        assert!(ok(":1").is_loopback());
        assert!(ok("127.9.9.9:1").is_loopback());
        assert!(ok("[::1]:1").is_loopback());
        assert!(!ok("10.0.0.1:1").is_loopback());
        assert!(!ok("[::]:1").is_loopback());
    }

    #[test]
    fn converts_to_and_from_socket_addr() {
        let socket = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 9);
        let addr = Address::from(socket);
        assert_eq!(addr.socket_addr(), socket);
        assert_eq!(SocketAddr::from(addr), socket);
    }

    proptest! {
        #[test]
        fn ipv4_display_parses_back(addr in any::<SocketAddrV4>()) {
            let addr = Address::from(SocketAddr::V4(addr));
            prop_assert_eq!(addr.to_string().parse::<Address>(), Ok(addr));
        }

        #[test]
        fn ipv6_display_parses_back(ip in any::<Ipv6Addr>(), port in any::<u16>()) {
            let addr = Address::from(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)));
            prop_assert_eq!(addr.to_string().parse::<Address>(), Ok(addr));
        }

        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = text.parse::<Address>();
        }

        #[test]
        fn parse_never_panics_on_address_like_text(text in "[\\[\\]:.0-9a-fA-Flocaht%+ -]{0,48}") {
            if let Ok(addr) = text.parse::<Address>() {
                // Whatever is accepted displays as something that parses to it.
                prop_assert_eq!(addr.to_string().parse::<Address>(), Ok(addr));
            }
        }
    }
}
