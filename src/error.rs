//! The errors pipekit makes itself, as opposed to those the system returns.
//!
//! Each is an [`io::Error`] of the right kind whose message starts with
//! `pipekit:` and names what failed. When the system's error is the cause,
//! it is kept as the error's [`source`](std::error::Error::source), so that
//! `raw_os_error` stays reachable by downcasting, and the message names the
//! errno or Windows error instead of repeating its text (the API guidelines'
//! rule for error chains).

use std::error::Error;
use std::fmt;
use std::io;

/// A message that explains a system error.
#[derive(Debug)]
struct Explained {
    message: String,
    cause: io::Error,
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Explained {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.cause)
    }
}

/// Wraps the system error `cause` with `message`, keeping its kind.
pub(crate) fn explain(cause: io::Error, message: String) -> io::Error {
    io::Error::new(cause.kind(), Explained { message, cause })
}

/// An option or call this platform cannot honour. (Linux honours every
/// option of its backend, so there it has no caller.)
#[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
pub(crate) fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "pipekit: {what} is not supported on {}",
            std::env::consts::OS
        ),
    )
}

/// An argument pipekit rejects before making any system call.
pub(crate) fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
