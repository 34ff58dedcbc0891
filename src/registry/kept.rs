//! Results kept after their launcher left: filed in the job's slot (the launcher's head, the
//! worker's spill file), claimed once by a reader of the same role, deleted when read or when
//! `pg_background.keep_result` is up. The states are [`KeptState`]'s.

use super::shmem::{broadcast, exclusive, shared};
use super::slot::{text_of, File, KeptState, Registry, Slot};
use super::{at_exit_once, clear, slot_of, CLAIMED};
use crate::shm::FixedState;
use pgrx::pg_sys;

/// The launcher leaves job `(index, id)` unread: keep its result for `keep_s` seconds once
/// complete. `head`: what it had moved out of the queue; the spill file follows
/// ([`keep_body`], [`keep_body_of`]).
pub fn keep_head(index: usize, id: u64, keep_s: i32, head: Option<File>) -> bool {
    exclusive().is_some_and(|mut r| {
        let slot = &mut r.slots_mut()[index];
        slot.holds_job(id) && slot.keep_head(keep_s, head)
    })
}

/// File the spill file of a kept result (or that there is none): the result is complete and
/// waits `keep_s` from now. False when the result is not kept (then the caller deletes the
/// file).
pub fn keep_body_of(index: usize, id: u64, body: Option<File>) -> bool {
    let now = crate::server::now();
    let filed = exclusive().is_some_and(|mut r| {
        let slot = &mut r.slots_mut()[index];
        let filed = slot.job_id == id && slot.file_body(body, now);
        if let (true, Some(until)) = (filed, slot.kept_until()) {
            if r.no_expiry_before == 0 || until < r.no_expiry_before {
                r.no_expiry_before = until;
            }
        }
        filed
    });
    if filed {
        // a session may wait to read it
        broadcast();
    }
    filed
}

/// The worker of a job whose launcher left files its spill file, or that it wrote none.
pub fn keep_body(fixed: &FixedState, body: Option<File>) -> bool {
    slot_of(fixed).is_some_and(|(index, id)| keep_body_of(index, id, body))
}

/// Delete the kept results whose time is up, and those of roles dropped since (and give their
/// slots back to the history). In a transaction: whether a role exists is a catalog look-up.
pub fn sweep() {
    let now = crate::server::now();
    let (expired, owners) = exclusive()
        .map(|mut r| (take_expired(&mut r, now), kept_owners(&r)))
        .unwrap_or_default();
    delete_sets(expired);
    let dropped: Vec<pg_sys::Oid> = owners.into_iter().filter(|o| !role_exists(*o)).collect();
    if dropped.is_empty() {
        return;
    }
    let orphaned = exclusive()
        .map(|mut r| {
            r.slots_mut()
                .iter_mut()
                .filter(|s| dropped.contains(&s.owner))
                .flat_map(|s| s.discard())
                .collect()
        })
        .unwrap_or_default();
    delete_sets(orphaned);
}

/// The roles whose kept results wait to be read, each once.
fn kept_owners(r: &Registry) -> Vec<pg_sys::Oid> {
    let mut owners: Vec<pg_sys::Oid> = r
        .slots()
        .iter()
        .filter(|s| s.kept() == KeptState::Ready)
        .map(|s| s.owner)
        .collect();
    owners.sort_unstable_by_key(|o| o.to_u32());
    owners.dedup();
    owners
}

fn role_exists(role: pg_sys::Oid) -> bool {
    // SAFETY: a syscache look-up in the caller's transaction, not under the registry's lock.
    unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            pg_sys::Datum::from(role),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    }
}

/// Take the expired kept results out of their slots (under the lock): their file sets. Looks
/// at the slots only once one may have expired.
pub(super) fn take_expired(r: &mut Registry, now: i64) -> Vec<pg_sys::FileSet> {
    if r.no_expiry_before == 0 || r.no_expiry_before >= now {
        return Vec::new();
    }
    let expired = r
        .slots_mut()
        .iter_mut()
        .flat_map(|s| s.expire(now))
        .collect();
    r.no_expiry_before = r
        .slots()
        .iter()
        .filter_map(Slot::kept_until)
        .min()
        .unwrap_or(0);
    expired
}

