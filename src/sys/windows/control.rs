//! Pipe control on Windows: creation options, nonblocking mode
//! (`PIPE_NOWAIT`), capacity, bytes available, and reads and writes with a
//! timeout on overlapped ends.

use std::io;
use std::ptr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_PIPE_BUSY};
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeHandleStateW, GetNamedPipeInfo, PeekNamedPipe, SetNamedPipeHandleState,
    PIPE_NOWAIT, PIPE_READMODE_BYTE, PIPE_SERVER_END, PIPE_WAIT,
};

use super::{
    create_pipe, cvt, is_error, nt, read_result, write_result, Mode, Pipe, Role, Transfer,
    MODE_NOWAIT, MODE_UNKNOWN, MODE_WAIT, PIPE_SIZE,
};
use crate::error::{explain, unsupported};
use crate::PipeOptions;

/// How much a timed write moves at a time to a pipe whose capacity cannot
/// be asked: the buffer `CreatePipe` gives a pipe by default, and the chunk
/// std's pipe relay moves. (A pipe can be made smaller, but rarely is.)
const UNKNOWN_CAPACITY_CHUNK: usize = 4096;

/// Opens a pipe with `options`. `capacity` has been checked to be 1 to
/// `i32::MAX`.
pub(crate) fn create(options: &PipeOptions) -> io::Result<(Pipe, Pipe)> {
    if options.packet_mode {
        return Err(unsupported("packet mode (O_DIRECT pipes)"));
    }
    let quota = options.capacity.map_or(PIPE_SIZE, |bytes| bytes as u32);
    let overlapped = options.overlapped_reader || options.overlapped_writer;
    let created = if overlapped {
        nt_pipe(quota, options.overlapped_reader, options.overlapped_writer)
    } else {
        create_pipe(quota)
    };
    let (reader, writer) = match (created, options.capacity) {
        (Ok(ends), _) => ends,
        // The quota is the one option that can make the creation fail.
        (Err(err), Some(bytes)) => {
            let call = if overlapped {
                "NtCreateNamedPipeFile"
            } else {
                "CreatePipe"
            };
            return Err(explain_option(
                err,
                format!("{call} with a buffer quota of {bytes} bytes (PipeOptions::capacity)"),
            ));
        }
        (Err(err), None) => return Err(err),
    };
    for (end, nonblocking, option) in [
        (&reader, options.reader_nonblocking, "reader_nonblocking"),
        (&writer, options.writer_nonblocking, "writer_nonblocking"),
    ] {
        if nonblocking {
            end.set_nonblocking(true).map_err(|err| {
                explain_option(
                    err,
                    format!("SetNamedPipeHandleState(PIPE_NOWAIT) (PipeOptions::{option})"),
                )
            })?;
        }
    }
    Ok((reader, writer))
}

/// An unnamed NT pipe whose ends are overlapped as asked; the mode of each
/// is known from how it was opened.
fn nt_pipe(
    quota: u32,
    overlapped_reader: bool,
    overlapped_writer: bool,
) -> io::Result<(Pipe, Pipe)> {
    let (reader, writer) = nt::pipe(quota, overlapped_reader, overlapped_writer)?;
    let mode = |overlapped| {
        if overlapped {
            Mode::Overlapped
        } else {
            Mode::Synchronous
        }
    };
    Ok((
        Pipe::with(
            reader,
            mode(overlapped_reader),
            Role::Reader,
            MODE_WAIT,
            quota as usize,
        ),
        Pipe::with(
            writer,
            mode(overlapped_writer),
            Role::Writer,
            MODE_WAIT,
            quota as usize,
        ),
    ))
}

/// Names the call and the option that failed, keeping the system's error as
/// the source.
fn explain_option(err: io::Error, what: String) -> io::Error {
    let message = match err.raw_os_error() {
        Some(code) => format!("pipekit: {what} failed (Windows error {code})"),
        None => format!("pipekit: {what} failed"),
    };
    explain(err, message)
}

