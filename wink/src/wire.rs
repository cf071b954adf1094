//! The bytes of one datagram: a header, then frames — messages (`Data`)
//! and acknowledgements (`Ack`) — one after another.
//!
//! The layout below is version 2 ([`VERSION`]); `docs/protocol.md`
//! describes every byte for clients written in other languages.
//!
//! ```text
//! Datagram = version: u8 (2) | key: u8 | incarnation: varint | Frame…
//!            [ | time: u32 big-endian | tag: 12 bytes ]     (sealed: key ≠ 0)
//! Frame    = 00 | seq: varint | floor: varint | len: varint | len bytes of UTF-8   (Data)
//!          | 01 | incarnation: varint | next: varint | count: varint
//!               | count × (gap: varint, len: varint)                              (Ack)
//! ```
//!
//! Decoding checks the whole datagram first and then hands out its frames,
//! borrowing message text from the datagram (no copy); encoding writes
//! frames into a buffer the caller owns (no allocation):
//!
//! ```
//! use wink::wire::{self, Frame, Writer};
//!
//! let mut buf = [0u8; wire::MAX_DATAGRAM];
//! let mut writer = Writer::new(&mut buf, 7)?;
//! assert!(writer.push_data(0, 0, "ping 1"));
//! assert!(writer.push_data(1, 0, "ping 2"));
//! let len = writer.finish();
//! let datagram = wire::decode(&buf[..len])?;
//! assert_eq!(datagram.incarnation(), 7);
//! let texts: Vec<&str> = datagram
//!     .frames()
//!     .filter_map(|frame| match frame {
//!         Frame::Data(data) => Some(data.message),
//!         Frame::Ack(_) => None,
//!     })
//!     .collect();
//! assert_eq!(texts, ["ping 1", "ping 2"]);
//! assert!(matches!(wire::decode(&[]), Err(wire::WireError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::SocketAddr;

use crate::auth::{Key, Keys, SEAL_LEN, TAG_LEN, TIME_LEN};

/// The protocol version this module reads and writes: the first byte of
/// every datagram.
pub const VERSION: u8 = 2;

/// The `key` byte of a datagram that is not sealed (any other value names
/// the key that sealed it).
pub const NO_KEY: u8 = 0;

/// The largest datagram we send, in bytes: the largest UDP payload that fits
/// one IPv4 packet (65,535 − 20 bytes of IPv4 header − 8 bytes of UDP
/// header). It is also below the IPv6 limit (65,527), so one constant serves
/// both. On loopback (MTU 65,536) such a datagram is one packet; on an
/// Ethernet LAN the kernel fragments it, and losing any fragment loses the
/// datagram, which retransmission then covers.
pub const MAX_DATAGRAM: usize = 65_507;

/// The most bytes the header (version, key, incarnation) takes.
pub const MAX_HEADER: usize = 1 + 1 + 10;

/// The most bytes a `Data` frame adds around its message: frame type (1) +
/// seq (up to 10) + floor (up to 10) + message length (3, enough for any
/// length below 2^21).
pub const MAX_DATA_OVERHEAD: usize = 1 + 10 + 10 + 3;

/// The longest message text, in bytes of UTF-8, that fits one datagram
/// whatever the sequence numbers and incarnation are, with room for a
/// seal ([`SEAL_LEN`], so the longest message is the same with or without
/// a cluster key): 65,507 − 12 − 24 − 16 = 65,455.
pub const MAX_MESSAGE_LEN: usize = MAX_DATAGRAM - MAX_HEADER - MAX_DATA_OVERHEAD - SEAL_LEN;

/// The most ranges of messages received ahead of a hole that one `Ack`
/// frame written by this module lists (decoders accept any number).
pub const MAX_ACK_RANGES: usize = 32;

/// Frame type of a `Data` frame.
const DATA: u8 = 0;
/// Frame type of an `Ack` frame.
const ACK: u8 = 1;

/// One message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataFrame<'a> {
    /// Sequence number of this message from this sender incarnation to
    /// this recipient.
    pub seq: u64,
    /// The lowest sequence number the sender is still trying to deliver
    /// to this recipient; everything below it is acknowledged or given up.
    pub floor: u64,
    /// The message text, `"name arg arg…"`. Empty means a *floor
    /// announcement*: acknowledged and ordered like any message but never
    /// delivered to the application.
    pub message: &'a str,
}

