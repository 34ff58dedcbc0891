//! A job's life as its worker reports it: started, rows and bytes sent, ended.

use super::shmem::{attached, broadcast, exclusive};
use super::slot::{copy_text, JobState};
use super::slot_of;
use crate::shm::FixedState;
use core::cell::Cell;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;

thread_local! {
    /// The slot of the job this worker runs (index, id), for the row and byte counters.
    static CURRENT: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

/// The worker starts job `fixed` (if it was registered).
pub fn started(fixed: &FixedState) {
    let Some((index, id)) = slot_of(fixed) else {
        CURRENT.with(|c| c.set(None));
        return;
    };
    CURRENT.with(|c| c.set(Some((index, id))));
    let now = crate::server::now();
    // SAFETY: reading our PID.
    let pid = unsafe { pg_sys::MyProcPid };
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots[index];
        if slot.job_id == id && slot.state == JobState::Queued {
            slot.state = JobState::Running;
            slot.worker_pid = pid;
            slot.started_at = now;
        }
    }
}

/// The worker sent `rows` rows in `bytes` bytes.
pub fn count(rows: i64, bytes: i64) {
    let Some((index, _)) = CURRENT.with(Cell::get) else {
        return;
    };
    let Some(registry) = attached() else {
        return;
    };
    // SAFETY: the counters are atomics of our own running job's slot, which is not reused
    // before the job has ended.
    unsafe {
        let slot = &(*registry.as_ptr()).slots[index];
        slot.rows.fetch_add(rows, Ordering::Relaxed);
        slot.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// How a job ended, from its fixed state.
pub fn outcome(fixed: &FixedState) -> (JobState, String, String) {
    let error = &fixed.error;
    let failed = error.present.load(Ordering::Acquire);
    let (sqlstate, message) = if failed {
        (error.sqlstate.get(), error.message.get())
    } else {
        (String::new(), String::new())
    };
    let state = if fixed.succeeded.load(Ordering::Acquire) && !failed {
        JobState::Finished
    } else if sqlstate == "57014" || fixed.cancel_requested.load(Ordering::Acquire) {
        JobState::Canceled
    } else {
        JobState::Failed
    };
    (state, sqlstate, message)
}

/// The job in `fixed` is over: record how it ended, from the fixed state (once; later calls do
/// nothing).
pub fn ended(fixed: &FixedState) {
    CURRENT.with(|c| c.set(None));
    let Some((index, id)) = slot_of(fixed) else {
        return;
    };
    let (state, sqlstate, message) = outcome(fixed);
    let now = crate::server::now();
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots[index];
        if slot.job_id == id && !slot.state.is_over() && slot.state != JobState::Free {
            slot.state = state;
            slot.finished_at = now;
            copy_text(&mut slot.sqlstate, &sqlstate);
            copy_text(&mut slot.message, &message);
        }
    }
    // a waiting launch may now start
    broadcast();
}
