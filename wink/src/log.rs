//! Logging setup: one line per record, message first, written at once.
//!
//! Every machine, the server and the CLI log through [`slog`]. This module
//! builds the loggers they use:
//!
//! - [`stdout()`]: human-readable lines on standard output (the default);
//! - [`to_file()`]: one file per machine in a log directory, appended to;
//! - [`to_writer()`]: the same lines into any writer (tests that read logs);
//! - [`discard()`]: nothing at all (tests that do not).
//!
//! A line is the message, then the logger's and the record's key-values, in
//! the order they were given, as `, key: value` (slog-term's style), then, only for levels other than
//! INFO, the level in brackets. There is no timestamp or level in front, so
//! lines read like the seed's and `grep` finds them by what they say:
//!
//! ```text
//! 127.0.0.1:56950 family/Parent > 127.0.0.1:42000 register family/Parent 41972
//! 127.0.0.1:56951 family/Child errored: AHHHHH
//! retransmit gave up, to: 127.0.0.1:7, seq: 12 [WARN]
//! ```
//!
//! Control characters in the message (a newline in an error text, say) are
//! escaped (`\n`), so one record is always one line. Key-values are written
//! as given.
//!
//! Each record is formatted into a buffer, then written with one `write`
//! under a mutex before the logging call returns: nothing waits in a
//! background thread, so a process that crashes or is killed has lost
//! nothing it already logged. (Records are not `fsync`ed: they survive the
//! process, not a power cut.) Errors writing a log (a closed stdout, a full
//! disk) are ignored: logging never stops a machine.
//!
//! Logging never blocks either. A log file takes every line at once, but
//! standard output may be a pipe that the server and every machine it
//! started share, read by something slower than they write: with blocking
//! writes one stalled reader would stall them all. So [`stdout()`] writes
//! through a descriptor of its own, opened anew on the same pipe (or
//! terminal) with `O_NONBLOCK` (`/proc/self/fd/1`; a socket is sent to
//! with `MSG_DONTWAIT`), leaving the shared one as it was. A line the pipe
//! cannot take now is held, up to [`HOLD_BYTES`], and written before any
//! later one; past that, lines are dropped and counted, and once the reader
//! has caught up a line says how many (`<n> log lines dropped: standard
//! output was not read fast enough [WARN]`). A line of at most 4096 bytes
//! (`PIPE_BUF`) goes into a pipe whole, never interleaved with another
//! process's. A driver loop calls [`retry_stdout()`] while lines are held,
//! and [`finish_stdout()`] before the process exits.
//!
//! ```
//! use slog::info;
//!
//! let log = wink::log::stdout();
//! info!(log, "127.0.0.1:56950 family/Parent > 127.0.0.1:42000 register family/Parent 41972");
//! ```

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use slog::{o, Drain, Level, Logger, Record};
use slog_term::{FullFormat, PlainSyncDecorator, RecordDecorator, ThreadSafeTimestampFn};

use crate::name::MachineName;

/// A logger writing lines to standard output without ever blocking: each
/// written as it is logged, or held (bounded) while the reader is behind,
/// or dropped and counted (see the module docs).
pub fn stdout() -> Logger {
    to_writer(Stdout)
}

/// Bytes of log lines held for standard output while its reader is
/// behind; lines beyond are dropped and counted.
pub const HOLD_BYTES: usize = 64 << 10;

/// The most a pipe takes in one piece, never interleaved with other
/// writers' (Linux's `PIPE_BUF`).
const PIPE_BUF: usize = 4096;

/// Standard output as the loggers of [`stdout()`] write it: opened on first
/// use, one per process.
static STDOUT: Mutex<Option<Lines>> = Mutex::new(None);

/// Whether [`STDOUT`] holds lines back, readable without the lock.
static HELD: AtomicBool = AtomicBool::new(false);

