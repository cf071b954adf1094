//! Cluster keys: what seals a datagram so that only holders of the key can
//! make one a receiver accepts (see `docs/protocol.md`, "Sealed datagrams",
//! and `docs/security.md`).
//!
//! A sealed datagram ends with the sender's clock (Unix seconds, 4 bytes,
//! big-endian) and a tag: HMAC-SHA-256 of every byte before the tag,
//! truncated to its first [`TAG_LEN`] bytes. The key byte of the header
//! names the key, by an id derived from the key itself ([`Key::id`]).
//!
//! A key file holds one key per line, 64 hexadecimal digits (32 bytes);
//! the first is the one datagrams are sealed with, every one is accepted
//! (so a key can be rotated without stopping a cluster). Blank lines and
//! lines starting with `#` are skipped. The file must not be readable or
//! writable by group or others.
//!
//! ```
//! use wink::auth::{Key, Keys};
//! let keys = Keys::parse(&"ab".repeat(32)).unwrap();
//! let key: &Key = keys.current();
//! let tag = key.tag(b"some bytes");
//! assert!(key.verify(b"some bytes", &tag));
//! assert!(!key.verify(b"other bytes", &tag));
//! assert_eq!(keys.by_id(key.id()).map(Key::id), Some(key.id()));
//! ```

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// Bytes of a tag: HMAC-SHA-256 truncated to 96 bits.
pub const TAG_LEN: usize = 12;

/// Bytes of the sender's clock in a sealed datagram.
pub const TIME_LEN: usize = 4;

/// Bytes a seal adds at the end of a datagram: the clock, then the tag.
pub const SEAL_LEN: usize = TIME_LEN + TAG_LEN;

/// The environment variable naming a key file, for the `wink` command, the
/// server and the machines it starts (which inherit its path, never the
/// key itself).
pub const KEY_FILE_ENV: &str = "WINK_KEY_FILE";

/// What a key's id is derived from (see [`Key::id`]).
const ID_LABEL: &[u8] = b"wink key id";

/// One cluster key, ready to tag and check datagrams. Its bytes are never
/// printed: `Debug` shows its id only.
#[derive(Clone)]
pub struct Key {
    id: u8,
    mac: Hmac<Sha256>,
}

impl Key {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Key {
        // HMAC takes a key of any length: this cannot fail.
        let mac = match <Hmac<Sha256> as Mac>::new_from_slice(bytes) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        let mut label = mac.clone();
        label.update(ID_LABEL);
        let first = label.finalize().into_bytes()[0];
        Key {
            id: 1 + first % 255,
            mac,
        }
    }

    /// The key byte of datagrams sealed with it: `1 + (HMAC-SHA-256(key,
    /// "wink key id")[0] mod 255)`, so 1 to 255 (0 means "not sealed").
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The tag of `bytes`.
    pub fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        truncated(self.mac_of(&[bytes]))
    }

    /// Whether `tag` is the tag of `bytes` (compared in constant time).
    pub fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        tag.len() == TAG_LEN && self.mac_of(&[bytes]).verify_truncated_left(tag).is_ok()
    }

    /// The tag of a datagram `bytes` (everything before its tag) sent to
    /// `to`: the recipient's address goes into the HMAC first (its IP's 4
    /// or 16 bytes, then its port, big-endian), not into the datagram, so
    /// a datagram captured on its way to one recipient is refused by any
    /// other.
    pub fn seal_tag(&self, to: SocketAddr, bytes: &[u8]) -> [u8; TAG_LEN] {
        let (recipient, len) = recipient(to);
        truncated(self.mac_of(&[&recipient[..len], bytes]))
    }

    /// Whether `tag` is the seal of `bytes` sent to `to` (see
    /// [`Key::seal_tag`]; compared in constant time).
    pub fn verify_seal(&self, to: SocketAddr, bytes: &[u8], tag: &[u8]) -> bool {
        let (recipient, len) = recipient(to);
        tag.len() == TAG_LEN
            && self
                .mac_of(&[&recipient[..len], bytes])
                .verify_truncated_left(tag)
                .is_ok()
    }

    /// The HMAC, keyed once, of `parts` one after another.
    fn mac_of(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac
    }
}

/// The first [`TAG_LEN`] bytes of `mac`'s result.
fn truncated(mac: Hmac<Sha256>) -> [u8; TAG_LEN] {
    let full = mac.finalize().into_bytes();
    let mut tag = [0; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Key {
    /// Keys are the same if they tag alike.
    fn eq(&self, other: &Key) -> bool {
        self.id == other.id && self.tag(ID_LABEL) == other.tag(ID_LABEL)
    }
}

impl Eq for Key {}

/// The keys a process seals with (the first) and accepts (all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    keys: Vec<Key>,
}

/// Why keys cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Group or others may read or write the key file.
    #[error(
        "key file {path} is open to group or others (mode {mode:04o}); make it private: chmod 600 {path}"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line is not 64 hexadecimal digits.
    #[error("key file line {line}: {reason}")]
    Malformed {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `wink keygen` never overwrites a file.
    #[error("key file {path} already exists: a key is never overwritten (remove it first, or pick another name)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// No key in the file.
    #[error("no key in the key file (a key is a line of 64 hexadecimal digits; `wink keygen <file>` writes one)")]
    Empty,
    /// Two keys of the file have the same id.
    #[error("keys on lines {first} and {second} have the same id {id}: replace one of them with a new key (`wink keygen`)")]
    SameId {
        /// The line of the first.
        first: usize,
        /// The line of the second.
        second: usize,
        /// Their id.
        id: u8,
    },
}

impl Keys {
    /// The keys of a key file's text (see the module's documentation).
    pub fn parse(text: &str) -> Result<Keys, KeyError> {
        let mut keys: Vec<(usize, Key)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = Key::from_bytes(&parse_hex(line).map_err(|reason| KeyError::Malformed {
                line: line_no,
                reason,
            })?);
            if let Some((first, _)) = keys.iter().find(|(_, k)| k.id() == key.id()) {
                return Err(KeyError::SameId {
                    first: *first,
                    second: line_no,
                    id: key.id(),
                });
            }
            keys.push((line_no, key));
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Keys {
            keys: keys.into_iter().map(|(_, key)| key).collect(),
        })
    }

    /// The keys of the file at `path`, refused if group or others may read
    /// or write it.
    pub fn read(path: &Path) -> Result<Keys, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
        let text = io::read_to_string(file).map_err(io)?;
        Keys::parse(&text)
    }

    /// The key datagrams are sealed with.
    pub fn current(&self) -> &Key {
        &self.keys[0]
    }

    /// The accepted key with id `id`.
    pub fn by_id(&self, id: u8) -> Option<&Key> {
        self.keys.iter().find(|key| key.id() == id)
    }

    /// Every key, the current one first.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }
}

