//! Anonymous OS pipes for Linux, the BSDs, macOS, illumos and Windows.
//!
//! pipekit keeps the whole API of the `os_pipe` crate under the same names
//! ([`pipe()`], [`PipeReader`], [`PipeWriter`], `try_clone`,
//! [`dup_stdin`], [`dup_stdout`], [`dup_stderr`], `Into<Stdio>` and the
//! fd/handle traits), so a crate switches with one line in `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! os_pipe = { package = "pipekit", version = "0.1" }
//! ```
//!
//! On top of that it converts directly from and to std's child pipes
//! (`ChildStdin`, `ChildStdout`, `ChildStderr`) and, on Rust 1.87 or later,
//! std's own `std::io::PipeReader` and `std::io::PipeWriter`; it forwards
//! vectored I/O; and every end it opens is close-on-exec (Unix) or not
//! inheritable (Windows), atomically wherever the system allows.
//!
//! # Example
//!
//! Joining a child's standard output and standard error in one pipe, in the
//! order the child wrote them:
//!
//! ```no_run
//! use std::io::Read;
//! use std::process::Command;
//!
//! # fn main() -> std::io::Result<()> {
//! let (mut reader, writer) = pipekit::pipe()?;
//! let writer_clone = writer.try_clone()?;
//!
//! let mut command = Command::new("some-tool");
//! command.stdout(writer).stderr(writer_clone);
//! let mut child = command.spawn()?;
//! // The command holds the writers: drop it, or the read below never ends.
//! drop(command);
//!
//! let mut output = String::new();
//! reader.read_to_string(&mut output)?;
//! child.wait()?;
//! # Ok(())
//! # }
//! ```
//!
//! [`communicate::spawn_joined`] does the same in one call, and closes the
//! command's copies of the writer for you. `examples/join_output.rs` runs
//! the code above with a real child; try `cargo run --example join_output`.
//!
//! # Control
//!
//! [`PipeOptions`] opens a pipe with a chosen capacity, nonblocking ends,
//! Linux packet mode or (on Windows) overlapped ends; and each end can be
//! changed later: [`set_nonblocking`](PipeReader::set_nonblocking),
//! [`set_capacity`](PipeReader::set_capacity),
//! [`bytes_available`](PipeReader::bytes_available),
//! [`set_read_timeout`](PipeReader::set_read_timeout) and
//! [`set_write_timeout`](PipeWriter::set_write_timeout). An option a platform
//! cannot honour fails with [`ErrorKind::Unsupported`](std::io::ErrorKind)
//! and a message that names it; none is silently ignored.
//!
//! # Deadlocks
//!
//! Two mistakes make a program that uses pipes hang forever, and both are
//! easy to make.
//!
//! **A forgotten writer.** A reader sees end of file only when *every* writer
//! of the pipe has been closed: the original, every clone, and every copy a
//! child process inherited. A writer kept alive by mistake, most often one
//! still held by a [`Command`](std::process::Command) after `spawn`, or one
//! that leaked into an unrelated child, makes `read_to_end` wait forever.
//! pipekit prevents the leak: every end is close-on-exec / not inheritable,
//! so a child only ever gets the ends it was given. Dropping your own copies
//! (and the `Command`) is still up to you.
//!
//! **A full buffer.** A pipe holds a fixed amount of data (64 KiB by default
//! on Linux; 64 KiB for pipekit's pipes on Windows). A writer blocks while the
//! pipe is full. If a parent writes a child's standard input to the end
//! before reading its standard output, and the child writes more output than
//! the pipe holds before it reads all its input, each waits for the other
//! forever. The same happens when a parent reads a child's standard output
//! to the end before reading its standard error. The cure is to serve every
//! pipe at once: a thread per pipe, or one thread that waits for whichever
//! pipe is ready.
//!
//! **Or let pipekit do it for you.** [`communicate::Communicator`] feeds any
//! number of pipes and drains any number of others on one thread, as each
//! becomes ready, so neither deadlock can happen: it closes each input once it
//! is written (so the reader sees end of file), and a deadline bounds the
//! whole exchange, reading to end of file included, so even a grandchild that
//! inherited a pipe cannot make it hang. For a child process it is one call,
//! [`communicate::Exchange`], which also sets up the pipes the child needs
//! and, when the deadline passes, kills the child (and, with `kill_tree`,
//! everything it started):
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use pipekit::communicate::Exchange;
//!
//! # fn main() -> std::io::Result<()> {
//! let input = vec![b'x'; 10_000_000]; // far more than a pipe holds
//! let output = Exchange::new(&mut Command::new("some-filter"))
//!     .input(&input)
//!     .timeout(Duration::from_secs(60))
//!     .kill_tree(true)
//!     .run()?;
//! println!("{} bytes out, {} bytes err", output.stdout.len(), output.stderr.len());
//! # Ok(())
//! # }
//! ```
//!
//! `examples/communicate.rs` drives a real child with a
//! [`Communicator`](communicate::Communicator) (8 MB each way, and a size
//! limit on what is kept of standard error); try
//! `cargo run --example communicate`. `examples/kill_tree.rs` runs an
//! [`Exchange`](communicate::Exchange) whose deadline kills a child and the
//! grandchild holding its output, and prints what they wrote; try
//! `cargo run --example kill_tree`.
//!
//! # Platforms
//!
//! | Target | Status |
//! |---|---|
//! | Linux (x86_64) | built and tested |
//! | Windows (x86_64, GNU toolchain) | built and tested under wine |
//! | macOS (x86_64, aarch64), FreeBSD, NetBSD, illumos, Android | type-checked |
//! | Windows (i686 and aarch64, MSVC toolchain) | the library type-checked |
//! | other Unix targets | expected to work; not checked |
//! | every other target | builds; [`pipe()`] returns [`ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported) |
//!
//! # Minimum supported Rust version
//!
//! Rust 1.71, for the library without optional features; CI builds it with
//! Rust 1.71 for Linux, Windows and macOS. The conversions with
//! `std::io::PipeReader` and `std::io::PipeWriter` appear when pipekit is
//! built with Rust 1.87 or later.
//!
//! # Cargo features
//!
//! - `io_safety`: accepted and ignored, because `os_pipe` 1.x had it; the
//!   I/O-safety traits are always implemented.
//! - `tokio` (off by default): the module `tokio`, async pipe ends
//!   (`AsyncRead`/`AsyncWrite`) and the exchange as a future, on tokio's
//!   reactor on Unix and its I/O completion port on Windows. It needs what
//!   the tokio release in use needs (Rust 1.71 with tokio up to 1.47).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, doc(auto_cfg(hide(pipekit_std_pipe))))]
// On targets that are neither Unix nor Windows no pipe end can exist (the
// backend's `Pipe` is an empty enum), so the code that handles one is
// unreachable by construction, and the values and helpers only it uses
// are unused.
#![cfg_attr(
    not(any(unix, windows)),
    allow(unreachable_code, unused_variables, dead_code)
)]
#![doc(test(attr(deny(warnings))))]

pub mod communicate;
mod error;
mod options;
mod pipe;
pub mod splice;
#[allow(unsafe_code)]
mod sys;
#[cfg(all(feature = "tokio", any(unix, windows)))]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use crate::options::PipeOptions;
pub use crate::pipe::{dup_stderr, dup_stdin, dup_stdout, pipe, PipeReader, PipeWriter};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