/// A handle on [`STDOUT`] for slog.
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        with_stdout(|lines| lines.record(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn with_stdout<T>(f: impl FnOnce(&mut Lines) -> T) -> T {
    let mut stdout = STDOUT.lock().unwrap_or_else(PoisonError::into_inner);
    let lines = stdout.get_or_insert_with(Lines::stdout);
    let result = f(lines);
    HELD.store(!lines.held.is_empty(), Ordering::Relaxed);
    result
}

/// Tries again to write the log lines standard output could not take;
/// true while some are still held. Cheap when none are.
pub fn retry_stdout() -> bool {
    HELD.load(Ordering::Relaxed) && with_stdout(|lines| lines.drain())
}

/// Waits up to `timeout` for standard output to take the log lines still
/// held, for a process about to exit; what it does not take is lost.
pub fn finish_stdout(timeout: Duration) {
    let give_up = Instant::now() + timeout;
    while retry_stdout() {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let writable = with_stdout(|lines| lines.wait_writable(left));
        if !writable {
            return;
        }
    }
}

/// Where standard output's lines go.
enum Out {
    /// A regular file (or a descriptor that could not be reopened):
    /// ordinary writes, which wait for no reader.
    Plain(File),
    /// A pipe or terminal, reopened non-blocking.
    Nonblocking(File),
    /// A socket, written with `MSG_DONTWAIT`.
    Socket(OwnedFd),
    /// Nothing to write to (stdout closed, or its reader gone).
    Closed,
}

/// Standard output's lines: written at once when it takes them, else held
/// in order (at most about [`HOLD_BYTES`]), else dropped and counted.
struct Lines {
    out: Out,
    held: Vec<u8>,
    dropped: u64,
}

impl Lines {
    fn stdout() -> Lines {
        match io::stdout().as_fd().try_clone_to_owned() {
            Ok(fd) => Lines::on(fd),
            Err(_) => Lines::with(Out::Closed),
        }
    }

    /// Lines written to `fd` (a duplicate of standard output): a regular
    /// file as it is, a socket with `MSG_DONTWAIT`, anything else (a pipe,
    /// a terminal) through a non-blocking descriptor of its own.
    fn on(fd: OwnedFd) -> Lines {
        let file = File::from(fd);
        let out = match file.metadata().map(|m| m.file_type()) {
            Ok(kind) if kind.is_file() || kind.is_block_device() => Out::Plain(file),
            Ok(kind) if kind.is_socket() => Out::Socket(OwnedFd::from(file)),
            _ => OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .map_or(Out::Plain(file), Out::Nonblocking),
        };
        Lines::with(out)
    }

    fn with(out: Out) -> Lines {
        Lines {
            out,
            held: Vec::new(),
            dropped: 0,
        }
    }

    fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.out {
            Out::Plain(file) | Out::Nonblocking(file) => file.write(buf),
            Out::Socket(fd) => rustix::net::send(
                &*fd,
                buf,
                rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from),
            Out::Closed => Ok(buf.len()),
        }
    }

    /// Writes as much of `buf` as the descriptor takes now; returns how
    /// much, or that the rest cannot be written at all.
    fn write_now(&mut self, buf: &[u8]) -> Result<usize, ()> {
        let mut done = 0;
        while done < buf.len() {
            match self.write_some(&buf[done..]) {
                Ok(0) => return Err(()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        self.out = Out::Closed;
                    }
                    return Err(());
                }
            }
        }
        Ok(done)
    }

    /// One record (a whole line).
    fn record(&mut self, line: &[u8]) {
        if self.drain() {
            if self.held.len() < HOLD_BYTES {
                self.held.extend_from_slice(line);
            } else {
                self.dropped += 1;
            }
            return;
        }
        match self.write_now(line) {
            Ok(n) if n == line.len() => {}
            Ok(n) => self.held.extend_from_slice(&line[n..]),
            Err(()) => self.dropped += 1,
        }
    }

    /// Writes held lines while the descriptor takes them, each whole line
    /// up to `PIPE_BUF` bytes in one piece; true if some are still held.
    fn drain(&mut self) -> bool {
        while !self.held.is_empty() {
            let window = &self.held[..self.held.len().min(PIPE_BUF)];
            let end = match window.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => self
                    .held
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.held.len(), |i| i + 1),
            };
            let chunk = std::mem::take(&mut self.held);
            let written = self.write_now(&chunk[..end]);
            self.held = chunk;
            match written {
                Ok(0) => return true,
                Ok(n) => {
                    self.held.drain(..n);
                }
                Err(()) => {
                    let lines = self.held.iter().filter(|&&b| b == b'\n').count();
                    self.dropped += lines.max(1) as u64;
                    self.held.clear();
                }
            }
        }
        if self.dropped > 0 {
            let note = format!(
                "{} log lines dropped: standard output was not read fast enough [WARN]\n",
                std::mem::take(&mut self.dropped)
            );
            self.record(note.as_bytes());
            return !self.held.is_empty();
        }
        false
    }

    /// Waits up to `timeout` for the descriptor to take more; false if it
    /// cannot be waited on.
    fn wait_writable(&self, timeout: Duration) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let fd = match &self.out {
            Out::Nonblocking(file) => file.as_fd(),
            Out::Socket(fd) => fd.as_fd(),
            Out::Plain(_) | Out::Closed => return false,
        };
        let timeout = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
    }
}