impl Pipe {
    /// `PIPE_NOWAIT` or `PIPE_WAIT`, in byte read mode. A read end needs
    /// `FILE_WRITE_ATTRIBUTES` for this, which pipekit's read ends have.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let wait = if nonblocking { PIPE_NOWAIT } else { PIPE_WAIT };
        let mode = PIPE_READMODE_BYTE | wait;
        // SAFETY: `mode` is a readable local; NULL leaves the collection
        // settings (which only remote pipes have) unchanged.
        let set =
            cvt(unsafe { SetNamedPipeHandleState(self.raw(), &mode, ptr::null(), ptr::null()) });
        match set {
            Ok(_) => {
                let known = if nonblocking { MODE_NOWAIT } else { MODE_WAIT };
                self.wait_mode.store(known, Ordering::Relaxed);
                Ok(())
            }
            Err(err) if nonblocking && is_error(&err, ERROR_PIPE_BUSY) => Err(explain(
                err,
                "pipekit: Windows refuses to switch a pipe end to nonblocking mode \
                 (PIPE_NOWAIT) while the pipe holds unread data or a read is waiting on it \
                 (ERROR_PIPE_BUSY); switch it before the data arrives, or after it is read"
                    .to_string(),
            )),
            Err(err) => Err(err),
        }
    }

    /// The mode as the system reports it; where the handle may not be asked
    /// (no `FILE_READ_ATTRIBUTES`), the mode pipekit knows it is in: the one
    /// the pipe was created in, or the one pipekit last set.
    pub(crate) fn nonblocking(&self) -> io::Result<bool> {
        let mut state = 0;
        // SAFETY: `state` is a writable local; every other out-pointer is
        // optional and NULL, with a user name buffer of size 0.
        let asked = cvt(unsafe {
            GetNamedPipeHandleStateW(
                self.raw(),
                &mut state,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                0,
            )
        });
        match (asked, self.wait_mode.load(Ordering::Relaxed)) {
            (Ok(_), _) => Ok(state & PIPE_NOWAIT != 0),
            (Err(err), known) if is_error(&err, ERROR_ACCESS_DENIED) && known != MODE_UNKNOWN => {
                Ok(known == MODE_NOWAIT)
            }
            (Err(err), _) => Err(err),
        }
    }

    /// The quota of the buffer that writers fill and readers drain: inbound
    /// (client to server) when the reader is the server end, as in every
    /// pipe pipekit opens, else outbound. `GetNamedPipeInfo` reports both
    /// quotas, the same on both ends.
    pub(crate) fn capacity(&self) -> io::Result<usize> {
        let (mut flags, mut outbound, mut inbound) = (0, 0, 0);
        // SAFETY: the three out-pointers are writable locals; the fourth is
        // optional and NULL.
        cvt(unsafe {
            GetNamedPipeInfo(
                self.raw(),
                &mut flags,
                &mut outbound,
                &mut inbound,
                ptr::null_mut(),
            )
        })
        .map_err(|err| {
            if is_error(&err, ERROR_ACCESS_DENIED) {
                explain(
                    err,
                    "pipekit: Windows does not tell the capacity of a pipe end opened without \
                     FILE_READ_ATTRIBUTES (such as the writer std makes for a child's standard \
                     input, where the system refuses to add the right)"
                        .to_string(),
                )
            } else {
                err
            }
        })?;
        let server = flags & PIPE_SERVER_END != 0;
        let size = if server == (self.role == Role::Reader) {
            inbound
        } else {
            outbound
        };
        Ok(size as usize)
    }

    pub(crate) fn set_capacity(&self, _bytes: usize) -> io::Result<usize> {
        Err(unsupported(
            "resizing a pipe after it is created (set PipeOptions::capacity instead)",
        ))
    }

    /// `PeekNamedPipe`'s total. Its `lpBytesLeftThisMessage` means nothing
    /// for a byte-stream pipe (and is garbage under wine), so it is not
    /// asked for.
    pub(crate) fn bytes_available(&self) -> io::Result<usize> {
        let mut available = 0;
        // SAFETY: `available` is a writable local; with no buffer (NULL, 0)
        // nothing is copied, and the other out-pointers are optional.
        let peeked = cvt(unsafe {
            PeekNamedPipe(
                self.raw(),
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                &mut available,
                ptr::null_mut(),
            )
        });
        match peeked {
            Ok(_) => Ok(available as usize),
            // Every writer is gone and the pipe is empty.
            Err(err) if is_error(&err, ERROR_BROKEN_PIPE) => Ok(0),
            Err(err) => Err(err),
        }
    }

    /// Every end can time out: an overlapped operation is cancelled with
    /// `CancelIoEx`, a synchronous one with `CancelSynchronousIo`.
    pub(crate) fn check_timeouts(&self) -> io::Result<()> {
        Ok(())
    }

    /// A read that is cancelled if it has not completed within `timeout`.
    pub(crate) fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        read_result(self.transfer(Transfer::Read(buf), Some(timeout)))
    }

    /// A write of at most the pipe's capacity that is cancelled if it has
    /// not completed within `timeout`; the bytes it moved before that are
    /// reported.
    ///
    /// Why the cap: a pipe write stays pending until what is left of it
    /// fits the pipe's buffer. A write larger than the buffer therefore
    /// waits for a reader even when the pipe is empty, and a reader takes
    /// part of it while it waits; cancelling it then loses count of those
    /// bytes under wine (the cancelled write reports 0 bytes, measured), and
    /// the caller would write them again. A write no larger than the buffer
    /// fits by the time a reader reaches its first byte, so it completes in
    /// full instead of being cancelled part-way; and into a pipe with room
    /// it completes at once, as a Unix write of `PIPE_BUF` bytes after
    /// `poll` does.
    pub(crate) fn write_timeout(&self, buf: &[u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = match self.write_capacity() {
            Ok(capacity) if capacity > 0 => buf.len().min(capacity),
            // A size that cannot be asked (a server end opened for writing
            // only, such as std's `ChildStdin`, lacks FILE_READ_ATTRIBUTES):
            // the default size.
            _ => buf.len().min(UNKNOWN_CAPACITY_CHUNK),
        };
        write_result(self.transfer(Transfer::Write(&buf[..len]), Some(timeout)))
    }
}
