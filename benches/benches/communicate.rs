//! Whole-process benchmarks of `pipekit::communicate` against what std
//! offers for the same job, in the same run:
//!
//! - capture: a child writes 256 MiB, alternating 64 KiB chunks between
//!   stdout and stderr; `Command::output()`, two reader threads, and
//!   `pipekit::communicate::communicate`.
//! - feed: 256 MiB through a child that copies stdin to stdout; a stdin
//!   writer thread plus `wait_with_output()`, and `communicate`.
//! - small exchange: what one `Communicator::run` costs by itself, on a
//!   loopback (an input of 10 bytes into a pipe that the same exchange reads
//!   as its output), against the same bytes moved by a plain `write` and
//!   `read_to_end` on the same kind of pipe.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

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

fn capture(c: &mut Criterion) {
    let mut group = c.benchmark_group("capture 256 MiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("Command::output", |b| {
        b.iter(|| {
            let output = alternate().output().unwrap();
            assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
        })
    });
    group.bench_function("two reader threads", |b| {
        b.iter(|| {
            let mut child = piped(alternate());
            let mut stderr = child.stderr.take().unwrap();
            let reading = thread::spawn(move || {
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
    });
    group.bench_function("pipekit communicate", |b| {
        b.iter(|| {
            let mut child = piped(alternate());
            let output = pipekit::communicate::communicate(&mut child, b"").unwrap();
            assert_eq!(output.stdout.len() + output.stderr.len(), TOTAL);
        })
    });
    group.finish();
}

fn feed(c: &mut Criterion) {
    let input = vec![b'y'; TOTAL];
    let copier = || {
        let mut command = Command::new(CHILD);
        command.arg("copy").stdin(Stdio::piped());
        piped(command)
    };
    let mut group = c.benchmark_group("feed 256 MiB through a child");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("writer thread + wait_with_output", |b| {
        b.iter(|| {
            let mut child = copier();
            let mut stdin = child.stdin.take().unwrap();
            thread::scope(|scope| {
                // The writer runs while wait_with_output drains stdout.
                let input = &input;
                scope.spawn(move || stdin.write_all(input).unwrap());
                let output = child.wait_with_output().unwrap();
                assert_eq!(output.stdout.len(), TOTAL);
            });
        })
    });
    group.bench_function("pipekit communicate", |b| {
        b.iter(|| {
            let mut child = copier();
            let output = pipekit::communicate::communicate(&mut child, &input).unwrap();
            assert_eq!(output.stdout.len(), TOTAL);
        })
    });
    group.finish();
}

fn small(c: &mut Criterion) {
    let mut group = c.benchmark_group("small exchange");
    group.bench_function("pipe + write + read_to_end", |b| {
        b.iter(|| {
            let (mut reader, mut writer) = pipekit::pipe().unwrap();
            writer.write_all(b"0123456789").unwrap();
            drop(writer);
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), 10);
        })
    });
    group.bench_function("pipe + Communicator::run", |b| {
        b.iter(|| {
            let (reader, writer) = pipekit::pipe().unwrap();
            let mut out = Vec::new();
            pipekit::communicate::Communicator::new()
                .input(writer, b"0123456789")
                .output(reader, &mut out)
                .run()
                .unwrap();
            assert_eq!(out.len(), 10);
        })
    });
    group.finish();
}

criterion_group!(benches, capture, feed, small);
criterion_main!(benches);
