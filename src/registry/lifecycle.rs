//! A job's life as its worker reports it: started, rows and bytes sent, progress, ended; and
//! the cluster's counters of how jobs ended.

use super::shmem::{attached, broadcast, counters, exclusive};
use super::slot::{copy_text, JobState};
use super::slot_of;
use crate::shm::FixedState;
use core::cell::Cell;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;

/// The job this worker runs.
#[derive(Clone, Copy)]
struct Current {
    /// Its slot (index, id), if it was registered.
    slot: Option<(usize, u64)>,
    /// What it sent so far.
    rows: i64,
    bytes: i64,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// The worker starts job `fixed`.
pub fn started(fixed: &FixedState) {
    let slot = slot_of(fixed);
    CURRENT.with(|c| {
        c.set(Some(Current {
            slot,
            rows: 0,
            bytes: 0,
        }))
    });
    let Some((index, id)) = slot else {
        return;
    };
    let now = crate::server::now();
    // SAFETY: reading our PID.
    let pid = unsafe { pg_sys::MyProcPid };
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == id && slot.state == JobState::Queued {
            slot.state = JobState::Running;
            slot.worker_pid = pid;
            slot.started_at = now;
        }
    }
}

/// The worker sent `rows` rows in `bytes` bytes.
pub fn count(rows: i64, bytes: i64) {
    let Some(mut current) = CURRENT.with(Cell::get) else {
        return;
    };
    current.rows += rows;
    current.bytes += bytes;
    CURRENT.with(|c| c.set(Some(current)));
    let Some((index, _)) = current.slot else {
        return;
    };
    let Some(registry) = attached() else {
        return;
    };
    // SAFETY: the counters are atomics of our own running job's slot, which is not reused
    // before the job has ended.
    unsafe {
        let slot = &(*registry.as_ptr()).slots()[index];
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

/// The job in `fixed` is over: record how it ended, from the fixed state, in its slot and in the
/// cluster's counters (once; later calls do nothing).
pub fn ended(fixed: &FixedState) {
    let Some(current) = CURRENT.with(Cell::take) else {
        return;
    };
    let (state, _, _) = outcome(fixed);
    if let Some(counters) = counters() {
        let ending = match state {
            JobState::Finished => &counters.completed,
            JobState::Canceled => &counters.canceled,
            _ => &counters.failed,
        };
        ending.fetch_add(1, Ordering::Relaxed);
        let spilled = fixed.spill_bytes.load(Ordering::Acquire);
        for (counter, n) in [
            (&counters.rows, current.rows.unsigned_abs()),
            (&counters.bytes, current.bytes.unsigned_abs()),
            (&counters.spilled_bytes, spilled),
        ] {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
    write_end(fixed, current.slot);
}

/// The job's outcome is decided (committed, or its error recorded) and its last message is
/// about to be sent: show the outcome in its slot now, so that whoever has read the whole
/// result finds the job ended in the view. [`ended`] counts it later, once everything is sent.
pub fn settled(fixed: &FixedState) {
    if let Some(current) = CURRENT.with(Cell::get) {
        write_end(fixed, current.slot);
    }
}

/// Write the outcome into the slot, unless the job has ended there already; wake the waits.
fn write_end(fixed: &FixedState, slot: Option<(usize, u64)>) {
    let Some((index, id)) = slot else {
        return;
    };
    let (state, sqlstate, message) = outcome(fixed);
    let now = crate::server::now();
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == id && !slot.state.is_over() && slot.state != JobState::Free {
            slot.state = state;
            slot.finished_at = now;
            copy_text(&mut slot.sqlstate, &sqlstate);
            copy_text(&mut slot.message, &message);
        }
    }
    // a waiting launch may now start, a wait for the job may return
    broadcast();
}

/// The job this worker runs reported progress: show it in its slot.
pub fn progressed(pct: i32, msg: &str) {
    let Some((index, id)) = CURRENT.with(Cell::get).and_then(|c| c.slot) else {
        return;
    };
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == id && slot.state == JobState::Running {
            slot.progress_pct = pct;
            copy_text(&mut slot.progress_msg, msg);
        }
    }
}
