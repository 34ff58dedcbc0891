//! The server interface the rest of the library uses: the version differences of the server's
//! functions in one place, waits on the latch with our wait events, the clock, memory contexts
//! and file sets.

use crate::ffi::{WAIT_MQ_PUT_MESSAGE, WAIT_MQ_RECEIVE};
use core::ffi::{c_char, c_int};
use core::ptr::NonNull;
use pgrx::pg_sys;

/// Whether the postmaster is loading the library now (`shared_preload_libraries`).
pub fn preloading() -> bool {
    // SAFETY: reading a flag of the server, set while it loads preloaded libraries.
    unsafe { pg_sys::process_shared_preload_libraries_in_progress }
}

/// Whether another session holds (or waits for) a lock on this backend's database that keeps
/// new sessions out of it (the lock a new session takes, tried without waiting, outside any
/// transaction, and released at once): DROP DATABASE and ALTER DATABASE … RENAME or SET
/// TABLESPACE, and CREATE DATABASE with it as template, take one, then wait up to five seconds
/// for the database's other sessions to end.
pub fn database_wanted_exclusively() -> bool {
    // SAFETY: reading our database's OID.
    let database = unsafe { pg_sys::MyDatabaseId };
    // the tag LockSharedObject makes for a database
    let tag = pg_sys::LOCKTAG {
        locktag_field1: pg_sys::Oid::INVALID.to_u32(),
        locktag_field2: pg_sys::DatabaseRelationId.to_u32(),
        locktag_field3: database.to_u32(),
        locktag_field4: 0,
        locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
        locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
    };
    let mode = pg_sys::RowExclusiveLock as pg_sys::LOCKMODE;
    // SAFETY: a session lock (no resource owner needed), tried without waiting; released
    // right after when it was granted.
    unsafe {
        if pg_sys::LockAcquire(&tag, mode, true, true)
            == pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
        {
            return true;
        }
        pg_sys::LockRelease(&tag, mode, true);
    }
    false
}

/// Reserve a GUC prefix, so that `SET pg_background.bogus` fails (`MarkGUCPrefixReserved`,
/// PostgreSQL 15+; older versions only warn about existing placeholders).
pub fn reserve_guc_prefix(prefix: &'static core::ffi::CStr) {
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: plain call at library load with a static NUL-terminated name.
    unsafe {
        pg_sys::MarkGUCPrefixReserved(prefix.as_ptr())
    };
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    // SAFETY: as above.
    unsafe {
        pg_sys::EmitWarningsOnPlaceholders(prefix.as_ptr())
    };
}

/// `pg_analyze_and_rewrite_fixedparams` (15+) / `pg_analyze_and_rewrite` (13, 14), no parameters.
///
/// # Safety
/// `raw` is a raw statement of `sql`, in a transaction with an active snapshot if it needs one.
pub unsafe fn analyze_and_rewrite(
    raw: *mut pg_sys::RawStmt,
    sql: *const c_char,
) -> *mut pg_sys::List {
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: the caller's contract; no parameter types.
    unsafe {
        pg_sys::pg_analyze_and_rewrite_fixedparams(
            raw,
            sql,
            core::ptr::null(),
            0,
            core::ptr::null_mut(),
        )
    }
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    // SAFETY: as above.
    unsafe {
        pg_sys::pg_analyze_and_rewrite(raw, sql, core::ptr::null_mut(), 0, core::ptr::null_mut())
    }
}

/// `pg_analyze_and_rewrite_varparams` (15+): analysis with bound parameters, whose types are
/// given (non-zero entries of `*types`) or inferred from the statement (zero entries), as for the
/// parameters of a Parse message. `*types` is palloc'd and may be reallocated; `*count` may grow.
/// `None` on PostgreSQL 13 and 14, which lack it.
///
/// # Safety
/// As for [`analyze_and_rewrite`]; `*types` points at `*count` palloc'd OIDs.
pub unsafe fn analyze_and_rewrite_with_params(
    raw: *mut pg_sys::RawStmt,
    sql: *const c_char,
    types: *mut *mut pg_sys::Oid,
    count: *mut core::ffi::c_int,
) -> Option<*mut pg_sys::List> {
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: the caller's contract.
    unsafe {
        Some(pg_sys::pg_analyze_and_rewrite_varparams(
            raw,
            sql,
            types,
            count,
            core::ptr::null_mut(),
        ))
    }
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    {
        let _ = (raw, sql, types, count);
        None
    }
}

