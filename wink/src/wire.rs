//! The bytes of one datagram: a versioned, postcard-encoded [`Packet`].
//!
//! Every datagram a machine sends or receives is exactly one packet. The
//! layout below is version 1 ([`VERSION`]); `docs/protocol.md` describes the
//! bytes for clients written in other languages.
//!
//! ```text
//! Packet  { version: u8, incarnation: u64, body: Body }
//! Body    = Data { seq: u64, floor: u64, message: String }  // variant 0
//!         | Ack  { seq: u64, incarnation: u64 }             // variant 1
//! ```
//!
//! Decoding borrows the message text from the datagram (no copy), and
//! encoding writes into a buffer the caller owns (no allocation):
//!
//! ```
//! use wink::wire::{self, Body, Packet};
//!
//! let packet = Packet::data(7, 0, 0, "ping 1");
//! let mut buf = [0u8; wire::MAX_DATAGRAM];
//! let len = wire::encode(&packet, &mut buf)?;
//! assert_eq!(wire::decode(&buf[..len])?, packet);
//! assert!(matches!(wire::decode(&[]), Err(wire::WireError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};

/// The protocol version this module reads and writes: the first byte of
/// every packet.
pub const VERSION: u8 = 1;

/// The largest datagram we send, in bytes: the largest UDP payload that fits
/// one IPv4 packet (65,535 − 20 bytes of IPv4 header − 8 bytes of UDP
/// header). It is also below the IPv6 limit (65,527), so one constant serves
/// both. On loopback (MTU 65,536) such a datagram is one packet; on an
/// Ethernet LAN the kernel fragments it, and losing any fragment loses the
/// datagram, which retransmission then covers.
pub const MAX_DATAGRAM: usize = 65_507;

/// The most bytes a `Data` packet adds around its message: version (1) +
/// incarnation (up to 10) + body variant (1) + seq (up to 10) + floor
/// (up to 10) + message length (3, enough for any length below 2^21).
pub const MAX_DATA_OVERHEAD: usize = 1 + 10 + 1 + 10 + 10 + 3;

/// The longest message text, in bytes of UTF-8, that fits one datagram
/// whatever the sequence numbers and incarnation are: 65,472.
pub const MAX_MESSAGE_LEN: usize = MAX_DATAGRAM - MAX_DATA_OVERHEAD;

/// One datagram: who sent it (`incarnation`) and what it carries.
///
/// The message text of a `Data` body is borrowed from the buffer it was
/// decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packet<'a> {
    /// Protocol version; [`VERSION`] for every packet this module writes.
    pub version: u8,
    /// The sender's incarnation: a random number chosen at each process
    /// start, so a restarted process at the same address is a new peer.
    pub incarnation: u64,
    /// What the packet carries.
    #[serde(borrow)]
    pub body: Body<'a>,
}

/// What a [`Packet`] carries: a message or an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Body<'a> {
    /// A message (variant 0).
    Data {
        /// Sequence number of this message from this sender incarnation to
        /// this recipient, counting from 0.
        seq: u64,
        /// The lowest sequence number the sender is still trying to deliver
        /// to this recipient; everything below it is delivered or given up.
        floor: u64,
        /// The message text, `"name arg arg…"`. Empty means a *floor
        /// announcement*: it is acknowledged and ordered like any message
        /// but never delivered to the application.
        message: &'a str,
    },
    /// An acknowledgement of one `Data` (variant 1).
    Ack {
        /// The acknowledged sequence number.
        seq: u64,
        /// The incarnation of the peer whose `Data` is acknowledged (the
        /// `incarnation` of that `Data` packet), so an ack meant for an
        /// earlier life of the same address is not mistaken for one of ours.
        incarnation: u64,
    },
}

impl<'a> Packet<'a> {
    /// A version-1 `Data` packet.
    pub fn data(incarnation: u64, seq: u64, floor: u64, message: &'a str) -> Self {
        Packet {
            version: VERSION,
            incarnation,
            body: Body::Data {
                seq,
                floor,
                message,
            },
        }
    }

    /// A version-1 `Ack` packet from `incarnation` acknowledging `seq` of
    /// the peer incarnation `acked_incarnation`.
    pub fn ack(incarnation: u64, seq: u64, acked_incarnation: u64) -> Self {
        Packet {
            version: VERSION,
            incarnation,
            body: Body::Ack {
                seq,
                incarnation: acked_incarnation,
            },
        }
    }

    /// The exact number of bytes [`encode`] writes for this packet.
    pub fn encoded_len(&self) -> usize {
        let body = match self.body {
            Body::Data {
                seq,
                floor,
                message,
            } => {
                varint_len(seq)
                    + varint_len(floor)
                    + varint_len(message.len() as u64)
                    + message.len()
            }
            Body::Ack { seq, incarnation } => varint_len(seq) + varint_len(incarnation),
        };
        1 + varint_len(self.incarnation) + 1 + body
    }
}

