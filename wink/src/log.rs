//! Logging (placeholder until the real module lands).
/// A logger that drops everything.
pub fn discard() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}
