//! `pipekit::tokio`: async pipe ends, on a current-thread and a multi-thread
//! runtime. Children are this test binary itself (`harness = false`, see
//! tests/child.rs).

#[macro_use]
mod util;

use std::future::Future;
use std::io::{self, Read, Write};
use std::process::Stdio;
use std::sync::Arc;

use std::sync::Mutex;
use std::time::Duration;

use pipekit::communicate::{Sink, TimedOutOutput};
use pipekit::tokio::{pipe, pipe_from_child, pipe_to_child, Exchange, PipeReader, PipeWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::{Builder, Runtime};
use util::{assert_same, child, pattern, Test};

const TESTS: &[Test] = tests![
    ends_are_send_sync_and_debug,
    round_trip_and_eof_current_thread,
    round_trip_and_eof_multi_thread,
    readiness_api_round_trip,
    vectored_writes_keep_order,
    sixty_four_mib_each_way_current_thread,
    sixty_four_mib_each_way_multi_thread,
    outside_a_runtime_is_an_error_not_a_panic,
    blocking_conversion_is_documented_per_platform,
    child_end_from_pipe_from_child_works,
    child_end_from_pipe_to_child_works,
    #[cfg(unix)]
    into_blocking_end_handed_to_a_child_works,
    tokio_child_pipes_convert,
    no_blocking_pool_thread_does_the_io,
    dropping_ends_mid_transfer_leaks_nothing,
    exchange_future_is_send,
    exchange_feeds_and_drains_a_child,
    exchange_merges_limits_and_streams,
    exchange_timeout_kills_a_running_child,
    #[cfg(any(target_os = "linux", windows))]
    exchange_deadline_with_a_grandchild_holding_stdout,
    #[cfg(any(target_os = "linux", windows))]
    dropping_the_exchange_future_mid_transfer,
];

fn main() {
    match util::child_role() {
        Some(role) => child_main(&role),
        None => util::run_tests(TESTS),
    }
}

/// The size of the transfers that cross a child.
const CHILD_BYTES: usize = 4 << 20;
/// What the "stderr-then-echo" child writes to stderr before it reads.
const STDERR_FIRST: usize = 10_000_000;
/// Output of the "big-stdout" child.
const BIG: usize = 5_000_000;

fn child_main(role: &str) {
    match role {
        // Copies standard input to standard output.
        "echo" => {
            io::copy(&mut io::stdin().lock(), &mut io::stdout().lock()).unwrap();
        }
        // Writes CHILD_BYTES of the pattern to standard output.
        "produce" => {
            io::stdout()
                .lock()
                .write_all(&pattern(CHILD_BYTES))
                .unwrap();
        }
        // Reads standard input to its end and checks it is the pattern.
        "consume" => {
            let mut got = Vec::new();
            io::stdin().lock().read_to_end(&mut got).unwrap();
            assert_same(&got, &pattern(CHILD_BYTES));
        }
        // 10 MB to stderr before reading anything, then its input back.
        "stderr-then-echo" => {
            io::stderr()
                .lock()
                .write_all(&pattern(STDERR_FIRST))
                .unwrap();
            io::copy(&mut io::stdin().lock(), &mut io::stdout().lock()).unwrap();
        }
        "foo-bar" => {
            io::stdout().write_all(b"foo\n").unwrap();
            io::stdout().flush().unwrap();
            io::stderr().write_all(b"bar\n").unwrap();
            io::stderr().flush().unwrap();
            io::stdout().write_all(b"baz\n").unwrap();
        }
        "big-stdout" => {
            io::stdout().lock().write_all(&pattern(BIG)).unwrap();
            io::stderr().write_all(b"done").unwrap();
        }
        "park" => park(),
        // Starts a grandchild that holds stdout open forever, prints its
        // pid, and exits.
        "grandchild-holds-stdout" => {
            let grandchild = child("park")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            println!("{}", grandchild.id());
            io::stdout().flush().unwrap();
            // Never waited for: it outlives this process.
            std::mem::forget(grandchild);
        }
        // Prints its pid, copies its input to its output, then waits
        // forever.
        "pid-then-echo" => {
            println!("{}", std::process::id());
            io::stdout().flush().unwrap();
            io::copy(&mut io::stdin().lock(), &mut io::stdout().lock()).unwrap();
            park();
        }
        other => panic!("unknown child role {other:?}"),
    }
}

fn park() -> ! {
    loop {
        std::thread::park();
    }
}

fn first_line_pid(stdout: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

/// A tokio command running this binary as the child `role`.
fn command(role: &str) -> tokio::process::Command {
    tokio::process::Command::from(child(role))
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a current-thread and then on a multi-thread runtime.
fn on_both<F, Fut>(f: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    current_thread().block_on(f());
    multi_thread().block_on(f());
}

fn ends_are_send_sync_and_debug() {
    fn check<T: Send + Sync + std::fmt::Debug + Unpin>() {}
    check::<PipeReader>();
    check::<PipeWriter>();
    current_thread().block_on(async {
        let (reader, writer) = pipe().unwrap();
        assert!(format!("{reader:?}").starts_with("PipeReader"));
        assert!(format!("{writer:?}").starts_with("PipeWriter"));
    });
}

async fn round_trip_and_eof() {
    let (mut reader, mut writer) = pipe().unwrap();
    writer.write_all(b"hello").await.unwrap();
    let mut buf = [0; 5];
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    // Reads wait for the writer, then see end of file once it is gone.
    let read = tokio::spawn(async move {
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        rest
    });
    tokio::task::yield_now().await;
    writer.write_all(b" world").await.unwrap();
    drop(writer);
    assert_eq!(read.await.unwrap(), b" world");
}

fn round_trip_and_eof_current_thread() {
    current_thread().block_on(round_trip_and_eof());
}

fn round_trip_and_eof_multi_thread() {
    multi_thread().block_on(round_trip_and_eof());
}

fn readiness_api_round_trip() {
    on_both(|| async {
        let (reader, writer) = pipe().unwrap();
        let mut buf = [0; 8];
        assert_eq!(
            reader.try_read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "an empty pipe with a writer open must not read"
        );
        writer.writable().await.unwrap();
        let sent = loop {
            match writer.try_write(b"ready") {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => writer.writable().await.unwrap(),
                Err(e) => panic!("try_write: {e}"),
            }
        };
        assert_eq!(sent, 5);
        let mut got = Vec::new();
        while got.len() < 5 {
            reader.readable().await.unwrap();
            let mut a = [0; 2];
            let mut b = [0; 8];
            let mut bufs = [io::IoSliceMut::new(&mut a), io::IoSliceMut::new(&mut b)];
            match reader.try_read_vectored(&mut bufs) {
                Ok(n) => {
                    let joined: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
                    got.extend_from_slice(&joined[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_read_vectored: {e}"),
            }
        }
        assert_eq!(got, b"ready");
        drop(writer);
        reader.readable().await.unwrap();
        loop {
            match reader.try_read(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, 0, "end of file after the writer is dropped");
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => reader.readable().await.unwrap(),
                Err(e) => panic!("try_read: {e}"),
            }
        }
    });
}

fn vectored_writes_keep_order() {
    on_both(|| async {
        let (mut reader, mut writer) = pipe().unwrap();
        assert!(tokio::io::AsyncWrite::is_write_vectored(&writer));
        let data = pattern(300_000);
        let expected = data.clone();
        let write = tokio::spawn(async move {
            let mut rest: &[u8] = &data;
            while !rest.is_empty() {
                let (a, b) = rest.split_at(rest.len().min(1000) / 2);
                let b = &b[..b.len().min(70_000)];
                let n = writer
                    .write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)])
                    .await
                    .unwrap();
                assert!(n > 0);
                rest = &rest[n..];
            }
            let n = writer.try_write_vectored(&[]).unwrap_or(0);
            assert_eq!(n, 0);
        });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        write.await.unwrap();
        assert_same(&got, &expected);
    });
}

/// 64 MiB each way at once between two tasks, one pipe per direction,
/// every byte checked.
async fn sixty_four_mib_each_way() {
    const LEN: usize = 64 << 20;
    let data = Arc::new(pattern(LEN));
    let (from_a, to_b) = pipe().unwrap();
    let (from_b, to_a) = pipe().unwrap();
    let side = |mut reader: PipeReader, mut writer: PipeWriter, data: Arc<Vec<u8>>| async move {
        let write = async {
            for chunk in data.chunks(1 << 16) {
                writer.write_all(chunk).await.unwrap();
            }
            drop(writer);
        };
        let read = async {
            let mut got = Vec::with_capacity(LEN);
            reader.read_to_end(&mut got).await.unwrap();
            got
        };
        tokio::join!(write, read).1
    };
    let a = tokio::spawn(side(from_a, to_a, Arc::clone(&data)));
    let b = tokio::spawn(side(from_b, to_b, Arc::clone(&data)));
    assert_same(&a.await.unwrap(), &data);
    assert_same(&b.await.unwrap(), &data);
}

fn sixty_four_mib_each_way_current_thread() {
    current_thread().block_on(sixty_four_mib_each_way());
}

fn sixty_four_mib_each_way_multi_thread() {
    multi_thread().block_on(sixty_four_mib_each_way());
}

fn outside_a_runtime_is_an_error_not_a_panic() {
    let message = |e: io::Error| e.to_string();
    for err in [
        pipe().map(drop).map_err(message),
        pipe_from_child().map(drop).map_err(message),
        pipe_to_child().map(drop).map_err(message),
    ] {
        let err = err.unwrap_err();
        assert!(
            err.contains("pipekit:") && err.contains("tokio runtime"),
            "{err}"
        );
    }
    let (reader, writer) = pipekit::pipe().unwrap();
    let err = PipeReader::try_from(reader).unwrap_err().to_string();
    assert!(err.contains("tokio runtime"), "{err}");
    let err = PipeWriter::try_from(writer).unwrap_err().to_string();
    assert!(err.contains("tokio runtime"), "{err}");
}

/// Unix: a blocking end converts, becomes nonblocking, works, and
/// `into_blocking` makes it blocking again. Windows: a synchronous end is
/// refused with an error naming the option; an overlapped one converts.
fn blocking_conversion_is_documented_per_platform() {
    current_thread().block_on(async {
        #[cfg(unix)]
        {
            let (reader, writer) = pipekit::pipe().unwrap();
            let clone = reader.try_clone().unwrap();
            assert!(!clone.nonblocking().unwrap());
            let mut reader = PipeReader::try_from(reader).unwrap();
            assert!(
                clone.nonblocking().unwrap(),
                "the flag is the open file description's, shared by clones"
            );
            let mut writer = PipeWriter::try_from(writer).unwrap();
            writer.write_all(b"abc").await.unwrap();
            let mut buf = [0; 3];
            reader.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"abc");
            let reader = reader.into_blocking().unwrap();
            let writer = writer.into_blocking().unwrap();
            assert!(!reader.nonblocking().unwrap());
            assert!(!writer.nonblocking().unwrap());
            assert!(!clone.nonblocking().unwrap());
            // Not a pipe: refused, clearly.
            let file = util::TempFile::new("tokio-not-a-pipe");
            let not_a_pipe = pipekit::PipeReader::from(std::os::fd::OwnedFd::from(file.create()));
            let err = PipeReader::try_from(not_a_pipe).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().starts_with("pipekit:"), "{err}");
        }
        #[cfg(windows)]
        {
            let (reader, writer) = pipekit::pipe().unwrap();
            let err = PipeReader::try_from(reader).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(
                err.to_string().contains("PipeOptions::overlapped_reader"),
                "{err}"
            );
            let err = PipeWriter::try_from(writer).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(
                err.to_string().contains("PipeOptions::overlapped_writer"),
                "{err}"
            );
            let (reader, writer) = pipekit::PipeOptions::new()
                .overlapped_reader(true)
                .overlapped_writer(true)
                .create()
                .unwrap();
            let mut reader = PipeReader::try_from(reader).unwrap();
            let mut writer = PipeWriter::try_from(writer).unwrap();
            writer.write_all(b"abc").await.unwrap();
            let mut buf = [0; 3];
            reader.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"abc");
        }
    });
}

