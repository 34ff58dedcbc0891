//! The session's table of the jobs it launched, keyed by worker PID (as in the C extension).
//!
//! Everything about a job that must outlive the launching call — queue handle, worker handle,
//! segment mapping — is allocated in a memory context of its own, a child of
//! "pg_background session jobs" under `TopMemoryContext`, and only the table stores it. Dropping
//! an [`Entry`] detaches the queue, then the segment, then deletes the context.

use super::bgworker::WorkerStatus;
use super::channel::Channel;
use super::pool::Worker;
use crate::error::Error;
use crate::server::{ContextSize, MemoryContext};
use crate::shm::FixedState;
use core::mem::ManuallyDrop;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

thread_local! {
    /// Not dropped at process exit (ManuallyDrop): by then PostgreSQL has detached every segment
    /// itself, and running our destructors would touch freed state.
    static REGISTRY: ManuallyDrop<RefCell<HashMap<i32, Entry>>> =
        ManuallyDrop::new(RefCell::new(HashMap::new()));
    static ROOT: Cell<pg_sys::MemoryContext> = const { Cell::new(core::ptr::null_mut()) };
}

fn root_context() -> pg_sys::MemoryContext {
    ROOT.with(|cell| {
        if cell.get().is_null() {
            // alive for the session: never deleted
            let root = core::mem::ManuallyDrop::new(MemoryContext::top_level(
                c"pg_background session jobs",
                ContextSize::Small,
            ));
            cell.set(root.as_ptr());
        }
        cell.get()
    })
}

/// A memory context for one job, under the session's root context: what the job's entry
/// allocates goes with it.
pub fn job_context() -> MemoryContext {
    MemoryContext::new(root_context(), c"pg_background job", ContextSize::Small)
}

/// One launched worker. Field order is drop order.
pub struct Entry {
    pub pid: i32,
    /// Current user at launch; only roles with its privileges may touch the entry.
    pub owner: pg_sys::Oid,
    /// 0 for the classic API; random and non-zero for the handle API.
    pub cookie: i64,
    /// Launched by `submit_v2`.
    pub results_disabled: bool,
    /// `cancel_v2` was called (for the statistics).
    pub canceled: Cell<bool>,
    pub launched_at: pg_sys::TimestampTz,
    /// Effective queue size.
    pub queue_size: usize,
    /// The first 120 bytes of the SQL, cut at a character boundary.
    pub sql_preview: String,
    pub label: Option<String>,
    /// The queue and segment, or what is left of them once the worker finished.
    pub channel: Channel,
    /// Shared with the pool of warm workers.
    pub worker: std::rc::Rc<Worker>,
    /// Held for its `Drop`, last: the queue and worker handles live in it.
    pub _context: MemoryContext,
}

/// Session statistics (`pg_background_stats_v2`), lost at session end as in 1.x.
#[derive(Clone, Copy, Default)]
pub struct Stats {
    pub launched: i64,
    pub completed: i64,
    pub failed: i64,
    pub canceled: i64,
    /// Jobs a caller gave up waiting for (`pg_background_record_timeout` of the 2.0 catalog).
    pub timed_out: i64,
    /// Sum of execution times of released jobs, in microseconds.
    pub total_us: i64,
}

thread_local! {
    static STATS: Cell<Stats> = const {
        Cell::new(Stats { launched: 0, completed: 0, failed: 0, canceled: 0, timed_out: 0, total_us: 0 })
    };
}

pub fn stats() -> Stats {
    STATS.with(Cell::get)
}

pub fn count_launch() {
    STATS.with(|s| {
        s.set(Stats {
            launched: s.get().launched + 1,
            ..s.get()
        })
    });
}

/// A caller gave up waiting for a job of this session (counted here and for the cluster,
/// nothing else).
pub fn count_timeout() {
    crate::registry::add(|c| &c.timed_out, 1);
    STATS.with(|s| {
        s.set(Stats {
            timed_out: s.get().timed_out + 1,
            ..s.get()
        })
    });
}

/// Number of tracked entries (`workers_active` of 1.x counts entries, not processes).
pub fn tracked() -> usize {
    REGISTRY.with(|r| r.borrow().len())
}

