//! Declarations of what pgrx's bindings leave out: PostgreSQL functions, variables, structs
//! and constants (the server interface built on them is `crate::server`).
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
    /// The operator `text LIKE text` (`textlike`), as a function-manager entry point.
    pub fn textlike(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    /// The SQL function `row_to_json(record)`, likewise.
    pub fn row_to_json(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    /// The input function of jsonb, likewise.
    pub fn jsonb_in(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

#[pg_guard]
unsafe extern "C-unwind" {
    /// `commands/async.h`: queue a notification on `channel`, sent when the transaction commits.
    pub fn Async_Notify(channel: *const c_char, payload: *const c_char);
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
    /// `commands/async.h`: UNLISTEN * (a warm worker's reset between jobs).
    pub fn Async_UnlistenAll();
}

// Not `#[pg_guard]`: the macro cannot wrap a variadic function. It is only called from inside an
// error context callback, while PostgreSQL is already reporting an error; an error raised there
// is a recursive error that elog.c handles itself, with no Rust frame to unwind.
unsafe extern "C-unwind" {
    /// `utils/elog.h`: add a CONTEXT line to the error being reported. Only valid inside an
    /// error context callback. pgrx keeps the `err*` family out of its bindings.
    pub fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
    /// `utils/elog.h`: set the SQLSTATE of the error being reported (any five characters, also
    /// those the server does not predefine).
    pub fn errcode(sqlerrcode: c_int) -> c_int;
    /// `utils/elog.h`: the SQLSTATE of the error being reported.
    pub fn geterrcode() -> c_int;
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
