//! Turns: the tests of one source file run side by side, files one after another, and a test
//! that must run by itself waits for the machine to be free.
//!
//! Each crate's integration tests are one binary, so without turns the libtest threads would
//! run a test of one file beside a test of another. Many tests measure time (RTTs through a
//! delay, election timeouts, a shaped uplink) and were tuned against the load of their own
//! file's tests only; a turn keeps it that way. A test takes its turn first thing
//! (`let _turn = turn();`, or through a helper such as the lab); a test that takes none (pure
//! parsing) runs whenever a thread is free. A test holds one turn: a helper that takes one
//! inside a test that already has its turn gets it for free.

use std::cell::Cell;
use std::panic::Location;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Who holds the machine.
#[derive(Clone, Copy, PartialEq)]
enum Holder {
    Free,
    /// Tests of this source file, `n` of them.
    File(&'static str, usize),
    /// One test, by itself.
    Alone,
}

static HOLDER: Mutex<Holder> = Mutex::new(Holder::Free);
static CHANGED: Condvar = Condvar::new();

thread_local! {
    /// This thread's test has its turn.
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// A running test's turn; dropping it (the test ended, also by a panic) lets others in.
#[must_use = "the turn ends when this value is dropped"]
pub struct Turn {
    owned: bool,
}

/// Waits until no test of another file runs, then runs beside the tests of the caller's file.
#[track_caller]
pub fn turn() -> Turn {
    take(Some(Location::caller().file()))
}

/// Waits until no other test with a turn runs, and keeps the others out until dropped.
pub fn alone() -> Turn {
    take(None)
}

/// The turn of the tests of `file`, or (None) of one test alone.
fn take(file: Option<&'static str>) -> Turn {
    if HELD.get() {
        return Turn { owned: false };
    }
    let mut holder = lock();
    loop {
        let next = match (*holder, file) {
            (Holder::Free, Some(f)) => Holder::File(f, 1),
            (Holder::File(held, n), Some(f)) if held == f => Holder::File(f, n + 1),
            (Holder::Free, None) => Holder::Alone,
            _ => {
                holder = CHANGED
                    .wait(holder)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
        };
        *holder = next;
        HELD.set(true);
        return Turn { owned: true };
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        HELD.set(false);
        let mut holder = lock();
        *holder = match *holder {
            Holder::File(f, n) if n > 1 => Holder::File(f, n - 1),
            _ => Holder::Free,
        };
        if *holder == Holder::Free {
            CHANGED.notify_all();
        }
    }
}

/// A panicking test must not stop the others: the holder is changed in one assignment, so a
/// poisoned lock still guards a consistent value.
fn lock() -> MutexGuard<'static, Holder> {
    HOLDER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Runs `f` on another thread and returns how many of `entered` it made before `during`
    /// ended on this thread, and after.
    fn entries(during: impl FnOnce(), f: impl FnOnce() -> Turn + Send) -> (usize, usize) {
        let entered = AtomicUsize::new(0);
        let mut inside = 0;
        std::thread::scope(|s| {
            s.spawn(|| {
                let _turn = f();
                entered.fetch_add(1, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(200));
            inside = entered.load(Ordering::SeqCst);
            during();
        });
        (inside, entered.load(Ordering::SeqCst))
    }

    fn mine() -> Turn {
        take(Some("mine.rs"))
    }

    // One test, since the holder is global: the cases must not overlap.
    #[test]
    fn files_take_turns_and_alone_waits_for_everyone() {
        let first = mine();
        assert_eq!(entries(|| (), mine), (1, 1), "the same file runs beside");
        assert_eq!(entries(|| drop(first), || take(Some("other.rs"))), (0, 1));

        let by_itself = alone();
        assert_eq!(entries(|| drop(by_itself), mine), (0, 1));

        let file = mine();
        let nested = alone();
        assert!(!nested.owned, "a test holds one turn");
        assert_eq!(entries(|| drop((nested, file)), alone), (0, 1));
    }
}
