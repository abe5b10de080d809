//! The handle traits and the conversions from std's child pipes, for both
//! ends. Every handle taken over is asked once how it was opened.

use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, IntoRawHandle, OwnedHandle, RawHandle,
};
use std::process::{ChildStderr, ChildStdin, ChildStdout};

use super::{Pipe, Role};
use crate::{PipeReader, PipeWriter};

/// The handle traits and conversions, the same for both ends.
macro_rules! handle_impls {
    ($end:ident, $role:expr) => {
        impl AsHandle for $end {
            fn as_handle(&self) -> BorrowedHandle<'_> {
                self.inner().handle.as_handle()
            }
        }

        impl AsRawHandle for $end {
            fn as_raw_handle(&self) -> RawHandle {
                self.inner().handle.as_raw_handle()
            }
        }

        impl IntoRawHandle for $end {
            fn into_raw_handle(self) -> RawHandle {
                self.into_inner().handle.into_raw_handle()
            }
        }

        impl FromRawHandle for $end {
            /// Takes ownership of `handle`, which should be a pipe end open
            /// for the matching direction (any file handle works, as with
            /// `File`), for synchronous or overlapped I/O: which one is
            /// asked once, here.
            ///
            /// # Safety
            ///
            /// `handle` must be open and owned by nothing else: it is closed
            /// when the result is dropped.
            unsafe fn from_raw_handle(handle: RawHandle) -> Self {
                // SAFETY: the caller passes ownership of an open handle.
                let handle = unsafe { OwnedHandle::from_raw_handle(handle) };
                Self::from_inner(Pipe::from_foreign(handle, $role))
            }
        }

        impl From<OwnedHandle> for $end {
            /// Takes over `handle`, opened for synchronous or overlapped
            /// I/O; one `NtQueryInformationFile` tells which.
            fn from(handle: OwnedHandle) -> Self {
                Self::from_inner(Pipe::from_foreign(handle, $role))
            }
        }

        impl From<$end> for OwnedHandle {
            fn from(end: $end) -> OwnedHandle {
                end.into_inner().handle
            }
        }

        // Only compiled when build.rs found Rust 1.87 or later; the
        // internal cfg is kept out of the rendered docs (lib.rs), which say
        // "Rust 1.87 or later" instead.
        #[cfg(pipekit_std_pipe)]
        #[allow(clippy::incompatible_msrv)]
        #[doc = concat!(
            "Converts std's [`std::io::", stringify!($end), "`] into a pipekit [`",
            stringify!($end), "`].\n\n",
            "Available when pipekit is built with Rust 1.87 or later, which added std's pipe types."
        )]
        impl From<std::io::$end> for $end {
            /// Takes over a pipe end made by `std::io::pipe` (synchronous,
            /// which one `NtQueryInformationFile` confirms).
            fn from(end: std::io::$end) -> Self {
                Self::from_inner(Pipe::from_foreign(OwnedHandle::from(end), $role))
            }
        }

        #[cfg(pipekit_std_pipe)]
        #[allow(clippy::incompatible_msrv)]
        #[doc = concat!(
            "Converts a pipekit [`", stringify!($end), "`] into std's [`std::io::",
            stringify!($end), "`], relaying an overlapped end through a synchronous pipe.\n\n",
            "Available when pipekit is built with Rust 1.87 or later, which added std's pipe types."
        )]
        impl From<$end> for std::io::$end {
            /// Hands the end to std, which reads and writes it as a
            /// synchronous handle: a synchronous end as it is (no system
            /// call); an overlapped one through a synchronous pipe and a
            /// thread that relays between the two, as `Into<Stdio>` does.
            fn from(end: $end) -> Self {
                Self::from(end.into_inner().into_synchronous())
            }
        }
    };
}

handle_impls!(PipeReader, Role::Reader);
handle_impls!(PipeWriter, Role::Writer);

impl From<ChildStdout> for PipeReader {
    /// Takes over a child's standard output pipe, which std opens for
    /// overlapped I/O (one `NtQueryInformationFile` confirms the mode) and
    /// without the right to change its mode: the handle is duplicated with
    /// `FILE_WRITE_ATTRIBUTES` added where the system allows it.
    fn from(stdout: ChildStdout) -> Self {
        Self::from_inner(Pipe::from_child_output(OwnedHandle::from(stdout)))
    }
}

impl From<ChildStderr> for PipeReader {
    /// Takes over a child's standard error pipe, which std opens for
    /// overlapped I/O (one `NtQueryInformationFile` confirms the mode) and
    /// without the right to change its mode: the handle is duplicated with
    /// `FILE_WRITE_ATTRIBUTES` added where the system allows it.
    fn from(stderr: ChildStderr) -> Self {
        Self::from_inner(Pipe::from_child_output(OwnedHandle::from(stderr)))
    }
}

impl From<ChildStdin> for PipeWriter {
    /// Takes over a child's standard input pipe, which std opens for
    /// overlapped I/O (one `NtQueryInformationFile` confirms the mode) and
    /// without the right to ask its mode and size: the handle is duplicated
    /// with `FILE_READ_ATTRIBUTES` added where the system allows it, and its
    /// mode is tracked from std's `PIPE_WAIT` otherwise.
    fn from(stdin: ChildStdin) -> Self {
        Self::from_inner(Pipe::from_child_stdin(OwnedHandle::from(stdin)))
    }
}
