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
//! Each record is formatted into a buffer, then written with one
//! `write_all` under a mutex and flushed before the logging call returns:
//! nothing waits in a user-space buffer or a background thread, so a
//! process that crashes or is killed has lost nothing it already logged.
//! (Records are not `fsync`ed: they survive the process, not a power cut.)
//! Errors writing a log (a closed stdout, a full disk) are ignored: logging
//! never stops a machine.
//!
//! ```
//! use slog::info;
//!
//! let log = wink::log::stdout();
//! info!(log, "127.0.0.1:56950 family/Parent > 127.0.0.1:42000 register family/Parent 41972");
//! ```

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use slog::{o, Drain, Level, Logger, Record};
use slog_term::{FullFormat, PlainSyncDecorator, RecordDecorator, ThreadSafeTimestampFn};

use crate::name::MachineName;

/// A logger writing lines to standard output, each flushed as it is logged.
pub fn stdout() -> Logger {
    to_writer(io::stdout())
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

/// A logger writing the same lines as [`stdout()`] to `writer`, one
/// `write_all` and one `flush` per record.
pub fn to_writer<W: Write + Send + 'static>(writer: W) -> Logger {
    let format = FullFormat::new(PlainSyncDecorator::new(writer))
        .use_original_order()
        .use_custom_header_print(print_header)
        .build();
    Logger::root(format.ignore_res(), o!())
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

    #[test]
    fn discard_accepts_records() {
        info!(discard(), "nowhere"; "k" => 1);
    }
}
