//! `ClientThread.throttleNanos`: with a target throughput, a client thread's operation `n`
//! (from 0) is due `n` ticks after the thread started its loop; after each operation the
//! thread sleeps until the next one is due, and that deadline is the next operation's intended
//! start (`measurement.interval=intended|both`). An operation that overruns its tick makes
//! the next ones late: they start at once, but their intended start stays on the schedule.
//! Without a target there is no schedule and the intended start is the actual one, as is the
//! first operation's (nothing was due before it) and `cleanup`'s (YCSB resets it).

use std::time::Duration;

use tokio::time::{sleep_until, Instant};

/// One client thread's schedule.
#[derive(Debug)]
pub struct Throttle {
    start: Instant,
    /// Nanoseconds between operations (`targetOpsTickNs`); `None` runs unthrottled.
    tick_ns: Option<u64>,
    /// The deadline the thread last slept until: the intended start of its next operation.
    due: Option<Instant>,
}

impl Throttle {
    /// The schedule of a thread starting its loop at `start`, `tick_ns` apart if throttled.
    pub fn new(start: Instant, tick_ns: Option<u64>) -> Self {
        Self {
            start,
            tick_ns,
            due: None,
        }
    }

    /// When the operation after `done` operations is due, if throttled.
    pub fn deadline(&self, done: u64) -> Option<Instant> {
        self.tick_ns
            .map(|tick| self.start + Duration::from_nanos(tick.saturating_mul(done)))
    }

    /// Sleeps until the operation after `done` operations is due (at once if it is late) and
    /// makes that deadline its intended start.
    pub async fn wait(&mut self, done: u64) {
        if let Some(deadline) = self.deadline(done) {
            sleep_until(deadline).await;
            self.due = Some(deadline);
        }
    }

    /// The intended start of an operation that actually starts at `start`.
    pub fn intended(&self, start: Instant) -> Instant {
        self.due.unwrap_or(start)
    }

    /// Forgets the schedule, as YCSB does before `cleanup`.
    pub fn clear(&mut self) {
        self.due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn operations_are_due_a_tick_apart_from_the_start() {
        let t0 = Instant::now();
        let t = Throttle::new(t0, Some(10 * MS));
        assert_eq!(t.deadline(0), Some(t0));
        assert_eq!(t.deadline(3), Some(t0 + Duration::from_millis(30)));
        assert_eq!(Throttle::new(t0, None).deadline(3), None);
    }

    /// Nothing is due before the first operation, nor without a target: the intended start is
    /// the actual one.
    #[tokio::test]
    async fn without_a_due_operation_the_intended_start_is_the_actual_one() {
        let now = Instant::now();
        let t = Throttle::new(now, Some(10 * MS));
        assert_eq!(t.intended(now), now);
        let mut unthrottled = Throttle::new(now, None);
        unthrottled.wait(5).await;
        assert_eq!(unthrottled.intended(now), now);
    }

    /// A stall: the thread started 35 ms ago with a 10 ms tick and has done one operation,
    /// which took the whole 35 ms. The second was due at 10 ms: waiting for it returns at once
    /// and it is 25 ms late, which its intended latency counts and its op latency does not.
    #[tokio::test]
    async fn a_stall_makes_the_next_operations_late_on_the_schedule() {
        let now = Instant::now();
        let start = now - Duration::from_millis(35);
        let mut t = Throttle::new(start, Some(10 * MS));
        let waited = Instant::now();
        t.wait(1).await;
        assert!(
            waited.elapsed() < Duration::from_millis(5),
            "no sleep when late"
        );
        let begin = Instant::now();
        let due = t.intended(begin);
        assert_eq!(due, start + Duration::from_millis(10));
        assert!(begin - due >= Duration::from_millis(25));
        t.clear();
        assert_eq!(t.intended(begin), begin, "cleanup has no schedule");
    }

    /// On time: the thread sleeps until the deadline, which becomes the intended start.
    #[tokio::test]
    async fn on_time_the_thread_sleeps_until_the_deadline() {
        let start = Instant::now();
        let mut t = Throttle::new(start, Some(20 * MS));
        t.wait(1).await;
        let after = Instant::now();
        assert!(after >= start + Duration::from_millis(20));
        assert_eq!(t.intended(after), start + Duration::from_millis(20));
    }
}