/// Why a datagram is not a packet we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The datagram has no bytes.
    #[error("empty datagram")]
    Empty,
    /// The first byte names a protocol version we do not speak.
    #[error("unknown protocol version {0} (we speak version {VERSION})")]
    UnknownVersion(u8),
    /// The datagram ends in the middle of the packet.
    #[error("truncated packet")]
    Truncated,
    /// Bytes are left over after a complete packet.
    #[error("{count} trailing byte(s) after the packet")]
    TrailingBytes {
        /// How many bytes are left over.
        count: usize,
    },
    /// The message text is not UTF-8.
    #[error("message text is not valid UTF-8")]
    BadUtf8,
    /// A variable-length integer is longer than its type allows.
    #[error("malformed varint")]
    BadVarint,
    /// The body variant is neither `Data` (0) nor `Ack` (1).
    #[error("unknown packet body variant")]
    UnknownBody,
    /// Any other malformation.
    #[error("malformed packet")]
    Malformed,
}

impl From<postcard::Error> for WireError {
    fn from(error: postcard::Error) -> Self {
        match error {
            postcard::Error::DeserializeUnexpectedEnd => WireError::Truncated,
            postcard::Error::DeserializeBadUtf8 => WireError::BadUtf8,
            postcard::Error::DeserializeBadVarint => WireError::BadVarint,
            // The derived enum visitor reports an unknown variant index as a
            // custom error; nothing else in these types can.
            postcard::Error::DeserializeBadEnum | postcard::Error::SerdeDeCustom => {
                WireError::UnknownBody
            }
            _ => WireError::Malformed,
        }
    }
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message text is longer than one datagram can carry.
    #[error("message of {len} bytes exceeds the limit of {max} bytes for one datagram")]
    MessageTooLarge {
        /// The message length in bytes.
        len: usize,
        /// The limit, [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// The caller's buffer is shorter than the encoded packet.
    #[error("packet needs {needed} bytes but the buffer has {available}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

/// Checks that `message` fits one datagram, whatever the packet around it.
pub fn check_message_len(message: &str) -> Result<(), EncodeError> {
    if message.len() > MAX_MESSAGE_LEN {
        Err(EncodeError::MessageTooLarge {
            len: message.len(),
            max: MAX_MESSAGE_LEN,
        })
    } else {
        Ok(())
    }
}

/// Reads one packet from a whole datagram, borrowing its message text.
///
/// Never panics: an empty datagram, another version, a truncated or
/// malformed packet, bytes after the packet, or text that is not UTF-8 is a
/// [`WireError`].
pub fn decode(datagram: &[u8]) -> Result<Packet<'_>, WireError> {
    let Some(&version) = datagram.first() else {
        return Err(WireError::Empty);
    };
    if version != VERSION {
        // Checked before anything else: a later version may lay out the
        // rest differently.
        return Err(WireError::UnknownVersion(version));
    }
    let (packet, rest) = postcard::take_from_bytes::<Packet<'_>>(datagram)?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes { count: rest.len() });
    }
    Ok(packet)
}

/// Writes `packet` into the start of `buf` and returns how many bytes it
/// took. A buffer of [`MAX_DATAGRAM`] bytes fits any packet whose message
/// passes [`check_message_len`].
pub fn encode(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    if let Body::Data { message, .. } = packet.body {
        check_message_len(message)?;
    }
    let needed = packet.encoded_len();
    let too_small = EncodeError::BufferTooSmall {
        needed,
        available: buf.len(),
    };
    if needed > buf.len() {
        return Err(too_small);
    }
    match postcard::to_slice(packet, buf) {
        Ok(written) => Ok(written.len()),
        Err(_) => Err(too_small),
    }
}

/// Like [`encode`], into a `Vec` that is cleared first and reused, so a
/// caller that keeps one `Vec` allocates only while it grows.
pub fn encode_to_vec(packet: &Packet<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    out.resize(packet.encoded_len(), 0);
    let len = encode(packet, out)?;
    out.truncate(len);
    Ok(())
}

