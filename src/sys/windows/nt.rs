//! Unnamed NT named pipes: the pipes an overlapped end needs, made the way
//! std (1.95) makes its child pipes.
//!
//! `CreatePipe` opens both ends for synchronous I/O, and a handle's mode is
//! fixed when it is opened, so a pipe with an overlapped end has to be made
//! one level down:
//!
//! 1. `NtOpenFile` on `\Device\NamedPipe\`, the root of the pipe file
//!    system (once per process).
//! 2. `NtCreateNamedPipeFile` relative to that root with an empty name: an
//!    anonymous pipe that no other process can open by name, whose handle is
//!    the server end. pipekit makes it the read end, as `CreatePipe` does.
//! 3. `NtOpenFile` relative to the server handle with an empty name: the
//!    client end, the write end.
//!
//! Each end is opened with `FILE_SYNCHRONOUS_IO_NONALERT` (synchronous)
//! unless it was asked to be overlapped.

use std::io;
use std::mem;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::sync::OnceLock;

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    NtOpenFile, FILE_CREATE, FILE_NON_DIRECTORY_FILE, FILE_PIPE_BYTE_STREAM_MODE,
    FILE_PIPE_BYTE_STREAM_TYPE, FILE_PIPE_QUEUE_OPERATION, FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Win32::Foundation::{
    RtlNtStatusToDosError, GENERIC_READ, GENERIC_WRITE, HANDLE, NTSTATUS, UNICODE_STRING,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_READ_ATTRIBUTES, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_WRITE_ATTRIBUTES, SYNCHRONIZE,
};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

// windows-sys 0.61 does not declare `NtCreateNamedPipeFile` (it is missing
// from the metadata windows-sys is generated from), so it is declared here,
// with the signature of the WDK's ntifs.h, as std declares it, and linked
// the way windows-sys links its own imports (raw-dylib, no import library).
// ntdll exports it on every Windows version and under wine.
windows_link::link!("ntdll.dll" "system" fn NtCreateNamedPipeFile(
    file_handle: *mut HANDLE,
    desired_access: u32,
    object_attributes: *const OBJECT_ATTRIBUTES,
    io_status_block: *mut IO_STATUS_BLOCK,
    share_access: u32,
    create_disposition: u32,
    create_options: u32,
    named_pipe_type: u32,
    read_mode: u32,
    completion_mode: u32,
    maximum_instances: u32,
    inbound_quota: u32,
    outbound_quota: u32,
    default_timeout: *const i64
) -> NTSTATUS);