/// An acknowledgement: everything below `next` was received, and so were
/// the ranges listed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckFrame<'a> {
    /// The incarnation of the sender whose messages are acknowledged, so an
    /// ack meant for an earlier life of the same address is not taken for
    /// one of ours.
    pub incarnation: u64,
    /// Every sequence number below it was received (or skipped past
    /// because the sender's floor moved beyond it).
    pub next: u64,
    /// The ranges, still encoded (checked when the datagram was decoded).
    count: u64,
    ranges: &'a [u8],
}

impl<'a> AckFrame<'a> {
    /// The ranges received above `next`, ascending, as half-open
    /// `(start, end)` pairs: `start > next`, each above the previous one
    /// with at least one missing number between.
    pub fn ranges(&self) -> AckRanges<'a> {
        AckRanges {
            bytes: self.ranges,
            left: self.count,
            cursor: self.next,
        }
    }

    /// How many ranges the frame lists.
    pub fn range_count(&self) -> u64 {
        self.count
    }
}

/// The ranges of an [`AckFrame`], ascending.
#[derive(Debug, Clone)]
pub struct AckRanges<'a> {
    bytes: &'a [u8],
    left: u64,
    cursor: u64,
}

impl Iterator for AckRanges<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.left == 0 {
            return None;
        }
        // The frame was checked when decoded: these reads cannot fail.
        let mut reader = Reader { bytes: self.bytes };
        let range = read_range(&mut reader, self.cursor).ok()?;
        self.bytes = reader.bytes;
        self.left -= 1;
        self.cursor = range.1;
        Some(range)
    }
}

/// One frame of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frame<'a> {
    /// A message (frame type 0).
    Data(DataFrame<'a>),
    /// An acknowledgement (frame type 1).
    Ack(AckFrame<'a>),
}

/// A datagram that decoded: its header, and frames known to be well
/// formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    incarnation: u64,
    frames: &'a [u8],
    /// Whether a frame is `Data`.
    data: bool,
    /// The first frames as decoding read them, so handing them out does
    /// not read them again (a request or a reply is a `Data` and an `Ack`),
    /// and where the rest starts in `frames`.
    first: [Option<Frame<'a>>; KEPT_FRAMES],
    rest: usize,
}

/// Frames a [`Datagram`] keeps as decoded.
const KEPT_FRAMES: usize = 2;

impl<'a> Datagram<'a> {
    /// The sender's incarnation: a random number chosen at each process
    /// start, so a restarted process at the same address is a new peer.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Whether it carries a message (a `Data` frame).
    pub fn has_data(&self) -> bool {
        self.data
    }

    /// Whether it carries an acknowledgement of messages from `incarnation`.
    pub fn has_ack_for(&self, incarnation: u64) -> bool {
        self.frames()
            .any(|frame| matches!(frame, Frame::Ack(ack) if ack.incarnation == incarnation))
    }

    /// Its frames, in the order they were written.
    pub fn frames(&self) -> Frames<'a> {
        Frames {
            first: self.first,
            taken: 0,
            reader: Reader {
                bytes: &self.frames[self.rest..],
            },
        }
    }
}

/// The frames of a [`Datagram`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    first: [Option<Frame<'a>>; KEPT_FRAMES],
    taken: usize,
    reader: Reader<'a>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if let Some(frame) = self.first.get_mut(self.taken).and_then(Option::take) {
            self.taken += 1;
            return Some(frame);
        }
        if self.reader.bytes.is_empty() {
            return None;
        }
        // Checked when decoded: cannot fail.
        read_frame(&mut self.reader).ok()
    }
}