fn child_end_from_pipe_from_child_works() {
    on_both(|| async {
        let (mut reader, writer) = pipe_from_child().unwrap();
        let mut command = tokio::process::Command::from(child("produce"));
        command.stdout(writer).stdin(Stdio::null());
        let mut process = command.spawn().unwrap();
        drop(command); // closes this process's copy of the writer
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert!(process.wait().await.unwrap().success());
        assert_same(&got, &pattern(CHILD_BYTES));
    });
}

fn child_end_from_pipe_to_child_works() {
    on_both(|| async {
        let (reader, mut writer) = pipe_to_child().unwrap();
        let mut command = tokio::process::Command::from(child("consume"));
        command.stdin(reader);
        let mut process = command.spawn().unwrap();
        drop(command);
        writer.write_all(&pattern(CHILD_BYTES)).await.unwrap();
        drop(writer);
        assert!(process.wait().await.unwrap().success());
    });
}

#[cfg(unix)]
fn into_blocking_end_handed_to_a_child_works() {
    on_both(|| async {
        let (mut reader, writer) = pipe().unwrap();
        let writer = writer.into_blocking().unwrap();
        assert!(!writer.nonblocking().unwrap());
        let mut command = tokio::process::Command::from(child("produce"));
        command.stdout(writer).stdin(Stdio::null());
        let mut process = command.spawn().unwrap();
        drop(command);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert!(process.wait().await.unwrap().success());
        assert_same(&got, &pattern(CHILD_BYTES));
    });
}

