//! pipekit::tokio against the alternatives, in interleaved rounds: each
//! round runs every case of a cell once (the order rotating from round to
//! round), and each case's time is divided by the baseline's time of the
//! same round. Printed: the median of those paired ratios (as throughput,
//! pipekit over the baseline: above 1 is faster) with the quartiles, and
//! the threads each runtime started.
//!
//! ```text
//! cargo bench -p pipekit-bench --bench tokio -- [--rounds N] [--quick]
//! ```
//!
//! - Unix: two tasks through one pipe, pipekit::tokio against
//!   `tokio::net::unix::pipe`, 64 KiB and 1 MiB writes, current-thread and
//!   multi-thread runtimes.
//! - Windows: the same transfer against a `tokio::fs::File` over a
//!   `CreatePipe` pipe (every read and write a blocking call on tokio's
//!   thread pool), on 256 MiB.
//! - Both: capturing a child's 256 MiB (half on stdout, half on stderr) with
//!   `pipekit::tokio::Exchange::run` against `tokio::process::Command::output`.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::{Builder, Runtime};

type Case = (&'static str, fn() -> Pin<Box<dyn Future<Output = ()>>>);

/// A runtime of `flavor`, and the count of the threads it starts.
fn runtime(multi: bool) -> (Runtime, Arc<AtomicUsize>) {
    let threads = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&threads);
    let mut builder = if multi {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        Builder::new_current_thread()
    };
    let runtime = builder
        .enable_all()
        .on_thread_start(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    (runtime, threads)
}

/// Writes `total` bytes in `chunk`-byte writes into `writer` while another
/// task reads them all from `reader`.
async fn transfer<R, W>(mut reader: R, mut writer: W, total: usize, chunk: usize)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let write = tokio::spawn(async move {
        let buf = vec![0x5a; chunk];
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk);
            writer.write_all(&buf[..n]).await.unwrap();
            left -= n;
        }
    });
    let mut buf = vec![0; chunk.max(64 << 10)];
    let mut got = 0;
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    write.await.unwrap();
    assert_eq!(got, total);
}

fn median_and_quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

/// Runs `cases` (the first is the baseline) in `rounds` interleaved rounds
/// on a fresh runtime per case and round, and prints one line per case.
fn cell(title: &str, multi: bool, rounds: usize, bytes: usize, cases: &[Case]) {
    let mut times = vec![Vec::new(); cases.len()];
    let mut threads = vec![0; cases.len()];
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let (rt, started) = runtime(multi);
            let start = Instant::now();
            rt.block_on(async { (cases[i].1)().await });
            times[i].push(start.elapsed());
            threads[i] = threads[i].max(started.load(Ordering::Relaxed));
            drop(rt);
        }
    }
    println!("\n{title}");
    for (i, (name, _)) in cases.iter().enumerate() {
        let ratios: Vec<f64> = (0..rounds)
            .map(|r| times[0][r].as_secs_f64() / times[i][r].as_secs_f64())
            .collect();
        let (median, q1, q3) = median_and_quartiles(ratios);
        let mut secs: Vec<f64> = times[i].iter().map(Duration::as_secs_f64).collect();
        secs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mid = secs[secs.len() / 2];
        println!(
            "  {name:<34} {:>8.0} MiB/s   x{median:.3} [{q1:.3}, {q3:.3}]   threads started: {}",
            bytes as f64 / (1 << 20) as f64 / mid,
            threads[i]
        );
    }
}

fn capture_cases() -> [Case; 2] {
    fn command() -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench-child"));
        c.arg("alternate").arg(CAPTURE.to_string());
        c
    }
    [
        ("tokio::process output()", || {
            Box::pin(async {
                let out = command().stdin(Stdio::null()).output().await.unwrap();
                assert_eq!(out.stdout.len() + out.stderr.len(), CAPTURE);
            })
        }),
        ("pipekit::tokio::Exchange::run", || {
            Box::pin(async {
                let mut c = command();
                c.stdin(Stdio::null());
                let out = pipekit::tokio::Exchange::new(&mut c).run().await.unwrap();
                assert_eq!(out.stdout.len() + out.stderr.len(), CAPTURE);
            })
        }),
    ]
}

const CAPTURE: usize = 256 << 20;

#[cfg(unix)]
mod cases {
    use super::*;

    pub const TOTAL: usize = 256 << 20;

    macro_rules! pair {
        ($chunk:expr) => {
            [
                ("tokio::net::unix::pipe", || {
                    Box::pin(async {
                        let (tx, rx) = tokio::net::unix::pipe::pipe().unwrap();
                        transfer(rx, tx, TOTAL, $chunk).await
                    })
                }),
                ("pipekit::tokio", || {
                    Box::pin(async {
                        let (rx, tx) = pipekit::tokio::pipe().unwrap();
                        transfer(rx, tx, TOTAL, $chunk).await
                    })
                }),
            ]
        };
    }

    pub fn cells() -> Vec<(String, bool, Vec<Case>)> {
        let mut cells = Vec::new();
        for multi in [false, true] {
            let flavor = if multi {
                "multi-thread (2 workers)"
            } else {
                "current-thread"
            };
            let c64: [Case; 2] = pair!(64 << 10);
            let c1m: [Case; 2] = pair!(1 << 20);
            cells.push((
                format!("256 MiB, 64 KiB writes, {flavor}"),
                multi,
                c64.to_vec(),
            ));
            cells.push((
                format!("256 MiB, 1 MiB writes, {flavor}"),
                multi,
                c1m.to_vec(),
            ));
        }
        cells
    }
}

#[cfg(windows)]
mod cases {
    use super::*;
    use std::os::windows::io::OwnedHandle;

    pub const TOTAL: usize = 256 << 20;

    macro_rules! pair {
        ($chunk:expr) => {
            [
                ("tokio::fs::File over CreatePipe", || {
                    Box::pin(async {
                        // pipekit::pipe() is CreatePipe with a 64 KiB quota.
                        let (r, w) = pipekit::pipe().unwrap();
                        let r = tokio::fs::File::from_std(OwnedHandle::from(r).into());
                        let w = tokio::fs::File::from_std(OwnedHandle::from(w).into());
                        transfer(r, w, TOTAL, $chunk).await
                    })
                }),
                ("pipekit::tokio", || {
                    Box::pin(async {
                        let (rx, tx) = pipekit::tokio::pipe().unwrap();
                        transfer(rx, tx, TOTAL, $chunk).await
                    })
                }),
            ]
        };
    }

    pub fn cells() -> Vec<(String, bool, Vec<Case>)> {
        let mut cells = Vec::new();
        for multi in [false, true] {
            let flavor = if multi {
                "multi-thread (2 workers)"
            } else {
                "current-thread"
            };
            let c64: [Case; 2] = pair!(64 << 10);
            cells.push((
                format!("256 MiB, 64 KiB writes, {flavor}"),
                multi,
                c64.to_vec(),
            ));
        }
        cells
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(11, |n| n.parse().expect("--rounds N"));
    let rounds = if args.iter().any(|a| a == "--quick") {
        3
    } else {
        rounds
    };
    // `cargo bench` passes --bench; nothing else is expected.
    for (title, multi, cases) in cases::cells() {
        cell(&title, multi, rounds, cases::TOTAL, &cases);
    }
    for multi in [false, true] {
        let flavor = if multi {
            "multi-thread (2 workers)"
        } else {
            "current-thread"
        };
        cell(
            &format!("capture of a child's 256 MiB (stdout and stderr), {flavor}"),
            multi,
            rounds,
            CAPTURE,
            &capture_cases(),
        );
    }
}
