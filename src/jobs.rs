//! The cluster-wide job registry behind the `pg_background_jobs` view: one slot per job of the
//! whole cluster, in shared memory, under one LWLock.
//!
//! Where the memory comes from depends on the server: PostgreSQL 17 and later have a registry of
//! named DSM segments (`GetNamedDSMSegment`), which any backend may create on first use; before
//! 17 an extension's shared memory must be requested while the postmaster loads it, so the
//! registry needs `shared_preload_libraries = 'pg_background'` there. Without it, launches work
//! as always but are not registered, and the view raises an error instead of showing part of
//! the cluster.
//!
//! A launch takes a slot (state `queued`) before it registers its worker; the worker marks it
//! `running` when it starts the job and adds the rows and bytes it sends; the end of the job
//! (`finished`, `failed`, `canceled`, with the error's SQLSTATE and message) is written by the
//! worker before it detaches from the job's segment, or before it exits. Finished jobs stay
//! visible for `pg_background.job_history` and are evicted oldest first when every slot is
//! taken.

use crate::shm::FixedState;
use core::cell::Cell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI64, AtomicPtr, Ordering};
use pgrx::pg_sys;

/// Slots in the registry: every running job of the cluster and the most recent finished ones.
pub const SLOTS: usize = 1024;

/// States of a slot.
pub mod state {
    pub const FREE: u32 = 0;
    pub const QUEUED: u32 = 1;
    pub const RUNNING: u32 = 2;
    pub const FINISHED: u32 = 3;
    pub const FAILED: u32 = 4;
    pub const CANCELED: u32 = 5;

    pub fn name(state: u32) -> &'static str {
        match state {
            QUEUED => "queued",
            RUNNING => "running",
            FINISHED => "finished",
            FAILED => "failed",
            CANCELED => "canceled",
            _ => "free",
        }
    }
}

const LABEL: usize = 65;
const SQLSTATE: usize = 6;
const MESSAGE: usize = 256;
const QUERY: usize = 121;

#[repr(C)]
struct Slot {
    job_id: u64,
    state: u32,
    owner: pg_sys::Oid,
    database: pg_sys::Oid,
    launcher_pid: i32,
    worker_pid: i32,
    launched_at: i64,
    started_at: i64,
    finished_at: i64,
    /// Counts against the caps on running jobs (a queued slot without it waits for its turn).
    admitted: bool,
    /// `pg_background.max_jobs_per_role` of the launching session (-1: none).
    role_cap: i32,
    /// Updated by the worker without the lock.
    rows: AtomicI64,
    bytes: AtomicI64,
    label: [u8; LABEL],
    sqlstate: [u8; SQLSTATE],
    message: [u8; MESSAGE],
    query: [u8; QUERY],
    /// A result kept after its launcher left ([`kept`]).
    kept: u32,
    keep_s: i32,
    /// Until when a complete kept result waits to be read.
    kept_until: i64,
    /// The part the launcher had moved out of the queue (filed by the launcher).
    head: Part,
    /// The spill file (filed by whoever holds it when the launcher leaves).
    body: Part,
}

/// One file of a kept result.
#[repr(C)]
#[derive(Clone, Copy)]
struct Part {
    /// There is a file.
    present: bool,
    bytes: u64,
    set: pg_sys::FileSet,
}

impl Part {
    fn of(file: Option<(pg_sys::FileSet, u64)>) -> Self {
        // SAFETY: all-zero bytes are a valid FileSet (plain integers).
        let mut part: Part = unsafe { core::mem::zeroed() };
        if let Some((set, bytes)) = file {
            part.present = true;
            part.set = set;
            part.bytes = bytes;
        }
        part
    }

    fn file(&self) -> Option<(pg_sys::FileSet, u64)> {
        self.present.then_some((self.set, self.bytes))
    }
}

/// States of a kept result.
pub mod kept {
    pub const NONE: u32 = 0;
    /// The launcher left and filed the head; the body is not filed yet (the worker still
    /// runs).
    pub const PENDING: u32 = 1;
    /// Complete, waiting to be read until `kept_until`.
    pub const READY: u32 = 2;
    /// A session reads it.
    pub const READING: u32 = 3;
}