fn tokio_child_pipes_convert() {
    on_both(|| async {
        let mut process = tokio::process::Command::from(child("echo"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = PipeWriter::try_from(process.stdin.take().unwrap()).unwrap();
        let mut stdout = PipeReader::try_from(process.stdout.take().unwrap()).unwrap();
        let data = pattern(CHILD_BYTES);
        let expected = data.clone();
        let feed = tokio::spawn(async move {
            stdin.write_all(&data).await.unwrap();
        });
        let mut got = Vec::new();
        stdout.read_to_end(&mut got).await.unwrap();
        feed.await.unwrap();
        assert!(process.wait().await.unwrap().success());
        assert_same(&got, &expected);
    });
}

/// 16 transfers at once on a runtime with one blocking-pool thread: each
/// reader waits before its writer writes. A design that reads on the pool
/// (tokio::fs::File over a pipe) parks the only pool thread in the first
/// read and never runs the writes; the reactor finishes them all.
fn no_blocking_pool_thread_does_the_io() {
    let runtime = Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        const LEN: usize = 1 << 20;
        let mut ends = Vec::new();
        for _ in 0..16 {
            ends.push(pipe().unwrap());
        }
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for (mut reader, writer) in ends {
            readers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                reader.read_to_end(&mut got).await.unwrap();
                got
            }));
            writers.push(writer);
        }
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        let mut feeds = Vec::new();
        for mut writer in writers {
            feeds.push(tokio::spawn(async move {
                writer.write_all(&pattern(LEN)).await.unwrap();
            }));
        }
        for feed in feeds {
            feed.await.unwrap();
        }
        let want = pattern(LEN);
        for reader in readers {
            assert_same(&reader.await.unwrap(), &want);
        }
    });
}

