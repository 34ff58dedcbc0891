//! The registry's shared memory, its lock and its condition variable.

use super::slot::{Counters, Registry};
use core::cell::Cell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use pgrx::pg_sys;

/// The name of the registry's shared memory; it changes with the registry's layout.
const SEGMENT_NAME: &core::ffi::CStr = c"pg_background jobs 5";

/// The registry, in this process, or NULL while not attached (or unavailable).
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

thread_local! {
    static TRANCHE_NAMED: Cell<bool> = const { Cell::new(false) };
}

/// The number of slots of a registry made now: `pg_background.job_slots` (a setting that only
/// changes with a restart, which makes a new registry).
fn new_slot_count() -> usize {
    usize::try_from(crate::guc::JOB_SLOTS.get()).unwrap_or(0)
}

/// The number of places in the list of idle workers of a registry made now: one per worker
/// process the server may run (`max_worker_processes` only changes with a restart).
fn new_idle_count() -> usize {
    // SAFETY: reading a setting of the postmaster's, fixed for the server's life.
    usize::try_from(unsafe { pg_sys::max_worker_processes }).unwrap_or(0)
}

/// Bytes of a registry made now.
fn new_size() -> usize {
    Registry::size(new_slot_count(), new_idle_count())
}

/// The number of slots of the registry (0 on a server without it).
pub fn slot_count() -> usize {
    registry().map_or(0, |r| {
        // SAFETY: the registry is mapped for the rest of this process; its size never changes.
        unsafe { r.as_ref() }.slots().len()
    })
}

/// Lay out a new registry in `memory` (zeroed).
///
/// # Safety
/// `memory` is `new_size()` bytes of shared memory nobody else uses yet.
unsafe fn initialize(memory: *mut Registry) {
    // SAFETY: the caller's contract.
    unsafe { Registry::initialize(memory, new_slot_count(), new_idle_count()) };
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
        pg_sys::GetNamedDSMSegment(SEGMENT_NAME.as_ptr(), new_size(), Some(init), &mut found)
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
    if crate::server::preloading() {
        hooks::install();
    }
}

#[cfg(not(any(feature = "pg17", feature = "pg18")))]
mod hooks {
    use super::{initialize, new_size, Registry, REGISTRY};
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
            pg_sys::RequestAddinShmemSpace(new_size());
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
            let memory =
                pg_sys::ShmemInitStruct(super::SEGMENT_NAME.as_ptr(), new_size(), &mut found)
                    .cast::<Registry>();
            if !found {
                initialize(memory);
            }
            REGISTRY.store(memory, Ordering::Release);
        }
    }
}

/// The registry, attached on first use; `None` on a server without it.
pub fn registry() -> Option<NonNull<Registry>> {
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

/// The cluster's counters; `None` on a server without the registry.
pub fn counters() -> Option<&'static Counters> {
    let registry = registry()?;
    // SAFETY: the registry is mapped for the rest of this process; the counters are atomics,
    // shared without the lock.
    Some(unsafe { &(*registry.as_ptr()).stats })
}

/// Add `n` to one of the cluster's counters (nothing on a server without the registry).
pub fn add(counter: impl FnOnce(&Counters) -> &core::sync::atomic::AtomicU64, n: u64) {
    if let Some(counters) = counters() {
        counter(counters).fetch_add(n, Ordering::Relaxed);
    }
}

/// The registry if this process has attached to it already (never attaches: for the worker's
/// counters, which must not take the lock or map memory).
pub fn attached() -> Option<NonNull<Registry>> {
    NonNull::new(REGISTRY.load(Ordering::Acquire))
}

/// Whether this server has the registry (always from 17 on; before, when preloaded).
pub fn available() -> bool {
    registry().is_some()
}

/// The registry under its lock in shared mode: read-only.
pub struct Shared(NonNull<Registry>);

/// The registry under its lock in exclusive mode.
pub struct Exclusive(NonNull<Registry>);

/// Take the registry's lock in `mode`.
fn acquire(mode: pg_sys::LWLockMode::Type) -> Option<NonNull<Registry>> {
    let registry = registry()?;
    // SAFETY: the registry is mapped for the rest of this process; the guard that receives it
    // releases the lock on every way out, also when an ERROR unwinds.
    unsafe { pg_sys::LWLockAcquire(&mut (*registry.as_ptr()).lock, mode) };
    Some(registry)
}

/// Shared access; `None` on a server without the registry.
pub fn shared() -> Option<Shared> {
    acquire(pg_sys::LWLockMode::LW_SHARED).map(Shared)
}

/// Exclusive access; `None` on a server without the registry.
pub fn exclusive() -> Option<Exclusive> {
    acquire(pg_sys::LWLockMode::LW_EXCLUSIVE).map(Exclusive)
}

impl core::ops::Deref for Shared {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        // SAFETY: mapped for the process's lifetime; the shared lock keeps writers out.
        unsafe { self.0.as_ref() }
    }
}

impl core::ops::Deref for Exclusive {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        // SAFETY: mapped for the process's lifetime; we hold the lock exclusively.
        unsafe { self.0.as_ref() }
    }
}

impl core::ops::DerefMut for Exclusive {
    fn deref_mut(&mut self) -> &mut Registry {
        // SAFETY: as above; the exclusive lock makes this the only access to the plain fields.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: we hold the lock (taken by `shared`).
        unsafe { pg_sys::LWLockRelease(&mut (*self.0.as_ptr()).lock) };
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        // SAFETY: we hold the lock (taken by `exclusive`).
        unsafe { pg_sys::LWLockRelease(&mut (*self.0.as_ptr()).lock) };
    }
}

/// Wake the sessions that wait on the registry: launches for their turn, readers for a kept
/// result.
pub fn broadcast() {
    if let Some(r) = attached() {
        // SAFETY: the registry's condition variable, initialised with it; callable with or
        // without the lock.
        unsafe { pg_sys::ConditionVariableBroadcast(&mut (*r.as_ptr()).turn) };
    }
}

/// Sleep on the registry's condition variable, at most `ms` (interruptibly; `wait_event` shows
/// in `pg_stat_activity`). False on a server without the registry.
pub fn sleep(ms: i64, wait_event: u32) -> bool {
    let Some(r) = registry() else {
        return false;
    };
    // SAFETY: the registry's condition variable; the sleep checks for interrupts (an ERROR
    // there is cleaned up by the transaction's abort, which cancels the sleep).
    unsafe { pg_sys::ConditionVariableTimedSleep(&mut (*r.as_ptr()).turn, ms, wait_event) };
    true
}

/// Be woken (our latch set) by the next [`broadcast`]: call before looking, then sleep on the
/// latch; [`stop_sleeping`] when done.
pub fn prepare_to_sleep() {
    if let Some(r) = registry() {
        // SAFETY: the registry's condition variable; the broadcast sets our latch and takes us
        // off its list (this is called again before each look).
        unsafe { pg_sys::ConditionVariablePrepareToSleep(&mut (*r.as_ptr()).turn) };
    }
}

/// Leave the condition variable's wait list, if on it.
pub fn stop_sleeping() {
    // SAFETY: plain call; a no-op when not prepared.
    unsafe { pg_sys::ConditionVariableCancelSleep() };
}
