//! Deadlock between a session and its own job: the session waits for the job (reading its
//! result, waiting for it) while the job waits for a lock the session holds — a row or table
//! lock, or the session's transaction, which CREATE INDEX CONCURRENTLY waits for. PostgreSQL's
//! deadlock detector cannot see it (the session waits on a queue or a latch, not on a lock), so
//! the waiting session checks, each time it has waited `deadlock_timeout` without progress,
//! whether the job is blocked by it (`pg_blocking_pids`), and then raises 40P01 as the
//! detector would. A job blocked by other sessions is left alone.

use crate::error::Error;
use crate::server::WaitEvent;
use pgrx::pg_sys;

/// One wait for a job: sleeps on the latch and checks for the deadlock between sleeps.
pub struct Waiter {
    worker_pid: i32,
}

impl Waiter {
    pub fn new(worker_pid: i32) -> Self {
        Self { worker_pid }
    }

    /// Sleep until the latch is set or `deadlock_timeout` passes (at most `max_ms` if given);
    /// after a full `deadlock_timeout` without a wake-up, check for the deadlock.
    pub fn wait_at_most(&mut self, event: WaitEvent, max_ms: Option<i64>) -> Result<(), Error> {
        // SAFETY: reading a setting of this backend.
        let deadlock_ms = i64::from(unsafe { pg_sys::DeadlockTimeout }).max(1);
        let sleep_ms = max_ms.map_or(deadlock_ms, |m| m.clamp(1, deadlock_ms));
        if crate::server::sleep_on_latch(sleep_ms, event) && sleep_ms == deadlock_ms {
            self.check()?;
        }
        Ok(())
    }

    pub fn wait(&mut self, event: WaitEvent) -> Result<(), Error> {
        self.wait_at_most(event, None)
    }

    /// 40P01 if the worker is blocked by this backend.
    fn check(&self) -> Result<(), Error> {
        if blocked_by_me(self.worker_pid) {
            return Err(detected(self.worker_pid));
        }
        Ok(())
    }
}

/// The deadlock between this backend and the worker `pid` it waits for (counted for the
/// cluster): 40P01.
pub fn detected(worker: i32) -> Error {
    crate::registry::add(|c| &c.deadlocks, 1);
    Error::Deadlock {
        worker,
        // SAFETY: reading our PID.
        session: unsafe { pg_sys::MyProcPid },
    }
}

/// Whether the process `pid` waits for a lock this backend holds.
pub fn blocked_by_me(pid: i32) -> bool {
    // pg_blocking_pids takes every lock-manager partition lock: ask only when the worker is
    // waiting for a lock at all.
    if !waits_for_a_lock(pid) {
        return false;
    }
    // SAFETY: reading our PID.
    let me = unsafe { pg_sys::MyProcPid };
    blocking_pids(pid).contains(&me)
}

/// Whether the process `pid` is in a wait of the Lock class (relation, tuple, transactionid,
/// virtualxid, …), from its PGPROC's wait event.
fn waits_for_a_lock(pid: i32) -> bool {
    // SAFETY: BackendPidGetProc returns NULL or a PGPROC in shared memory, which stays valid
    // (PGPROCs are never freed); the wait event is a single aligned u32 the process writes
    // itself, read without a lock as pg_stat_activity reads it.
    unsafe {
        let proc = pg_sys::BackendPidGetProc(pid);
        if proc.is_null() {
            return false;
        }
        let info = core::ptr::read_volatile(&(*proc).wait_event_info);
        info & 0xFF00_0000 == pg_sys::PG_WAIT_LOCK
    }
}

/// `pg_blocking_pids(pid)`: the backends holding locks that `pid` waits for.
fn blocking_pids(pid: i32) -> Vec<i32> {
    // SAFETY: a call of the built-in through the function manager with one non-NULL int4; it
    // returns a (possibly empty) int4[] in the current memory context, deconstructed with
    // int4's storage properties.
    unsafe {
        let array = pg_sys::DirectFunctionCall1Coll(
            Some(crate::ffi::pg_blocking_pids),
            pg_sys::InvalidOid,
            pg_sys::Datum::from(pid),
        );
        let array: *mut pg_sys::ArrayType = pg_sys::pg_detoast_datum(array.cast_mut_ptr()).cast();
        let mut values: *mut pg_sys::Datum = core::ptr::null_mut();
        let mut nulls: *mut bool = core::ptr::null_mut();
        let mut n = 0;
        pg_sys::deconstruct_array(
            array,
            pg_sys::INT4OID,
            4,
            true,
            b'i' as core::ffi::c_char,
            &mut values,
            &mut nulls,
            &mut n,
        );
        (0..n as usize)
            .filter(|&i| !*nulls.add(i))
            .map(|i| (*values.add(i)).value() as i32)
            .collect()
    }
}
