//! The one `extern` block: PostgreSQL functions that pgrx's bindings leave out.
//!
//! Each item names the header that declares it. `#[pg_guard]` turns a PostgreSQL ERROR raised
//! inside one of them into a Rust panic, exactly as for the functions in `pg_sys`. The macro
//! expands to `crate::ffi::pg_guard_ffi_boundary`, which is why this module re-exports it.
#![allow(non_snake_case)]

pub use pgrx::pg_sys::ffi::pg_guard_ffi_boundary;

use core::ffi::{c_char, c_int};
use pgrx::pg_guard;
use pgrx::pg_sys;

// Not guarded: handed to the function manager as a plain C entry point.
unsafe extern "C-unwind" {
    /// The SQL function `pg_blocking_pids(int4)`, as a function-manager entry point (pgrx's
    /// binding is a Rust wrapper, which DirectFunctionCall cannot take).
    pub fn pg_blocking_pids(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

/// The wait event `MessageQueueReceive` (renamed in the headers of PostgreSQL 17).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16"))]
pub const WAIT_MQ_RECEIVE: u32 = pg_sys::WaitEventIPC::WAIT_EVENT_MQ_RECEIVE;
#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16")))]
pub const WAIT_MQ_RECEIVE: u32 = pg_sys::WaitEventIPC::WAIT_EVENT_MESSAGE_QUEUE_RECEIVE;

/// The wait event `MessageQueuePutMessage` (renamed as the one above).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16"))]
pub const WAIT_MQ_PUT_MESSAGE: u32 = pg_sys::WaitEventIPC::WAIT_EVENT_MQ_PUT_MESSAGE;
#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16")))]
pub const WAIT_MQ_PUT_MESSAGE: u32 = pg_sys::WaitEventIPC::WAIT_EVENT_MESSAGE_QUEUE_PUT_MESSAGE;

/// `libpq/libpq.h`: the functions behind `pq_putmessage` and friends (the same from
/// PostgreSQL 14 to 18). pgrx leaves the header out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PQcommMethods {
    pub comm_reset: Option<unsafe extern "C-unwind" fn()>,
    pub flush: Option<unsafe extern "C-unwind" fn() -> c_int>,
    pub flush_if_writable: Option<unsafe extern "C-unwind" fn() -> c_int>,
    pub is_send_pending: Option<unsafe extern "C-unwind" fn() -> bool>,
    pub putmessage: Option<unsafe extern "C-unwind" fn(c_char, *const c_char, usize) -> c_int>,
    pub putmessage_noblock: Option<unsafe extern "C-unwind" fn(c_char, *const c_char, usize)>,
}

unsafe extern "C-unwind" {
    /// `libpq/libpq.h`: where this backend's protocol output goes (`pq_redirect_to_shm_mq`
    /// points it at the queue's methods).
    pub static mut PqCommMethods: *const PQcommMethods;
}

/// `TimeoutId` of `utils/timeout.h`: `STATEMENT_TIMEOUT` is the fourth entry on every supported
/// version (after `STARTUP_PACKET_TIMEOUT`, `DEADLOCK_TIMEOUT` and `LOCK_TIMEOUT`).
pub const STATEMENT_TIMEOUT: c_int = 3;

#[pg_guard]
unsafe extern "C-unwind" {
    /// `libpq/pqmq.h`: route this backend's protocol output into a shared memory queue.
    pub fn pq_redirect_to_shm_mq(seg: *mut pg_sys::dsm_segment, mqh: *mut pg_sys::shm_mq_handle);
    /// `libpq/pqmq.h`: parse an ErrorResponse or NoticeResponse body into `edata`.
    pub fn pq_parse_errornotice(msg: pg_sys::StringInfo, edata: *mut pg_sys::ErrorData);
    /// `access/printtup.h`: tell a `DestRemote` receiver which portal it prints.
    pub fn SetRemoteDestReceiverParams(receiver: *mut pg_sys::DestReceiver, portal: pg_sys::Portal);
    /// `utils/timeout.h`.
    pub fn enable_timeout_after(id: c_int, delay_ms: c_int);
    /// `utils/timeout.h`.
    pub fn disable_timeout(id: c_int, keep_indicator: bool);
    /// `commands/discard.h`: DISCARD (a warm worker's reset between jobs).
    pub fn DiscardCommand(stmt: *mut pg_sys::DiscardStmt, is_top_level: bool);
}

// Not `#[pg_guard]`: the macro cannot wrap a variadic function. It is only called from inside an
// error context callback, while PostgreSQL is already reporting an error; an error raised there
// is a recursive error that elog.c handles itself, with no Rust frame to unwind.
unsafe extern "C-unwind" {
    /// `utils/elog.h`: add a CONTEXT line to the error being reported. Only valid inside an
    /// error context callback. pgrx keeps the `err*` family out of its bindings.
    pub fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
    /// `utils/elog.h`: set the internal query of the error being reported.
    pub fn internalerrquery(query: *const c_char) -> c_int;
    /// `utils/elog.h`: set the cursor position within the internal query.
    pub fn internalerrposition(position: c_int) -> c_int;
    /// `tcop/tcopprot.h`: the SIGTERM handler of regular backends (sets ProcDiePending and the
    /// latch). A signal handler, so it cannot be guarded; it raises no error itself.
    pub fn die(signo: c_int);
    /// `tcop/tcopprot.h`: the SIGINT handler of regular backends (sets QueryCancelPending and
    /// the latch). A signal handler too.
    pub fn StatementCancelHandler(signo: c_int);
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

// ---------------------------------------------------------------------------------------------
// Version differences of the server APIs we call, in one place.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The C extension's symbol names.
// ---------------------------------------------------------------------------------------------
//
// An installation of the C extension names its C symbols in `pg_proc.prosrc`, each equal to the
// SQL name (1.9 overloads of launch_v2/submit_v2 share one symbol and dispatch on the argument
// count). When our library replaces its files, those catalog entries must keep working until
// `ALTER EXTENSION pg_background UPDATE` points them at pgrx's `*_wrapper` symbols. So each is
// exported here, with its version-1 `pg_finfo_` record, forwarding to the pgrx wrapper.

static FINFO_V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };

macro_rules! c_entry_points {
    ($($symbol:literal, $finfo:literal => $target:expr;)*) => {$(
        const _: () = {
            #[unsafe(export_name = $symbol)]
            unsafe extern "C-unwind" fn entry(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
                // SAFETY: fmgr calls us with a valid fcinfo, as it would call the wrapper,
                // which guards against errors and panics itself.
                unsafe { $target(fcinfo) }
            }
            #[unsafe(export_name = $finfo)]
            extern "C" fn finfo() -> &'static pg_sys::Pg_finfo_record {
                &FINFO_V1
            }
        };
    )*};
}