#[repr(C)]
struct Registry {
    lock: pg_sys::LWLock,
    tranche: i32,
    /// Broadcast whenever a waiting launch may have got its turn: a job ended, a slot was
    /// freed, a waiting launch was admitted.
    turn: pg_sys::ConditionVariable,
    /// The next job id. Starts at the time of the registry's creation in microseconds, so that
    /// ids keep growing across server restarts (unless jobs were launched at more than one per
    /// microsecond on average).
    next_id: u64,
    slots: [Slot; SLOTS],
}

/// One job, as the view shows it.
pub struct Job {
    pub job_id: i64,
    pub state: &'static str,
    pub owner: pg_sys::Oid,
    pub database: pg_sys::Oid,
    pub launcher_pid: i32,
    pub worker_pid: Option<i32>,
    pub launched_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub rows: i64,
    pub bytes: i64,
    pub label: Option<String>,
    pub sqlstate: Option<String>,
    pub message: Option<String>,
    pub query: String,
    /// Until when its kept result waits to be read.
    pub kept_until: Option<i64>,
}

/// The name of the registry's shared memory; it changes with the registry's layout.
const SEGMENT_NAME: &core::ffi::CStr = c"pg_background jobs 2";

/// The registry, in this process, or NULL while not attached (or unavailable).
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