/// `PortalRun` to completion; PostgreSQL 18 dropped its `run_once` argument.
///
/// # Safety
/// `portal` is started; `dest` is a live receiver; `qc` is writable.
pub unsafe fn portal_run(
    portal: pg_sys::Portal,
    is_top_level: bool,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    let fetch_all = core::ffi::c_long::MAX;
    #[cfg(not(feature = "pg18"))]
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::PortalRun(portal, fetch_all, is_top_level, true, dest, dest, qc);
    }
    #[cfg(feature = "pg18")]
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::PortalRun(portal, fetch_all, is_top_level, dest, dest, qc);
    }
}

/// `TupleDescAttr`: PostgreSQL 18 moved the attribute array behind `compact_attrs`.
///
/// # Safety
/// `desc` is a live descriptor and `i < natts`.
pub unsafe fn tuple_desc_attr(
    desc: pg_sys::TupleDesc,
    i: usize,
) -> *mut pg_sys::FormData_pg_attribute {
    #[cfg(feature = "pg18")]
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::TupleDescAttr(desc, i as c_int)
    }
    #[cfg(not(feature = "pg18"))]
    // SAFETY: the caller's contract; the attributes follow the header as a flexible array.
    unsafe {
        (*desc).attrs.as_mut_ptr().add(i)
    }
}

/// `pqsignal`: PostgreSQL 18 made it a macro for `pqsignal_be`, which returns nothing.
///
/// # Safety
/// `handler` is async-signal-safe.
pub unsafe fn set_signal_handler(signo: c_int, handler: unsafe extern "C-unwind" fn(c_int)) {
    #[cfg(not(feature = "pg18"))]
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::pqsignal(signo, Some(handler));
    }
    #[cfg(feature = "pg18")]
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::pqsignal_be(signo, Some(handler));
    }
}

/// Our waits, as `pg_stat_activity.wait_event` shows them: named where the server has custom
/// wait events (17 and later), `Extension` before.
#[derive(Clone, Copy)]
pub enum WaitEvent {
    /// A launch waiting for capacity (`pg_background.on_capacity = wait`).
    Capacity,
    /// A warm worker waiting for its session's next job.
    Idle,
    /// A launch waiting for a warm worker to finish its previous job, or for retired ones to
    /// exit.
    HandOver,
    /// A session waiting for its job to end (`wait_v2`, `run_v2`, …).
    Job,
    /// A session waiting for its job's next message: the server's own `MessageQueueReceive`.
    QueueReceive,
    /// A worker waiting for room in its full queue: the server's own `MessageQueuePutMessage`.
    QueuePut,
}

impl WaitEvent {
    /// The `wait_event_info` to pass to `WaitLatch`.
    pub fn info(self) -> u32 {
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        {
            use core::cell::Cell;
            thread_local! {
                static IDS: [Cell<u32>; 4] = const { [const { Cell::new(0) }; 4] };
            }
            let (index, name) = match self {
                WaitEvent::QueueReceive => return WAIT_MQ_RECEIVE,
                WaitEvent::QueuePut => return WAIT_MQ_PUT_MESSAGE,
                WaitEvent::Capacity => (0, c"PgBackgroundCapacity"),
                WaitEvent::Idle => (1, c"PgBackgroundIdle"),
                WaitEvent::HandOver => (2, c"PgBackgroundHandOver"),
                WaitEvent::Job => (3, c"PgBackgroundJob"),
            };
            IDS.with(|ids| {
                if ids[index].get() == 0 {
                    // SAFETY: registers (or finds) the name in the server's shared table of
                    // custom wait events; the same number in every backend.
                    ids[index].set(unsafe { pg_sys::WaitEventExtensionNew(name.as_ptr()) });
                }
                ids[index].get()
            })
        }
        #[cfg(not(any(feature = "pg17", feature = "pg18")))]
        match self {
            WaitEvent::QueueReceive => WAIT_MQ_RECEIVE,
            WaitEvent::QueuePut => WAIT_MQ_PUT_MESSAGE,
            _ => pg_sys::PG_WAIT_EXTENSION,
        }
    }
}

