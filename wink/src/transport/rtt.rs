//! Retransmission timeout from measured round trips (RFC 6298).

use std::time::Duration;

use super::TransportConfig;

/// Smoothed round-trip time and its variation for one recipient, plus the
/// backed-off timeout that Karn's algorithm keeps until a new sample.
#[derive(Debug, Clone, Default)]
pub(super) struct RttEstimator {
    /// SRTT; `None` until the first sample.
    srtt: Option<Duration>,
    /// RTTVAR.
    rttvar: Duration,
    /// The largest timeout a retransmission backed off to since the last
    /// sample; new messages start from it (Karn's algorithm), so a link
    /// slower than the estimate does not retransmit every message forever
    /// without ever measuring anything.
    backoff: Duration,
}

impl RttEstimator {
    /// The smoothed round-trip time, once measured.
    pub(super) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Takes one round-trip sample (RFC 6298 §2.2–2.3, with α = 1/8 and
    /// β = 1/4), from a message that was sent exactly once (Karn's rule is
    /// the caller's to apply), and forgets any backoff.
    pub(super) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                self.rttvar =
                    (self.rttvar.saturating_mul(3) / 4).saturating_add(srtt.abs_diff(rtt) / 4);
                self.srtt = Some((srtt.saturating_mul(7) / 8).saturating_add(rtt / 8));
            }
        }
        self.backoff = Duration::ZERO;
    }

    /// The recipient acknowledged something: it is there, so new messages
    /// start from the estimate again, not from a backoff (RFC 6298 keeps
    /// the backoff until a new sample; under steady loss, where most
    /// messages are sent twice and give no sample, that would carry one
    /// message's bad luck to every later one).
    pub(super) fn forgive(&mut self) {
        self.backoff = Duration::ZERO;
    }

    /// Remembers that a retransmission backed off to `rto`.
    pub(super) fn back_off(&mut self, rto: Duration) {
        self.backoff = self.backoff.max(rto);
    }

    /// The timeout for a message's first transmission: `SRTT + 4·RTTVAR`
    /// (the initial timeout before any sample), at least any backoff in
    /// force, within `[min_rto, max_rto]`.
    pub(super) fn rto(&self, config: &TransportConfig) -> Duration {
        let estimate = match self.srtt {
            None => config.initial_rto,
            Some(srtt) => srtt.saturating_add(self.rttvar.saturating_mul(4)),
        };
        clamp_rto(estimate.max(self.backoff), config)
    }
}

impl RttEstimator {
    /// The probe timeout: `SRTT + max(4·RTTVAR, 1 ms) + ack_delay`, or
    /// `initial` before any sample.
    pub(super) fn pto(&self, initial: Duration, ack_delay: Duration) -> Duration {
        match self.srtt {
            None => initial,
            Some(srtt) => srtt
                .saturating_add(self.rttvar.saturating_mul(4).max(Duration::from_millis(1)))
                .saturating_add(ack_delay),
        }
    }
}

/// `rto` within `[min_rto, max_rto]`; `max_rto` wins if the two cross (no
/// panic on a bad configuration).
pub(super) fn clamp_rto(rto: Duration, config: &TransportConfig) -> Duration {
    rto.max(config.min_rto).min(config.max_rto)
}