thread_local! {
    /// The slot of the job this worker runs (index, id), for the row and byte counters.
    static CURRENT: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
    static TRANCHE_NAMED: Cell<bool> = const { Cell::new(false) };
    /// The slot of the launch this backend is making, until its worker has it.
    static PENDING: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
    /// The kept result this backend reads.
    static CLAIMED: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

fn copy_text<const N: usize>(to: &mut [u8; N], s: &str) {
    let clipped = crate::shm::SharedText::<N>::clip(s).as_bytes();
    to.fill(0);
    to[..clipped.len()].copy_from_slice(clipped);
}

fn text_of(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Lay out a new registry in `memory` (zeroed).
///
/// # Safety
/// `memory` is `size_of::<Registry>()` bytes of shared memory nobody else uses yet.
unsafe fn initialize(memory: *mut Registry) {
    // SAFETY: the caller's contract; all-zero bytes are a valid Registry (FREE slots).
    unsafe {
        core::ptr::write_bytes(memory.cast::<u8>(), 0, core::mem::size_of::<Registry>());
        (*memory).tranche = pg_sys::LWLockNewTrancheId();
        pg_sys::LWLockInitialize(&mut (*memory).lock, (*memory).tranche);
        pg_sys::ConditionVariableInit(&mut (*memory).turn);
        (*memory).next_id = pg_sys::GetCurrentTimestamp().max(1) as u64;
    }
}

#[cfg(any(feature = "pg17", feature = "pg18"))]
fn attach() -> Option<NonNull<Registry>> {
    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn init(memory: *mut core::ffi::c_void) {
        // SAFETY: the DSM registry hands us the new segment's memory, of our size, under its
        // lock.
        unsafe { initialize(memory.cast()) };
    }
    let mut found = false;
    // SAFETY: creates or finds the named segment and maps it for the rest of this process.
    let memory = unsafe {
        pg_sys::GetNamedDSMSegment(
            SEGMENT_NAME.as_ptr(),
            core::mem::size_of::<Registry>(),
            Some(init),
            &mut found,
        )
    };
    NonNull::new(memory.cast())
}

#[cfg(not(any(feature = "pg17", feature = "pg18")))]
fn attach() -> Option<NonNull<Registry>> {
    // Set by the postmaster's shared memory start-up (`preload`), inherited by every backend.
    None
}

/// Request the registry's shared memory while the postmaster loads the library
/// (`shared_preload_libraries`), before PostgreSQL 17. Called from `_PG_init`.
pub fn preload() {
    #[cfg(not(any(feature = "pg17", feature = "pg18")))]
    // SAFETY: reading the flag the postmaster sets while it loads preloaded libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        hooks::install();
    }
}

#[cfg(not(any(feature = "pg17", feature = "pg18")))]
mod hooks {
    use super::{initialize, Registry, REGISTRY};
    use core::sync::atomic::Ordering;
    use pgrx::pg_sys;

    static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
    static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

    pub fn install() {
        // SAFETY: the postmaster, single-threaded, while it loads libraries: the documented
        // time to chain these hooks.
        unsafe {
            PREV_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(request);
            PREV_STARTUP = pg_sys::shmem_startup_hook;
            pg_sys::shmem_startup_hook = Some(startup);
        }
    }

    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn request() {
        // SAFETY: called by the postmaster when add-ins request shared memory.
        unsafe {
            if let Some(prev) = PREV_REQUEST {
                prev();
            }
            pg_sys::RequestAddinShmemSpace(core::mem::size_of::<Registry>());
        }
    }

    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn startup() {
        // SAFETY: called by the postmaster once shared memory exists (again after a crash
        // restart), before any backend starts: nobody else uses the registry yet.
        unsafe {
            if let Some(prev) = PREV_STARTUP {
                prev();
            }
            let mut found = false;
            let memory = pg_sys::ShmemInitStruct(
                super::SEGMENT_NAME.as_ptr(),
                core::mem::size_of::<Registry>(),
                &mut found,
            )
            .cast::<Registry>();
            if !found {
                initialize(memory);
            }
            REGISTRY.store(memory, Ordering::Release);
        }
    }
}

fn registry() -> Option<NonNull<Registry>> {
    let registry = NonNull::new(REGISTRY.load(Ordering::Acquire)).or_else(|| {
        let attached = attach()?;
        REGISTRY.store(attached.as_ptr(), Ordering::Release);
        Some(attached)
    })?;
    if !TRANCHE_NAMED.with(|n| n.replace(true)) {
        // SAFETY: names our tranche in this process (what pg_stat_activity shows for a wait on
        // the lock); the name is static.
        unsafe {
            pg_sys::LWLockRegisterTranche((*registry.as_ptr()).tranche, c"pg_background".as_ptr())
        };
    }
    Some(registry)
}

/// Run `f` on the registry under its lock.
fn locked<R>(exclusive: bool, f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
    let registry = registry()?;
    struct Release(*mut pg_sys::LWLock);
    impl Drop for Release {
        fn drop(&mut self) {
            // SAFETY: we hold the lock (acquired below), also when `f` unwinds.
            unsafe { pg_sys::LWLockRelease(self.0) };
        }
    }
    // SAFETY: the registry is mapped for the rest of this process; holding the lock makes our
    // access to the slots' plain fields exclusive (or shared, for reading only).
    unsafe {
        let lock = &mut (*registry.as_ptr()).lock as *mut pg_sys::LWLock;
        let mode = if exclusive {
            pg_sys::LWLockMode::LW_EXCLUSIVE
        } else {
            pg_sys::LWLockMode::LW_SHARED
        };
        pg_sys::LWLockAcquire(lock, mode);
        let _release = Release(lock);
        Some(f(&mut *registry.as_ptr()))
    }
}

/// `pg_background.job_history` in microseconds.
fn history_us() -> i64 {
    i64::from(crate::guc::JOB_HISTORY.get()) * 1_000_000
}

fn is_over(state: u32) -> bool {
    state >= state::FINISHED
}

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
    s.admitted && matches!(s.state, state::QUEUED | state::RUNNING)
}

/// A launch that waits for its turn.
fn waits(s: &Slot) -> bool {
    s.state == state::QUEUED && !s.admitted
}