/// Why a datagram is not one we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The datagram has no bytes.
    #[error("empty datagram")]
    Empty,
    /// The first byte names a protocol version we do not speak.
    #[error("protocol version {0} (we speak version {VERSION})")]
    UnknownVersion(u8),
    /// The key byte names a key this receiver does not have (any key, if
    /// it has none).
    #[error("datagram sealed with key {0}, which is not one of ours")]
    UnknownKey(u8),
    /// Key byte `00`, but this receiver accepts sealed datagrams only.
    #[error("datagram not sealed, but this cluster has a key")]
    Unsealed,
    /// The tag is not the one the named key gives.
    #[error("datagram's tag does not match its key {0}")]
    BadTag(u8),
    /// Sealed at a time (Unix seconds) too far from the receiver's clock:
    /// a replay, or a host whose clock is off. Decided by the transport,
    /// which knows the clock.
    #[error("datagram sealed at {0} (Unix seconds), too far from our clock")]
    Outdated(u32),
    /// Sealed by a sender incarnation that is heard at another address, or
    /// that a later incarnation of its address replaced: a replay. Decided
    /// by the transport, which knows the senders.
    #[error("a replay: sealed by an incarnation heard elsewhere or since replaced")]
    Replayed,
    /// The datagram ends in the middle of a field.
    #[error("truncated datagram")]
    Truncated,
    /// The header is not followed by any frame.
    #[error("datagram without frames")]
    NoFrames,
    /// A message text is not UTF-8.
    #[error("message text is not valid UTF-8")]
    BadUtf8,
    /// A variable-length integer is longer than 10 bytes or above 2^64 − 1.
    #[error("malformed varint")]
    BadVarint,
    /// A frame type other than `Data` (0) or `Ack` (1).
    #[error("unknown frame type {0}")]
    UnknownFrame(u64),
    /// An `Ack` range with a zero gap or length, or beyond 2^64 − 1.
    #[error("malformed ack range")]
    BadRange,
}

/// Why a frame cannot be written.
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
    /// The caller's buffer is shorter than the datagram needs.
    #[error("datagram needs {needed} bytes but the buffer has {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

/// Checks that `message` fits one datagram, whatever the frame around it.
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

/// Reads a whole datagram: checks its header and every frame, then lets
/// [`Datagram::frames`] hand them out.
///
/// Never panics and never allocates: an empty datagram, another version, a
/// key, a truncated or malformed frame, or text that is not UTF-8 is a
/// [`WireError`], and nothing of such a datagram is used.
pub fn decode(datagram: &[u8]) -> Result<Datagram<'_>, WireError> {
    match key_of(datagram)? {
        NO_KEY => read_body(&datagram[2..]),
        key => Err(WireError::UnknownKey(key)),
    }
}

/// Reads a sealed datagram: checks its key byte names one of `keys` and its
/// tag, before reading anything else; then reads it as [`decode`] does.
/// Returns it with the sender's clock when it sealed it (Unix seconds).
/// `to` is the receiver's own address: the seal names the recipient (see
/// [`Key::seal_tag`]), so a datagram sealed for another is refused.
pub fn open<'a>(
    datagram: &'a [u8],
    keys: &Keys,
    to: SocketAddr,
) -> Result<(Datagram<'a>, u32), WireError> {
    let id = key_of(datagram)?;
    if id == NO_KEY {
        return Err(WireError::Unsealed);
    }
    let key = keys.by_id(id).ok_or(WireError::UnknownKey(id))?;
    if datagram.len() < 2 + SEAL_LEN {
        return Err(WireError::BadTag(id));
    }
    let (sealed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    if !key.verify_seal(to, sealed, tag) {
        return Err(WireError::BadTag(id));
    }
    let (body, time) = sealed.split_at(sealed.len() - TIME_LEN);
    let mut clock = [0u8; TIME_LEN];
    clock.copy_from_slice(time);
    Ok((read_body(&body[2..])?, u32::from_be_bytes(clock)))
}

/// The key byte, once the version is known to be ours.
fn key_of(datagram: &[u8]) -> Result<u8, WireError> {
    let Some(&version) = datagram.first() else {
        return Err(WireError::Empty);
    };
    if version != VERSION {
        // Checked before anything else: another version may lay out the
        // rest differently.
        return Err(WireError::UnknownVersion(version));
    }
    datagram.get(1).copied().ok_or(WireError::Truncated)
}

/// The incarnation and frames after the version and key bytes.
fn read_body(body: &[u8]) -> Result<Datagram<'_>, WireError> {
    let mut reader = Reader { bytes: body };
    let incarnation = reader.varint()?;
    let frames = reader.bytes;
    if frames.is_empty() {
        return Err(WireError::NoFrames);
    }
    let mut check = reader.clone();
    let mut data = false;
    let mut first = [None; KEPT_FRAMES];
    let mut rest = 0;
    for kept in 0.. {
        if check.bytes.is_empty() {
            break;
        }
        let frame = read_frame(&mut check)?;
        data |= matches!(frame, Frame::Data(_));
        if let Some(slot) = first.get_mut(kept) {
            *slot = Some(frame);
            rest = frames.len() - check.bytes.len();
        }
    }
    Ok(Datagram {
        incarnation,
        frames,
        data,
        first,
        rest,
    })
}

