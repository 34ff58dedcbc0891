//! `pg_background.notify_channel`: a job announces its end with NOTIFY, in a transaction of
//! its own after the job's has committed or rolled back, so that a listener that hears it sees
//! the job's effects, its final state in `pg_background_jobs` and its complete result.

use crate::shm::FixedState;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
use pgrx::PgTryBuilder;

/// Send the notice of the job in `fixed`, if its launcher had set a channel. Never fails the
/// job: a notice that cannot be sent is logged.
pub fn announce(fixed: &FixedState) {
    let channel = crate::guc::notify_channel();
    // SAFETY: reading this backend's state.
    let connected = unsafe { pg_sys::MyDatabaseId } != pg_sys::Oid::INVALID;
    if channel.is_empty() || !connected {
        return;
    }
    let payload = payload(fixed);
    let (Ok(channel), Ok(payload)) = (
        std::ffi::CString::new(channel),
        std::ffi::CString::new(payload),
    ) else {
        return;
    };
    PgTryBuilder::new(|| {
        // SAFETY: the job's transaction is over (committed, or aborted and cleaned up);
        // Async_Notify copies both strings, and the commit sends the notice.
        unsafe {
            pg_sys::StartTransactionCommand();
            crate::ffi::Async_Notify(channel.as_ptr(), payload.as_ptr());
            pg_sys::CommitTransactionCommand();
        }
    })
    .catch_others(|e| {
        let message = match &e {
            pgrx::pg_sys::panic::CaughtError::PostgresError(r)
            | pgrx::pg_sys::panic::CaughtError::ErrorReport(r) => r.message().to_owned(),
            pgrx::pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                ereport.message().to_owned()
            }
        };
        // SAFETY: as after a PG_CATCH: give up the failed transaction.
        unsafe { pg_sys::AbortCurrentTransaction() };
        pgrx::log!("pg_background: could not send the notice of a job's end: {message}");
    })
    .execute();
}

/// `{"job_id": …, "pid": …, "state": …, "sqlstate": …, "rows": …}`.
fn payload(fixed: &FixedState) -> String {
    let (state, sqlstate, _) = crate::registry::outcome(fixed);
    let job_id = (fixed.job_slot >= 0).then_some(fixed.job_id);
    serde_json::json!({
        "job_id": job_id,
        "pid": fixed.worker_pid.load(Ordering::Acquire),
        "state": state.name(),
        "sqlstate": (!sqlstate.is_empty()).then_some(sqlstate),
        "rows": fixed.last_rows.load(Ordering::Acquire),
    })
    .to_string()
}
