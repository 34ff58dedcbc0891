//! Admission: a launch files its job (`queued`) and may start its worker only while the caps on
//! running jobs allow it, first come, first served.

use super::shmem::{broadcast, exclusive};
use super::slot::{copy_text, JobState, Registry, Slot};
use super::{at_exit_once, clear, PENDING};
use core::sync::atomic::Ordering;
use pgrx::pg_sys;

/// The caps on running jobs a launch obeys (-1: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// `pg_background.max_jobs`: jobs of the whole cluster.
    pub total: i32,
    /// `pg_background.max_jobs_per_role`: jobs of the launching role.
    pub per_role: i32,
}

impl Caps {
    pub fn current() -> Self {
        Self {
            total: crate::guc::MAX_JOBS.get(),
            per_role: crate::guc::MAX_JOBS_PER_ROLE.get(),
        }
    }

    pub fn any(self) -> bool {
        self.total >= 0 || self.per_role >= 0
    }
}

/// Why a launch may not start its worker now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_jobs` jobs run in the cluster.
    Cluster(i32),
    /// `max_jobs_per_role` jobs of the role run.
    Role(i32),
    /// A launch that waits longer may go first (first come, first served).
    Behind,
}

/// A new job's slot.
pub enum Filed {
    /// Not registered: no registry on this server (before 17 without preloading).
    Unavailable,
    /// Not registered: every slot holds a job that has not finished.
    Full,
    /// Registered; admitted unless refused.
    Slot {
        index: usize,
        id: u64,
        refusal: Option<Refusal>,
    },
}

/// Jobs that count against the caps: admitted and not over.
fn holds(s: &Slot) -> bool {
    s.admitted && matches!(s.state, JobState::Queued | JobState::Running)
}

/// A launch that waits for its turn.
fn waits(s: &Slot) -> bool {
    s.state == JobState::Queued && !s.admitted
}

/// Whether slot `me` may start now under `total` (every session has the same
/// `pg_background.max_jobs`, a server-wide setting) and the role caps filed in the slots;
/// `fifo`: also not before a launch that waits longer and may start too.
fn refusal(r: &Registry, me: usize, total: i32, fifo: bool) -> Option<Refusal> {
    let mut running = 0usize;
    let mut roles: Vec<(pg_sys::Oid, usize)> = Vec::new();
    let mut any_waits = false;
    for s in r.slots().iter() {
        any_waits |= waits(s);
        if holds(s) {
            running += 1;
            match roles.iter_mut().find(|(owner, _)| *owner == s.owner) {
                Some((_, n)) => *n += 1,
                None => roles.push((s.owner, 1)),
            }
        }
    }
    let blocked = |s: &Slot| {
        let of_role = roles
            .iter()
            .find(|(owner, _)| *owner == s.owner)
            .map_or(0, |&(_, n)| n);
        if total >= 0 && running >= total as usize {
            Some(Refusal::Cluster(total))
        } else if s.role_cap >= 0 && of_role >= s.role_cap as usize {
            Some(Refusal::Role(s.role_cap))
        } else {
            None
        }
    };
    let mine = &r.slots()[me];
    if let Some(refusal) = blocked(mine) {
        return Some(refusal);
    }
    let ahead =
        fifo && any_waits
            && r.slots().iter().enumerate().any(|(i, s)| {
                i != me && waits(s) && s.job_id < mine.job_id && blocked(s).is_none()
            });
    ahead.then_some(Refusal::Behind)
}

/// A free slot, else the slot of the finished job that ended first, one launched to be kept
/// last (its session may still leave it unread); `None` when every slot holds a job that has
/// not ended or a kept result. One pass.
fn slot_for_a_new_job(r: &Registry) -> Option<usize> {
    let mut oldest: Option<(usize, (bool, i64))> = None;
    for (i, s) in r.slots().iter().enumerate() {
        if s.state == JobState::Free {
            return Some(i);
        }
        if s.state.is_over() && s.kept() == super::slot::KeptState::None {
            let key = (s.to_keep(), s.finished_at);
            if oldest.is_none_or(|(_, best)| key < best) {
                oldest = Some((i, key));
            }
        }
    }
    oldest.map(|(i, _)| i)
}

