//! Benchmarks for pipekit; see `benches/` and BENCHMARKS.md.
//!
//! This library holds what the benchmarks share: thread pinning, raw pipes
//! made with libc (the baseline every case is compared with), the cases of
//! the throughput, copy and relay benches (run by criterion in
//! `benches/throughput.rs` and `benches/copy.rs`, and by the paired runner
//! in `benches/paired.rs`), and the criterion settings that keep a
//! 1 GiB-per-iteration benchmark within minutes.

#[cfg(target_os = "linux")]
pub use linux::*;

/// The two-thread throughput cases (`benches/throughput.rs`).
#[cfg(target_os = "linux")]
pub mod throughput;

/// The copy and relay cases (`benches/copy.rs`).
#[cfg(target_os = "linux")]
pub mod transfer;

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    use criterion::{BenchmarkGroup, SamplingMode, Throughput};

    /// Bytes moved per iteration by the throughput, copy and relay benches.
    pub const GIB: u64 = 1 << 30;

    /// Where the two threads of a transfer run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Pinning {
        /// Both on CPU 0: every hand-over is a context switch.
        SameCpu,
        /// Writer on CPU 0, reader on CPU 1: the data crosses caches.
        AcrossCpus,
    }

    impl Pinning {
        pub const ALL: [Pinning; 2] = [Pinning::SameCpu, Pinning::AcrossCpus];

        /// The CPUs of the writing and the reading thread.
        pub fn cpus(self) -> (usize, usize) {
            match self {
                Pinning::SameCpu => (0, 0),
                Pinning::AcrossCpus => (0, 1),
            }
        }

        pub fn name(self) -> &'static str {
            match self {
                Pinning::SameCpu => "same-cpu",
                Pinning::AcrossCpus => "across-cpus",
            }
        }
    }

    /// Pins the calling thread to `cpu` with `sched_setaffinity`. Panics if
    /// the system refuses (for example on a machine with one CPU), because
    /// unpinned figures are not the ones the benchmark claims to measure.
    pub fn pin_to_cpu(cpu: usize) {
        // SAFETY: `cpu_set_t` is plain data, valid when zeroed; CPU_SET
        // writes inside it (cpu < CPU_SETSIZE is checked by the assert);
        // sched_setaffinity reads `size_of` bytes from it. 0 means this
        // thread.
        let ret = unsafe {
            assert!(cpu < libc::CPU_SETSIZE as usize);
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(
            ret,
            0,
            "sched_setaffinity to CPU {cpu}: {}",
            io::Error::last_os_error()
        );
    }

    /// Pipe capacities the benches use: the default (64 KiB) and 1 MiB.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Capacity {
        Default,
        OneMiB,
    }

    impl Capacity {
        pub const ALL: [Capacity; 2] = [Capacity::Default, Capacity::OneMiB];

        pub fn bytes(self) -> Option<usize> {
            match self {
                Capacity::Default => None,
                Capacity::OneMiB => Some(1 << 20),
            }
        }

        /// What the pipe holds, in bytes.
        pub fn size(self) -> usize {
            self.bytes().unwrap_or(64 << 10)
        }

        pub fn name(self) -> &'static str {
            match self {
                Capacity::Default => "cap-64KiB",
                Capacity::OneMiB => "cap-1MiB",
            }
        }

        /// Gives a pipe of another library this capacity (no-op for the
        /// default), through its fd.
        pub fn apply(self, fd: BorrowedFd<'_>) {
            if let Some(bytes) = self.bytes() {
                set_pipe_size(fd.as_raw_fd(), bytes);
            }
        }

        /// pipekit's own way to make a pipe of this capacity.
        pub fn pipekit_pipe(self) -> (pipekit::PipeReader, pipekit::PipeWriter) {
            let mut options = pipekit::PipeOptions::new();
            if let Some(bytes) = self.bytes() {
                options.capacity(bytes);
            }
            options.create().unwrap()
        }
    }

    fn set_pipe_size(fd: RawFd, bytes: usize) {
        // SAFETY: F_SETPIPE_SZ takes an int; the caller's fd is open.
        let ret = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes as libc::c_int) };
        assert!(ret >= bytes as libc::c_int, "F_SETPIPE_SZ {bytes}: {ret}");
    }

    /// A pipe made with `pipe2(O_CLOEXEC)` (and `F_SETPIPE_SZ`), read end
    /// first: the raw baseline.
    pub fn raw_pipe(capacity: Capacity) -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(ret, 0, "pipe2: {}", io::Error::last_os_error());
        // SAFETY: pipe2 succeeded: both fds are open and owned by nobody.
        let (reader, writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if let Some(bytes) = capacity.bytes() {
            set_pipe_size(writer.as_raw_fd(), bytes);
        }
        (reader, writer)
    }

    /// One `read(2)`; panics on error (the benches never expect one).
    pub fn raw_read(fd: RawFd, buf: &mut [u8]) -> usize {
        // SAFETY: `buf` is valid for writes of its length; the fd is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n >= 0, "read: {}", io::Error::last_os_error());
        n as usize
    }

    /// `write(2)` until all of `buf` is written.
    pub fn raw_write_all(fd: RawFd, mut buf: &[u8]) {
        while !buf.is_empty() {
            // SAFETY: `buf` is valid for reads of its length; the fd is open.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            assert!(n > 0, "write: {}", io::Error::last_os_error());
            buf = &buf[n as usize..];
        }
    }

    /// One `splice(2)` with null offsets and no flags; panics on error.
    pub fn raw_splice(from: RawFd, to: RawFd, len: usize) -> usize {
        // SAFETY: null offsets: the kernel uses the fds' own; both are open.
        let n =
            unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, 0) };
        assert!(n >= 0, "splice: {}", io::Error::last_os_error());
        n as usize
    }

    /// Sets a group up for iterations that each move 1 GiB: throughput in
    /// bytes, 10 samples of one iteration each (flat sampling), a warm-up of
    /// one iteration.
    pub fn gib_group<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
        group
            .throughput(Throughput::Bytes(GIB))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            // Below 10 iterations' worth, so each sample is one iteration;
            // criterion prints a warning saying so, which is expected.
            .measurement_time(Duration::from_millis(100));
    }

    /// `/dev/null`, open for writing.
    pub fn dev_null() -> std::fs::File {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap()
    }
}