/// The protocol version a datagram says it is, if it has a first byte.
pub fn version_of(datagram: &[u8]) -> Option<u8> {
    datagram.first().copied()
}

/// Writes a datagram frame by frame into a buffer the caller owns.
///
/// Each `push_*` writes its frame when it fits in the buffer and returns
/// whether it did; [`Writer::finish`] returns the datagram's length.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    header: usize,
    /// The key, clock and recipient a sealed datagram is sealed with.
    seal: Option<(&'b Key, u32, SocketAddr)>,
}

impl<'b> Writer<'b> {
    /// Starts a datagram from `incarnation` in `buf`.
    pub fn new(buf: &'b mut [u8], incarnation: u64) -> Result<Self, EncodeError> {
        let header = 2 + varint_len(incarnation);
        if buf.len() < header {
            return Err(EncodeError::BufferTooSmall {
                needed: header,
                available: buf.len(),
            });
        }
        let mut writer = Writer {
            buf,
            len: 0,
            header,
            seal: None,
        };
        writer.put_byte(VERSION);
        writer.put_byte(NO_KEY);
        writer.put_varint(incarnation);
        Ok(writer)
    }

    /// Starts a datagram from `incarnation` in `buf`, to be sealed for the
    /// recipient `to` with `key` and the sender's clock `time` (Unix
    /// seconds) when finished.
    pub fn sealed(
        buf: &'b mut [u8],
        incarnation: u64,
        key: &'b Key,
        time: u32,
        to: SocketAddr,
    ) -> Result<Self, EncodeError> {
        let needed = 2 + varint_len(incarnation) + SEAL_LEN;
        if buf.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        let mut writer = Writer::new(buf, incarnation)?;
        writer.buf[1] = key.id();
        writer.seal = Some((key, time, to));
        Ok(writer)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no frame has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == self.header
    }

    /// Bytes left in the buffer for frames (a seal's are kept aside).
    pub fn remaining(&self) -> usize {
        let seal = if self.seal.is_some() { SEAL_LEN } else { 0 };
        self.buf.len() - self.len - seal
    }

    /// Writes a `Data` frame if it fits (and its message is not longer
    /// than [`MAX_MESSAGE_LEN`]).
    pub fn push_data(&mut self, seq: u64, floor: u64, message: &str) -> bool {
        if message.len() > MAX_MESSAGE_LEN || data_frame_len(seq, floor, message) > self.remaining()
        {
            return false;
        }
        self.put_byte(DATA);
        self.put_varint(seq);
        self.put_varint(floor);
        self.put_varint(message.len() as u64);
        self.buf[self.len..self.len + message.len()].copy_from_slice(message.as_bytes());
        self.len += message.len();
        true
    }

    /// Writes an `Ack` frame if it fits: everything below `next` of the
    /// sender incarnation `incarnation` received, and `ranges` (ascending,
    /// half-open, each starting above the end of the one before and above
    /// `next`, none empty; others are left out).
    pub fn push_ack(&mut self, incarnation: u64, next: u64, ranges: &[(u64, u64)]) -> bool {
        let mut count = 0u64;
        let mut body = varint_len(incarnation) + varint_len(next);
        let mut cursor = next;
        for &(start, end) in ranges {
            if start <= cursor || end <= start {
                break;
            }
            body += varint_len(start - cursor) + varint_len(end - start);
            cursor = end;
            count += 1;
        }
        if 1 + body + varint_len(count) > self.remaining() {
            return false;
        }
        self.put_byte(ACK);
        self.put_varint(incarnation);
        self.put_varint(next);
        self.put_varint(count);
        let mut cursor = next;
        for &(start, end) in ranges.iter().take(count as usize) {
            self.put_varint(start - cursor);
            self.put_varint(end - start);
            cursor = end;
        }
        true
    }

    /// The datagram's length: the bytes to send are `buf[..len]`.
    pub fn finish(mut self) -> usize {
        if let Some((key, time, to)) = self.seal {
            self.buf[self.len..self.len + TIME_LEN].copy_from_slice(&time.to_be_bytes());
            self.len += TIME_LEN;
            let tag = key.seal_tag(to, &self.buf[..self.len]);
            self.buf[self.len..self.len + TAG_LEN].copy_from_slice(&tag);
            self.len += TAG_LEN;
        }
        self.len
    }

