//! Helpers shared by the integration tests.

#![allow(dead_code, unused_macros)] // each test crate uses a different subset

use std::env;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::panic;
use std::path::PathBuf;
use std::process::{self, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The bound after which a blocked test is declared deadlocked. Generous,
/// because tests also run under wine on a loaded 2-core machine; a passing
/// test never waits for it.
pub const DEADLOCK: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and returns its result, or panics if it has
/// not finished within [`DEADLOCK`]: a hang becomes a failure. A panic in
/// `f` is propagated with its original message.
#[track_caller]
pub fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let value = f();
        let _ = done_tx.send(());
        value
    });
    match done_rx.recv_timeout(DEADLOCK) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: still blocked after {DEADLOCK:?}; a deadlock")
        }
    }
}

/// `len` bytes of a pattern that does not repeat with any power-of-two
/// period, so that a lost, duplicated or reordered chunk is detected.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            // xorshift32
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Asserts that `got` equals `want` without printing megabytes on failure:
/// the lengths, then the first byte that differs.
#[track_caller]
pub fn assert_same(got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("first difference at byte {at} of {}", want.len());
    }
}

/// Writes `data` into `writer` from a new thread, then closes the writer.
pub fn feed(mut writer: impl Write + Send + 'static, data: &[u8]) -> thread::JoinHandle<()> {
    let data = data.to_vec();
    thread::spawn(move || writer.write_all(&data).unwrap())
}

/// Reads `reader` to the end on a new thread.
pub fn collect(mut reader: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        bytes
    })
}