/// Bytes of `value` as a postcard varint (LEB128: 7 bits a byte, low first).
fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(packet: &Packet<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(encode_to_vec(packet, &mut out), Ok(()));
        out
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The example packets of `docs/protocol.md`: the exact bytes, and the
    /// doc must show them, so the doc cannot drift from the code.
    #[test]
    fn protocol_doc_examples_match_the_encoding() {
        let doc = include_str!("../../docs/protocol.md");

        let data = Packet::data(0x1234_5678_9abc_def0, 300, 298, "ping 42");
        let data_hex = "01 f0 bd f3 d5 89 cf 95 9a 12 00 ac 02 aa 02 07 70 69 6e 67 20 34 32";
        assert_eq!(hex(&encoded(&data)), data_hex);
        assert!(doc.contains(data_hex), "protocol.md lacks the Data example");

        let ack = Packet::ack(5, 300, 0x1234_5678_9abc_def0);
        let ack_hex = "01 05 01 ac 02 f0 bd f3 d5 89 cf 95 9a 12";
        assert_eq!(hex(&encoded(&ack)), ack_hex);
        assert!(doc.contains(ack_hex), "protocol.md lacks the Ack example");
    }

    #[test]
    fn empty_datagram_is_refused() {
        assert_eq!(decode(&[]), Err(WireError::Empty));
    }

    #[test]
    fn unknown_version_is_refused_before_parsing() {
        assert_eq!(decode(&[2]), Err(WireError::UnknownVersion(2)));
        assert_eq!(decode(&[0, 1, 2, 3]), Err(WireError::UnknownVersion(0)));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encoded(&Packet::data(u64::MAX, 1 << 40, 3, "hello world"));
        for len in 1..bytes.len() {
            assert_eq!(
                decode(&bytes[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encoded(&Packet::ack(1, 2, 3));
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(decode(&bytes), Err(WireError::TrailingBytes { count: 2 }));
    }

    #[test]
    fn bad_utf8_is_refused() {
        // version, incarnation 0, Data, seq 0, floor 0, length 2, bytes.
        assert_eq!(
            decode(&[1, 0, 0, 0, 0, 2, 0xc3, 0x28]),
            Err(WireError::BadUtf8)
        );
    }

    #[test]
    fn unknown_body_variant_is_refused() {
        assert_eq!(decode(&[1, 0, 2, 0, 0]), Err(WireError::UnknownBody));
        assert_eq!(
            decode(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(WireError::UnknownBody)
        );
    }

    #[test]
    fn overlong_varint_is_refused() {
        let mut bytes = vec![1];
        bytes.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode(&bytes), Err(WireError::BadVarint));
    }

    #[test]
    fn message_is_borrowed_from_the_datagram() {
        let bytes = encoded(&Packet::data(1, 2, 2, "tick"));
        let Ok(Packet {
            body: Body::Data { message, .. },
            ..
        }) = decode(&bytes)
        else {
            panic!("not a Data packet");
        };
        let range = bytes.as_ptr_range();
        assert!(range.contains(&message.as_ptr()));
    }

    #[test]
    fn largest_message_fits_one_datagram_with_the_largest_header() {
        let text = "x".repeat(MAX_MESSAGE_LEN);
        let packet = Packet::data(u64::MAX, u64::MAX, u64::MAX, &text);
        assert_eq!(packet.encoded_len(), MAX_DATAGRAM);
        let mut buf = vec![0; MAX_DATAGRAM];
        assert_eq!(encode(&packet, &mut buf), Ok(MAX_DATAGRAM));
        assert_eq!(decode(&buf), Ok(packet));
    }

    #[test]
    fn message_too_large_is_refused_with_its_size() {
        let text = "x".repeat(MAX_MESSAGE_LEN + 1);
        let mut buf = vec![0; 2 * MAX_DATAGRAM];
        assert_eq!(
            encode(&Packet::data(0, 0, 0, &text), &mut buf),
            Err(EncodeError::MessageTooLarge {
                len: MAX_MESSAGE_LEN + 1,
                max: MAX_MESSAGE_LEN
            })
        );
    }

    #[test]
    fn small_buffer_is_refused_not_overrun() {
        let packet = Packet::data(0, 0, 0, "hello");
        let mut buf = [0u8; 5];
        assert_eq!(
            encode(&packet, &mut buf),
            Err(EncodeError::BufferTooSmall {
                needed: 11,
                available: 5
            })
        );
    }

    fn packet_strategy() -> impl Strategy<Value = (u64, bool, u64, u64, String)> {
        (
            any::<u64>(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
            ".{0,40}",
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1024,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_version_1(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut datagram = vec![VERSION];
            datagram.extend_from_slice(&bytes);
            let _ = decode(&datagram);
        }

        #[test]
        fn encode_then_decode_round_trips((inc, is_data, a, b, text) in packet_strategy()) {
            let packet = if is_data {
                Packet::data(inc, a, b, &text)
            } else {
                Packet::ack(inc, a, b)
            };
            let mut buf = [0u8; 256];
            let len = encode(&packet, &mut buf);
            prop_assert_eq!(len, Ok(packet.encoded_len()));
            prop_assert_eq!(decode(&buf[..packet.encoded_len()]), Ok(packet));
        }
    }
}