/// Sleep until our latch is set or `ms` milliseconds pass (or the postmaster dies: then exit),
/// reset the latch and process interrupts, as every latch wait in the server does. True if the
/// time ran out.
pub fn sleep_on_latch(ms: i64, event: WaitEvent) -> bool {
    sleep(ms, event, false)
}

/// [`sleep_on_latch`] outside any statement: a pending query cancel is dropped, as an idle
/// backend drops it.
pub fn sleep_on_latch_ignoring_cancel(ms: i64, event: WaitEvent) -> bool {
    sleep(ms, event, true)
}

fn sleep(ms: i64, event: WaitEvent, ignore_cancel: bool) -> bool {
    // SAFETY: a wait on this backend's own latch; the interrupt check may raise an ERROR or
    // end the process, as any CHECK_FOR_INTERRUPTS.
    unsafe {
        let events = pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            ms.max(0) as core::ffi::c_long,
            event.info(),
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
        if ignore_cancel {
            pg_sys::QueryCancelPending = 0;
        }
        pg_sys::check_for_interrupts!();
        events & pg_sys::WL_TIMEOUT as i32 != 0
    }
}

/// The clock (`GetCurrentTimestamp`).
pub fn now() -> pg_sys::TimestampTz {
    // SAFETY: reading the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// Milliseconds since `start` (a [`now`] reading).
pub fn ms_since(start: pg_sys::TimestampTz) -> i64 {
    (now() - start) / 1000
}

/// Run `f` with `TopMemoryContext` as the current memory context, for what must outlive every
/// transaction; the previous context is current again afterwards, also when an ERROR unwinds
/// out of `f`.
pub fn in_top_memory_context<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: reading the server's top context.
    in_memory_context(unsafe { pg_sys::TopMemoryContext }, f)
}

/// Run `f` with `context` as the current memory context; the previous context is current again
/// afterwards, also when an ERROR unwinds out of `f`.
pub fn in_memory_context<R>(context: pg_sys::MemoryContext, f: impl FnOnce() -> R) -> R {
    // SAFETY: the context is live for the call, which the switch does not outlive.
    let _switch = unsafe { ContextSwitch::to(context) };
    f()
}

/// Makes a context current; restores the previous `CurrentMemoryContext` when dropped, also
/// while an ERROR unwinds (pgrx leaves the context of the failed call current).
pub struct ContextSwitch {
    previous: pg_sys::MemoryContext,
}

impl ContextSwitch {
    /// # Safety
    /// `cxt` is live for as long as the switch is.
    pub unsafe fn to(cxt: pg_sys::MemoryContext) -> Self {
        // SAFETY: the caller's contract; plain assignments of the server's current context.
        unsafe {
            let previous = pg_sys::CurrentMemoryContext;
            pg_sys::CurrentMemoryContext = cxt;
            Self { previous }
        }
    }
}

impl Drop for ContextSwitch {
    fn drop(&mut self) {
        // SAFETY: `previous` was current when we switched and is still alive.
        unsafe { pg_sys::CurrentMemoryContext = self.previous };
    }
}

/// A callback for the exit of this process, run before shared memory is detached.
pub type ExitCallback = unsafe extern "C-unwind" fn(code: c_int, arg: pg_sys::Datum);

/// Register `callback` for this process's exit (`before_shmem_exit`), once per process however
/// often this is called with the same `once`. The server runs these callbacks in the reverse
/// order of their registration, while the statistics, the locks and the segments are still
/// there. Ours and the one order among them that matters (results are kept before the spill
/// files are deleted) are listed in docs/architecture.md, "Exit callbacks".
pub fn before_exit_once(once: &'static std::sync::Once, callback: ExitCallback) {
    // SAFETY: registering a callback without an argument, once per process.
    once.call_once(|| unsafe { pg_sys::before_shmem_exit(Some(callback), pg_sys::Datum::from(0)) });
}

/// Eight random bytes from the server's strong source (`pg_strong_random`).
pub fn strong_random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: fills the buffer we pass; false only if no random source is available.
    let ok = unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) };
    assert!(ok, "could not generate a random number");
    u64::from_ne_bytes(bytes)
}

