//! Paired ratios: the same cases as the criterion benches, run in rounds.
//!
//! Criterion measures one case at a time, so on this shared 2-CPU virtual
//! machine a slow spell of a few seconds (another tenant, the host) lands
//! on one case and not on the next, and a ratio of two criterion medians
//! moves by 10% or more from run to run, although raw libc, pipekit, std
//! and os_pipe make the very same system calls. Here every round runs every
//! case of a cell back to back (in an order that rotates from round to
//! round), and each case is divided by the raw case *of the same round*:
//! the pair shares the machine's state. The table gives, per cell, the
//! median of those paired ratios over the rounds, with the first and third
//! quartiles; the throughput table ends with the same figures for the
//! ratios of all its cells pooled, since there every case makes the same
//! system calls as the raw one and any difference is pipekit's (or std's,
//! or os_pipe's) own code.
//!
//! ```text
//! cargo bench -p pipekit-bench --bench paired -- --paired [create] [throughput] [copy] [relay] [communicate] [--rounds N]
//! ```
//!
//! Without `--paired` it does nothing, so that a plain `cargo bench` runs
//! the criterion benches only. With no section named, it runs them all
//! (about 25 minutes with the default rounds on the machine of
//! BENCHMARKS.md).
//!
//! Ratios: for `create` (`pipe()`, `try_clone()`), time / raw time, lower is
//! better; for `throughput`, `copy` and `relay`, raw time / time, the rate
//! relative to the raw case, higher is better. For `communicate` (whole
//! processes, 256 MiB each), time / the time of what std offers for the same
//! job (`Command::output()` for capture; a stdin-writer thread plus
//! `wait_with_output()` for feed), lower is better. Linux only.

#[cfg(target_os = "linux")]
mod linux {
    use std::hint::black_box;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use pipekit_bench::throughput::{CASES as THROUGHPUT_CASES, CHUNKS};
    use pipekit_bench::transfer::{run_copy, run_relay, Producer, Sink, COPY_CASES, RELAY_CASES};
    use pipekit_bench::{pin_to_cpu, raw_pipe, Capacity, Pinning};

    /// One measurement of one case: the time of one operation (create) or
    /// of one 1 GiB transfer (the others).
    type Run<'a> = Box<dyn FnMut() -> Duration + 'a>;

