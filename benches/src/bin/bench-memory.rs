//! Peak memory of capturing a child's output, for BENCHMARKS.md.
//!
//! `bench-memory METHOD` runs `bench-child alternate 256MiB` once, captured by
//! METHOD (`output`: `Command::output()`; `threads`: two reader threads;
//! `pipekit`: `pipekit::communicate::communicate`), and prints how much the
//! process's peak resident memory (VmHWM) grew, as a multiple of the bytes
//! captured. Linux only (it reads /proc/self/status). Run each method in a
//! fresh process.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;

const TOTAL: usize = 256 << 20;

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let method = std::env::args()
        .nth(1)
        .expect("METHOD: output | threads | pipekit");
    let child = std::env::current_exe()
        .unwrap()
        .with_file_name("bench-child");
    let mut command = Command::new(child);
    command
        .args(["alternate", &TOTAL.to_string()])
        .stdin(Stdio::null());
    let before = peak_kib();
    let captured = match method.as_str() {
        "output" => {
            let output = command.output().unwrap();
            output.stdout.len() + output.stderr.len()
        }
        "threads" => {
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stderr = child.stderr.take().unwrap();
            let reading = thread::spawn(move || {
                let mut buf = Vec::new();
                stderr.read_to_end(&mut buf).unwrap();
                buf.len()
            });
            let mut out = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
            let err = reading.join().unwrap();
            child.wait().unwrap();
            out.len() + err
        }
        "pipekit" => {
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let output = pipekit::communicate::communicate(&mut child, b"").unwrap();
            output.stdout.len() + output.stderr.len()
        }
        other => panic!("unknown method {other}"),
    };
    assert_eq!(captured, TOTAL);
    let grown = (peak_kib() - before) * 1024;
    println!(
        "{method}: peak memory grew by {} MiB for {} MiB captured: {:.3}x",
        grown >> 20,
        TOTAL >> 20,
        grown as f64 / TOTAL as f64
    );
}