/// `text LIKE pattern` as the server evaluates it (in the database's default collation; a
/// pattern that ends with the escape character raises its ERROR, 22025).
pub fn like(text: &str, pattern: &str) -> bool {
    use pgrx::IntoDatum;
    let (Some(text), Some(pattern)) = (text.into_datum(), pattern.into_datum()) else {
        return false; // (never: a str always has a datum)
    };
    // SAFETY: a call of the built-in operator through the function manager with two non-NULL
    // text datums, palloc'd in the current memory context.
    let matches = unsafe {
        pg_sys::DirectFunctionCall2Coll(
            Some(crate::ffi::textlike),
            pg_sys::DEFAULT_COLLATION_OID,
            text,
            pattern,
        )
    };
    matches.value() != 0
}

/// Remove the files of `set` and their directory (any process may: the names derive from the
/// set, and every backend runs as the same operating system user).
pub fn delete_file_set(set: &mut pg_sys::FileSet) {
    // SAFETY: `set` was filled by FileSetInit; deleting a set whose files are already gone is a
    // no-op.
    unsafe { pg_sys::FileSetDeleteAll(set) };
}

/// A memory context of our own (an `AllocSet` with the default sizes), deleted when dropped:
/// with it everything allocated in it. Transparent over a non-null pointer, so that zeroed
/// memory is a valid `Option<MemoryContext>` (`None`).
#[repr(transparent)]
pub struct MemoryContext(NonNull<pg_sys::MemoryContextData>);

/// The block sizes of a new context, as `ALLOCSET_DEFAULT_SIZES` and `ALLOCSET_SMALL_SIZES`.
#[derive(Clone, Copy)]
pub enum ContextSize {
    Default,
    Small,
}

impl MemoryContext {
    /// A new context named `name` under `parent`, a live context.
    pub fn new(
        parent: pg_sys::MemoryContext,
        name: &'static core::ffi::CStr,
        size: ContextSize,
    ) -> Self {
        let (min, init, max) = match size {
            ContextSize::Default => (
                pg_sys::ALLOCSET_DEFAULT_MINSIZE,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE,
            ),
            ContextSize::Small => (
                pg_sys::ALLOCSET_SMALL_MINSIZE,
                pg_sys::ALLOCSET_SMALL_INITSIZE,
                pg_sys::ALLOCSET_SMALL_MAXSIZE,
            ),
        };
        // SAFETY: creates a context under a live parent; the name is static, as the server
        // requires; an allocation failure raises an ERROR instead of returning NULL.
        let cxt = unsafe {
            pg_sys::AllocSetContextCreateInternal(
                parent,
                name.as_ptr(),
                min as usize,
                init as usize,
                max as usize,
            )
        };
        Self(NonNull::new(cxt).expect("AllocSetContextCreate returned NULL"))
    }

    /// A new context under `TopMemoryContext`, for what lives across transactions.
    pub fn top_level(name: &'static core::ffi::CStr, size: ContextSize) -> Self {
        // SAFETY: reading the server's top context.
        Self::new(unsafe { pg_sys::TopMemoryContext }, name, size)
    }

    /// A new context under the current one.
    pub fn under_current(name: &'static core::ffi::CStr, size: ContextSize) -> Self {
        // SAFETY: reading the server's current context.
        Self::new(unsafe { pg_sys::CurrentMemoryContext }, name, size)
    }

    pub fn as_ptr(&self) -> pg_sys::MemoryContext {
        self.0.as_ptr()
    }

    /// Run `f` with this context current; the previous one is current again afterwards, also
    /// when an ERROR unwinds out of `f`.
    pub fn within<R>(&self, f: impl FnOnce() -> R) -> R {
        in_memory_context(self.as_ptr(), f)
    }

    /// Free everything allocated in it (and its children), keeping the context.
    pub fn reset(&self) {
        // SAFETY: our live context; nothing of ours points into it after a reset.
        unsafe { pg_sys::MemoryContextReset(self.as_ptr()) };
    }
}

impl Drop for MemoryContext {
    fn drop(&mut self) {
        // SAFETY: we created the context and nothing else deletes it.
        unsafe { pg_sys::MemoryContextDelete(self.as_ptr()) };
    }
}