/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn launch_v2_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller's contract; nargs tells the 1.8 (2 arguments) from the 1.9 form.
    unsafe {
        if (*fcinfo).nargs >= 3 {
            crate::api::pg_background_launch_v2_labelled_wrapper(fcinfo)
        } else {
            crate::api::pg_background_launch_v2_wrapper(fcinfo)
        }
    }
}

/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn submit_v2_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: as above.
    unsafe {
        if (*fcinfo).nargs >= 3 {
            crate::api::pg_background_submit_v2_labelled_wrapper(fcinfo)
        } else {
            crate::api::pg_background_submit_v2_wrapper(fcinfo)
        }
    }
}

c_entry_points! {
    "pg_background_launch", "pg_finfo_pg_background_launch" => crate::api::pg_background_launch_wrapper;
    "pg_background_result", "pg_finfo_pg_background_result" => crate::api::pg_background_result_wrapper;
    "pg_background_detach", "pg_finfo_pg_background_detach" => crate::api::pg_background_detach_wrapper;
    "pg_background_launch_v2", "pg_finfo_pg_background_launch_v2" => launch_v2_any;
    "pg_background_submit_v2", "pg_finfo_pg_background_submit_v2" => submit_v2_any;
    "pg_background_result_v2", "pg_finfo_pg_background_result_v2" => crate::api::pg_background_result_v2_wrapper;
    "pg_background_detach_v2", "pg_finfo_pg_background_detach_v2" => crate::api::pg_background_detach_v2_wrapper;
    "pg_background_cancel_v2", "pg_finfo_pg_background_cancel_v2" => crate::api::pg_background_cancel_v2_wrapper;
    "pg_background_cancel_v2_grace", "pg_finfo_pg_background_cancel_v2_grace" => crate::api::pg_background_cancel_v2_grace_wrapper;
    "pg_background_wait_v2", "pg_finfo_pg_background_wait_v2" => crate::api::pg_background_wait_v2_wrapper;
    "pg_background_wait_v2_timeout", "pg_finfo_pg_background_wait_v2_timeout" => crate::api::pg_background_wait_v2_timeout_wrapper;
    "pg_background_list_v2", "pg_finfo_pg_background_list_v2" => crate::api::pg_background_list_v2_wrapper;
    "pg_background_stats_v2", "pg_finfo_pg_background_stats_v2" => crate::api::pg_background_stats_v2_wrapper;
    "pg_background_progress", "pg_finfo_pg_background_progress" => crate::api::pg_background_progress_wrapper;
    "pg_background_get_progress_v2", "pg_finfo_pg_background_get_progress_v2" => crate::api::pg_background_get_progress_v2_wrapper;
    "pg_background_result_info_v2", "pg_finfo_pg_background_result_info_v2" => crate::api::pg_background_result_info_v2_wrapper;
    "pg_background_error_info_v2", "pg_finfo_pg_background_error_info_v2" => crate::api::pg_background_error_info_v2_wrapper;
    "pg_background_detach_all_v2", "pg_finfo_pg_background_detach_all_v2" => crate::api::pg_background_detach_all_v2_wrapper;
    "pg_background_cancel_all_v2", "pg_finfo_pg_background_cancel_all_v2" => crate::api::pg_background_cancel_all_v2_wrapper;
    "pg_background_full_sql_v2", "pg_finfo_pg_background_full_sql_v2" => crate::api::pg_background_full_sql_v2_wrapper;
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
    struct Restore(pg_sys::MemoryContext);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: putting back the context we replaced.
            unsafe { pg_sys::CurrentMemoryContext = self.0 };
        }
    }
    // SAFETY: plain assignments of the server's current context, restored by `Restore` on every
    // way out.
    let _restore = unsafe {
        let restore = Restore(pg_sys::CurrentMemoryContext);
        pg_sys::CurrentMemoryContext = pg_sys::TopMemoryContext;
        restore
    };
    f()
}
