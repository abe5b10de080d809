//! Overlapped pipe ends on tokio's IOCP reactor, for `pipekit::tokio`.
//!
//! An overlapped end of an unnamed NT named pipe is what tokio's named-pipe
//! types drive: `NamedPipeServer::from_raw_handle` for the pipe's server end
//! (pipekit's reader, and the end std keeps for itself from a child's
//! output), `NamedPipeClient::from_raw_handle` for its client end. Each
//! read and write is an overlapped operation completed through the
//! reactor's completion port; no thread waits on it.
//!
//! Also the process tree of a child spawned by `pipekit::tokio`'s exchange:
//! a job object, as for the blocking exchange (see `job.rs`), for a child
//! that tokio spawned.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, IntoRawHandle, RawHandle};
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::windows::named_pipe::{NamedPipeClient, NamedPipeServer};
use ::tokio::process::{Child, Command};
use windows_sys::Win32::System::Pipes::{GetNamedPipeInfo, PIPE_SERVER_END};
use windows_sys::Win32::System::Threading::CREATE_SUSPENDED;

pub(crate) use super::job::Tree;
use super::{cvt, Mode, Pipe};

/// One overlapped pipe end registered with the current runtime's reactor.
#[derive(Debug)]
pub(crate) enum End {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

/// Calls the same method on whichever end `$end` is.
macro_rules! dispatch {
    ($end:expr, $pipe:ident => $call:expr) => {
        match $end {
            End::Server($pipe) => $call,
            End::Client($pipe) => $call,
        }
    };
}

/// Registers `pipe` with the reactor of the current runtime, which the
/// caller has checked exists.
///
/// A synchronous handle is refused with `InvalidInput`, naming `option`
/// (`overlapped_reader` or `overlapped_writer`): its reads and writes would
/// block a runtime thread. The handle is closed on every error.
pub(crate) fn register(pipe: Pipe, option: &str) -> io::Result<End> {
    if pipe.mode != Mode::Overlapped {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pipekit: a synchronous pipe end cannot be driven by tokio's reactor; \
                 create it with PipeOptions::{option}(true)"
            ),
        ));
    }
    let server = is_server_end(&pipe).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("pipekit: GetNamedPipeInfo on a pipe end for tokio failed: {e}"),
        )
    })?;
    let handle: RawHandle = pipe.handle.into_raw_handle();
    let end = if server {
        // SAFETY: `handle` is an open overlapped handle to the server end of
        // a named pipe, and ownership passes here (the tokio type, or on
        // failure the mio type inside it, closes it).
        unsafe { NamedPipeServer::from_raw_handle(handle) }.map(End::Server)
    } else {
        // SAFETY: as above, for the client end.
        unsafe { NamedPipeClient::from_raw_handle(handle) }.map(End::Client)
    };
    end.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("pipekit: registering a pipe end with tokio's reactor failed: {e}"),
        )
    })
}

/// Whether `pipe` is its pipe's server end. tokio's two named-pipe types
/// drive a handle the same way (both wrap mio's `NamedPipe`); the server type
/// adds `connect`/`disconnect`, which an unnamed pipe never needs. So a
/// handle that may not be asked (std's `ChildStdin`, opened without
/// read-attributes access) is taken as what it is whenever std made it: the
/// server end, std's own end of the pipe it creates for a child.
fn is_server_end(pipe: &Pipe) -> io::Result<bool> {
    let mut flags = 0;
    // SAFETY: `pipe` owns an open handle for the duration of the call;
    // `flags` is a writable local and the other out-pointers may be NULL.
    let asked = cvt(unsafe {
        GetNamedPipeInfo(
            pipe.raw(),
            &mut flags,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    });
    match asked {
        Ok(_) => Ok(flags & PIPE_SERVER_END != 0),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(true),
        Err(e) => Err(e),
    }
}

impl End {
    pub(crate) async fn readable(&self) -> io::Result<()> {
        dispatch!(self, p => p.readable().await)
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        dispatch!(self, p => p.writable().await)
    }

    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, p => p.poll_read_ready(cx))
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, p => p.poll_write_ready(cx))
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        dispatch!(self, p => p.try_read(buf))
    }

    pub(crate) fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        dispatch!(self, p => p.try_read_vectored(bufs))
    }

    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        dispatch!(self, p => p.try_write(buf))
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        dispatch!(self, p => p.try_write_vectored(bufs))
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        dispatch!(self, p => Pin::new(p).poll_read(cx, buf))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, p => Pin::new(p).poll_write(cx, buf))
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, p => Pin::new(p).poll_write_vectored(cx, bufs))
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, p => Pin::new(p).poll_flush(cx))
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, p => Pin::new(p).poll_shutdown(cx))
    }
}

impl AsHandle for End {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        dispatch!(self, p => p.as_handle())
    }
}

impl AsRawHandle for End {
    fn as_raw_handle(&self) -> RawHandle {
        dispatch!(self, p => p.as_raw_handle())
    }
}

/// Spawns `command` suspended, puts it into a new job object, resumes it,
/// and returns it with its job. The command's creation flags are
/// `CREATE_SUSPENDED` for the spawn, and 0 afterwards. On an error after the
/// spawn the child is killed (tokio reaps it).
pub(crate) fn spawn_tree(command: &mut Command) -> io::Result<(Child, Tree)> {
    command.creation_flags(CREATE_SUSPENDED);
    let spawned = command.spawn();
    command.creation_flags(0);
    let mut child = spawned?;
    let adopted = match (child.raw_handle(), child.id()) {
        (Some(process), Some(id)) => {
            // SAFETY: the handle belongs to `child`, which is not reaped (it
            // has its id) and outlives this borrow.
            let process = unsafe { BorrowedHandle::borrow_raw(process) };
            Tree::adopt(process, id)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::Other,
            "pipekit: a child spawned suspended has already been reaped",
        )),
    };
    match adopted {
        Ok(tree) => Ok((child, tree)),
        Err(err) => {
            let _ = child.start_kill();
            Err(err)
        }
    }
}
