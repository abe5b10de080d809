//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test crate uses a different subset

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The bound after which a blocked test is declared deadlocked. Generous,
/// because tests also run under wine on a loaded 2-core machine; a passing
/// test never waits for it.
pub const DEADLOCK: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and returns its result, or panics if it has
/// not finished within [`DEADLOCK`]: a hang becomes a failure. A panic in
/// `f` is propagated with its original message.
#[track_caller]
pub fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let value = f();
        let _ = done_tx.send(());
        value
    });
    match done_rx.recv_timeout(DEADLOCK) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: still blocked after {DEADLOCK:?}; a deadlock")
        }
    }
}

/// `len` bytes of a pattern that does not repeat with any power-of-two
/// period, so that a lost, duplicated or reordered chunk is detected.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            // xorshift32
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}