/// `\Device\NamedPipe\` in UTF-16: the pipe file system's root, by its NT
/// name, as `CreatePipe` opens it. (`\??\PIPE\` would go through the
/// caller's DOS device map, which can be shadowed.)
const PIPE_ROOT: [u16; 18] = ascii_to_utf16(br"\Device\NamedPipe\");

/// The root, opened at the first overlapped pipe and kept for the life of
/// the process.
static ROOT: OnceLock<OwnedHandle> = OnceLock::new();

/// The pipe file system's root directory, opened once per process.
fn root() -> io::Result<HANDLE> {
    if let Some(root) = ROOT.get() {
        return Ok(root.as_raw_handle() as HANDLE);
    }
    let mut root_name = PIPE_ROOT;
    let root_name = UNICODE_STRING {
        Length: (root_name.len() * 2) as u16,
        MaximumLength: (root_name.len() * 2) as u16,
        Buffer: root_name.as_mut_ptr(),
    };
    let opened = open(
        ptr::null_mut(),
        &root_name,
        SYNCHRONIZE | GENERIC_READ,
        FILE_SHARE_READ | FILE_SHARE_WRITE,
        FILE_SYNCHRONOUS_IO_NONALERT,
    )?;
    // A thread that raced this one may have set it first; then this handle
    // is closed here and the other one kept.
    let _ = ROOT.set(opened);
    match ROOT.get() {
        Some(root) => Ok(root.as_raw_handle() as HANDLE),
        None => unreachable!("the root was just set"),
    }
}

const fn ascii_to_utf16<const N: usize>(ascii: &[u8]) -> [u16; N] {
    assert!(ascii.len() == N);
    let mut wide = [0; N];
    let mut i = 0;
    while i < N {
        wide[i] = ascii[i] as u16;
        i += 1;
    }
    wide
}

/// The default timeout of the pipe, as std and `CreateNamedPipeW` set it:
/// 50 ms, relative (negative), in units of 100 ns. Only clients that wait
/// for a free instance by name use it, which an unnamed pipe has none of.
const DEFAULT_TIMEOUT: i64 = -50 * 10_000;

/// Turns an `NTSTATUS` into the Win32 error the same call's Win32 wrapper
/// would set, so that callers see the codes (and `ErrorKind`s) they know.
/// The one place where this backend translates NT statuses.
fn cvt_nt(status: NTSTATUS) -> io::Result<()> {
    // NT_SUCCESS: success and informational statuses are not negative.
    if status >= 0 {
        return Ok(());
    }
    // SAFETY: a pure function of its argument.
    let code = unsafe { RtlNtStatusToDosError(status) };
    Err(io::Error::from_raw_os_error(code as i32))
}

/// The create options that make an end synchronous, or overlapped.
fn io_mode(overlapped: bool) -> u32 {
    if overlapped {
        0
    } else {
        FILE_SYNCHRONOUS_IO_NONALERT
    }
}

/// Object attributes for `name` relative to `root`: case-sensitive, not
/// inheritable (no `OBJ_INHERIT`), default security.
fn attributes(root: HANDLE, name: &UNICODE_STRING) -> OBJECT_ATTRIBUTES {
    OBJECT_ATTRIBUTES {
        Length: mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: root,
        ObjectName: name,
        ..OBJECT_ATTRIBUTES::default()
    }
}

/// `NtOpenFile` of `name` relative to `root` (NULL for none), returning the
/// handle owned.
fn open(
    root: HANDLE,
    name: &UNICODE_STRING,
    access: u32,
    share: u32,
    options: u32,
) -> io::Result<OwnedHandle> {
    let attributes = attributes(root, name);
    let mut status_block = IO_STATUS_BLOCK::default();
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: `handle` and `status_block` are writable locals; `attributes`
    // points to `name`, whose buffer holds `Length` bytes (or is empty), and
    // `root` is NULL or a handle the caller keeps open during the call.
    cvt_nt(unsafe {
        NtOpenFile(
            &mut handle,
            access,
            &attributes,
            &mut status_block,
            share,
            options,
        )
    })?;
    // SAFETY: NtOpenFile succeeded, so `handle` is open and owned by nobody
    // else.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) })
}

/// Opens an unnamed pipe with `quota` bytes of buffer in each direction and
/// returns `(reader, writer)`; each end is overlapped if asked, synchronous
/// otherwise. Nothing leaks on failure: every handle is owned as soon as it
/// is opened.
pub(super) fn pipe(
    quota: u32,
    overlapped_reader: bool,
    overlapped_writer: bool,
) -> io::Result<(OwnedHandle, OwnedHandle)> {
    let root = root()?;

    // No name: an anonymous pipe, and the client opens the server handle
    // itself. A NULL buffer rather than a pointer to "" (std's mitigation
    // for rust#143078: DLLs that hook these calls may expect it).
    let empty = UNICODE_STRING::default();

    // The server end, the reader. `FILE_SHARE_WRITE` makes the pipe
    // inbound: its client may only write. `FILE_WRITE_ATTRIBUTES` is what
    // `SetNamedPipeHandleState` needs to switch a read end to `PIPE_NOWAIT`.
    let attributes = attributes(root, &empty);
    let mut status_block = IO_STATUS_BLOCK::default();
    let mut reader: HANDLE = ptr::null_mut();
    // SAFETY: `reader` and `status_block` are writable locals, `attributes`
    // points to the empty name and to `root`, which is open, and the timeout
    // is a constant; the remaining arguments are plain values.
    cvt_nt(unsafe {
        NtCreateNamedPipeFile(
            &mut reader,
            SYNCHRONIZE | GENERIC_READ | FILE_WRITE_ATTRIBUTES,
            &attributes,
            &mut status_block,
            FILE_SHARE_WRITE,
            FILE_CREATE,
            io_mode(overlapped_reader),
            FILE_PIPE_BYTE_STREAM_TYPE,
            FILE_PIPE_BYTE_STREAM_MODE,
            FILE_PIPE_QUEUE_OPERATION,
            1, // one instance: the client below
            quota,
            quota,
            &DEFAULT_TIMEOUT,
        )
    })?;
    // SAFETY: NtCreateNamedPipeFile succeeded, so `reader` is open and owned
    // by nobody else.
    let reader = unsafe { OwnedHandle::from_raw_handle(reader as RawHandle) };

    // The client end, the writer. `FILE_READ_ATTRIBUTES` lets it be asked
    // for its state and size (`GetNamedPipeHandleState`,
    // `GetNamedPipeInfo`); `GENERIC_WRITE` includes the
    // `FILE_WRITE_ATTRIBUTES` that `PIPE_NOWAIT` needs.
    let writer = open(
        reader.as_raw_handle() as HANDLE,
        &empty,
        SYNCHRONIZE | GENERIC_WRITE | FILE_READ_ATTRIBUTES,
        0,
        FILE_NON_DIRECTORY_FILE | io_mode(overlapped_writer),
    )?;
    Ok((reader, writer))
}
