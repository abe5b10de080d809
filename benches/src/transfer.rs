//! Copying out of a pipe, and relaying one pipe into another: 1 GiB per
//! iteration.
//!
//! - `copy/<pinning>/<producer>/<sink>/<capacity>`: a producer thread
//!   (CPU 0) puts 1 GiB into a pipe, 64 KiB at a time; the copying thread
//!   (CPU 0 too, or CPU 1) moves it into `/dev/null` or into a file
//!   (truncated, untimed, before each iteration).
//! - `relay/<pinning>/<producer>/<capacity>`: the producer (CPU 0) puts
//!   1 GiB into pipe A; the relay (CPU 0 too, or CPU 1 alone) moves A into
//!   pipe B; a consumer (CPU 0) drains B into `/dev/null` with `splice(2)`,
//!   the cheapest drain there is, so that the relay's own cost shows.
//!
//! The producer and the consumer are raw libc code, the same in every case;
//! only the copying or relaying thread changes. The producer comes in two
//! kinds ([`Producer`]): `write(2)`, which copies every byte into the pipe
//! as most programs do, and `vmsplice(2)` of one unchanging buffer, which
//! puts page references into the pipe without a copy, as data spliced from
//! a file or a socket arrives. With the first, the producer's own copy
//! bounds the transfer; the second leaves the copying thread's cost alone
//! on the clock.
//!
//! The baseline is a plain `read`/`write` loop with a 64 KiB buffer on raw
//! fds; the other cases are a raw `splice` loop, `pipekit::splice::copy`,
//! and `std::io::copy` on `std::io::pipe`, on `os_pipe` and on pipekit's
//! reader. The time runs from the moment every thread is ready until the
//! last byte has arrived.
//! Linux only.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::{
    dev_null, pin_to_cpu, raw_pipe, raw_read, raw_splice, raw_write_all, Capacity, Pinning, GIB,
};

/// The producer's `write(2)` size, and the baseline loop's buffer.
const CHUNK: usize = 64 << 10;
/// The most a raw splice asks for in one call (std's choice too).
const SPLICE_LEN: usize = 0x7fff_f000;

/// How the producer puts its 1 GiB into the pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Producer {
    /// `write(2)` of a 64 KiB buffer: one copy per byte.
    Write,
    /// `vmsplice(2)` of the same 64 KiB buffer, never changed: the pipe
    /// holds references to its pages, no copy.
    Vmsplice,
}

impl Producer {
    pub const ALL: [Producer; 2] = [Producer::Write, Producer::Vmsplice];

    pub fn name(self) -> &'static str {
        match self {
            Producer::Write => "write",
            Producer::Vmsplice => "vmsplice",
        }
    }
}

/// The producer's buffer. It lives as long as the whole transfer, because
/// with `vmsplice` the pipe refers to its pages until they are consumed.
fn producer_buffer() -> Vec<u8> {
    vec![0xA5u8; CHUNK]
}

/// Puts 1 GiB from `buf` into `fd` in `CHUNK`s, then closes it.
fn produce(producer: Producer, buf: &[u8], fd: OwnedFd, cpu: usize, ready: &Barrier) {
    pin_to_cpu(cpu);
    ready.wait();
    let mut left = GIB;
    while left > 0 {
        let n = (CHUNK as u64).min(left) as usize;
        match producer {
            Producer::Write => raw_write_all(fd.as_raw_fd(), &buf[..n]),
            Producer::Vmsplice => raw_vmsplice_all(fd.as_raw_fd(), &buf[..n]),
        }
        left -= n as u64;
    }
}

/// `vmsplice(2)` until all of `buf` is in the pipe.
fn raw_vmsplice_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        let iov = libc::iovec {
            iov_base: buf.as_ptr().cast_mut().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: one iovec describing `buf`, valid for reads; the fd is an
        // open pipe. The pipe keeps referring to these pages after the call:
        // the caller keeps the buffer alive and unchanged until the transfer
        // ends (see `producer_buffer`).
        let n = unsafe { libc::vmsplice(fd, &iov, 1, 0) };
        assert!(n > 0, "vmsplice: {}", std::io::Error::last_os_error());
        buf = &buf[n as usize..];
    }
}

