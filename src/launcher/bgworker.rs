//! Registering a job's worker with the postmaster (`postmaster/bgworker.c`), and its handle.
//!
//! The handle is what makes cancel and liveness checks safe: the postmaster answers for the
//! exact worker we registered (slot and generation), never for a PID that was reused. A warm
//! worker another session registered has no handle of ours: for it the process array answers,
//! by PID and `PGPROC` together, as for `pg_terminate_backend`.

use crate::error::Error;
use crate::shm::{BGW_TYPE, ENTRY_POINT, LIBRARY_NAME};
use core::ptr::NonNull;
use pgrx::pg_sys;

/// What the postmaster says about our worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStatus {
    NotYetStarted,
    Running(i32),
    Stopped,
    PostmasterDied,
}

/// Our registration of one worker: the server's own `BackgroundWorkerHandle`, which the headers
/// leave opaque, allocated in `TopMemoryContext` so that it lives as long as the worker's owner
/// (`pool::Worker`), which may be longer than any job's context. Freed when dropped. Or, for a
/// warm worker of another session's that runs a job of ours, its PID and `PGPROC`.
pub struct WorkerHandle {
    kind: Kind,
}

enum Kind {
    Registered(NonNull<pg_sys::BackgroundWorkerHandle>),
    Adopted { pid: i32, proc_: usize },
}

/// Copy `src` into a fixed C buffer, cut at a character boundary, always NUL-terminated
/// (`BGW_MAXLEN - 1` bytes at most).
fn fill(dst: &mut [core::ffi::c_char], src: &str) {
    let text = crate::text::clip(src, dst.len() - 1).as_bytes();
    for (d, s) in dst.iter_mut().zip(text) {
        *d = *s as core::ffi::c_char;
    }
    dst[text.len()] = 0;
}

impl WorkerHandle {
    /// Register a worker that attaches to segment `handle` (and to the control segment of a
    /// warm worker, whose handle goes into `bgw_extra`).
    pub fn register(
        segment: pg_sys::dsm_handle,
        control: Option<pg_sys::dsm_handle>,
    ) -> Result<Self, Error> {
        let mut worker = pg_sys::BackgroundWorker::default();
        // SAFETY: reading our own PID.
        let launcher_pid = unsafe { pg_sys::MyProcPid };
        fill(
            &mut worker.bgw_name,
            &format!("pg_background by PID {launcher_pid}"),
        );
        fill(&mut worker.bgw_type, BGW_TYPE);
        fill(&mut worker.bgw_library_name, LIBRARY_NAME);
        fill(&mut worker.bgw_function_name, ENTRY_POINT);
        worker.bgw_flags =
            (pg_sys::BGWORKER_SHMEM_ACCESS | pg_sys::BGWORKER_BACKEND_DATABASE_CONNECTION) as i32;
        worker.bgw_start_time = pg_sys::BgWorkerStartTime::BgWorkerStart_ConsistentState;
        worker.bgw_restart_time = pg_sys::BGW_NEVER_RESTART;
        worker.bgw_main_arg = pg_sys::Datum::from(segment);
        worker.bgw_notify_pid = launcher_pid;
        if let Some(control) = control {
            for (d, s) in worker.bgw_extra.iter_mut().zip(control.to_ne_bytes()) {
                *d = s as core::ffi::c_char;
            }
        }
        let mut handle: *mut pg_sys::BackgroundWorkerHandle = core::ptr::null_mut();
        let ok = crate::server::in_top_memory_context(|| {
            // SAFETY: a fully initialised BackgroundWorker; on success the postmaster owns a
            // copy and `handle` points at a handle palloc'd in the current memory context.
            unsafe { pg_sys::RegisterDynamicBackgroundWorker(&mut worker, &mut handle) }
        });
        match NonNull::new(handle) {
            Some(handle) if ok => Ok(Self {
                kind: Kind::Registered(handle),
            }),
            _ => Err(Error::CouldNotRegister),
        }
    }

    /// The handle of a worker registered by another session: the process `pid` whose `PGPROC`
    /// is at `proc_` (it is ours to run a job in, handed over through its control segment).
    pub fn adopted(pid: i32, proc_: usize) -> Self {
        Self {
            kind: Kind::Adopted { pid, proc_ },
        }
    }

    /// The server's handle, for a worker this session registered.
    pub fn registration(&self) -> Option<NonNull<pg_sys::BackgroundWorkerHandle>> {
        match self.kind {
            Kind::Registered(handle) => Some(handle),
            Kind::Adopted { .. } => None,
        }
    }

    /// Ask the worker to stop (SIGTERM, through the postmaster for exactly this registration;
    /// for an adopted worker to the process whose PID and `PGPROC` it still has; never
    /// SIGKILL).
    pub fn terminate(&self) {
        match self.kind {
            // SAFETY: live handle; the postmaster checks the slot's generation.
            Kind::Registered(handle) => unsafe {
                pg_sys::TerminateBackgroundWorker(handle.as_ptr());
            },
            Kind::Adopted { pid, .. } => {
                if self.status() == WorkerStatus::Running(pid) {
                    // SAFETY: plain system call; the process was ours a moment ago (the same
                    // window as pg_terminate_backend's).
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
        }
    }

    /// Current state, without waiting.
    pub fn status(&self) -> WorkerStatus {
        let handle = match self.kind {
            Kind::Registered(handle) => handle,
            Kind::Adopted { pid, proc_ } => {
                // SAFETY: BackendPidGetProc takes the process array's lock itself and returns
                // a pointer into the array, or NULL; a process that exits leaves the array.
                let found = unsafe { pg_sys::BackendPidGetProc(pid) };
                return if found as usize == proc_ {
                    WorkerStatus::Running(pid)
                } else {
                    WorkerStatus::Stopped
                };
            }
        };
        let mut pid = 0;
        // SAFETY: live handle; a shared-memory read under the postmaster's slot protocol.
        let status = unsafe { pg_sys::GetBackgroundWorkerPid(handle.as_ptr(), &mut pid) };
        match status {
            pg_sys::BgwHandleStatus::BGWH_STARTED => WorkerStatus::Running(pid),
            pg_sys::BgwHandleStatus::BGWH_NOT_YET_STARTED => WorkerStatus::NotYetStarted,
            pg_sys::BgwHandleStatus::BGWH_POSTMASTER_DIED => WorkerStatus::PostmasterDied,
            _ => WorkerStatus::Stopped,
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Kind::Registered(handle) = self.kind {
            // SAFETY: the handle was palloc'd in TopMemoryContext by the server and is ours
            // alone. A queue set to watch it (`MqReceiver::watch_worker`) is detached before it
            // in a job's entry; where a failed launch drops it first, the queue is only detached
            // afterwards, and `shm_mq_detach` never reads the handle.
            unsafe { pg_sys::pfree(handle.as_ptr().cast()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fill_truncates_at_char_boundary_and_terminates() {
        let mut buf = [1 as core::ffi::c_char; 8];
        fill(&mut buf, "abc");
        assert_eq!(&buf[..4], &[b'a' as _, b'b' as _, b'c' as _, 0]);
        let mut buf = [1 as core::ffi::c_char; 4];
        fill(&mut buf, "aéé"); // 'a' + 2 bytes + 2 bytes; room for 3 bytes
        assert_eq!(buf[3], 0);
        let expected: [core::ffi::c_char; 3] = [b'a' as _, 0xC3u8 as _, 0xA9u8 as _];
        assert_eq!(&buf[..3], &expected);
    }
}
