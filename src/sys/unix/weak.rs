//! C functions that only newer systems export, looked up by name at run
//! time, once per process.
//!
//! Recent releases of Apple's systems export `pipe2`; a binary built for an
//! older release must still start there, so the symbol cannot be linked
//! directly. `dlsym(RTLD_DEFAULT, name)` finds it
//! when the running system has it, and the answer is cached in an atomic.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The handle `dlsym` searches every loaded image through.
#[cfg(target_vendor = "apple")]
const RTLD_DEFAULT: *mut libc::c_void = libc::RTLD_DEFAULT;
/// glibc's `RTLD_DEFAULT` (`((void *) 0)`), which the libc crate does not
/// declare; used by the unit tests only.
#[cfg(not(target_vendor = "apple"))]
const RTLD_DEFAULT: *mut libc::c_void = std::ptr::null_mut();

/// The cached value before the first lookup.
const UNRESOLVED: usize = 0;
/// The cached value when the running system lacks the symbol.
const ABSENT: usize = 1;

/// A C function, looked up the first time it is needed.
pub(super) struct Weak {
    /// The symbol's name, NUL-terminated.
    name: &'static [u8],
    /// `UNRESOLVED`, `ABSENT`, or the function's address.
    addr: AtomicUsize,
}

impl Weak {
    /// `name` must end with a NUL byte.
    pub(super) const fn new(name: &'static [u8]) -> Weak {
        Weak {
            name,
            addr: AtomicUsize::new(UNRESOLVED),
        }
    }

    /// The function's address, or `None` if the running system lacks it.
    ///
    /// Threads that race on the first call each look the symbol up and
    /// store the same answer. `Relaxed` is enough: the address is the whole
    /// of what is shared, and the code it points to is immutable.
    pub(super) fn get(&self) -> Option<usize> {
        let addr = match self.addr.load(Ordering::Relaxed) {
            UNRESOLVED => {
                let found = self.lookup();
                self.addr.store(found, Ordering::Relaxed);
                found
            }
            cached => cached,
        };
        (addr != ABSENT).then_some(addr)
    }

    fn lookup(&self) -> usize {
        assert_eq!(self.name.last(), Some(&0), "symbol names end with NUL");
        // SAFETY: `name` is a NUL-terminated string that lives for the whole
        // program (checked above), and RTLD_DEFAULT is a handle dlsym
        // accepts on every system this module is built for.
        let addr = unsafe { libc::dlsym(RTLD_DEFAULT, self.name.as_ptr().cast()) } as usize;
        if addr == UNRESOLVED || addr == ABSENT {
            ABSENT
        } else {
            addr
        }
    }
}

/// `int pipe2(int fildes[2], int flags)`, as Apple's `<sys/unistd.h>`
/// declares it.
pub(super) type Pipe2 = unsafe extern "C" fn(*mut libc::c_int, libc::c_int) -> libc::c_int;

static PIPE2: Weak = Weak::new(b"pipe2\0");

/// The system's `pipe2`, where the running system has one.
pub(super) fn pipe2() -> Option<Pipe2> {
    PIPE2.get().map(|addr| {
        // SAFETY: `addr` is the address dlsym returned for the C function
        // `pipe2`, whose signature is `Pipe2` on every system that has it;
        // a function address and a `usize` have the same size.
        unsafe { std::mem::transmute::<usize, Pipe2>(addr) }
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;

    // glibc has had `pipe2` since 2.9, so the lookup the Apple targets make
    // at run time can be exercised here.
    #[test]
    fn resolves_pipe2_once_and_it_opens_close_on_exec_ends() {
        let first = pipe2().expect("glibc exports pipe2");
        assert_ne!(PIPE2.addr.load(Ordering::Relaxed), UNRESOLVED);
        let again = pipe2().expect("glibc exports pipe2");
        assert_eq!(first as usize, again as usize);

        let mut fds = [-1; 2];
        // SAFETY: `fds` is a writable array of two `c_int`s.
        assert_eq!(unsafe { first(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 succeeded, so both fds are open and unowned.
        let ends = unsafe { [OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])] };
        for end in &ends {
            // SAFETY: the fd is open for the duration of the call.
            let flags = unsafe { libc::fcntl(end.as_raw_fd(), libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        }
    }

    #[test]
    fn a_missing_symbol_is_absent_and_cached_as_such() {
        let missing = Weak::new(b"pipekit_no_such_symbol\0");
        assert_eq!(missing.get(), None);
        assert_eq!(missing.addr.load(Ordering::Relaxed), ABSENT);
        assert_eq!(missing.get(), None);
    }
}