/// Whether slot `me` may start now under `total` (every session has the same
/// `pg_background.max_jobs`, a server-wide setting) and the role caps filed in the slots;
/// `fifo`: also not before a launch that waits longer and may start too.
fn refusal(r: &Registry, me: usize, total: i32, fifo: bool) -> Option<Refusal> {
    let mut running = 0usize;
    let mut roles: Vec<(pg_sys::Oid, usize)> = Vec::new();
    let mut any_waits = false;
    for s in r.slots.iter() {
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
    let mine = &r.slots[me];
    if let Some(refusal) = blocked(mine) {
        return Some(refusal);
    }
    let ahead =
        fifo && any_waits
            && r.slots.iter().enumerate().any(|(i, s)| {
                i != me && waits(s) && s.job_id < mine.job_id && blocked(s).is_none()
            });
    ahead.then_some(Refusal::Behind)
}

/// Wake the sessions that wait on the registry: launches for their turn, readers for a kept
/// result.
fn broadcast() {
    if let Some(r) = NonNull::new(REGISTRY.load(Ordering::Acquire)) {
        // SAFETY: the registry's condition variable, initialised with it; callable with or
        // without the lock.
        unsafe { pg_sys::ConditionVariableBroadcast(&mut (*r.as_ptr()).turn) };
    }
}

/// File a new job (state `queued`), admitted at once unless `caps` (or, with `fifo`, a launch
/// waiting longer) say otherwise: then it waits for its turn ([`admit`]).
pub fn register(label: &str, query: &str, caps: Caps, fifo: bool) -> Filed {
    let now = crate::ffi::now();
    // SAFETY: reading this backend's identity.
    let (owner, database, pid) =
        unsafe { (pg_sys::GetUserId(), pg_sys::MyDatabaseId, pg_sys::MyProcPid) };
    let mut expired = Vec::new();
    let filed = locked(true, |r| {
        // (expired kept results give their slots back first)
        expired = take_expired(r, now);
        let Some(index) = r
            .slots
            .iter()
            .position(|s| s.state == state::FREE)
            .or_else(|| {
                // the finished job that ended first
                (0..SLOTS)
                    .filter(|&i| is_over(r.slots[i].state) && r.slots[i].kept == kept::NONE)
                    .min_by_key(|&i| r.slots[i].finished_at)
            })
        else {
            return Filed::Full;
        };
        let id = r.next_id;
        r.next_id += 1;
        let slot = &mut r.slots[index];
        slot.job_id = id;
        slot.state = state::QUEUED;
        slot.admitted = false;
        slot.role_cap = caps.per_role;
        slot.kept = kept::NONE;
        slot.kept_until = 0;
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
        let refusal = refusal(r, index, caps.total, fifo);
        r.slots[index].admitted = refusal.is_none();
        Filed::Slot { index, id, refusal }
    })
    .unwrap_or(Filed::Unavailable);
    delete_sets(expired);
    if let Filed::Slot { index, id, .. } = filed {
        PENDING.with(|p| p.set(Some((index, id))));
        at_exit_once();
    }
    filed
}

/// Try again to admit a waiting launch: `None` once it is admitted.
pub fn admit(index: usize, id: u64, caps: Caps, fifo: bool) -> Option<Refusal> {
    let (refusal, admitted) = locked(true, |r| {
        if r.slots[index].job_id != id || !waits(&r.slots[index]) {
            return (None, false);
        }
        let refusal = refusal(r, index, caps.total, fifo);
        r.slots[index].admitted = refusal.is_none();
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
    locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id == id && slot.state == state::QUEUED {
            slot.admitted = false;
        }
    });
}

/// Sleep until a launch may have got its turn, at most `ms` (interruptibly; a wait event
/// that `pg_stat_activity` shows).
pub fn sleep_for_turn(ms: i64, wait_event: u32) {
    let Some(r) = registry() else {
        crate::ffi::sleep_on_latch(ms, crate::ffi::WaitEvent::Capacity);
        return;
    };
    // SAFETY: the registry's condition variable; the sleep checks for interrupts (an ERROR
    // there is cleaned up by the transaction's abort, which cancels the sleep).
    unsafe { pg_sys::ConditionVariableTimedSleep(&mut (*r.as_ptr()).turn, ms, wait_event) };
}

/// The launch stopped waiting (admitted, or gave up).
pub fn stop_sleeping() {
    // SAFETY: leaves the condition variable's wait list, if on it.
    unsafe {
        pg_sys::ConditionVariableCancelSleep();
    }
}

/// A launch that failed before its worker could start: the slot is free again.
pub fn forget(index: usize, id: u64) {
    clear(&PENDING, (index, id));
    locked(true, |r| {
        // (a job whose worker has started is the worker's to end)
        if r.slots[index].job_id == id && r.slots[index].state == state::QUEUED {
            r.slots[index].state = state::FREE;
            r.slots[index].admitted = false;
        }
    });
    broadcast();
}

/// The launch handed slot `(index, id)` to its worker.
pub fn handed_over(index: usize, id: u64) {
    clear(&PENDING, (index, id));
}

/// Forget this backend's note of slot `(index, id)` in `note` (if it is that one).
fn clear(note: &'static std::thread::LocalKey<Cell<Option<(usize, u64)>>>, slot: (usize, u64)) {
    note.with(|n| {
        if n.get() == Some(slot) {
            n.set(None);
        }
    });
}

/// A launcher that exits (FATAL, e.g. terminated while it waits for its turn) frees the slot
/// of the launch it was making: else that slot would count, or stand in line, for ever.
fn at_exit_once() {
    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn at_exit(_code: core::ffi::c_int, _arg: pg_sys::Datum) {
        if let Some((index, id)) = PENDING.with(Cell::get) {
            forget(index, id);
        }
        // a kept result this session was reading: its files go with the session's spill files
        if let Some((index, id)) = CLAIMED.with(Cell::get) {
            read_out(index, id);
        }
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    // SAFETY: registered once per process; the callback takes our LWLock, which is allowed
    // before shared memory is detached.
    REGISTERED
        .call_once(|| unsafe { pg_sys::before_shmem_exit(Some(at_exit), pg_sys::Datum::from(0)) });
}

/// The worker starts job `fixed` (if it was registered).
pub fn started(fixed: &FixedState) {
    let Some((index, id)) = slot_of(fixed) else {
        CURRENT.with(|c| c.set(None));
        return;
    };
    CURRENT.with(|c| c.set(Some((index, id))));
    let now = crate::ffi::now();
    // SAFETY: reading our PID.
    let pid = unsafe { pg_sys::MyProcPid };
    locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id == id && slot.state == state::QUEUED {
            slot.state = state::RUNNING;
            slot.worker_pid = pid;
            slot.started_at = now;
        }
    });
}