    fn put_byte(&mut self, byte: u8) {
        self.buf[self.len] = byte;
        self.len += 1;
    }

    fn put_varint(&mut self, mut value: u64) {
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.put_byte(low);
                return;
            }
            self.put_byte(low | 0x80);
        }
    }
}

/// The exact bytes a `Data` frame takes.
pub fn data_frame_len(seq: u64, floor: u64, message: &str) -> usize {
    1 + varint_len(seq) + varint_len(floor) + varint_len(message.len() as u64) + message.len()
}

/// The exact bytes a header from `incarnation` takes.
pub fn header_len(incarnation: u64) -> usize {
    2 + varint_len(incarnation)
}

/// Bytes of `value` as a varint (LEB128: 7 bits a byte, low first).
fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[derive(Debug, Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let bytes = self.bytes;
        let mut value = 0u64;
        for (i, &byte) in bytes.iter().take(10).enumerate() {
            let group = u64::from(byte & 0x7f);
            if i == 9 && group > 1 {
                return Err(WireError::BadVarint);
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                self.bytes = &bytes[i + 1..];
                return Ok(value);
            }
        }
        // Ten bytes, each saying more follows; or the datagram ended first.
        Err(if bytes.len() >= 10 {
            WireError::BadVarint
        } else {
            WireError::Truncated
        })
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
        if len > self.bytes.len() {
            return Err(WireError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }
}

fn read_frame<'a>(reader: &mut Reader<'a>) -> Result<Frame<'a>, WireError> {
    match reader.varint()? {
        0 => {
            let seq = reader.varint()?;
            let floor = reader.varint()?;
            let len = reader.varint()?;
            let text = reader.take(len)?;
            let message = std::str::from_utf8(text).map_err(|_| WireError::BadUtf8)?;
            Ok(Frame::Data(DataFrame {
                seq,
                floor,
                message,
            }))
        }
        1 => {
            let incarnation = reader.varint()?;
            let next = reader.varint()?;
            let count = reader.varint()?;
            let start = reader.bytes;
            let mut cursor = next;
            for _ in 0..count {
                (_, cursor) = read_range(reader, cursor)?;
            }
            let used = start.len() - reader.bytes.len();
            Ok(Frame::Ack(AckFrame {
                incarnation,
                next,
                count,
                ranges: &start[..used],
            }))
        }
        other => Err(WireError::UnknownFrame(other)),
    }
}