/// Visit every entry the current user has the privileges of.
pub fn for_each_visible(mut f: impl FnMut(&Entry)) {
    release_finished();
    // SAFETY: reading the current user.
    let user = unsafe { pg_sys::GetUserId() };
    REGISTRY.with(|r| {
        for e in r.borrow().values() {
            // SAFETY: catalog look-up of role membership in a transaction.
            if unsafe { pg_sys::has_privs_of_role(user, e.owner) } {
                f(e)
            }
        }
    })
}

impl Drop for Entry {
    /// Release accounting, when the entry goes (read, detached, or an error while reading):
    /// canceled if cancel was requested, else failed if the worker recorded an error (before
    /// it sent it: a reader that raised it may drop the entry before the worker is done) or
    /// finished without succeeding, else completed. The
    /// execution time is the worker's own start → finish when it has both.
    fn drop(&mut self) {
        // A worker that stopped without ending its job in the cluster-wide registry (it could
        // not start it): the launcher does (nothing when the worker did, or still runs).
        if self.finished() {
            crate::registry::ended(self.fixed());
        }
        let fixed = self.fixed();
        let done = fixed.worker_done.load(Ordering::Acquire);
        let succeeded = fixed.succeeded.load(Ordering::Acquire);
        let recorded_error = fixed.error.present.load(Ordering::Acquire);
        let (start, finish) = (
            fixed.started_at.load(Ordering::Acquire),
            fixed.finished_at.load(Ordering::Acquire),
        );
        let elapsed = if start > 0 && finish >= start {
            finish - start
        } else {
            // SAFETY: reading the clock.
            let now = unsafe { pg_sys::GetCurrentTimestamp() };
            now - self.launched_at
        };
        let canceled = self.canceled.get();
        STATS.with(|s| {
            let mut st = s.get();
            if canceled {
                st.canceled += 1;
            } else if recorded_error || (done && !succeeded) {
                st.failed += 1;
            } else {
                st.completed += 1;
            }
            st.total_us += elapsed.max(0);
            s.set(st);
        });
    }
}

impl Entry {
    /// Whether the worker has detached from its segment (it is finishing or gone).
    pub fn worker_done(&self) -> bool {
        self.fixed().worker_done.load(Ordering::Acquire)
    }

    pub fn fixed(&self) -> &FixedState {
        self.channel.fixed()
    }

    /// Whether the job has finished and waits only to be read or detached: it holds no worker
    /// slot (and, once released, no segment).
    pub fn finished(&self) -> bool {
        self.worker_done() || matches!(self.worker.status(), WorkerStatus::Stopped)
    }
}

/// Store a new entry. An old entry under the same PID belongs to a worker that has exited
/// (PIDs are unique among live processes); its unread results are dropped with a WARNING,
/// never a FATAL as in the C extension.
pub fn insert(entry: Entry) {
    if entry.fixed().keep_s > 0 {
        keep_at_exit_once();
    }
    let pid = entry.pid;
    let old = REGISTRY.with(|r| r.borrow_mut().insert(pid, entry));
    if old.is_some() {
        pgrx::warning!("discarding unread results of background worker with PID {pid}");
    }
    drop(old);
}

/// How a cookie is checked, and which error a mismatch gives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    /// Classic API: by PID only.
    Ignore,
    /// `result_v2`: 42704 `… (cookie mismatch)`.
    ForResult(i64),
    /// Other `_v2` functions: 55000 `cookie mismatch for PID N`.
    ForControl(i64),
}

/// Whether `pid` is ours and the current user may act on it, with the 1.x checks in their
/// order: unknown PID, privileges, cookie.
pub fn check(pid: i32, cookie: Cookie) -> Result<(), Error> {
    let found = REGISTRY.with(|r| r.borrow().get(&pid).map(|e| (e.owner, e.cookie)));
    let (owner, actual) = found.ok_or(Error::NotAttached(pid))?;
    // SAFETY: catalog look-up of role membership in a transaction.
    let allowed = unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) };
    if !allowed {
        return Err(Error::PermissionDenied(pid));
    }
    match cookie {
        Cookie::ForResult(c) if c != actual => Err(Error::NotAttachedCookie(pid)),
        Cookie::ForControl(c) if c != actual => Err(Error::CookieMismatch(pid)),
        _ => Ok(()),
    }
}

