//! Rate-limited reports: a problem that repeats is logged once, then at most once per
//! interval with the count of what happened since, so a storm cannot flood the log and
//! its size is still told.
//!
//! Owns: the timing and counting. Does not own: the messages (each stage writes its own).

use std::time::{Duration, Instant};

/// At most one report per `every`, counting the events held back.
#[derive(Debug, Clone)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl RateLimit {
    /// A limit of one report per `every`; the first event is reported at once.
    pub const fn new(every: Duration) -> Self {
        RateLimit {
            every,
            last: None,
            held: 0,
        }
    }

    /// `n` more events. When a report is due now, returns how many events it covers (these
    /// and the ones held back since the last report) and starts a new interval.
    pub fn hit(&mut self, n: u64) -> Option<u64> {
        self.held += n;
        self.due_now()
    }

    /// A report of the held-back events, if there are any and one is due now.
    pub fn flush(&mut self) -> Option<u64> {
        if self.held == 0 {
            return None;
        }
        self.due_now()
    }

    fn due_now(&mut self) -> Option<u64> {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.held))
    }

    /// Events held back since the last report.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Forgets the past (after a recovery): the next event is reported at once.
    pub fn reset(&mut self) {
        self.last = None;
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_first_then_sums_up() {
        let mut r = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(r.hit(1), Some(1));
        assert_eq!(r.hit(1), None);
        assert_eq!(r.hit(5), None);
        assert_eq!(r.flush(), None, "not due within the interval");
        r.last = Some(Instant::now() - Duration::from_secs(3601));
        assert_eq!(r.flush(), Some(6));
        assert_eq!(r.flush(), None, "nothing held");
        r.reset();
        assert_eq!(r.hit(2), Some(2));
    }
}
