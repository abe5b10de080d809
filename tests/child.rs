//! Tests that need child processes. The child is this test binary itself,
//! run again with `PIPEKIT_TEST_CHILD=<role>` (std's `pipe_subprocess`
//! pattern), so no external program is needed and Windows works the same.
//!
//! `harness = false`: `main` runs each test under the watchdog, prints one
//! line per test and a closing `N passed, M failed` line, and exits non-zero
//! if any failed. Arguments that do not start with `-` filter tests by
//! substring, as libtest does.

#[macro_use]
mod util;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use pipekit::{pipe, PipeReader, PipeWriter};
use util::{child, Test};

const TESTS: &[Test] = tests![
    join_stdout_and_stderr_in_one_pipe,
    forgotten_writers_do_not_leak_into_children,
    children_hold_only_the_pipes_they_are_given,
    stress_concurrent_pipes_and_spawns,
    dup_std_streams_work_and_are_not_inherited,
    child_std_pipes_convert_and_keep_working,
    pipeline_through_stdio_conversions,
    #[cfg(unix)]
    descriptor_exhaustion_fails_cleanly,
    #[cfg(target_os = "linux")]
    unprivileged_capacity_above_the_limit_names_it,
];

fn main() {
    match util::child_role() {
        Some(role) => child_main(&role),
        None => util::run_tests(TESTS),
    }
}

/// Waits for `child` and asserts it succeeded.
#[track_caller]
fn assert_success(mut child: Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
}

fn child_main(role: &str) {
    match role {
        // The child of os_pipe's README example.
        "foo-bar" => {
            let mut out = io::stdout();
            out.write_all(b"foo").unwrap();
            out.flush().unwrap();
            let mut err = io::stderr();
            err.write_all(b"bar").unwrap();
            err.flush().unwrap();
        }
        // Blocks until its standard input is closed.
        "wait-stdin" => {
            io::copy(&mut io::stdin(), &mut io::sink()).unwrap();
        }
        // Copies standard input to standard output, then writes "err" to
        // standard error.
        "echo" => {
            io::copy(&mut io::stdin(), &mut io::stdout()).unwrap();
            io::stderr().write_all(b"err").unwrap();
        }
        // Prints the identity of every pipe it holds, one per line.
        "list-pipes" => {
            let mut out = io::stdout().lock();
            for id in os::pipes_held_by_this_process() {
                writeln!(out, "{id}").unwrap();
            }
        }
        "dup-std" => dup_std_child(),
        #[cfg(unix)]
        "exhaust-descriptors" => os::exhaustion_child(),
        #[cfg(target_os = "linux")]
        "capacity-above-limit" => os::capacity_above_limit_child(),
        other => panic!("unknown child role {other:?}"),
    }
}