/// Whether a job of this session is filed under `pid`.
pub fn contains(pid: i32) -> bool {
    REGISTRY.with(|r| r.borrow().contains_key(&pid))
}

/// Run `f` on the entry of `pid` (after [`check`]).
pub fn with_entry<R>(pid: i32, f: impl FnOnce(&Entry) -> R) -> Result<R, Error> {
    REGISTRY
        .with(|r| r.borrow().get(&pid).map(f))
        .ok_or(Error::NotAttached(pid))
}

/// Run `f` on the entry of `pid`, mutably (after [`check`]).
pub fn with_entry_mut<R>(pid: i32, f: impl FnOnce(&mut Entry) -> R) -> Result<R, Error> {
    REGISTRY
        .with(|r| r.borrow_mut().get_mut(&pid).map(f))
        .ok_or(Error::NotAttached(pid))
}

/// Remove and return the entry (after [`check`]).
pub fn take(pid: i32) -> Result<Entry, Error> {
    let entry = REGISTRY
        .with(|r| r.borrow_mut().remove(&pid))
        .ok_or(Error::NotAttached(pid))?;
    // read or let go by this session: its result will not be kept, and its registry slot is an
    // ordinary finished one again
    let fixed = entry.fixed();
    if fixed.keep_s > 0 {
        if let Ok(index) = usize::try_from(fixed.job_slot) {
            crate::registry::launched_to_keep(index, fixed.job_id, 0);
        }
    }
    Ok(entry)
}

/// Number of this session's workers that are starting or running. Finished workers whose
/// results are unread do not count (a fix of the C extension, which counted every entry).
pub fn running() -> usize {
    REGISTRY.with(|r| r.borrow().values().filter(|e| !e.finished()).count())
}

/// Number of finished jobs still kept for reading or detaching (bounded by
/// `pg_background.max_unread_results`).
pub fn unread() -> usize {
    REGISTRY.with(|r| r.borrow().values().filter(|e| e.finished()).count())
}

/// Release the segments of finished jobs, keeping what is left of their output in session
/// memory (see [`Channel::release`]).
pub fn release_finished() {
    REGISTRY.with(|r| {
        for e in r.borrow_mut().values_mut() {
            if e.finished() && !e.channel.released() {
                e.channel.release();
            }
        }
    })
}

/// At this session's exit, before its spill files are let go (`spill::delete_at_exit`, which
/// this callback precedes: it is registered later): keep the results of unread jobs launched to
/// be kept ([`Channel::keep`]). Each kept job is no longer watched at once, so that an error
/// while keeping a later one (which ends this callback) leaves it kept.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn keep_at_exit(_code: core::ffi::c_int, _arg: pg_sys::Datum) {
    REGISTRY.with(|r| {
        // (an exit that interrupted a walk of the registry: keep nothing rather than fail)
        let Ok(mut r) = r.try_borrow_mut() else {
            return;
        };
        // (`keep` looks at each job: only unread ones launched to be kept are)
        for e in r.values_mut() {
            let address = e.fixed() as *const crate::shm::FixedState as usize;
            if e.channel.keep() {
                crate::spill::reader::unwatch(address);
            }
        }
    })
}

/// Register [`keep_at_exit`] (once per process) when a job to be kept is filed.
fn keep_at_exit_once() {
    // (after the spill callback, registered when the session's first job was watched, before
    // it was filed here: so it runs before it)
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&REGISTERED, keep_at_exit);
}

/// The PID under which this session tracks job `job_id` of the cluster-wide registry.
pub fn pid_of_job(job_id: u64) -> Option<i32> {
    REGISTRY.with(|r| {
        r.borrow()
            .values()
            .find(|e| e.fixed().job_slot >= 0 && e.fixed().job_id == job_id)
            .map(|e| e.pid)
    })
}
