//! The background worker: bootstrap in the order of `ParallelWorkerMain`
//! (`src/backend/access/transam/parallel.c`), run the job, and report how it ended.
//!
//! Order: SIGTERM → `die`; attach the segment and its table of contents; redirect protocol
//! output into the queue (from here on every message reaches the launcher); connect as the
//! launcher's login role to its database; restore its settings; run the SQL as its current user
//! and security context; commit; send ReadyForQuery.

mod error_capture;
mod execute;

use crate::shm::dsm::DsmSegment;
use crate::shm::toc::Toc;
use crate::shm::{mq, FixedState, TocKey, LAYOUT_VERSION};
use core::ffi::CStr;
use core::sync::atomic::Ordering;
use error_capture::ErrorCapture;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::panic::AssertUnwindSafe;

/// Entry point named in `bgw_function_name`; `bgw_main_arg` carries the segment's handle.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_background_worker_main(arg: pg_sys::Datum) {
    // SAFETY: we are the worker process at start-up: installing `die` for SIGTERM (so a running
    // statement is interrupted at the next CHECK_FOR_INTERRUPTS, as in any backend) and
    // creating our top-level resource owner are what parallel workers do first.
    unsafe {
        crate::ffi::set_signal_handler(pg_sys::SIGTERM as i32, crate::ffi::die);
        pg_sys::BackgroundWorkerUnblockSignals();
        pg_sys::CurrentResourceOwner =
            pg_sys::ResourceOwnerCreate(core::ptr::null_mut(), c"pg_background".as_ptr());
    }

    let handle = arg.value() as pg_sys::dsm_handle;
    let Some(segment) = DsmSegment::attach(handle) else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "unable to map dynamic shared memory segment"
        );
    };
    // The mapping is ours until the process exits, whatever transactions come and go.
    let segment = segment.pin_mapping();
    let Some(toc) = Toc::attach(&segment) else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "bad magic number in dynamic shared memory segment"
        );
    };
    let fixed = read_fixed_state(&toc);
    // SAFETY: reading our own PID.
    fixed
        .worker_pid
        .store(unsafe { pg_sys::MyProcPid }, Ordering::Release);
    let queue = toc.lookup(TocKey::Queue).unwrap_or_else(|| missing_data());
    let sql = toc.lookup(TocKey::Sql).unwrap_or_else(|| missing_data());
    // SAFETY: the launcher copied the SQL text with its terminating NUL into this chunk, and
    // the segment stays mapped while we run.
    let sql = unsafe { CStr::from_ptr(sql.as_ptr().cast()) };
    mq::redirect_output(queue.cast(), &segment);

    // From here on, errors and notices go to the launcher.
    let capture = ErrorCapture::install();
    let failure = PgTryBuilder::new(AssertUnwindSafe(|| {
        run(&toc, fixed, sql);
        None
    }))
    .catch_others(Some)
    .execute();
    if let Some(caught) = failure {
        execute::report_failure(caught, &capture, sql);
    }
    drop(capture);
    drop(segment);
}

fn missing_data() -> ! {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        "failed to locate required data in shared memory"
    );
}

fn read_fixed_state<'seg>(toc: &Toc<'seg>) -> &'seg FixedState {
    let chunk = toc.lookup(TocKey::Fixed).unwrap_or_else(|| missing_data());
    // SAFETY: the launcher wrote a FixedState into this chunk before registering us and only
    // its atomic `worker_pid` changes afterwards; the chunk lives as long as the mapping.
    let fixed = unsafe { chunk.cast::<FixedState>().as_ref() };
    if fixed.layout_version != LAYOUT_VERSION {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!(
                "background worker launched by a pg_background library with another shared memory layout (version {}, expected {})",
                fixed.layout_version, LAYOUT_VERSION
            )
        );
    }
    fixed
}

fn run(toc: &Toc<'_>, fixed: &FixedState, sql: &CStr) {
    // SAFETY: plain call; the launcher's database and login role are OIDs it resolved itself.
    // BYPASS_ALLOWCONN as the C extension: the launcher is already connected to this database.
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(
            fixed.database_id,
            fixed.authenticated_user_id,
            pg_sys::BGWORKER_BYPASS_ALLOWCONN,
        );
    }
    let gucs = toc.lookup(TocKey::Gucs).unwrap_or_else(|| missing_data());
    // SAFETY: `gucs` holds what SerializeGUCState wrote; restoring needs a transaction for
    // catalog look-ups, as in ParallelWorkerMain.
    unsafe {
        pg_sys::StartTransactionCommand();
        pg_sys::RestoreGUCState(gucs.as_ptr().cast());
        pg_sys::CommitTransactionCommand();
    }
    execute::run_string(sql, fixed);
}