/// A file in the temporary directory, removed when dropped (also when the
/// test panics). The name holds the tag, the process id and a counter, so
/// that tests running at once never share a file.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(tag: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("pipekit-test-{tag}-{}-{n}", process::id());
        TempFile(env::temp_dir().join(name))
    }

    /// Creates (or truncates) the file and opens it for writing.
    pub fn create(&self) -> File {
        File::create(&self.0).unwrap()
    }

    /// Writes `data` as the file's content and opens it for reading.
    pub fn with(&self, data: &[u8]) -> File {
        fs::write(&self.0, data).unwrap();
        File::open(&self.0).unwrap()
    }

    /// Opens the existing file with `O_APPEND`.
    #[cfg(unix)]
    pub fn append(&self) -> File {
        fs::OpenOptions::new().append(true).open(&self.0).unwrap()
    }

    /// The file's content.
    pub fn read(&self) -> Vec<u8> {
        fs::read(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// `/dev/null`, open for writing.
#[cfg(unix)]
pub fn dev_null() -> File {
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap()
}

// -- the self-exec harness of the `harness = false` test binaries ------------

/// The variable that makes a test binary act as a child: its value is the
/// role to play.
pub const ROLE: &str = "PIPEKIT_TEST_CHILD";

/// A test of a `harness = false` binary: its name and its function.
pub type Test = (&'static str, fn());

/// The table of tests: each entry is a function's name, with its attributes.
macro_rules! tests {
    ($($(#[$attr:meta])* $name:ident,)*) => {
        &[$($(#[$attr])* (stringify!($name), $name as fn()),)*]
    };
}

/// The role this process was started to play, if it is a child.
pub fn child_role() -> Option<String> {
    env::var(ROLE).ok()
}

/// A command that runs this same binary as the child `role`.
pub fn child(role: &str) -> Command {
    let mut command = Command::new(env::current_exe().expect("current_exe"));
    command.env(ROLE, role);
    command
}

/// Runs `tests` one after the other, each under the [`watchdog`], and exits:
/// one line per test, a closing `N passed, M failed` line, and a non-zero
/// status if any failed. Arguments that do not start with `-` filter tests by
/// substring, as libtest does.
pub fn run_tests(tests: &[Test]) -> ! {
    let filters: Vec<String> = env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for &(name, test) in selected.iter().copied() {
        let outcome = panic::catch_unwind(move || watchdog(test));
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\n{} passed, {} failed",
        selected.len() - failed.len(),
        failed.len()
    );
    process::exit(if failed.is_empty() { 0 } else { 1 })
}

#[cfg(target_os = "linux")]
/// Installs a seccomp filter under which the system call `nr` fails with
/// `errno` and
/// every other system call is allowed. It applies to the calling thread and
/// to the threads it spawns afterwards, not to the rest of the process.
///
/// A test device, not a sandbox: it does not check the architecture of the
/// call, which a security filter must.
#[allow(unsafe_code)]
pub fn forbid_syscall(nr: libc::c_long, errno: i32) {
    let instruction = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let filter = [
        // A = seccomp_data.nr, the first field.
        instruction(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        // nr? go on to the next instruction; else skip it.
        instruction(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, nr as u32),
        instruction(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | errno as u32,
        ),
        instruction(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with these options reads nothing but `program`, which
    // points to `filter`; both outlive the call (the kernel copies the
    // program). No-new-privileges is required for an unprivileged filter.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let ret = libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &program as *const libc::sock_fprog,
        );
        assert_eq!(ret, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

/// Runs `wait` on a new thread while this thread sends that thread SIGUSR2
/// as fast as it can (a handler without `SA_RESTART` counts deliveries), until
/// `wait` returns. Returns what `wait` returned and how many signals arrived.
///
/// Each signal interrupts whatever system call the thread is blocked in, so
/// this checks that a wait is neither shortened nor lengthened by `EINTR`.
#[cfg(unix)]
pub fn under_signal_barrage<T: Send + 'static>(
    wait: impl FnOnce() -> T + Send + 'static,
) -> (T, usize) {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    static DELIVERED: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn on_signal(_: libc::c_int) {
        DELIVERED.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: installs a handler that only touches an atomic (which is
    // async-signal-safe), without SA_RESTART, for SIGUSR2, which nothing
    // else in the test binaries uses.
    #[allow(unsafe_code)]
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        assert_eq!(libc::sigemptyset(&mut action.sa_mask), 0);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }

    let done = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let waiting = {
        let done = done.clone();
        thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            #[allow(unsafe_code)]
            tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
            // A panic in `wait` must still stop the signaller and finish the
            // handshake; it is resumed after the join, as itself.
            let result = panic::catch_unwind(panic::AssertUnwindSafe(wait));
            done.store(true, Ordering::SeqCst);
            // Stay alive until the signaller has stopped, so that it never
            // signals a thread that has exited.
            release_rx.recv().unwrap();
            result
        })
    };
    let tid = tid_rx.recv().unwrap();
    let before = DELIVERED.load(Ordering::Relaxed);
    while !done.load(Ordering::SeqCst) {
        // SAFETY: `tid` is a live thread: it cannot exit before it receives
        // on `release_rx`, which happens after this loop.
        #[allow(unsafe_code)]
        let sent = unsafe { libc::pthread_kill(tid, libc::SIGUSR2) };
        assert_eq!(sent, 0);
        thread::yield_now();
    }
    release_tx.send(()).unwrap();
    let outcome = waiting.join().expect("the waiting thread caught its panic");
    let delivered = DELIVERED.load(Ordering::Relaxed) - before;
    match outcome {
        Ok(result) => (result, delivered),
        Err(panic) => panic::resume_unwind(panic),
    }
}

/// Processes by pid on Windows, for tests that check that a process (a
/// grandchild, a killed tree) is gone.
#[cfg(windows)]
pub mod pids {
    use windows_sys::Win32::Foundation::{
        CloseHandle, GetLastError, ERROR_INVALID_PARAMETER, STILL_ACTIVE, WAIT_OBJECT_0,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, TerminateProcess, WaitForSingleObject,
        PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
    };

    /// Runs `f` on a handle to process `pid`, or returns `None` if there is
    /// no such process.
    fn with_process<T>(pid: u32, access: u32, f: impl FnOnce(isize) -> T) -> Option<T> {
        // SAFETY: OpenProcess takes an access mask, a flag and a pid.
        #[allow(unsafe_code)]
        let handle = unsafe { OpenProcess(access, 0, pid) };
        if handle.is_null() {
            // SAFETY: reads this thread's last error.
            #[allow(unsafe_code)]
            let error = unsafe { GetLastError() };
            assert_eq!(error, ERROR_INVALID_PARAMETER, "OpenProcess({pid})");
            return None;
        }
        let value = f(handle as isize);
        // SAFETY: `handle` was opened above and is closed once.
        #[allow(unsafe_code)]
        unsafe {
            CloseHandle(handle)
        };
        Some(value)
    }

    /// Waits (for at most 30 s) until process `pid` has ended; `true` if it
    /// did, or if there is no such process.
    pub fn wait_gone(pid: u32) -> bool {
        with_process(
            pid,
            PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
            |handle| {
                // SAFETY: `handle` is open for the call.
                #[allow(unsafe_code)]
                let waited = unsafe { WaitForSingleObject(handle as _, 30_000) };
                waited == WAIT_OBJECT_0 && exit_code(handle) != STILL_ACTIVE as u32
            },
        )
        .unwrap_or(true)
    }

    /// Whether process `pid` has ended now, without waiting.
    pub fn gone_now(pid: u32) -> bool {
        with_process(pid, PROCESS_QUERY_LIMITED_INFORMATION, |handle| {
            exit_code(handle) != STILL_ACTIVE as u32
        })
        .unwrap_or(true)
    }

    fn exit_code(handle: isize) -> u32 {
        let mut code = 0;
        // SAFETY: `handle` is open, and `code` a valid u32.
        #[allow(unsafe_code)]
        let ok = unsafe { GetExitCodeProcess(handle as _, &mut code) };
        assert_ne!(ok, 0, "GetExitCodeProcess");
        code
    }

    pub fn kill(pid: u32) {
        with_process(pid, PROCESS_TERMINATE, |handle| {
            // SAFETY: `handle` is open for the call.
            #[allow(unsafe_code)]
            let ok = unsafe { TerminateProcess(handle as _, 1) };
            assert_ne!(ok, 0, "TerminateProcess");
        })
        .expect("the process exists");
    }
}
