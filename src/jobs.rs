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
    /// Updated by the worker without the lock.
    rows: AtomicI64,
    bytes: AtomicI64,
    label: [u8; LABEL],
    sqlstate: [u8; SQLSTATE],
    message: [u8; MESSAGE],
    query: [u8; QUERY],
}

#[repr(C)]
struct Registry {
    lock: pg_sys::LWLock,
    tranche: i32,
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
}

/// The registry, in this process, or NULL while not attached (or unavailable).
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

thread_local! {
    /// The slot of the job this worker runs (index, id), for the row and byte counters.
    static CURRENT: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
    static TRANCHE_NAMED: Cell<bool> = const { Cell::new(false) };
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
            c"pg_background".as_ptr(),
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
                c"pg_background jobs".as_ptr(),
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

/// File a new job (state `queued`); `None` when the registry is not there or every slot holds a
/// job that has not finished.
pub fn register(label: &str, query: &str) -> Option<(usize, u64)> {
    let now = crate::ffi::now();
    // SAFETY: reading this backend's identity.
    let (owner, database, pid) =
        unsafe { (pg_sys::GetUserId(), pg_sys::MyDatabaseId, pg_sys::MyProcPid) };
    locked(true, |r| {
        let index = r
            .slots
            .iter()
            .position(|s| s.state == state::FREE)
            .or_else(|| {
                // the finished job that ended first
                (0..SLOTS)
                    .filter(|&i| is_over(r.slots[i].state))
                    .min_by_key(|&i| r.slots[i].finished_at)
            })?;
        let id = r.next_id;
        r.next_id += 1;
        let slot = &mut r.slots[index];
        slot.job_id = id;
        slot.state = state::QUEUED;
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
        Some((index, id))
    })
    .flatten()
}

/// A launch that failed before its worker could start: the slot is free again.
pub fn forget(index: usize, id: u64) {
    locked(true, |r| {
        if r.slots[index].job_id == id {
            r.slots[index].state = state::FREE;
        }
    });
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
}

/// Every job in the registry, finished ones within `pg_background.job_history`; `None` when the
/// registry is not there. Taken under the lock, filtered by the caller afterwards (privilege
/// checks read the catalogs, which must not happen under an LWLock).
pub fn snapshot() -> Option<Vec<Job>> {
    let oldest = crate::ffi::now() - history_us();
    locked(false, |r| {
        r.slots
            .iter()
            .filter(|s| s.state != state::FREE && !(is_over(s.state) && s.finished_at < oldest))
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
    let jobs = snapshot().ok_or(crate::error::Error::RegistryUnavailable)?;
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
