//! Whole-process pairs: `Exchange::run` against `communicate` and against
//! std, for the capture and feed cases of `benches/benches/communicate.rs`.
//!
//! Criterion's medians of whole-process runs, taken minutes apart, drift
//! with the load of a shared machine; so each round here runs every case of
//! a group back to back (the order rotating from round to round), divides
//! each by the first case of the same round, and the medians of those
//! ratios, with their quartiles, are printed.
//!
//! ```text
//! cargo bench -p pipekit-bench --bench exchange -- [ROUNDS]
//! ```

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use pipekit::communicate::Exchange;

const TOTAL: usize = 256 << 20;
const CHILD: &str = env!("CARGO_BIN_EXE_bench-child");

type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn alternate() -> Command {
    let mut command = Command::new(CHILD);
    command
        .args(["alternate", &TOTAL.to_string()])
        .stdin(Stdio::null());
    command
}

fn copier() -> Command {
    let mut command = Command::new(CHILD);
    command.arg("copy");
    command
}

fn capture_cases<'a>() -> Vec<Case<'a>> {
    vec![
        (
            "Command::output",
            Box::new(|| {
                let output = alternate().output().unwrap();
                assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
            }),
        ),
        (
            "communicate",
            Box::new(|| {
                let mut child = alternate()
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let output = pipekit::communicate::communicate(&mut child, b"").unwrap();
                assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
            }),
        ),
        (
            "Exchange::run",
            Box::new(|| {
                let output = Exchange::new(&mut alternate()).run().unwrap();
                assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
            }),
        ),
    ]
}

fn feed_cases(input: &[u8]) -> Vec<Case<'_>> {
    vec![
        (
            "writer thread + wait_with_output",
            Box::new(move || {
                let mut child = copier()
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                thread::scope(|scope| {
                    scope.spawn(move || stdin.write_all(input).unwrap());
                    let output = child.wait_with_output().unwrap();
                    assert_eq!(output.stdout.len(), TOTAL);
                });
            }),
        ),
        (
            "communicate",
            Box::new(move || {
                let mut child = copier()
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let output = pipekit::communicate::communicate(&mut child, input).unwrap();
                assert_eq!(output.stdout.len(), TOTAL);
            }),
        ),
        (
            "Exchange::run",
            Box::new(move || {
                let output = Exchange::new(&mut copier()).input(input).run().unwrap();
                assert_eq!(output.stdout.len(), TOTAL);
            }),
        ),
    ]
}

/// The median and quartiles of `values`.
fn quartiles(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn run_group(name: &str, cases: &[Case<'_>], rounds: usize) {
    let mut ratios = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        let mut times = vec![0.0; cases.len()];
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let started = Instant::now();
            (cases[i].1)();
            times[i] = started.elapsed().as_secs_f64();
        }
        for (i, time) in times.iter().enumerate() {
            ratios[i].push(time / times[0]);
        }
    }
    println!("{name} ({rounds} rounds; time / {}'s time)", cases[0].0);
    for (i, (case, _)) in cases.iter().enumerate() {
        let (median, q1, q3) = quartiles(&mut ratios[i]);
        println!("  {case:<34} {median:.3} ({q1:.3}-{q3:.3})");
    }
    // Exchange against communicate, the same engine without the builder.
    let mut against: Vec<f64> = ratios[2]
        .iter()
        .zip(&ratios[1])
        .map(|(exchange, communicate)| exchange / communicate)
        .collect();
    let (median, q1, q3) = quartiles(&mut against);
    println!("  Exchange::run / communicate        {median:.3} ({q1:.3}-{q3:.3})");
}

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(25);
    run_group("capture 256 MiB", &capture_cases(), rounds);
    let input = vec![b'y'; TOTAL];
    run_group("feed 256 MiB", &feed_cases(&input), rounds);
}