/// The keys of the file `explicit` names, or else of the file the
/// environment variable [`KEY_FILE_ENV`] names, with the file's absolute
/// path; `None` if neither is given (no key: the cluster is open).
pub fn load_keys(explicit: Option<&Path>) -> Result<Option<(PathBuf, Arc<Keys>)>, KeyError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os(KEY_FILE_ENV) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => return Ok(None),
        },
    };
    let keys = Keys::read(&path)?;
    let absolute = path.canonicalize().map_err(|source| KeyError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Some((absolute, Arc::new(keys))))
}

/// Writes a new random key (from the system's random source) to a file
/// `path` that does not exist yet, readable and writable by its owner only.
pub fn write_new_key_file(path: &Path) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = [0u8; KEY_LEN];
    let mut filled = 0;
    while filled < KEY_LEN {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(io(e.into())),
        }
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: path.to_path_buf(),
            },
            _ => io(source),
        })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    writeln!(file, "{hex}").map_err(io)?;
    file.sync_all().map_err(io)
}

/// The recipient as the seal covers it: its IP's bytes, then its port,
/// big-endian (in a buffer of 18 bytes, of which the first `len`).
fn recipient(to: SocketAddr) -> ([u8; 18], usize) {
    let mut bytes = [0u8; 18];
    let ip = match to.ip() {
        std::net::IpAddr::V4(ip) => {
            bytes[..4].copy_from_slice(&ip.octets());
            4
        }
        std::net::IpAddr::V6(ip) => {
            bytes[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    bytes[ip..ip + 2].copy_from_slice(&to.port().to_be_bytes());
    (bytes, ip + 2)
}

/// A key line's 32 bytes. Errors say where, never which characters: they
/// may be most of a key.
fn parse_hex(line: &str) -> Result<[u8; KEY_LEN], String> {
    if line.len() != 2 * KEY_LEN {
        return Err(format!(
            "a key is {} hexadecimal digits, this line has {} characters",
            2 * KEY_LEN,
            line.chars().count()
        ));
    }
    if let Some(column) = line.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!("column {} is not a hexadecimal digit", column + 1));
    }
    let mut bytes = [0u8; KEY_LEN];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let pair = line.get(2 * i..2 * i + 2).ok_or("not hexadecimal digits")?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| "not hexadecimal digits".to_owned())?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn the_tag_and_id_are_hmac_sha256_as_documented() {
        // HMAC-SHA-256 with key 00 01 … 1f of "wink key id" and of "abc",
        // computed independently (Python: hmac.new(bytes(range(32)), m,
        // "sha256").hexdigest()).
        let key = Keys::parse(A).unwrap();
        let key = key.current();
        let tag: String = key.tag(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(tag, EXPECTED_ABC_TAG);
        assert_eq!(key.id(), EXPECTED_ID);
    }

    const EXPECTED_ABC_TAG: &str = "f0133729c4163dede81e21cd";
    const EXPECTED_ID: u8 = 90;

    #[test]
    fn key_files_are_checked_line_by_line() {
        assert!(matches!(Keys::parse(""), Err(KeyError::Empty)));
        assert!(matches!(
            Keys::parse("# only a comment\n\n"),
            Err(KeyError::Empty)
        ));
        assert!(matches!(
            Keys::parse(&"+a".repeat(32)),
            Err(KeyError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            Keys::parse("abc"),
            Err(KeyError::Malformed { line: 1, .. })
        ));
        let bad = format!("{A}\n{}zz", &A[..62]);
        match Keys::parse(&bad) {
            Err(KeyError::Malformed { line: 2, reason }) => {
                assert!(
                    reason.contains("column 63") && !reason.contains("zz"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Keys::parse(&format!("{A}\n{A}")),
            Err(KeyError::SameId {
                first: 1,
                second: 2,
                ..
            })
        ));
        let two = Keys::parse(&format!("# current\n{A}\n\n{}\n", "ff".repeat(32))).unwrap();
        assert_eq!(two.iter().count(), 2);
        assert_eq!(two.current(), Keys::parse(A).unwrap().current());
    }

    #[test]
    fn a_key_file_open_to_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        write_new_key_file(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let keys = Keys::read(&path).unwrap();
        assert_eq!(keys.iter().count(), 1);
        // A second keygen never overwrites a key.
        assert!(matches!(
            write_new_key_file(&path),
            Err(KeyError::Exists { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = Keys::read(&path).unwrap_err().to_string();
        assert!(
            error.contains("mode 0644") && error.contains("chmod 600"),
            "{error}"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let keys = Keys::parse(A).unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("0001") && shown.contains("id"), "{shown}");
    }
}