fn slot_of(fixed: &FixedState) -> Option<(usize, u64)> {
    let index = usize::try_from(fixed.job_slot)
        .ok()
        .filter(|&i| i < SLOTS)?;
    Some((index, fixed.job_id))
}

/// The worker sent `rows` rows in `bytes` bytes.
pub fn count(rows: i64, bytes: i64) {
    let Some((index, _)) = CURRENT.with(Cell::get) else {
        return;
    };
    let Some(registry) = NonNull::new(REGISTRY.load(Ordering::Acquire)) else {
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

/// The job in `fixed` is over: record how it ended, from the fixed state (once; later calls do
/// nothing).
pub fn ended(fixed: &FixedState) {
    CURRENT.with(|c| c.set(None));
    let Some((index, id)) = slot_of(fixed) else {
        return;
    };
    let error = &fixed.error;
    let failed = error.present.load(Ordering::Acquire);
    let sqlstate = if failed {
        error.sqlstate.get()
    } else {
        String::new()
    };
    let message = if failed {
        error.message.get()
    } else {
        String::new()
    };
    let outcome = if fixed.succeeded.load(Ordering::Acquire) && !failed {
        state::FINISHED
    } else if sqlstate == "57014" || fixed.cancel_requested.load(Ordering::Acquire) {
        state::CANCELED
    } else {
        state::FAILED
    };
    let now = crate::ffi::now();
    locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id == id && !is_over(slot.state) && slot.state != state::FREE {
            slot.state = outcome;
            slot.finished_at = now;
            copy_text(&mut slot.sqlstate, &sqlstate);
            copy_text(&mut slot.message, &message);
        }
    });
    // a waiting launch may now start
    broadcast();
}