/// Opens and drops ends, some with a write still in flight or a read
/// waiting, and some conversions that fail; afterwards the process holds as
/// many descriptors or handles as before.
fn dropping_ends_mid_transfer_leaks_nothing() {
    // Warm up what tokio and the test harness open once.
    current_thread().block_on(async {
        drop(pipe().unwrap());
    });
    let before = os::open_count();
    {
        let runtime = multi_thread();
        runtime.block_on(async {
            for _ in 0..20 {
                let (mut reader, mut writer) = pipe().unwrap();
                let write = tokio::spawn(async move {
                    // Blocks once the pipe is full; aborted below.
                    let _ = writer.write_all(&pattern(1 << 20)).await;
                });
                let mut buf = [0; 1000];
                reader.read_exact(&mut buf).await.unwrap();
                write.abort();
                let _ = write.await;
                drop(reader);
                let (reader, writer) = pipe().unwrap();
                let read = tokio::spawn(async move {
                    let mut reader = reader;
                    let mut buf = [0; 10];
                    let _ = reader.read(&mut buf).await;
                });
                tokio::task::yield_now().await;
                read.abort();
                let _ = read.await;
                drop(writer);
                let (reader, _writer) = pipekit::pipe().unwrap();
                let _ = PipeReader::try_from(reader.try_clone().unwrap());
                let _ = pipe_from_child().unwrap();
                let _ = pipe_to_child().unwrap();
            }
        });
    }
    assert_eq!(os::open_count(), before, "descriptors or handles leaked");
}