/// Delete file sets (not under the lock).
pub(super) fn delete_sets(sets: Vec<pg_sys::FileSet>) {
    for mut set in sets {
        crate::server::delete_file_set(&mut set);
    }
}

/// A kept result taken by its reader: the head's and the body's files, in order.
pub struct Claimed {
    pub index: usize,
    pub worker_pid: i32,
    /// The SQLSTATE and message the job ended with, if it failed (for a job whose output
    /// ended before it could send its error, e.g. a worker that could not connect).
    pub error: Option<(String, String)>,
    pub head: Option<File>,
    pub body: Option<File>,
}

/// What [`claim`] found instead of a result to read.
pub enum NotKept {
    /// No such job in the registry (never, or forgotten since).
    Unknown,
    /// The current user may not read it.
    Denied,
    /// Its launcher is still there (and reads it), it was not kept, or it was read or expired.
    Unavailable,
    /// Kept, but the job still runs (in this worker, 0 before it started): wait.
    Pending(i32),
}

/// Take the kept result of job `job_id` for reading (once). The privilege check (a catalog
/// look-up) is made between two looks under the lock.
pub fn claim(job_id: u64) -> Result<Claimed, NotKept> {
    sweep();
    at_exit_once();
    let (index, owner) = shared()
        .and_then(|r| {
            let index = r.slots().iter().position(|s| s.holds_job(job_id))?;
            Some((index, r.slots()[index].owner))
        })
        .ok_or(NotKept::Unknown)?;
    // SAFETY: catalog look-up of role membership, in the caller's transaction, not under the
    // lock.
    if !unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) } {
        return Err(NotKept::Denied);
    }
    let mut r = exclusive().ok_or(NotKept::Unknown)?;
    let slot = &mut r.slots_mut()[index];
    if !slot.holds_job(job_id) {
        return Err(NotKept::Unknown);
    }
    match slot.kept() {
        KeptState::Pending => return Err(NotKept::Pending(slot.worker_pid)),
        KeptState::Ready => {}
        _ => return Err(NotKept::Unavailable),
    }
    let (head, body) = slot.claim().ok_or(NotKept::Unavailable)?;
    CLAIMED.with(|c| c.set(Some((index, job_id))));
    let error = Some((text_of(&slot.sqlstate), text_of(&slot.message)))
        .filter(|(sqlstate, _)| !sqlstate.is_empty());
    Ok(Claimed {
        index,
        worker_pid: slot.worker_pid,
        error,
        head,
        body,
    })
}

/// The reader of a kept result is done with it (its files are deleted): it is gone.
pub fn read_out(index: usize, job_id: u64) {
    clear(&CLAIMED, (index, job_id));
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == job_id {
            slot.read_out();
        }
    }
}

/// Be woken (our latch set) when a kept result may have become complete: call before looking,
/// then sleep on the latch; [`super::stop_sleeping`] when done.
pub fn prepare_to_wait() {
    super::shmem::prepare_to_sleep();
}

/// Whether job `job_id` of the registry has ended, and its worker's PID (0 before it started),
/// for a role with the privileges of its owner.
pub fn ended_job(job_id: u64) -> Result<(bool, i32), NotKept> {
    let (owner, over, worker) = shared()
        .and_then(|r| {
            let slot = r.slots().iter().find(|s| s.holds_job(job_id))?;
            Some((slot.owner, slot.state.is_over(), slot.worker_pid))
        })
        .ok_or(NotKept::Unknown)?;
    // SAFETY: catalog look-up of role membership, in the caller's transaction, not under the
    // lock.
    if !unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) } {
        return Err(NotKept::Denied);
    }
    Ok((over, worker))
}