/// Every job in the registry, finished ones within `pg_background.job_history`; `None` when the
/// registry is not there. Taken under the lock, filtered by the caller afterwards (privilege
/// checks read the catalogs, which must not happen under an LWLock).
pub fn snapshot() -> Option<Vec<Job>> {
    sweep();
    let oldest = crate::ffi::now() - history_us();
    locked(false, |r| {
        r.slots
            .iter()
            .filter(|s| {
                s.state != state::FREE
                    && (s.kept != kept::NONE || !(is_over(s.state) && s.finished_at < oldest))
            })
            .map(|s| Job {
                job_id: s.job_id as i64,
                state: state::name(s.state),
                owner: s.owner,
                database: s.database,
                launcher_pid: s.launcher_pid,
                worker_pid: (s.worker_pid != 0).then_some(s.worker_pid),
                launched_at: s.launched_at,
                started_at: (s.started_at != 0).then_some(s.started_at),
                finished_at: (s.finished_at != 0).then_some(s.finished_at),
                rows: s.rows.load(Ordering::Relaxed),
                bytes: s.bytes.load(Ordering::Relaxed),
                label: Some(text_of(&s.label)).filter(|l| !l.is_empty()),
                sqlstate: Some(text_of(&s.sqlstate)).filter(|l| !l.is_empty()),
                message: Some(text_of(&s.message)).filter(|l| !l.is_empty()),
                query: text_of(&s.query),
                kept_until: (s.kept == kept::READY).then_some(s.kept_until),
            })
            .collect()
    })
}

/// A job as the view shows it to the current user.
pub struct VisibleJob {
    pub job: Job,
    pub usename: Option<String>,
    pub datname: Option<String>,
}

/// The jobs the current user may see: those of roles whose privileges it has; every job for
/// superusers and members of `pg_read_all_stats` (as `pg_stat_activity` shows queries).
pub fn visible() -> Result<Vec<VisibleJob>, crate::error::Error> {
    let jobs = snapshot().ok_or(crate::error::Error::RegistryUnavailable(
        "pg_background_jobs",
    ))?;
    // SAFETY: catalog look-ups in the caller's transaction (a SQL function).
    let (user, all) = unsafe {
        let user = pg_sys::GetUserId();
        let all = pg_sys::superuser()
            || pg_sys::has_privs_of_role(user, pg_sys::Oid::from(pg_sys::ROLE_PG_READ_ALL_STATS));
        (user, all)
    };
    let name = |p: *mut core::ffi::c_char| {
        (!p.is_null()).then(|| {
            // SAFETY: a palloc'd NUL-terminated name (checked not NULL).
            unsafe { core::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        })
    };
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        // SAFETY: catalog look-ups, as above; both tolerate OIDs that no longer exist.
        let (visible, usename, datname) = unsafe {
            (
                all || pg_sys::has_privs_of_role(user, job.owner),
                name(pg_sys::GetUserNameFromId(job.owner, true)),
                name(pg_sys::get_database_name(job.database)),
            )
        };
        if visible {
            out.push(VisibleJob {
                job,
                usename,
                datname,
            });
        }
    }
    out.sort_by_key(|v| v.job.job_id);
    Ok(out)
}

/// Whether this server has the registry (always from 17 on; before, when preloaded).
pub fn available() -> bool {
    registry().is_some()
}

/// The launcher leaves job `(index, id)` unread: keep its result for `keep_s` seconds once
/// complete. `head`: what it had moved out of the queue; the spill file follows
/// ([`keep_body`], [`keep_body_of`]).
pub fn keep_head(index: usize, id: u64, keep_s: i32, head: Option<(pg_sys::FileSet, u64)>) -> bool {
    locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id != id || slot.state == state::FREE || slot.kept != kept::NONE {
            return false;
        }
        slot.kept = kept::PENDING;
        slot.keep_s = keep_s;
        slot.head = Part::of(head);
        true
    })
    .unwrap_or(false)
}

/// File the spill file of a kept result (or that there is none): the result is complete and
/// waits `keep_s` from now. False when the result is not kept (then the caller deletes the
/// file).
pub fn keep_body_of(index: usize, id: u64, body: Option<(pg_sys::FileSet, u64)>) -> bool {
    let now = crate::ffi::now();
    let filed = locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id != id || slot.kept != kept::PENDING {
            return false;
        }
        slot.body = Part::of(body);
        slot.kept = kept::READY;
        slot.kept_until = now + i64::from(slot.keep_s) * 1_000_000;
        true
    })
    .unwrap_or(false);
    if filed {
        // a session may wait to read it
        broadcast();
    }
    filed
}