fn exchange_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut command = command("echo");
    let input = String::from("borrowed input");
    let mut lines = Vec::new();
    let mut exchange = Exchange::new(&mut command);
    exchange
        .input(&input)
        .stderr_to(Sink::lines(|line| lines.push(line.to_vec())))
        .timeout(Duration::from_secs(60));
    let future = exchange.run();
    assert_send(&future);
    // Run it, so that the borrowed pieces are used as they would be.
    let output = current_thread().block_on(future).unwrap();
    assert_eq!(output.stdout, input.as_bytes());
    drop(exchange);
    assert!(lines.is_empty());
}

/// The deadlock case: the child writes 10 MB to stderr before it reads
/// its 10 MB of input, then echoes it. Every byte checked, on both runtimes.
fn exchange_feeds_and_drains_a_child() {
    on_both(|| async {
        let input = pattern(STDERR_FIRST);
        let mut command = command("stderr-then-echo");
        let output = Exchange::new(&mut command)
            .input(input.clone())
            .timeout(Duration::from_secs(120))
            .run()
            .await
            .unwrap();
        assert!(output.status.success(), "{:?}", output.status);
        assert_same(&output.stderr, &pattern(STDERR_FIRST));
        assert_same(&output.stdout, &input);
    });
}

fn exchange_merges_limits_and_streams() {
    on_both(|| async {
        // Merged: one pipe, in the order written.
        let output = Exchange::new(&mut command("foo-bar"))
            .merge_stderr(true)
            .run()
            .await
            .unwrap();
        assert_eq!(output.stdout, b"foo\nbar\nbaz\n");
        assert!(output.stderr.is_empty());

        // Limited: the exact prefix, the rest read and discarded.
        let mut big = command("big-stdout");
        let mut exchange = Exchange::new(&mut big);
        let output = exchange.limit(1000).run().await.unwrap();
        assert!(output.status.success(), "the child must not block or die");
        assert_same(&output.stdout, &pattern(BIG)[..1000]);
        assert_eq!(output.stderr, b"done");
        assert!(exchange.stdout_truncated());
        assert!(!exchange.stderr_truncated());

        // Streamed to sinks, line by line and into a vector.
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&lines);
        let mut err = Vec::new();
        let output = Exchange::new(&mut command("foo-bar"))
            .stdout_to(Sink::lines(move |line| {
                seen.lock().unwrap().push(line.to_vec())
            }))
            .stderr_to(&mut err)
            .run()
            .await
            .unwrap();
        assert!(output.stdout.is_empty() && output.stderr.is_empty());
        assert_eq!(*lines.lock().unwrap(), [b"foo".to_vec(), b"baz".to_vec()]);
        assert_eq!(err, b"bar\n");

        // Merging with a stderr sink is refused before anything runs.
        let mut sink = Vec::new();
        let err = Exchange::new(&mut command("foo-bar"))
            .merge_stderr(true)
            .stderr_to(&mut sink)
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

fn exchange_timeout_kills_a_running_child() {
    on_both(|| async {
        let input = pattern(1000);
        let err = Exchange::new(&mut command("park"))
            .input(&input)
            .timeout(Duration::from_millis(300))
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
        assert!(payload.killed(), "{err}");
        let status = payload.status.expect("the killed child's status");
        assert!(!status.success());
        assert!(err.to_string().contains("killed"), "{err}");
    });
}

/// A child exits at once, leaving a grandchild that holds its stdout. With
/// `kill_tree` the deadline kills the grandchild too; without it the
/// payload tells that the child had exited, and the grandchild lives on.
#[cfg(any(target_os = "linux", windows))]
fn exchange_deadline_with_a_grandchild_holding_stdout() {
    on_both(|| async {
        let err = Exchange::new(&mut command("grandchild-holds-stdout"))
            .kill_tree(true)
            .timeout(Duration::from_secs(2))
            .run()
            .await
            .unwrap_err();
        let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
        let grandchild = first_line_pid(&payload.stdout);
        assert!(payload.status.expect("the child had exited").success());
        assert!(!payload.killed());
        assert!(
            os::wait_gone(grandchild),
            "grandchild {grandchild} survived"
        );

        let err = Exchange::new(&mut command("grandchild-holds-stdout"))
            .kill_on_timeout(false)
            .timeout(Duration::from_secs(2))
            .run()
            .await
            .unwrap_err();
        let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
        let grandchild = first_line_pid(&payload.stdout);
        assert!(payload.status.expect("the child had exited").success());
        assert!(err.to_string().contains("still holds"), "{err}");
        assert!(!os::gone_now(grandchild), "nobody asked to kill it");
        os::kill(grandchild);
        assert!(os::wait_gone(grandchild));
    });
}

/// The exchange's task is aborted while 64 MiB go through the child: its
/// pipes are closed (as many descriptors or handles as before) and the
/// child, killed, is gone.
#[cfg(any(target_os = "linux", windows))]
fn dropping_the_exchange_future_mid_transfer() {
    multi_thread().block_on(async {
        // Warm up what tokio opens once for child processes.
        Exchange::new(&mut command("echo")).run().await.unwrap();
        let before = os::open_count();
        let (first_line, got_line) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut first_line = Some(first_line);
            let mut command = command("pid-then-echo");
            let input = pattern(64 << 20);
            let result = Exchange::new(&mut command)
                .input(input)
                .stdout_to(Sink::lines(move |line| {
                    if let Some(tx) = first_line.take() {
                        let _ = tx.send(String::from_utf8_lossy(line).into_owned());
                    }
                }))
                .run()
                .await;
            result
        });
        let pid: u32 = got_line.await.unwrap().trim().parse().unwrap();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(os::wait_gone(pid), "the child {pid} was not killed");
        assert_eq!(os::open_count(), before, "descriptors or handles leaked");
    });
}

