//! The cluster-wide job registry behind the `pg_background_jobs` view: one slot per job of the
//! whole cluster, in shared memory, under one LWLock.
//!
//! Where the memory comes from depends on the server ([`shmem`]): PostgreSQL 17 and later have a
//! registry of named DSM segments, which any backend may create on first use; before 17 an
//! extension's shared memory must be requested while the postmaster loads it, so the registry
//! needs `shared_preload_libraries = 'pg_background'` there. Without it, launches work as always
//! but are not registered, and the view raises an error instead of showing part of the cluster.
//!
//! A launch takes a slot (state `queued`, [`admission`]) before it registers its worker; the
//! worker marks it `running` when it starts the job and adds the rows and bytes it sends; the
//! end of the job (`finished`, `failed`, `canceled`, with the error's SQLSTATE and message) is
//! written by the worker before it detaches from the job's segment, or before it exits
//! ([`lifecycle`]). Finished jobs stay visible for `pg_background.job_history` ([`view`]) and
//! are evicted oldest first when every slot is taken. A result whose launcher left unread may be
//! kept in its slot for another session to read ([`kept`]).

mod admission;
pub mod idle;
mod kept;
mod lifecycle;
mod shmem;
mod slot;
mod view;

pub use admission::{
    admit, forget, handed_over, launched_to_keep, register, requeue, sleep_for_turn, stop_sleeping,
    Caps, Filed, Refusal,
};
pub use kept::{claim, ended_job, keep_body, keep_body_of, keep_head, prepare_to_wait, read_out};
pub use kept::{Claimed, NotKept};
pub use lifecycle::{count, ended, outcome, progressed, settled, started};
pub use shmem::{add, available, counters, preload, slot_count};
pub use slot::File;
pub use view::visible;

use core::cell::Cell;
use pgrx::pg_sys;

/// A slot of this backend's, noted until it is done with it: (index, job id).
type Note = &'static std::thread::LocalKey<Cell<Option<(usize, u64)>>>;

thread_local! {
    /// The slot of the launch this backend is making, until its worker has it.
    static PENDING: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
    /// The kept result this backend reads.
    static CLAIMED: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

/// Forget this backend's note of slot `(index, id)` in `note` (if it is that one).
fn clear(note: Note, slot: (usize, u64)) {
    note.with(|n| {
        if n.get() == Some(slot) {
            n.set(None);
        }
    });
}

/// A backend that exits (FATAL, e.g. terminated while it waits for its turn) gives back what
/// it holds: the slot of the launch it was making (else that slot would count, or stand in line,
/// for ever), and a kept result it was reading (its files go with the session's spill files).
fn at_exit_once() {
    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn at_exit(_code: core::ffi::c_int, _arg: pg_sys::Datum) {
        if let Some((index, id)) = PENDING.with(Cell::get) {
            forget(index, id);
        }
        if let Some((index, id)) = CLAIMED.with(Cell::get) {
            read_out(index, id);
        }
    }
    // (the callback takes our LWLock, which is allowed before shared memory is detached)
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&REGISTERED, at_exit);
}

/// The registry's slot of the job in `fixed`, if it was registered.
fn slot_of(fixed: &crate::shm::FixedState) -> Option<(usize, u64)> {
    let index = usize::try_from(fixed.job_slot)
        .ok()
        .filter(|&i| i < crate::guc::MAX_JOB_SLOTS as usize)?;
    Some((index, fixed.job_id))
}