/// A logger appending lines to `<dir>/<name.log_file_name()>`
/// (`family/Child#Alice` → `family_Child#Alice.log`, see
/// [`MachineName::log_file_name`]), creating `dir` if it is missing.
///
/// Earlier content is kept. Each record is in the file when the logging call
/// returns.
pub fn to_file(dir: &Path, name: &MachineName) -> Result<Logger, LogError> {
    fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
        dir: dir.to_owned(),
        source,
    })?;
    let path = dir.join(name.log_file_name());
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| LogError::Open { path, source })?;
    Ok(to_writer(file))
}

/// The environment variable that picks the log format: `text` (the
/// default) or `json`. The server passes it on to the machines it starts.
pub const LOG_FORMAT_ENV: &str = "WINK_LOG_FORMAT";

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One line per record for a person: time, level, message, keys.
    #[default]
    Text,
    /// One JSON object per line (slog's JSON drain): `ts`, `level`, `msg`
    /// and the record's keys (a machine's carry `machine` and `at`).
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("log format `{other}`: text or json")),
        }
    }
}

impl std::fmt::Display for Format {
    /// The word [`LOG_FORMAT_ENV`] takes for it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Json => "json",
        })
    }
}

impl Format {
    /// The format [`LOG_FORMAT_ENV`] names (text if unset), or why it names
    /// none.
    pub fn from_env() -> Result<Format, String> {
        match std::env::var(LOG_FORMAT_ENV) {
            Ok(text) => text.parse().map_err(|e| format!("{LOG_FORMAT_ENV}: {e}")),
            Err(_) => Ok(Format::Text),
        }
    }
}

/// A logger writing the same lines as [`stdout()`] to `writer`, one
/// `write_all` and one `flush` per record, in the format of
/// [`LOG_FORMAT_ENV`] (text when it names none).
pub fn to_writer<W: Write + Send + 'static>(writer: W) -> Logger {
    to_writer_as(writer, Format::from_env().unwrap_or_default())
}

/// [`to_writer`] in `format`.
pub fn to_writer_as<W: Write + Send + 'static>(writer: W, format: Format) -> Logger {
    match format {
        Format::Text => {
            let format = FullFormat::new(PlainSyncDecorator::new(writer))
                .use_original_order()
                .use_custom_header_print(print_header)
                .build();
            Logger::root(format.ignore_res(), o!())
        }
        Format::Json => {
            let json = slog_json::Json::new(WholeLines::new(writer))
                .add_default_keys()
                .build();
            Logger::root(std::sync::Mutex::new(json).ignore_res(), o!())
        }
    }
}