#[cfg(unix)]
mod os {
    /// The number of open file descriptors of this process.
    pub fn open_count() -> usize {
        #[cfg(target_os = "linux")]
        {
            std::fs::read_dir("/proc/self/fd").unwrap().count()
        }
        #[cfg(not(target_os = "linux"))]
        {
            (0..4096)
                .filter(|&fd| {
                    // SAFETY: F_GETFD on any number is harmless.
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::fcntl(fd, libc::F_GETFD) != -1
                    }
                })
                .count()
        }
    }

    /// Waits (bounded by the watchdog) until process `pid` has ended,
    /// whoever reaps it: a pidfd turns readable when it exits. `true` if it
    /// ended, or is already gone.
    #[cfg(target_os = "linux")]
    pub fn wait_gone(pid: u32) -> bool {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
        #[allow(unsafe_code)]
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "pidfd_open: {err}");
            return true;
        }
        // SAFETY: `fd` is a new descriptor owned here.
        #[allow(unsafe_code)]
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; no timeout (the watchdog bounds it).
        #[allow(unsafe_code)]
        let ret = unsafe { libc::poll(&mut pfd, 1, -1) };
        ret == 1
    }

    /// Whether process `pid` has ended now, without waiting.
    #[cfg(target_os = "linux")]
    pub fn gone_now(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name in parentheses.
            Ok(stat) => {
                matches!(stat.rsplit(')').next().map(str::trim_start), Some(s) if s.starts_with('Z') || s.starts_with('X'))
            }
            Err(_) => true,
        }
    }

    #[cfg(target_os = "linux")]
    pub fn kill(pid: u32) {
        // SAFETY: kill takes a pid and a signal number.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        assert_eq!(ret, 0);
    }
}

#[cfg(windows)]
mod os {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};

    pub use crate::util::pids::{gone_now, kill, wait_gone};

    /// The number of open handles of this process.
    pub fn open_count() -> usize {
        let mut count = 0;
        // SAFETY: the pseudo handle needs no closing; `count` is writable.
        #[allow(unsafe_code)]
        let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) };
        assert_ne!(
            ok,
            0,
            "GetProcessHandleCount: {}",
            std::io::Error::last_os_error()
        );
        count as usize
    }
}