/// Spawns a child that lists the pipes it holds, and returns that list.
fn pipes_seen_by_a_new_child() -> BTreeSet<String> {
    let output = child("list-pipes")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "list-pipes failed: {}",
        output.status
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

// -- the tests ---------------------------------------------------------------

/// The example from os_pipe's README, with pipekit.
fn join_stdout_and_stderr_in_one_pipe() {
    let mut command = child("foo-bar");
    let (mut reader, writer) = pipe().unwrap();
    let writer_clone = writer.try_clone().unwrap();
    command.stdout(writer);
    command.stderr(writer_clone);
    let handle = command.spawn().unwrap();
    drop(command);
    let mut output = String::new();
    reader.read_to_string(&mut output).unwrap();
    assert_success(handle);
    assert_eq!(output, "foobar");
}

/// The first classic deadlock cannot happen through inheritance: a child
/// spawned while this process holds a writer (and clones of it) must not get
/// copies, or the reader would not see EOF until the child exits.
fn forgotten_writers_do_not_leak_into_children() {
    let (mut reader, writer) = pipe().unwrap();
    let clone = writer.try_clone().unwrap();
    let (other_reader, other_writer) = pipe().unwrap();

    // The child blocks until we close its stdin, so it is alive throughout.
    let mut waiting = child("wait-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    drop(writer);
    drop(clone);
    // If the child had inherited a writer, this would block until the
    // watchdog fires.
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    drop(other_writer);
    let mut rest = Vec::new();
    (&other_reader).read_to_end(&mut rest).unwrap();

    drop(waiting.stdin.take());
    assert_success(waiting);
}

/// A child lists the pipes it holds: it must hold none of ours, while a
/// handle we deliberately make inheritable does show up (so the listing can
/// see a leak when there is one).
fn children_hold_only_the_pipes_they_are_given() {
    let (reader, writer) = pipe().unwrap();
    let ends = [
        os::identity_of_reader(&reader),
        os::identity_of_writer(&writer),
        os::identity_of_reader(&reader.try_clone().unwrap()),
        os::identity_of_writer(&writer.try_clone().unwrap()),
    ];
    let clones = (reader.try_clone().unwrap(), writer.try_clone().unwrap());
    let held: BTreeSet<String> = ends
        .iter()
        .cloned()
        .chain([
            os::identity_of_reader(&clones.0),
            os::identity_of_writer(&clones.1),
        ])
        .collect();

    let (control, _control_writer) = pipe().unwrap();
    let leaked = os::InheritableDuplicate::new(&control);

    let seen = pipes_seen_by_a_new_child();
    assert!(
        seen.contains(&leaked.identity()),
        "the control handle {} was not seen by the child; the listing is blind: {seen:?}",
        leaked.identity()
    );
    let inherited: Vec<_> = held.intersection(&seen).collect();
    assert!(inherited.is_empty(), "the child inherited {inherited:?}");
}

/// Threads create and clone pipes in a loop while other threads spawn
/// children that list their pipes: no child may ever hold one of them.
fn stress_concurrent_pipes_and_spawns() {
    // Spawning under wine costs far more than on Linux.
    let spawns_per_thread = if cfg!(windows) { 10 } else { 150 };
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(Mutex::new(BTreeSet::new()));

    let creators: Vec<_> = (0..3)
        .map(|_| {
            let (stop, created) = (stop.clone(), created.clone());
            thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) || rounds == 0 {
                    let (reader, writer) = pipe().unwrap();
                    let clone = writer.try_clone().unwrap();
                    let ids = [
                        os::identity_of_reader(&reader),
                        os::identity_of_writer(&writer),
                        os::identity_of_writer(&clone),
                    ];
                    created.lock().unwrap().extend(ids);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();

    let spawners: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut seen = BTreeSet::new();
                for _ in 0..spawns_per_thread {
                    seen.extend(pipes_seen_by_a_new_child());
                }
                seen
            })
        })
        .collect();

    let mut seen = BTreeSet::new();
    for spawner in spawners {
        seen.extend(spawner.join().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = creators.into_iter().map(|c| c.join().unwrap()).sum();

    let created = created.lock().unwrap();
    assert!(rounds > 0);
    let leaked: Vec<_> = created.intersection(&seen).collect();
    assert!(
        leaked.is_empty(),
        "children saw pipes they were not given: {leaked:?}"
    );
}

fn dup_std_child() {
    let mut input = String::new();
    pipekit::dup_stdin()
        .unwrap()
        .read_to_string(&mut input)
        .unwrap();
    let stdout = pipekit::dup_stdout().unwrap();
    let stderr = pipekit::dup_stderr().unwrap();
    (&stdout)
        .write_all(format!("out:{input}").as_bytes())
        .unwrap();
    (&stderr)
        .write_all(format!("err:{input}").as_bytes())
        .unwrap();

    // The duplicates are not inherited by a grandchild.
    let stdin = pipekit::dup_stdin().unwrap();
    let held = [
        os::identity_of_reader(&stdin),
        os::identity_of_writer(&stdout),
        os::identity_of_writer(&stderr),
    ];
    let seen = pipes_seen_by_a_new_child();
    for id in &held {
        assert!(
            !seen.contains(id),
            "a grandchild inherited the duplicate {id}"
        );
    }
}

fn dup_std_streams_work_and_are_not_inherited() {
    let mut running = child("dup-std")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = PipeWriter::from(running.stdin.take().unwrap());
    stdin.write_all(b"input").unwrap();
    drop(stdin);
    // Joined through one engine-free path: the outputs are tiny, so reading
    // one after the other cannot fill a pipe.
    let mut out = String::new();
    PipeReader::from(running.stdout.take().unwrap())
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    PipeReader::from(running.stderr.take().unwrap())
        .read_to_string(&mut err)
        .unwrap();
    let status = running.wait().unwrap();
    assert!(
        status.success(),
        "dup-std child failed: {status}; stderr: {err}"
    );
    assert_eq!(out, "out:input");
    assert_eq!(err, "err:input");
}

fn child_std_pipes_convert_and_keep_working() {
    let mut running = child("echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = PipeWriter::from(running.stdin.take().unwrap());
    let stdout = PipeReader::from(running.stdout.take().unwrap());
    let stderr = PipeReader::from(running.stderr.take().unwrap());
    let data = util::pattern(10_000);
    (&stdin).write_all(&data).unwrap();
    drop(stdin);
    let mut out = Vec::new();
    (&stdout).read_to_end(&mut out).unwrap();
    let mut err = Vec::new();
    (&stderr).read_to_end(&mut err).unwrap();
    assert_success(running);
    assert!(out == data, "stdout differs from what was sent");
    assert_eq!(err, b"err");
}

/// `first | second`, wired with pipekit's ends converted into `Stdio`, one of
/// them taken over from a `ChildStdout`.
fn pipeline_through_stdio_conversions() {
    let (input_reader, input_writer) = pipe().unwrap();
    let mut first = child("echo")
        .stdin(input_reader)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let middle = PipeReader::from(first.stdout.take().unwrap());
    let (mut output_reader, output_writer) = pipe().unwrap();
    let mut second = child("echo");
    second
        .stdin(middle)
        .stdout(output_writer)
        .stderr(Stdio::null());
    let second_child = second.spawn().unwrap();
    drop(second);

    (&input_writer).write_all(b"through two children").unwrap();
    drop(input_writer);
    let mut out = String::new();
    output_reader.read_to_string(&mut out).unwrap();
    assert_success(first);
    assert_success(second_child);
    assert_eq!(out, "through two children");
}

/// Runs the child `role`, which checks everything itself and prints "ok".
#[cfg(unix)]
fn assert_child_role_passes(role: &str) {
    let output = child(role)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "{role} failed: {}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ok\n");
}

#[cfg(unix)]
fn descriptor_exhaustion_fails_cleanly() {
    assert_child_role_passes("exhaust-descriptors");
}

#[cfg(target_os = "linux")]
fn unprivileged_capacity_above_the_limit_names_it() {
    assert_child_role_passes("capacity-above-limit");
}

// -- platform parts ------------------------------------------------------------

#[cfg(unix)]
mod os {
    use super::*;
    use std::fs::File;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;

    /// A pipe's identity is its device and inode, which every fd for it
    /// shares, in this process and in any child.
    fn identity(fd: BorrowedFd<'_>) -> String {
        let meta = File::from(fd.try_clone_to_owned().unwrap())
            .metadata()
            .unwrap();
        format!("{}:{}", meta.dev(), meta.ino())
    }

    pub fn identity_of_reader(reader: &PipeReader) -> String {
        identity(reader.as_fd())
    }

    pub fn identity_of_writer(writer: &PipeWriter) -> String {
        identity(writer.as_fd())
    }

    /// Every FIFO among this process's first 4096 fds.
    pub fn pipes_held_by_this_process() -> Vec<String> {
        (0..4096)
            .filter_map(|fd| {
                // SAFETY: fstat writes only into `stat`, a local of the right
                // type; an fd that is not open yields EBADF and no write.
                #[allow(unsafe_code)]
                let stat = unsafe {
                    let mut stat: libc::stat = std::mem::zeroed();
                    (libc::fstat(fd, &mut stat) == 0).then_some(stat)
                }?;
                let is_fifo = stat.st_mode & libc::S_IFMT == libc::S_IFIFO;
                is_fifo.then(|| format!("{}:{}", stat.st_dev, stat.st_ino))
            })
            .collect()
    }

    /// A duplicate made without close-on-exec: the control for the
    /// inheritance tests.
    pub struct InheritableDuplicate(#[allow(dead_code)] OwnedFd, String);

    impl InheritableDuplicate {
        pub fn new(reader: &PipeReader) -> Self {
            // SAFETY: dup reads the open fd `reader` owns; a successful
            // result is a new fd that nothing else owns, taken over at once.
            #[allow(unsafe_code)]
            let fd = unsafe {
                let fd = libc::dup(reader.as_raw_fd());
                assert!(fd >= 0, "dup: {}", io::Error::last_os_error());
                OwnedFd::from_raw_fd(fd)
            };
            let id = identity(fd.as_fd());
            Self(fd, id)
        }

        pub fn identity(&self) -> String {
            self.1.clone()
        }
    }

    /// Lowers RLIMIT_NOFILE so that every descriptor slot is in use, then
    /// checks that each call that needs a descriptor fails with EMFILE and
    /// leaves the set of open descriptors exactly as it was.
    pub fn exhaustion_child() {
        fn open_fds(limit: i32) -> Vec<i32> {
            // SAFETY: F_GETFD only reads the flags of `fd`, if it is open.
            #[allow(unsafe_code)]
            (0..limit)
                .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
                .collect()
        }
        #[track_caller]
        fn assert_emfile<T: std::fmt::Debug>(result: io::Result<T>, what: &str) {
            let err = result.expect_err(what);
            assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{what}: {err}");
        }

        let highest = *open_fds(4096).last().unwrap();
        let limit = highest + 16;
        let rlimit = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the rlimit struct we pass.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) };
        assert_eq!(ret, 0, "setrlimit: {}", io::Error::last_os_error());

        // Fill every free slot below the limit.
        let (reader, writer) = pipe().unwrap();
        let mut clones = Vec::new();
        loop {
            match writer.try_clone() {
                Ok(clone) => clones.push(clone),
                Err(err) => {
                    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
                    break;
                }
            }
        }
        let before = open_fds(limit);
        assert_emfile(pipe(), "pipe() with no free slot");
        assert_emfile(reader.try_clone(), "PipeReader::try_clone");
        assert_emfile(writer.try_clone(), "PipeWriter::try_clone");
        assert_emfile(pipekit::dup_stdin(), "dup_stdin");
        assert_emfile(pipekit::dup_stdout(), "dup_stdout");
        assert_eq!(open_fds(limit), before, "a failed call leaked a descriptor");

        // One free slot: a pipe needs two, so it must fail without keeping
        // the one it could get.
        clones.pop();
        let before = open_fds(limit);
        assert_emfile(pipe(), "pipe() with one free slot");
        assert_eq!(
            open_fds(limit),
            before,
            "a half-made pipe leaked a descriptor"
        );
        // ...while a clone fits.
        let last = reader.try_clone().unwrap();
        drop(last);
        assert_eq!(open_fds(limit), before);
        println!("ok");
    }

    /// As an unprivileged user (dropping root first if need be, so that
    /// CAP_SYS_RESOURCE is gone), asks for more than pipe-max-size allows.
    #[cfg(target_os = "linux")]
    pub fn capacity_above_limit_child() {
        // SAFETY: geteuid, setgid and setuid take plain integers; this child
        // process is single-threaded, so the ids change for all of it.
        #[allow(unsafe_code)]
        unsafe {
            if libc::geteuid() == 0 {
                assert_eq!(
                    libc::setgid(65534),
                    0,
                    "setgid: {}",
                    io::Error::last_os_error()
                );
                assert_eq!(
                    libc::setuid(65534),
                    0,
                    "setuid: {}",
                    io::Error::last_os_error()
                );
            }
        }
        let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (reader, _writer) = pipe().unwrap();
        let before = reader.capacity().unwrap();
        let err = reader.set_capacity(max + 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let message = err.to_string();
        assert!(message.contains("pipe-max-size"), "{message}");
        assert!(message.contains(&format!("({max} bytes)")), "{message}");
        assert_eq!(
            reader.capacity().unwrap(),
            before,
            "a refused resize changed the pipe"
        );

        let err = pipekit::PipeOptions::new()
            .capacity(max + 1)
            .create()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("pipe-max-size"), "{err}");
        println!("ok");
    }
}

#[cfg(windows)]
mod os {
    use super::*;
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
    use windows_sys::Win32::Foundation::{
        DuplicateHandle, GetHandleInformation, DUPLICATE_SAME_ACCESS, HANDLE,
    };
    use windows_sys::Win32::Storage::FileSystem::{GetFileType, FILE_TYPE_PIPE};
    use windows_sys::Win32::System::Console::{
        GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    /// A handle's identity is its value: an inherited handle keeps the
    /// parent's value in the child.
    fn identity(handle: RawHandle) -> String {
        format!("{:#x}", handle as usize)
    }

    pub fn identity_of_reader(reader: &PipeReader) -> String {
        identity(reader.as_raw_handle())
    }

    pub fn identity_of_writer(writer: &PipeWriter) -> String {
        identity(writer.as_raw_handle())
    }

    /// Every pipe handle among the first 16384 handle values, other than
    /// this process's standard handles.
    pub fn pipes_held_by_this_process() -> Vec<String> {
        // SAFETY: GetStdHandle only reads this process's parameters.
        #[allow(unsafe_code)]
        let std_handles: Vec<HANDLE> = unsafe {
            [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE]
                .iter()
                .map(|&which| GetStdHandle(which))
                .collect()
        };
        (1..4096usize)
            .map(|i| (i * 4) as HANDLE)
            .filter(|h| !std_handles.contains(h))
            .filter(|&h| {
                let mut flags = 0;
                // SAFETY: both calls take a handle value and fail cleanly
                // (FALSE, FILE_TYPE_UNKNOWN) when it is not a valid handle;
                // neither closes nor changes it.
                #[allow(unsafe_code)]
                unsafe {
                    GetHandleInformation(h, &mut flags) != 0 && GetFileType(h) == FILE_TYPE_PIPE
                }
            })
            .map(|h| identity(h as RawHandle))
            .collect()
    }

    /// A duplicate made inheritable: the control for the inheritance tests.
    pub struct InheritableDuplicate(#[allow(dead_code)] OwnedHandle, String);

    impl InheritableDuplicate {
        pub fn new(reader: &PipeReader) -> Self {
            let mut dup: HANDLE = std::ptr::null_mut();
            // SAFETY: the source handle is open for the duration of the
            // call, `dup` is a valid out-pointer, and a successful result is
            // a new handle nothing else owns, taken over at once.
            #[allow(unsafe_code)]
            let handle = unsafe {
                let process = GetCurrentProcess();
                let ok = DuplicateHandle(
                    process,
                    reader.as_raw_handle() as HANDLE,
                    process,
                    &mut dup,
                    0,
                    1, // inheritable
                    DUPLICATE_SAME_ACCESS,
                );
                assert_ne!(ok, 0, "DuplicateHandle: {}", io::Error::last_os_error());
                OwnedHandle::from_raw_handle(dup as RawHandle)
            };
            let id = identity(handle.as_raw_handle());
            Self(handle, id)
        }

        pub fn identity(&self) -> String {
            self.1.clone()
        }
    }
}