    struct Cell<'a> {
        name: String,
        /// The first case is the raw reference.
        cases: Vec<(&'static str, Run<'a>)>,
        /// `times[case][round]`.
        times: Vec<Vec<f64>>,
    }

    impl<'a> Cell<'a> {
        fn new(name: String, cases: Vec<(&'static str, Run<'a>)>) -> Cell<'a> {
            let times = vec![Vec::new(); cases.len()];
            Cell { name, cases, times }
        }

        fn round(&mut self, round: usize) {
            let n = self.cases.len();
            for k in 0..n {
                let i = (k + round) % n;
                let elapsed = (self.cases[i].1)();
                self.times[i].push(elapsed.as_secs_f64());
            }
        }

        /// The paired ratios of case `i`, one per round.
        fn paired(&self, i: usize, lower_is_better: bool) -> Vec<f64> {
            self.times[i]
                .iter()
                .zip(&self.times[0])
                .map(|(case, raw)| {
                    if lower_is_better {
                        case / raw
                    } else {
                        raw / case
                    }
                })
                .collect()
        }
    }

    /// Median, first and third quartiles, formatted for the tables.
    fn summary(mut ratios: Vec<f64>) -> String {
        ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        format!("{:.3} ({:.2}-{:.2})", at(0.5), at(0.25), at(0.75))
    }

    /// Prints one row per cell; with `pooled`, a last row whose figures
    /// pool the paired ratios of every cell (for cells that all measure the
    /// same thing, such as throughput, where every case makes the same
    /// system calls as the raw one).
    fn print(title: &str, cells: &[Cell<'_>], rounds: usize, lower_is_better: bool, pooled: bool) {
        let kind = if lower_is_better {
            "time / reference time (the first case)"
        } else {
            "rate / reference rate (the first case)"
        };
        println!("\n{title}: {kind}, median (quartiles) of {rounds} paired rounds\n");
        let names: Vec<&str> = cells[0].cases.iter().skip(1).map(|(n, _)| *n).collect();
        println!("| cell | {} |", names.join(" | "));
        println!("|---|{}", "---|".repeat(names.len()));
        for cell in cells {
            let row: Vec<String> = (1..cell.cases.len())
                .map(|i| summary(cell.paired(i, lower_is_better)))
                .collect();
            println!("| {} | {} |", cell.name, row.join(" | "));
        }
        if pooled {
            let row: Vec<String> = (1..cells[0].cases.len())
                .map(|i| {
                    let all = cells
                        .iter()
                        .flat_map(|cell| cell.paired(i, lower_is_better));
                    summary(all.collect())
                })
                .collect();
            println!(
                "| all {} cells, {} ratios pooled | {} |",
                cells.len(),
                cells.len() * rounds,
                row.join(" | ")
            );
        }
    }

    fn run_rounds(cells: &mut [Cell<'_>], rounds: usize) {
        for round in 0..rounds {
            eprintln!("round {}/{rounds}", round + 1);
            for cell in cells.iter_mut() {
                cell.round(round);
            }
        }
    }

    /// `pipe()` and `try_clone()`: each measurement is the mean time of a
    /// block of operations (about 50 ms' worth: 10 000 `pipe()`s or 100 000
    /// clones), on a thread pinned to CPU 0.
    fn create(rounds: usize) {
        fn timed(block: u32, mut op: impl FnMut()) -> Duration {
            let start = Instant::now();
            for _ in 0..block {
                op();
            }
            start.elapsed() / block
        }
        pin_to_cpu(0);
        let (raw_reader, _raw_writer) = raw_pipe(Capacity::Default);
        let raw_fd = raw_reader.as_raw_fd();
        let (pipekit_reader, _w) = pipekit::pipe().unwrap();
        let (std_reader, _w) = std::io::pipe().unwrap();
        let (os_pipe_reader, _w) = os_pipe::pipe().unwrap();
        let mut cells = vec![
            Cell::new(
                "pipe(): open and close both ends".into(),
                vec![
                    (
                        "raw pipe2(O_CLOEXEC) + 2 close",
                        Box::new(|| {
                            timed(10_000, || {
                                let mut fds = [0; 2];
                                // SAFETY: room for two fds, closed right after.
                                unsafe {
                                    assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
                                    libc::close(black_box(fds[0]));
                                    libc::close(fds[1]);
                                }
                            })
                        }),
                    ),
                    (
                        "pipekit::pipe",
                        Box::new(|| timed(10_000, || drop(black_box(pipekit::pipe().unwrap())))),
                    ),
                    (
                        "std::io::pipe",
                        Box::new(|| timed(10_000, || drop(black_box(std::io::pipe().unwrap())))),
                    ),
                    (
                        "os_pipe::pipe",
                        Box::new(|| timed(10_000, || drop(black_box(os_pipe::pipe().unwrap())))),
                    ),
                ],
            ),
            Cell::new(
                "try_clone(): duplicate and close".into(),
                vec![
                    (
                        "raw F_DUPFD_CLOEXEC + close",
                        Box::new(move || {
                            timed(100_000, || {
                                // SAFETY: `raw_fd` stays open; the duplicate
                                // is closed right after.
                                unsafe {
                                    let dup =
                                        libc::fcntl(black_box(raw_fd), libc::F_DUPFD_CLOEXEC, 3);
                                    assert!(dup >= 0);
                                    libc::close(dup);
                                }
                            })
                        }),
                    ),
                    (
                        "pipekit",
                        Box::new(|| {
                            timed(100_000, || {
                                drop(black_box(pipekit_reader.try_clone().unwrap()))
                            })
                        }),
                    ),
                    (
                        "std::io::pipe",
                        Box::new(|| {
                            timed(100_000, || drop(black_box(std_reader.try_clone().unwrap())))
                        }),
                    ),
                    (
                        "os_pipe",
                        Box::new(|| {
                            timed(100_000, || {
                                drop(black_box(os_pipe_reader.try_clone().unwrap()))
                            })
                        }),
                    ),
                ],
            ),
        ];
        run_rounds(&mut cells, rounds);
        print("create", &cells, rounds, true, false);
    }

    fn throughput(rounds: usize) {
        let mut cells = Vec::new();
        for pinning in Pinning::ALL {
            for capacity in Capacity::ALL {
                for chunk in CHUNKS {
                    let cases = THROUGHPUT_CASES
                        .iter()
                        .map(|&(name, run)| {
                            let run: Run<'_> = Box::new(move || run(pinning, capacity, chunk));
                            (name, run)
                        })
                        .collect();
                    let name = format!(
                        "{} / {} / chunk {} KiB",
                        pinning.name(),
                        capacity.name(),
                        chunk >> 10
                    );
                    cells.push(Cell::new(name, cases));
                }
            }
        }
        run_rounds(&mut cells, rounds);
        print("throughput", &cells, rounds, false, true);
    }

    /// Every pinning with every producer, pinning first.
    fn pinnings_and_producers() -> impl Iterator<Item = (Pinning, Producer)> {
        Pinning::ALL
            .into_iter()
            .flat_map(|pinning| Producer::ALL.map(|producer| (pinning, producer)))
    }

    fn copy(rounds: usize) {
        let sinks = Sink::all();
        let mut cells = Vec::new();
        for (pinning, producer) in pinnings_and_producers() {
            for sink in &sinks {
                for capacity in Capacity::ALL {
                    let cases = COPY_CASES
                        .iter()
                        .map(|&(name, case)| {
                            let run: Run<'_> = Box::new(move || {
                                sink.reset();
                                run_copy(pinning, producer, capacity, &sink.file, case)
                            });
                            (name, run)
                        })
                        .collect();
                    let name = format!(
                        "{} / {} / {} / {}",
                        pinning.name(),
                        producer.name(),
                        sink.name,
                        capacity.name()
                    );
                    cells.push(Cell::new(name, cases));
                }
            }
        }
        run_rounds(&mut cells, rounds);
        print("copy", &cells, rounds, false, false);
    }

    /// Whole processes: the child is `bench-child`, 256 MiB each way.
    fn communicate(rounds: usize) {
        use std::io::{Read, Write};
        use std::process::{Command, Stdio};

        const TOTAL: usize = 256 << 20;
        const CHILD: &str = env!("CARGO_BIN_EXE_bench-child");
        fn alternate() -> Command {
            let mut command = Command::new(CHILD);
            command
                .args(["alternate", &TOTAL.to_string()])
                .stdin(Stdio::null());
            command
        }
        fn piped(mut command: Command) -> std::process::Child {
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        }
        fn copier() -> std::process::Child {
            let mut command = Command::new(CHILD);
            command.arg("copy").stdin(Stdio::piped());
            piped(command)
        }
        fn timed(f: impl FnOnce()) -> Duration {
            let started = Instant::now();
            f();
            started.elapsed()
        }
        let input = vec![b'y'; TOTAL];
        let capture: Vec<(&'static str, Run<'_>)> = vec![
            (
                "Command::output",
                Box::new(|| {
                    timed(|| {
                        let output = alternate().output().unwrap();
                        assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
                    })
                }),
            ),
            (
                "two reader threads",
                Box::new(|| {
                    timed(|| {
                        let mut child = piped(alternate());
                        let mut stderr = child.stderr.take().unwrap();
                        let reading = std::thread::spawn(move || {
                            let mut buf = Vec::new();
                            stderr.read_to_end(&mut buf).unwrap();
                            buf
                        });
                        let mut out = Vec::new();
                        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
                        let err = reading.join().unwrap();
                        child.wait().unwrap();
                        assert_eq!(out.len() + err.len(), TOTAL);
                    })
                }),
            ),
            (
                "pipekit communicate",
                Box::new(|| {
                    timed(|| {
                        let mut child = piped(alternate());
                        let output = pipekit::communicate::communicate(&mut child, b"").unwrap();
                        assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
                    })
                }),
            ),
        ];
        let input = &input;
        let feed: Vec<(&'static str, Run<'_>)> = vec![
            (
                "writer thread + wait_with_output",
                Box::new(move || {
                    timed(|| {
                        let mut child = copier();
                        let mut stdin = child.stdin.take().unwrap();
                        std::thread::scope(|scope| {
                            scope.spawn(move || stdin.write_all(input).unwrap());
                            let output = child.wait_with_output().unwrap();
                            assert_eq!(output.stdout.len(), TOTAL);
                        });
                    })
                }),
            ),
            (
                "pipekit communicate",
                Box::new(move || {
                    timed(|| {
                        let mut child = copier();
                        let output = pipekit::communicate::communicate(&mut child, input).unwrap();
                        assert_eq!(output.stdout.len(), TOTAL);
                    })
                }),
            ),
        ];
        let mut cells = vec![
            Cell::new("capture 256 MiB (÷ Command::output)".into(), capture),
            Cell::new(
                "feed 256 MiB (÷ writer thread + wait_with_output)".into(),
                feed,
            ),
        ];
        run_rounds(&mut cells, rounds);
        for cell in &cells {
            print(
                "communicate",
                std::slice::from_ref(cell),
                rounds,
                true,
                false,
            );
        }
    }

    fn relay(rounds: usize) {
        let mut cells = Vec::new();
        for (pinning, producer) in pinnings_and_producers() {
            for capacity in Capacity::ALL {
                let cases = RELAY_CASES
                    .iter()
                    .map(|&(name, case)| {
                        let run: Run<'_> =
                            Box::new(move || run_relay(pinning, producer, capacity, case));
                        (name, run)
                    })
                    .collect();
                let name = format!(
                    "{} / {} / {}",
                    pinning.name(),
                    producer.name(),
                    capacity.name()
                );
                cells.push(Cell::new(name, cases));
            }
        }
        run_rounds(&mut cells, rounds);
        print("relay", &cells, rounds, false, false);
    }

    pub fn main() {
        let mut sections = Vec::new();
        let mut rounds = None;
        let mut asked = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--paired" => asked = true,
                "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()),
                "create" | "throughput" | "copy" | "relay" | "communicate" => sections.push(arg),
                // `--bench`, from cargo, and whatever is meant for criterion.
                _ => {}
            }
        }
        if !asked {
            // A plain `cargo bench` runs the criterion benches only.
            eprintln!(
                "paired: skipped; run `cargo bench -p pipekit-bench --bench paired -- --paired \
                 [create] [throughput] [copy] [relay] [communicate] [--rounds N]`"
            );
            return;
        }
        if sections.is_empty() {
            sections = ["create", "throughput", "copy", "relay"]
                .map(String::from)
                .to_vec();
        }
        for section in &sections {
            match section.as_str() {
                "create" => create(rounds.unwrap_or(60)),
                "throughput" => throughput(rounds.unwrap_or(9)),
                "copy" => copy(rounds.unwrap_or(9)),
                "communicate" => communicate(rounds.unwrap_or(25)),
                _ => relay(rounds.unwrap_or(9)),
            }
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}
