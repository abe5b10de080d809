//! The backend for targets that are neither Unix nor Windows.
//!
//! It exists so that a crate depending on pipekit still builds there (for
//! example when pipekit is an unused, transitive dependency): every function
//! fails at run time with [`io::ErrorKind::Unsupported`], and no pipe end can
//! ever exist, so the methods on one are unreachable by construction.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::process::Stdio;
use std::time::Duration;

use crate::error::unsupported;

/// A pipe end that cannot exist on this target.
pub(crate) enum Pipe {}

impl fmt::Debug for Pipe {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
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

pub(crate) fn create(_: &crate::PipeOptions) -> io::Result<(Pipe, Pipe)> {
    Err(unsupported("pipe()"))
}

impl Pipe {
    pub(crate) fn set_nonblocking(&self, _: bool) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn nonblocking(&self) -> io::Result<bool> {
        match *self {}
    }

    pub(crate) fn capacity(&self) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn set_capacity(&self, _: usize) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn bytes_available(&self) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn check_timeouts(&self) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn read_timeout(&self, _: &mut [u8], _: Duration) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn write_timeout(&self, _: &[u8], _: Duration) -> io::Result<usize> {
        match *self {}
    }
}

/// The communicate engine: no pipe end can exist here, so every input and
/// output is already closed and there is nothing to drive.
pub(crate) mod communicate {
    use std::io;
    use std::time::Instant;

    use crate::communicate::{Input, OutputPipe};

    /// What a run leaves in flight on a pipe for the next: nothing.
    pub(crate) type InFlight = ();

    pub(crate) fn drive(
        inputs: &mut [Input<'_>],
        outputs: &mut [OutputPipe<'_>],
        _deadline: Option<Instant>,
    ) -> io::Result<()> {
        for input in inputs.iter() {
            if let Some(pipe) = input.pipe() {
                match *pipe.inner() {}
            }
        }
        for output in outputs.iter() {
            if let Some(pipe) = output.pipe() {
                match *pipe.inner() {}
            }
        }
        Ok(())
    }
}