fn read_range(reader: &mut Reader<'_>, cursor: u64) -> Result<(u64, u64), WireError> {
    let gap = reader.varint()?;
    let len = reader.varint()?;
    if gap == 0 || len == 0 {
        return Err(WireError::BadRange);
    }
    let start = cursor.checked_add(gap).ok_or(WireError::BadRange)?;
    let end = start.checked_add(len).ok_or(WireError::BadRange)?;
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn frames(datagram: &[u8]) -> Vec<Frame<'_>> {
        match decode(datagram) {
            Ok(d) => d.frames().collect(),
            Err(e) => panic!("{e}: {}", hex(datagram)),
        }
    }

    fn ranges_of(frame: &Frame<'_>) -> Vec<(u64, u64)> {
        match frame {
            Frame::Ack(ack) => ack.ranges().collect(),
            Frame::Data(_) => panic!("not an ack"),
        }
    }

    /// The example datagrams of `docs/protocol.md`: the exact bytes, and
    /// the doc must show them, so the doc cannot drift from the code.
    #[test]
    fn protocol_doc_examples_match_the_encoding() {
        let doc = include_str!("../../docs/protocol.md");
        let mut buf = [0u8; 128];

        let mut w = Writer::new(&mut buf, 0x1234_5678_9abc_def0).unwrap();
        assert!(w.push_data(300, 298, "ping 42"));
        let len = w.finish();
        let data_hex = "02 00 f0 bd f3 d5 89 cf 95 9a 12 00 ac 02 aa 02 07 70 69 6e 67 20 34 32";
        assert_eq!(hex(&buf[..len]), data_hex);
        assert!(doc.contains(data_hex), "protocol.md lacks the Data example");

        let mut w = Writer::new(&mut buf, 5).unwrap();
        assert!(w.push_ack(0x1234_5678_9abc_def0, 300, &[(302, 305), (310, 311)]));
        assert!(w.push_data(7, 7, "pong"));
        let len = w.finish();
        let ack_hex =
            "02 00 05 01 f0 bd f3 d5 89 cf 95 9a 12 ac 02 02 02 03 05 01 00 07 07 04 70 6f 6e 67";
        assert_eq!(hex(&buf[..len]), ack_hex);
        assert!(doc.contains(ack_hex), "protocol.md lacks the Ack example");
        let got = frames(&buf[..len]);
        assert_eq!(ranges_of(&got[0]), [(302, 305), (310, 311)]);
        assert_eq!(
            got[1],
            Frame::Data(DataFrame {
                seq: 7,
                floor: 7,
                message: "pong"
            })
        );
    }

    #[test]
    fn empty_datagram_is_refused() {
        assert_eq!(decode(&[]), Err(WireError::Empty));
    }

    #[test]
    fn unknown_version_is_refused_before_parsing() {
        assert_eq!(decode(&[1]), Err(WireError::UnknownVersion(1)));
        assert_eq!(decode(&[0, 1, 2, 3]), Err(WireError::UnknownVersion(0)));
        assert_eq!(version_of(&[9, 0]), Some(9));
    }

    #[test]
    fn a_key_is_refused_when_none_is_configured() {
        assert_eq!(decode(&[2, 1, 0, 0]), Err(WireError::UnknownKey(1)));
    }

    #[test]
    fn header_alone_is_refused() {
        assert_eq!(decode(&[2, 0, 5]), Err(WireError::NoFrames));
    }

    #[test]
    fn every_truncation_is_refused() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf, u64::MAX).unwrap();
        assert!(w.push_ack(3, 1 << 40, &[((1 << 40) + 2, (1 << 40) + 9)]));
        let ack_end = w.len();
        assert!(w.push_data(1 << 40, 3, "hello world"));
        let len = w.finish();
        let header = header_len(u64::MAX);
        for cut in 1..len {
            let got = decode(&buf[..cut]);
            if cut == header {
                assert_eq!(got, Err(WireError::NoFrames));
            } else if cut == ack_end {
                // A whole frame: a datagram of one frame.
                assert_eq!(got.map(|d| d.frames().count()), Ok(1));
            } else {
                assert_eq!(got, Err(WireError::Truncated), "cut at {cut}");
            }
        }
    }

    #[test]
    fn bad_utf8_is_refused() {
        // version, key, incarnation 0, Data, seq 0, floor 0, length 2, bytes.
        assert_eq!(
            decode(&[2, 0, 0, 0, 0, 0, 2, 0xc3, 0x28]),
            Err(WireError::BadUtf8)
        );
    }

    #[test]
    fn unknown_frame_type_is_refused() {
        assert_eq!(decode(&[2, 0, 0, 2, 0, 0]), Err(WireError::UnknownFrame(2)));
    }

    #[test]
    fn a_malformed_frame_after_a_good_one_refuses_the_datagram() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf, 1).unwrap();
        assert!(w.push_data(0, 0, "fine"));
        let len = w.finish();
        let mut bytes = buf[..len].to_vec();
        bytes.push(9);
        assert_eq!(decode(&bytes), Err(WireError::UnknownFrame(9)));
    }

    #[test]
    fn overlong_varint_is_refused() {
        let mut bytes = vec![2, 0];
        bytes.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode(&bytes), Err(WireError::BadVarint));
        // Ten bytes whose last carries more than the 64th bit.
        let mut bytes = vec![2, 0];
        bytes.extend_from_slice(&[0xff; 9]);
        bytes.push(0x02);
        assert_eq!(decode(&bytes), Err(WireError::BadVarint));
    }

    #[test]
    fn zero_gaps_and_lengths_and_overflowing_ranges_are_refused() {
        // Ack of incarnation 0, next 5, one range: gap 0 / len 0 / overflow.
        assert_eq!(
            decode(&[2, 0, 0, 1, 0, 5, 1, 0, 1]),
            Err(WireError::BadRange)
        );
        assert_eq!(
            decode(&[2, 0, 0, 1, 0, 5, 1, 1, 0]),
            Err(WireError::BadRange)
        );
        let mut bytes = vec![2, 0, 0, 1, 0];
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        bytes.extend_from_slice(&[1, 1, 1]);
        assert_eq!(decode(&bytes), Err(WireError::BadRange));
    }

    #[test]
    fn message_is_borrowed_from_the_datagram() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf, 1).unwrap();
        assert!(w.push_data(2, 2, "tick"));
        let len = w.finish();
        let bytes = &buf[..len];
        let Some(Frame::Data(data)) = frames(bytes).first().copied() else {
            panic!("not a Data frame");
        };
        assert!(bytes.as_ptr_range().contains(&data.message.as_ptr()));
    }

    #[test]
    fn largest_message_fits_one_datagram_with_the_largest_header_and_a_tag() {
        let text = "x".repeat(MAX_MESSAGE_LEN);
        assert_eq!(
            header_len(u64::MAX) + data_frame_len(u64::MAX, u64::MAX, &text) + SEAL_LEN,
            MAX_DATAGRAM
        );
        let mut buf = vec![0; MAX_DATAGRAM];
        let mut w = Writer::new(&mut buf, u64::MAX).unwrap();
        assert!(w.push_data(u64::MAX, u64::MAX, &text));
        let len = w.finish();
        assert_eq!(len, MAX_DATAGRAM - SEAL_LEN);
        assert_eq!(frames(&buf[..len]).len(), 1);
    }

    #[test]
    fn message_too_large_is_refused() {
        let text = "x".repeat(MAX_MESSAGE_LEN + 1);
        assert_eq!(
            check_message_len(&text),
            Err(EncodeError::MessageTooLarge {
                len: MAX_MESSAGE_LEN + 1,
                max: MAX_MESSAGE_LEN
            })
        );
        let mut buf = vec![0; 2 * MAX_DATAGRAM];
        let mut w = Writer::new(&mut buf, 0).unwrap();
        assert!(!w.push_data(0, 0, &text));
        assert!(w.is_empty());
    }

    #[test]
    fn a_frame_that_does_not_fit_is_not_written() {
        let mut buf = [0u8; 10];
        let mut w = Writer::new(&mut buf, 0).unwrap();
        assert!(!w.push_data(0, 0, "hello world"));
        assert!(w.push_data(0, 0, "hi"));
        assert_eq!(w.remaining(), 1);
        assert!(matches!(
            Writer::new(&mut [0u8; 2], 1 << 20),
            Err(EncodeError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn ack_ranges_that_are_not_ascending_are_cut_off() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf, 0).unwrap();
        assert!(w.push_ack(1, 10, &[(12, 14), (13, 20), (30, 31)]));
        let len = w.finish();
        assert_eq!(ranges_of(&frames(&buf[..len])[0]), [(12, 14)]);
    }

    fn frame_strategy() -> impl Strategy<Value = (bool, u64, u64, String, Vec<(u8, u8)>)> {
        (
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
            ".{0,40}",
            proptest::collection::vec((1u8..20, 1u8..20), 0..8),
        )
    }

    /// The key of `docs/protocol.md`'s sealed example: bytes 00 01 … 1f.
    fn example_keys() -> Keys {
        Keys::parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap()
    }

    #[test]
    fn a_sealed_datagram_is_the_documented_bytes() {
        let keys = example_keys();
        let mut buf = [0u8; 64];
        let to: SocketAddr = "10.0.0.2:42000".parse().unwrap();
        let mut w = Writer::sealed(&mut buf, 5, keys.current(), 0x6553_f100, to).unwrap();
        assert!(w.push_data(0, 0, "hi"));
        let len = w.finish();
        // version 2, key 90 (0x5a), incarnation 5, Data 0 0 "hi", time,
        // then HMAC-SHA-256 of the recipient 10.0.0.2:42000 (0a 00 00 02
        // a4 10) and all that, first 12 bytes (Python:
        // hmac.new(bytes(range(32)), bytes.fromhex("0a000002a410025a05
        // 0000000268696553f100"), "sha256").hexdigest()[:24]).
        let sealed_hex = "02 5a 05 00 00 00 02 68 69 65 53 f1 00 ".to_owned() + SEALED_EXAMPLE_TAG;
        assert_eq!(hex(&buf[..len]), sealed_hex);
        let doc = include_str!("../../docs/protocol.md");
        assert!(
            doc.contains(&sealed_hex),
            "protocol.md lacks the sealed example"
        );
        let (datagram, time) = open(&buf[..len], &keys, to).unwrap();
        assert_eq!((datagram.incarnation(), time), (5, 0x6553_f100));
        // Sealed for 10.0.0.2:42000, refused at any other address.
        for other in ["10.0.0.3:42000", "10.0.0.2:42001"] {
            let other: SocketAddr = other.parse().unwrap();
            assert_eq!(
                open(&buf[..len], &keys, other).map(|_| ()),
                Err(WireError::BadTag(90))
            );
        }
        let texts: Vec<_> = datagram
            .frames()
            .map(|f| match f {
                Frame::Data(d) => d.message,
                Frame::Ack(_) => "ack",
            })
            .collect();
        assert_eq!(texts, ["hi"]);
    }

    const SEALED_EXAMPLE_TAG: &str = "3b 62 6c 93 e9 32 9e 69 eb 20 a3 6d";

    #[test]
    fn a_seal_refuses_every_change_and_every_other_key() {
        let keys = example_keys();
        let mut buf = [0u8; 64];
        let to: SocketAddr = "127.0.0.1:42000".parse().unwrap();
        let mut w = Writer::sealed(&mut buf, 5, keys.current(), 1, to).unwrap();
        assert!(w.push_data(3, 1, "stop 5000"));
        let len = w.finish();
        let good = buf[..len].to_vec();
        assert!(open(&good, &keys, to).is_ok());
        for byte in 0..len {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                let refused = open(&bad, &keys, to);
                assert!(
                    matches!(
                        refused,
                        Err(WireError::BadTag(_)
                            | WireError::UnknownKey(_)
                            | WireError::UnknownVersion(_)
                            | WireError::Unsealed)
                    ),
                    "byte {byte} bit {bit}: {refused:?}"
                );
            }
        }
        for cut in 0..len {
            assert!(open(&good[..cut], &keys, to).is_err());
        }
        // Unsealed where a key is required, sealed where none is known,
        // and another cluster's key.
        let mut plain = [0u8; 32];
        let mut w = Writer::new(&mut plain, 5).unwrap();
        assert!(w.push_data(3, 1, "stop 5000"));
        let plain_len = w.finish();
        assert_eq!(
            open(&plain[..plain_len], &keys, to).map(|_| ()),
            Err(WireError::Unsealed)
        );
        assert_eq!(decode(&good).map(|_| ()), Err(WireError::UnknownKey(90)));
        let other = Keys::parse(&"42".repeat(32)).unwrap();
        assert!(matches!(
            open(&good, &other, to),
            Err(WireError::UnknownKey(90) | WireError::BadTag(90))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1024,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(d) = decode(&bytes) {
                for frame in d.frames() {
                    if let Frame::Ack(ack) = frame {
                        let _ = ack.ranges().count();
                    }
                }
            }
        }

        #[test]
        fn decode_never_panics_on_version_2(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut datagram = vec![VERSION, NO_KEY];
            datagram.extend_from_slice(&bytes);
            if let Ok(d) = decode(&datagram) {
                let _ = d.frames().count();
            }
        }

        #[test]
        fn written_frames_read_back(
            incarnation in any::<u64>(),
            list in proptest::collection::vec(frame_strategy(), 1..6),
        ) {
            let mut buf = vec![0u8; 4096];
            let mut w = Writer::new(&mut buf, incarnation).unwrap();
            let mut want = Vec::new();
            for (is_data, a, b, text, gaps) in &list {
                if *is_data {
                    prop_assert!(w.push_data(*a, *b, text));
                    want.push((true, *a, *b, text.clone(), Vec::new()));
                } else {
                    let next = a >> 8;
                    let mut ranges = Vec::new();
                    let mut cursor = next;
                    for (gap, len) in gaps {
                        let start = cursor + u64::from(*gap);
                        ranges.push((start, start + u64::from(*len)));
                        cursor = start + u64::from(*len);
                    }
                    prop_assert!(w.push_ack(*b, next, &ranges));
                    want.push((false, *b, next, String::new(), ranges));
                }
            }
            let len = w.finish();
            let d = decode(&buf[..len]).unwrap();
            prop_assert_eq!(d.incarnation(), incarnation);
            let got: Vec<_> = d
                .frames()
                .map(|frame| match frame {
                    Frame::Data(f) => (true, f.seq, f.floor, f.message.to_owned(), Vec::new()),
                    Frame::Ack(f) => (false, f.incarnation, f.next, String::new(), f.ranges().collect()),
                })
                .collect();
            prop_assert_eq!(d.has_data(), want.iter().any(|frame| frame.0));
            for frame in &want {
                prop_assert_eq!(d.has_ack_for(frame.1), !frame.0 || want.iter().any(|f| !f.0 && f.1 == frame.1));
            }
            prop_assert_eq!(got, want);
        }
    }
}
