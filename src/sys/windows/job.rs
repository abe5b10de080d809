//! A child and everything it started, as one job object that one call
//! terminates.
//!
//! A process joins a job only by an explicit assignment, which can happen
//! only once the process exists. The child is therefore created suspended
//! (`CREATE_SUSPENDED`), assigned to a new job, and only then resumed: it
//! runs no instruction outside the job, so every process it starts is in the
//! job too (unless created with `CREATE_BREAKAWAY_FROM_JOB` in a job that
//! allows it).

use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::os::windows::process::CommandExt;
use std::process::{Child, Command};
use std::ptr;

use windows_sys::Win32::Foundation::{RtlNtStatusToDosError, HANDLE, NTSTATUS};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::CREATE_SUSPENDED;

// windows-sys 0.61 does not declare `NtResumeProcess`, and std has no stable
// way to reach a child's main thread (to resume it with `ResumeThread`), so
// it is declared here, as the WDK's ntpsapi.h has it. ntdll exports it on
// every Windows version since XP and under wine. It resumes every thread of
// the process.
#[link(name = "ntdll")]
extern "system" {
    fn NtResumeProcess(process_handle: HANDLE) -> NTSTATUS;
}

/// The exit code of every process of a terminated job: what a process
/// killed by `Child::kill` (`TerminateProcess`) gets from std too.
const KILLED: u32 = 1;

/// Spawns `command` suspended, puts it into a new job object, resumes it,
/// and returns it with its job. The command's creation flags are replaced
/// by `CREATE_SUSPENDED` for the spawn, and are 0 afterwards.
///
/// # Errors
///
/// Those of `Command::spawn`, and the system's error from creating the job,
/// assigning the child to it or resuming it; the child is then killed and
/// reaped.
pub(crate) fn spawn_tree(command: &mut Command) -> io::Result<(Child, Tree)> {
    command.creation_flags(CREATE_SUSPENDED);
    let spawned = command.spawn();
    command.creation_flags(0);
    let mut child = spawned?;
    match Tree::adopt(child.as_handle(), child.id()) {
        Ok(tree) => Ok((child, tree)),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

/// The job object of a child spawned by [`spawn_tree`].
#[derive(Debug)]
pub(crate) struct Tree {
    job: OwnedHandle,
}

impl Tree {
    /// Puts the process `process` (id `id`), spawned suspended, into a new
    /// job, then resumes it. The handle needs `PROCESS_SET_QUOTA`,
    /// `PROCESS_TERMINATE` and `PROCESS_SUSPEND_RESUME`, which the handles of
    /// std's and tokio's children have (all access rights).
    pub(crate) fn adopt(process: BorrowedHandle<'_>, id: u32) -> io::Result<Tree> {
        // SAFETY: both pointers may be null: no security attributes (the
        // handle is not inheritable) and no name.
        let job = unsafe { CreateJobObjectW(ptr::null(), ptr::null()) };
        if job.is_null() {
            return Err(crate::error::explain(
                io::Error::last_os_error(),
                "pipekit: creating a job object".to_string(),
            ));
        }
        // SAFETY: `job` is a new handle that nothing else owns.
        let job = unsafe { OwnedHandle::from_raw_handle(job) };
        // SAFETY: both handles are open for the duration of the call: the
        // job is owned above, the process handle is borrowed.
        let assigned =
            unsafe { AssignProcessToJobObject(job.as_raw_handle(), process.as_raw_handle()) };
        if assigned == 0 {
            return Err(crate::error::explain(
                io::Error::last_os_error(),
                format!("pipekit: assigning process {id} to a job object"),
            ));
        }
        // SAFETY: the process handle is borrowed, so open for the duration
        // of the call, with the rights listed above. Its only thread was
        // created suspended once, so one resume lets it run.
        let status = unsafe { NtResumeProcess(process.as_raw_handle()) };
        if status < 0 {
            // SAFETY: RtlNtStatusToDosError only maps a number to a number.
            let code = unsafe { RtlNtStatusToDosError(status) };
            return Err(crate::error::explain(
                io::Error::from_raw_os_error(code as i32),
                format!("pipekit: resuming process {id}"),
            ));
        }
        Ok(Tree { job })
    }

    /// Terminates every process in the job (exit code 1). A job with no
    /// process left is not an error.
    pub(crate) fn kill(&self) -> io::Result<()> {
        // SAFETY: the job handle is owned by `self`, open for the call.
        if unsafe { TerminateJobObject(self.job.as_raw_handle(), KILLED) } == 0 {
            return Err(crate::error::explain(
                io::Error::last_os_error(),
                "pipekit: terminating a job object".to_string(),
            ));
        }
        Ok(())
    }
}