/// File a new job (state `queued`), admitted at once unless `caps` (or, with `fifo`, a launch
/// waiting longer) say otherwise: then it waits for its turn ([`admit`]).
pub fn register(label: &str, query: &str, caps: Caps, fifo: bool) -> Filed {
    let now = crate::server::now();
    // SAFETY: reading this backend's identity.
    let (owner, database, pid) =
        unsafe { (pg_sys::GetUserId(), pg_sys::MyDatabaseId, pg_sys::MyProcPid) };
    let mut expired = Vec::new();
    let filed = exclusive()
        .map(|mut r| {
            // (expired kept results give their slots back first)
            expired = super::kept::take_expired(&mut r, now);
            let Some(index) = slot_for_a_new_job(&r) else {
                return Filed::Full;
            };
            let id = r.next_id;
            r.next_id += 1;
            let slot = &mut r.slots_mut()[index];
            slot.job_id = id;
            slot.state = JobState::Queued;
            slot.admitted = false;
            slot.role_cap = caps.per_role;
            slot.reset_kept();
            slot.owner = owner;
            slot.database = database;
            slot.launcher_pid = pid;
            slot.worker_pid = 0;
            slot.launched_at = now;
            slot.started_at = 0;
            slot.finished_at = 0;
            slot.rows.store(0, Ordering::Relaxed);
            slot.bytes.store(0, Ordering::Relaxed);
            copy_text(&mut slot.label, label);
            copy_text(&mut slot.sqlstate, "");
            copy_text(&mut slot.message, "");
            copy_text(&mut slot.query, query);
            slot.progress_pct = -1;
            copy_text(&mut slot.progress_msg, "");
            let refusal = refusal(&r, index, caps.total, fifo);
            r.slots_mut()[index].admitted = refusal.is_none();
            Filed::Slot { index, id, refusal }
        })
        .unwrap_or(Filed::Unavailable);
    super::kept::delete_sets(expired);
    if let Filed::Slot { index, id, .. } = filed {
        PENDING.with(|p| p.set(Some((index, id))));
        at_exit_once();
    }
    filed
}

/// Try again to admit a waiting launch: `None` once it is admitted.
pub fn admit(index: usize, id: u64, caps: Caps, fifo: bool) -> Option<Refusal> {
    let (refusal, admitted) = exclusive().map(|mut r| {
        if r.slots()[index].job_id != id || !waits(&r.slots()[index]) {
            return (None, false);
        }
        let refusal = refusal(&r, index, caps.total, fifo);
        r.slots_mut()[index].admitted = refusal.is_none();
        (refusal, refusal.is_none())
    })?;
    if admitted {
        // the launches behind this one may be able to start too
        broadcast();
    }
    refusal
}

/// An admitted launch found no free worker slot: it waits for its turn again (keeping its
/// place: the earliest launch goes first).
pub fn requeue(index: usize, id: u64) {
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == id && slot.state == JobState::Queued {
            slot.admitted = false;
        }
    }
}

/// Sleep until a launch may have got its turn, at most `ms` (interruptibly; a wait event
/// that `pg_stat_activity` shows).
pub fn sleep_for_turn(ms: i64, wait_event: u32) {
    if !super::shmem::sleep(ms, wait_event) {
        crate::server::sleep_on_latch(ms, crate::server::WaitEvent::Capacity);
    }
}

/// The launch stopped waiting (admitted, or gave up).
pub fn stop_sleeping() {
    super::shmem::stop_sleeping();
}

/// A launch that failed before its worker could start: the slot is free again.
pub fn forget(index: usize, id: u64) {
    clear(&PENDING, (index, id));
    if let Some(mut r) = exclusive() {
        // (a job whose worker has started is the worker's to end)
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == id && slot.state == JobState::Queued {
            slot.state = JobState::Free;
            slot.admitted = false;
        }
    }
    broadcast();
}

/// Job `(index, id)` is launched to have its result kept for `keep_s` seconds if its session
/// leaves it unread (0: its session has read it or let it go).
pub fn launched_to_keep(index: usize, id: u64, keep_s: i32) {
    if let Some(mut r) = exclusive() {
        let slot = &mut r.slots_mut()[index];
        if slot.job_id == id {
            slot.launched_to_keep(keep_s);
        }
    }
}

/// The launch handed slot `(index, id)` to its worker.
pub fn handed_over(index: usize, id: u64) {
    clear(&PENDING, (index, id));
}
