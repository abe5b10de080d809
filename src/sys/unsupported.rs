//! The backend for targets that are neither Unix nor Windows.
//!
//! It exists so that a crate depending on pipekit still builds there (for
//! example when pipekit is an unused, transitive dependency): every function
//! fails at run time with [`io::ErrorKind::Unsupported`], and no pipe end can
//! ever exist, so the methods on one are unreachable by construction.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::process::Stdio;

/// A pipe end that cannot exist on this target.
pub(crate) enum Pipe {}

impl fmt::Debug for Pipe {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("pipekit: {what} is not supported on this platform"),
    )
}

pub(crate) fn pipe() -> io::Result<(Pipe, Pipe)> {
    Err(unsupported("pipe()"))
}

pub(crate) fn dup_stdin() -> io::Result<Pipe> {
    Err(unsupported("dup_stdin()"))
}

pub(crate) fn dup_stdout() -> io::Result<Pipe> {
    Err(unsupported("dup_stdout()"))
}

pub(crate) fn dup_stderr() -> io::Result<Pipe> {
    Err(unsupported("dup_stderr()"))
}

impl Pipe {
    pub(crate) fn read(&self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn read_vectored(&self, _: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn write(&self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn write_vectored(&self, _: &[IoSlice<'_>]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn try_clone(&self) -> io::Result<Pipe> {
        match *self {}
    }

    pub(crate) fn into_stdio(self) -> Stdio {
        match self {}
    }
}
