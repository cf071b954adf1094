//! How fast starts are admitted: a token bucket of `rate` tokens a second
//! with a burst of `rate`, kept as one instant (the generic cell rate
//! algorithm), so admitting a start costs a comparison and needs no timer.

use std::time::{Duration, Instant};

/// Admits at most `rate` starts in any burst and `rate` a second on
/// average.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    /// Time one start uses up: a second over the rate.
    interval: Duration,
    /// How far ahead of now the schedule may run: a full bucket less one.
    tolerance: Duration,
    /// When the bucket would be full again (the theoretical arrival time
    /// of the next start); `None` until the first start.
    full_at: Option<Instant>,
}

impl Pace {
    /// `rate` starts a second, bursts of `rate`; a rate of 0 counts as 1.
    pub(crate) fn new(rate: u32) -> Self {
        let rate = rate.max(1);
        let interval = Duration::from_secs(1) / rate;
        Pace {
            interval,
            tolerance: interval * (rate - 1),
            full_at: None,
        }
    }

    /// Takes a token at `now`, if there is one.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        let at = self.full_at.map_or(now, |at| at.max(now));
        if at.duration_since(now) > self.tolerance {
            return false;
        }
        self.full_at = Some(at + self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_admits_a_burst_of_rate_then_one_per_interval() {
        let t0 = Instant::now();
        let mut pace = Pace::new(500);
        assert_eq!((0..600).filter(|_| pace.admit(t0)).count(), 500);
        assert!(!pace.admit(t0 + Duration::from_micros(1999)));
        assert!(pace.admit(t0 + Duration::from_millis(2)));
        assert!(!pace.admit(t0 + Duration::from_millis(2)));
        // Idle for a second: the bucket is full again, and no fuller.
        let later = t0 + Duration::from_secs(5);
        assert_eq!((0..600).filter(|_| pace.admit(later)).count(), 500);
    }

    #[test]
    fn a_rate_of_one_admits_one_a_second() {
        let t0 = Instant::now();
        let mut pace = Pace::new(1);
        assert!(pace.admit(t0));
        assert!(!pace.admit(t0 + Duration::from_millis(999)));
        assert!(pace.admit(t0 + Duration::from_secs(1)));
        assert!(Pace::new(0).admit(t0));
    }
}