/// The baseline: `read` into a 64 KiB buffer, `write` it all out.
fn raw_read_write(from: RawFd, to: RawFd) -> u64 {
    let mut buf = vec![1u8; CHUNK];
    let mut total = 0;
    loop {
        match raw_read(from, &mut buf) {
            0 => return total,
            n => {
                raw_write_all(to, &buf[..n]);
                total += n as u64;
            }
        }
    }
}

/// `splice` until end of file.
fn raw_splice_loop(from: RawFd, to: RawFd) -> u64 {
    let mut total = 0;
    loop {
        match raw_splice(from, to, SPLICE_LEN) {
            0 => return total,
            n => total += n as u64,
        }
    }
}

/// The copying thread's work for one case: given the pipe's capacity
/// and the sink, makes the pipe, and returns the producer's end and the
/// copy to run.
pub type CopyCase = fn(Capacity, &File) -> (OwnedFd, Box<dyn FnOnce() -> u64 + Send + '_>);

pub const COPY_CASES: [(&str, CopyCase); 6] = [
    ("raw read+write 64 KiB", |capacity, sink| {
        let (reader, writer) = raw_pipe(capacity);
        (
            writer,
            Box::new(move || raw_read_write(reader.as_raw_fd(), sink.as_raw_fd())),
        )
    }),
    ("raw splice", |capacity, sink| {
        let (reader, writer) = raw_pipe(capacity);
        (
            writer,
            Box::new(move || raw_splice_loop(reader.as_raw_fd(), sink.as_raw_fd())),
        )
    }),
    ("pipekit::splice::copy", |capacity, sink| {
        let (reader, writer) = capacity.pipekit_pipe();
        (
            writer.into(),
            Box::new(move || pipekit::splice::copy(&reader, sink).unwrap()),
        )
    }),
    ("std::io::copy, std::io::pipe", |capacity, mut sink| {
        let (mut reader, writer) = std::io::pipe().unwrap();
        capacity.apply(writer.as_fd());
        (
            writer.into(),
            Box::new(move || std::io::copy(&mut reader, &mut sink).unwrap()),
        )
    }),
    ("std::io::copy, os_pipe", |capacity, mut sink| {
        let (mut reader, writer) = os_pipe::pipe().unwrap();
        capacity.apply(writer.as_fd());
        (
            writer.into(),
            Box::new(move || std::io::copy(&mut reader, &mut sink).unwrap()),
        )
    }),
    ("std::io::copy, pipekit", |capacity, mut sink| {
        let (mut reader, writer) = capacity.pipekit_pipe();
        (
            writer.into(),
            Box::new(move || std::io::copy(&mut reader, &mut sink).unwrap()),
        )
    }),
];

pub fn run_copy(
    pinning: Pinning,
    producer: Producer,
    capacity: Capacity,
    sink: &File,
    case: CopyCase,
) -> Duration {
    let (producer_end, copy) = case(capacity, sink);
    let (producer_cpu, copier_cpu) = pinning.cpus();
    let ready = Barrier::new(2);
    let buf = producer_buffer();
    thread::scope(|scope| {
        scope.spawn(|| produce(producer, &buf, producer_end, producer_cpu, &ready));
        scope
            .spawn(|| {
                pin_to_cpu(copier_cpu);
                ready.wait();
                let start = Instant::now();
                assert_eq!(copy(), GIB);
                start.elapsed()
            })
            .join()
            .unwrap()
    })
}

/// A sink: `/dev/null`, or a file in the temporary directory, removed
/// when the bench ends.
pub struct Sink {
    pub name: &'static str,
    pub file: File,
    path: Option<std::path::PathBuf>,
}

impl Sink {
    pub fn all() -> [Sink; 2] {
        let path = std::env::temp_dir().join(format!("pipekit-bench-copy-{}", std::process::id()));
        [
            Sink {
                name: "dev-null",
                file: dev_null(),
                path: None,
            },
            Sink {
                name: "file",
                file: File::create(&path).unwrap(),
                path: Some(path),
            },
        ]
    }

    /// Empties the file and rewinds it (nothing for `/dev/null`).
    pub fn reset(&self) {
        if self.path.is_some() {
            self.file.set_len(0).unwrap();
            (&self.file).rewind().unwrap();
            (&self.file).flush().unwrap();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One relay case: makes pipes A and B of its library, and returns A's
/// writing end (for the producer), B's reading end (for the consumer)
/// and the relay, which owns the other two ends.
pub type RelayCase = fn(Capacity) -> (OwnedFd, OwnedFd, Box<dyn FnOnce() -> u64 + Send>);

pub const RELAY_CASES: [(&str, RelayCase); 6] = [
    ("raw read+write 64 KiB", |capacity| {
        let (a_reader, a_writer) = raw_pipe(capacity);
        let (b_reader, b_writer) = raw_pipe(capacity);
        let relay = move || raw_read_write(a_reader.as_raw_fd(), b_writer.as_raw_fd());
        (a_writer, b_reader, Box::new(relay))
    }),
    ("raw splice", |capacity| {
        let (a_reader, a_writer) = raw_pipe(capacity);
        let (b_reader, b_writer) = raw_pipe(capacity);
        let relay = move || raw_splice_loop(a_reader.as_raw_fd(), b_writer.as_raw_fd());
        (a_writer, b_reader, Box::new(relay))
    }),
    ("pipekit::splice::copy", |capacity| {
        let (a_reader, a_writer) = capacity.pipekit_pipe();
        let (b_reader, b_writer) = capacity.pipekit_pipe();
        let relay = move || pipekit::splice::copy(a_reader, b_writer).unwrap();
        (a_writer.into(), b_reader.into(), Box::new(relay))
    }),
    ("std::io::copy, std::io::pipe", |capacity| {
        let (mut a_reader, a_writer) = std::io::pipe().unwrap();
        let (b_reader, mut b_writer) = std::io::pipe().unwrap();
        capacity.apply(a_writer.as_fd());
        capacity.apply(b_writer.as_fd());
        let relay = move || std::io::copy(&mut a_reader, &mut b_writer).unwrap();
        (a_writer.into(), b_reader.into(), Box::new(relay))
    }),
    ("std::io::copy, os_pipe", |capacity| {
        let (mut a_reader, a_writer) = os_pipe::pipe().unwrap();
        let (b_reader, mut b_writer) = os_pipe::pipe().unwrap();
        capacity.apply(a_writer.as_fd());
        capacity.apply(b_writer.as_fd());
        let relay = move || std::io::copy(&mut a_reader, &mut b_writer).unwrap();
        (a_writer.into(), b_reader.into(), Box::new(relay))
    }),
    ("std::io::copy, pipekit", |capacity| {
        let (mut a_reader, a_writer) = capacity.pipekit_pipe();
        let (b_reader, mut b_writer) = capacity.pipekit_pipe();
        let relay = move || std::io::copy(&mut a_reader, &mut b_writer).unwrap();
        (a_writer.into(), b_reader.into(), Box::new(relay))
    }),
];

pub fn run_relay(
    pinning: Pinning,
    producer: Producer,
    capacity: Capacity,
    case: RelayCase,
) -> Duration {
    let (producer_end, consumer_end, relay) = case(capacity);
    let buf = producer_buffer();
    // The producer and the consumer share the first CPU; the relay runs
    // on the second (across CPUs) or with them (same CPU).
    let (outer_cpu, relay_cpu) = pinning.cpus();
    let null = dev_null();
    let ready = Barrier::new(3);
    thread::scope(|scope| {
        scope.spawn(|| produce(producer, &buf, producer_end, outer_cpu, &ready));
        scope.spawn(|| {
            pin_to_cpu(relay_cpu);
            ready.wait();
            // The relay owns both of its ends and drops them when done,
            // which ends the consumer's loop.
            assert_eq!(relay(), GIB);
        });
        scope
            .spawn(|| {
                pin_to_cpu(outer_cpu);
                ready.wait();
                let start = Instant::now();
                let total = raw_splice_loop(consumer_end.as_raw_fd(), null.as_raw_fd());
                assert_eq!(total, GIB);
                start.elapsed()
            })
            .join()
            .unwrap()
    })
}