/// Hands `inner` whole lines only, each with one `write_all` (slog's JSON
/// drain writes a record in pieces; the non-blocking standard output
/// takes lines).
struct WholeLines<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> WholeLines<W> {
    fn new(inner: W) -> Self {
        WholeLines {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: Write> Write for WholeLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let lines = std::mem::replace(&mut self.pending, rest);
            self.inner.write_all(&lines)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A logger that drops every record.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

/// Why a log file could not be opened. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log directory does not exist and could not be created.
    #[error("cannot create log directory `{}`: {source}", .dir.display())]
    CreateDir {
        /// The directory asked for.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The log file could not be opened for appending.
    #[error("cannot open log file `{}` for appending: {source}", .path.display())]
    Open {
        /// The file's path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// slog-term's header is `<time> <level> <message>`; ours is the message
/// alone (control characters escaped), then ` [LEVEL]` unless it is INFO.
/// Returns whether anything was written, so slog-term knows to put `, `
/// before the first key-value.
fn print_header(
    _timestamp: &dyn ThreadSafeTimestampFn<Output = io::Result<()>>,
    out: &mut dyn RecordDecorator,
    record: &Record<'_>,
    _file_location: bool,
) -> io::Result<bool> {
    let mut line = String::new();
    // Writing to a String cannot fail.
    let _ = write!(line, "{}", record.msg());
    let mut escaped = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    if record.level() != Level::Info {
        escaped.push_str(" [");
        escaped.push_str(record.level().as_short_str());
        escaped.push(']');
    }
    out.start_msg()?;
    out.write_all(escaped.as_bytes())?;
    Ok(!escaped.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::{info, warn};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    /// A fresh directory under the system's temporary directory, removed on
    /// drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("wink-log-{}-{test}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A writer whose bytes the test can read while the logger still holds it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        fn text(&self) -> String {
            let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn name(text: &str) -> MachineName {
        match text.parse() {
            Ok(name) => name,
            Err(err) => panic!("{err}"),
        }
    }

    fn read(path: &Path) -> String {
        match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => panic!("reading {}: {err}", path.display()),
        }
    }

    fn file_logger(dir: &Path, machine: &MachineName) -> Logger {
        match to_file(dir, machine) {
            Ok(log) => log,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn line_is_the_message_alone() {
        let out = Shared::default();
        let log = to_writer(out.clone());
        info!(
            log,
            "127.0.0.1:56950 family/Parent > 127.0.0.1:42000 register family/Parent 41972"
        );
        assert_eq!(
            out.text(),
            "127.0.0.1:56950 family/Parent > 127.0.0.1:42000 register family/Parent 41972\n"
        );
    }

    #[test]
    fn logger_then_record_key_values_follow_the_message() {
        let out = Shared::default();
        let log = to_writer(out.clone()).new(o!("machine" => "family/Child"));
        info!(log, "started"; "pid" => 41972, "port" => 7);
        assert_eq!(
            out.text(),
            "started, machine: family/Child, pid: 41972, port: 7\n"
        );
    }

    #[test]
    fn level_other_than_info_follows_the_message() {
        let out = Shared::default();
        let log = to_writer(out.clone());
        warn!(log, "gave up"; "seq" => 12);
        assert_eq!(out.text(), "gave up [WARN], seq: 12\n");
    }

    #[test]
    fn control_characters_in_the_message_stay_on_one_line() {
        let out = Shared::default();
        let log = to_writer(out.clone());
        info!(log, "errored: {}", "line one\nline two\tend");
        assert_eq!(out.text(), "errored: line one\\nline two\\tend\n");
    }

    #[test]
    fn file_record_is_on_disk_when_the_call_returns() {
        let tmp = TempDir::new("immediate");
        let machine = name("family/Child#Alice");
        let log = file_logger(&tmp.0, &machine);
        info!(log, "127.0.0.1:1 family/Child#Alice started");
        // The logger is still alive: nothing may be waiting in a buffer.
        assert_eq!(
            read(&tmp.0.join("family_Child#Alice.log")),
            "127.0.0.1:1 family/Child#Alice started\n"
        );
        info!(log, "second");
        assert_eq!(
            read(&tmp.0.join("family_Child#Alice.log")),
            "127.0.0.1:1 family/Child#Alice started\nsecond\n"
        );
        drop(log);
    }

    #[test]
    fn reopening_a_log_file_appends() {
        let tmp = TempDir::new("append");
        let machine = name("family/Parent");
        info!(file_logger(&tmp.0, &machine), "first run");
        info!(file_logger(&tmp.0, &machine), "second run");
        assert_eq!(
            read(&tmp.0.join("family_Parent.log")),
            "first run\nsecond run\n"
        );
    }

    #[test]
    fn missing_log_directory_is_created() {
        let tmp = TempDir::new("create");
        let dir = tmp.0.join("a").join("b");
        info!(file_logger(&dir, &name("x/y")), "hello");
        assert_eq!(read(&dir.join("x_y.log")), "hello\n");
    }

    #[test]
    fn directory_that_cannot_be_created_is_an_error_naming_it() {
        let tmp = TempDir::new("blocked");
        if let Err(err) =
            fs::create_dir_all(&tmp.0).and_then(|()| fs::write(tmp.0.join("file"), b""))
        {
            panic!("setting up {}: {err}", tmp.0.display());
        }
        let dir = tmp.0.join("file").join("logs");
        match to_file(&dir, &name("x/y")) {
            Ok(_) => panic!("a directory under a file should not be created"),
            Err(err) => {
                assert!(matches!(err, LogError::CreateDir { .. }), "{err:?}");
                let message = err.to_string();
                assert!(
                    message.starts_with(&format!(
                        "cannot create log directory `{}`: ",
                        dir.display()
                    )),
                    "{message}"
                );
            }
        }
    }

    /// Standard output as a pipe nobody reads yet.
    fn unread_pipe() -> (io::PipeReader, Lines) {
        let (reader, writer) = io::pipe().unwrap();
        let lines = Lines::on(OwnedFd::from(writer));
        assert!(
            matches!(lines.out, Out::Nonblocking(_)),
            "reopened non-blocking"
        );
        (reader, lines)
    }

    fn line(i: usize) -> Vec<u8> {
        format!("line {i:06} {}\n", "x".repeat(100)).into_bytes()
    }

    /// Reads everything the pipe holds now.
    fn read_now(reader: &mut io::PipeReader) -> String {
        use std::io::Read as _;
        let mut text = Vec::new();
        let mut buf = [0u8; 1 << 16];
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &*reader,
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if rustix::event::poll(&mut fds, Some(&zero)).unwrap() == 0 {
                break;
            }
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn a_full_pipe_holds_lines_then_drops_and_counts_them_without_blocking() {
        let (mut reader, mut lines) = unread_pipe();
        // Far more than the pipe (64 KiB) and the hold together.
        let n = 2_000;
        for i in 0..n {
            lines.record(&line(i));
        }
        assert!(!lines.held.is_empty());
        assert!(lines.held.len() <= HOLD_BYTES + line(0).len());
        assert!(lines.dropped > 0);
        let dropped = lines.dropped;
        // The reader catches up: held lines first, then the count.
        let mut text = read_now(&mut reader);
        while lines.drain() {
            text.push_str(&read_now(&mut reader));
        }
        text.push_str(&read_now(&mut reader));
        let got: Vec<&str> = text.lines().collect();
        let (last, kept) = got.split_last().unwrap();
        assert_eq!(
            *last,
            format!("{dropped} log lines dropped: standard output was not read fast enough [WARN]")
        );
        // Whole lines, in order, the first ones: none cut, none reordered.
        assert_eq!(kept.len() as u64 + dropped, n as u64);
        for (i, l) in kept.iter().enumerate() {
            assert_eq!(format!("{l}\n").into_bytes(), line(i));
        }
        // Caught up: lines go straight through again.
        lines.record(&line(7));
        assert!(lines.held.is_empty());
        assert_eq!(read_now(&mut reader).into_bytes(), line(7));
    }

    #[test]
    fn a_pipe_whose_reader_is_gone_takes_lines_without_complaint() {
        let (reader, mut lines) = unread_pipe();
        drop(reader);
        lines.record(b"nobody hears this\n");
        assert!(matches!(lines.out, Out::Closed));
        lines.record(b"nor this\n");
        assert!(lines.held.is_empty());
    }

    #[test]
    fn a_regular_file_is_written_as_it_is() {
        let file = tempfile::tempfile().unwrap();
        let mut lines = Lines::on(OwnedFd::from(file.try_clone().unwrap()));
        assert!(matches!(lines.out, Out::Plain(_)));
        lines.record(b"on disk\n");
        use std::io::{Read as _, Seek as _};
        let mut file = file;
        file.rewind().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "on disk\n");
    }
}