/// The worker of a job whose launcher left files its spill file, or that it wrote none.
pub fn keep_body(fixed: &FixedState, body: Option<(pg_sys::FileSet, u64)>) -> bool {
    slot_of(fixed).is_some_and(|(index, id)| keep_body_of(index, id, body))
}

/// Delete the kept results whose time is up (and give their slots back to the history).
pub fn sweep() {
    let now = crate::ffi::now();
    let expired = locked(true, |r| take_expired(r, now)).unwrap_or_default();
    delete_sets(expired);
}

/// Take the expired kept results out of their slots (under the lock): their file sets.
fn take_expired(r: &mut Registry, now: i64) -> Vec<pg_sys::FileSet> {
    let mut expired = Vec::new();
    for slot in r.slots.iter_mut() {
        if slot.kept == kept::READY && slot.kept_until < now {
            expired.extend(slot.head.file().map(|(set, _)| set));
            expired.extend(slot.body.file().map(|(set, _)| set));
            slot.kept = kept::NONE;
        }
    }
    expired
}

/// Delete file sets (not under the lock).
fn delete_sets(sets: Vec<pg_sys::FileSet>) {
    for mut set in sets {
        crate::spill::delete_all(&mut set);
    }
}

/// A kept result taken by its reader: the head's and the body's files, in order.
pub struct Claimed {
    pub index: usize,
    pub worker_pid: i32,
    /// The SQLSTATE and message the job ended with, if it failed (for a job whose output
    /// ended before it could send its error, e.g. a worker that could not connect).
    pub error: Option<(String, String)>,
    pub head: Option<(pg_sys::FileSet, u64)>,
    pub body: Option<(pg_sys::FileSet, u64)>,
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

/// Take the kept result of job `job_id` for reading (once): READY → READING. The privilege
/// check (a catalog look-up) is made between two looks under the lock.
pub fn claim(job_id: u64) -> Result<Claimed, NotKept> {
    sweep();
    at_exit_once();
    let find = |r: &Registry| {
        r.slots
            .iter()
            .position(|s| s.job_id == job_id && s.state != state::FREE)
    };
    let (index, owner) = locked(false, |r| find(r).map(|i| (i, r.slots[i].owner)))
        .flatten()
        .ok_or(NotKept::Unknown)?;
    // SAFETY: catalog look-up of role membership, in the caller's transaction, not under the
    // lock.
    if !unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) } {
        return Err(NotKept::Denied);
    }
    locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id != job_id || slot.state == state::FREE {
            return Err(NotKept::Unknown);
        }
        match slot.kept {
            kept::READY => {
                slot.kept = kept::READING;
                CLAIMED.with(|c| c.set(Some((index, job_id))));
                let error = Some((text_of(&slot.sqlstate), text_of(&slot.message)))
                    .filter(|(sqlstate, _)| !sqlstate.is_empty());
                Ok(Claimed {
                    index,
                    worker_pid: slot.worker_pid,
                    error,
                    head: slot.head.file(),
                    body: slot.body.file(),
                })
            }
            kept::PENDING => Err(NotKept::Pending(slot.worker_pid)),
            _ => Err(NotKept::Unavailable),
        }
    })
    .unwrap_or(Err(NotKept::Unknown))
}

/// The reader of a kept result is done with it (its files are deleted): it is gone.
pub fn read_out(index: usize, job_id: u64) {
    clear(&CLAIMED, (index, job_id));
    locked(true, |r| {
        let slot = &mut r.slots[index];
        if slot.job_id == job_id && slot.kept == kept::READING {
            slot.kept = kept::NONE;
        }
    });
}

/// Be woken (our latch set) when a kept result may have become complete: call before looking,
/// then sleep on the latch; [`stop_sleeping`] when done.
pub fn prepare_to_wait() {
    if let Some(r) = registry() {
        // SAFETY: the registry's condition variable; the broadcast that follows a filing sets
        // our latch and takes us off its list (this is called again before each look).
        unsafe { pg_sys::ConditionVariablePrepareToSleep(&mut (*r.as_ptr()).turn) };
    }
}
