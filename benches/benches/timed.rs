//! What a read or write timeout costs: one byte written and read back, N
//! times, with no timeout, with a read timeout, and with a write timeout,
//! in interleaved rounds (the order rotating), each timed case divided by
//! the untimed case of the same round. Prints the median ratio and the
//! quartiles. Runs wherever pipekit does, wine included:
//!
//! ```sh
//! cargo bench -p pipekit-bench --bench timed
//! cargo bench -p pipekit-bench --bench timed --target x86_64-pc-windows-gnu  # under wine
//! ```

use std::io::{Read, Write};
use std::time::{Duration, Instant};

const ROUNDS: usize = 21;
const ITERATIONS: usize = 5_000;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
enum Case {
    Untimed,
    TimedRead,
    TimedWrite,
}

/// The time of ITERATIONS one-byte round trips through one pipe.
fn run(case: Case) -> Duration {
    let (mut reader, mut writer) = pipekit::pipe().unwrap();
    match case {
        Case::Untimed => {}
        Case::TimedRead => reader.set_read_timeout(Some(TIMEOUT)).unwrap(),
        Case::TimedWrite => writer.set_write_timeout(Some(TIMEOUT)).unwrap(),
    }
    let mut byte = [0u8; 1];
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        writer.write_all(&byte).unwrap();
        reader.read_exact(&mut byte).unwrap();
    }
    started.elapsed()
}

fn quartiles(mut ratios: Vec<f64>) -> (f64, f64, f64) {
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let cases = [Case::Untimed, Case::TimedRead, Case::TimedWrite];
    run(Case::Untimed); // warm-up
    let (mut read, mut write) = (Vec::new(), Vec::new());
    let mut untimed_ns = Vec::new();
    for round in 0..ROUNDS {
        let mut times = [Duration::ZERO; 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            times[i] = run(cases[i]);
        }
        let base = times[0].as_secs_f64();
        untimed_ns.push(times[0].as_nanos() as f64 / ITERATIONS as f64);
        read.push(times[1].as_secs_f64() / base);
        write.push(times[2].as_secs_f64() / base);
    }
    let (_, untimed, _) = quartiles(untimed_ns);
    println!(
        "{} rounds of {ITERATIONS} one-byte round trips; untimed: {untimed:.0} ns per round trip",
        ROUNDS
    );
    for (name, ratios) in [("timed read ", read), ("timed write", write)] {
        let (q1, median, q3) = quartiles(ratios);
        println!("{name}: {median:.3}x untimed (quartiles {q1:.3}-{q3:.3})");
    }
}
