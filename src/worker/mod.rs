//! The background worker: bootstrap in the order of `ParallelWorkerMain`
//! (`src/backend/access/transam/parallel.c`), run the job, and report how it ended.
//!
//! Order: SIGTERM → `die`; attach the segment and its table of contents; redirect protocol
//! output into the queue (from here on every message reaches the launcher); connect as the
//! launcher's login role to its database; restore its settings; run the SQL as its current user
//! and security context; commit; send ReadyForQuery.

mod error_capture;
mod execute;
mod notify;
mod settings;
mod tuples;
mod warm;

use crate::shm::dsm::{DsmSegment, PinnedSegment, Segment};
use crate::shm::toc::Toc;
use crate::shm::{mq, FixedState, TocKey, LAYOUT_VERSION};
use core::ffi::CStr;
use core::sync::atomic::{AtomicPtr, Ordering};
use error_capture::ErrorCapture;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::panic::AssertUnwindSafe;

/// What a worker needs to know of the jobs its own job launched (a job may launch jobs too):
/// given by the library's entry point, as the worker does not reach into the launcher.
pub struct NestedJobs {
    /// How many jobs this process tracks (a worker that still tracks jobs of its own is not
    /// kept warm).
    pub tracked: fn() -> usize,
    /// Let go of this process's own warm workers (before a reset for the next job).
    pub forget_warm_workers: fn(),
}

/// The worker's life (from the library's entry point, `pg_background_worker_main`):
/// `bgw_main_arg` carries the segment's handle, and `bgw_extra` the control segment's of a
/// worker that may be kept warm.
pub fn main(arg: pg_sys::Datum, nested: &NestedJobs) {
    // SAFETY: we are the worker process at start-up: installing our SIGTERM handler (`die`,
    // so a running statement is interrupted at the next CHECK_FOR_INTERRUPTS as in any
    // backend, or a statement cancel when cancel_v2 asked for one) and
    // creating our top-level resource owner are what parallel workers do first.
    unsafe {
        crate::server::set_signal_handler(pg_sys::SIGTERM as i32, handle_sigterm);
        pg_sys::BackgroundWorkerUnblockSignals();
        pg_sys::CurrentResourceOwner =
            pg_sys::ResourceOwnerCreate(core::ptr::null_mut(), c"pg_background".as_ptr());
    }
    // Before the job's segment: the launcher keeps the control segment mapped only until we
    // have attached to the job's queue.
    let control = warm::ControlLink::attach();
    if control.is_some() {
        warm::note_libraries();
    }
    let mut job = arg.value() as pg_sys::dsm_handle;
    loop {
        let next = run_job(job, control.as_ref(), nested);
        match (&control, next) {
            (Some(link), Some((ms, identity))) => match link.wait_for_job(ms, identity) {
                Some(next) => job = next,
                None => return,
            },
            _ => return,
        }
    }
}

/// Run the job in segment `handle`, in stages: attach to its segment, adopt the job (its fixed
/// state, registry slot and exit callbacks), send output to its queue, run it with errors
/// captured, end it. `Some((idle timeout, identity))` when this worker may now wait for the
/// next job of a launcher with that identity (database, login role, current user, security
/// context): the job succeeded, the session is reset and the job's segment detached.
fn run_job(
    handle: pg_sys::dsm_handle,
    control: Option<&warm::ControlLink>,
    nested: &NestedJobs,
) -> Option<(i32, (u32, u32, u32, i32))> {
    // The mapping is ours until the job is over, whatever transactions come and go. Not
    // dropped when an ERROR unwinds out of here: the server then reports that error into the
    // queue (StartBackgroundWorker's handler), so the queue must stay mapped until proc_exit
    // detaches it.
    let segment = core::mem::ManuallyDrop::new(attach(handle));
    let Some(toc) = Toc::attach(&*segment) else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "bad magic number in dynamic shared memory segment"
        );
    };
    let fixed = adopt(&segment, &toc);
    let input = JobInput::read(&toc);
    // The queue's sender handle lives in a context of the job's, deleted after the detach: a
    // warm worker runs any number of jobs. Not dropped when an ERROR unwinds (as the segment).
    let job_context = core::mem::ManuallyDrop::new(crate::server::MemoryContext::top_level(
        c"pg_background job",
        crate::server::ContextSize::Small,
    ));
    job_context.within(|| mq::redirect_output(input.queue.cast(), &*segment));
    // A reader that does not read cannot hold the worker up: see `crate::spill::writer`.
    crate::spill::writer::install(fixed, input.queue.cast());
    if fixed.results_disabled {
        // submit_v2: nothing goes to the queue, so the worker can never block on it.
        // SAFETY: plain assignment of the server's output destination.
        unsafe { pg_sys::whereToSendOutput = pg_sys::CommandDest::DestNone };
    }

    // Whether this worker goes on after the job: decided after the commit, before the reply.
    let mut warm_next = false;
    let idle_timeout_ms = fixed.idle_timeout_ms;
    let identity = fixed.identity();
    let mut before_reply = || {
        warm_next = idle_timeout_ms > 0
            && (nested.tracked)() == 0
            && control.is_some()
            && {
                // (see `FixedState::going_warm`)
                fixed.going_warm.store(true, Ordering::SeqCst);
                !fixed.cancel_requested.load(Ordering::SeqCst)
            }
            && control.is_some_and(|link| link.finishing());
    };
    let failed = run_captured(&toc, fixed, &input, &mut before_reply);
    let reusable = warm_next && !failed && {
        // Nothing more for the launcher, which has its reply.
        // SAFETY: plain assignment of the server's output destination.
        unsafe { pg_sys::whereToSendOutput = pg_sys::CommandDest::DestNone };
        (nested.forget_warm_workers)();
        warm::reset_session()
    };
    if reusable {
        fixed.kept_warm.store(true, Ordering::Release);
    }
    drop(core::mem::ManuallyDrop::into_inner(segment));
    // (it held only the queue handle, which the detach released)
    drop(core::mem::ManuallyDrop::into_inner(job_context));
    reusable.then_some((idle_timeout_ms, identity))
}

/// Map the job's segment for as long as the job runs.
fn attach(handle: pg_sys::dsm_handle) -> PinnedSegment {
    let Some(segment) = DsmSegment::attach(handle) else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "unable to map dynamic shared memory segment"
        );
    };
    segment.pin_mapping()
}

/// Take the job on: its fixed state (checked, and known to the signal handler), our PID for the
/// launcher, its registry slot, and the callbacks that report its end on every way out.
fn adopt<'seg>(segment: &PinnedSegment, toc: &Toc<'seg>) -> &'seg FixedState {
    let fixed = read_fixed_state(toc);
    FIXED.store(
        fixed as *const FixedState as *mut FixedState,
        Ordering::Release,
    );
    // SAFETY: reading our own PID.
    fixed
        .worker_pid
        .store(unsafe { pg_sys::MyProcPid }, Ordering::Release);
    crate::registry::started(fixed);
    static EXIT_CALLBACK: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&EXIT_CALLBACK, end_job_at_exit);
    // SAFETY: the callback runs when this process detaches the segment (also at FATAL exit),
    // while it is still mapped; `fixed` lies inside it.
    unsafe {
        pg_sys::on_dsm_detach(
            segment.as_ptr(),
            Some(mark_done),
            pg_sys::Datum::from(fixed as *const FixedState as usize),
        )
    };
    fixed
}

/// What the launcher wrote for the job, in its segment.
struct JobInput<'seg> {
    queue: core::ptr::NonNull<u8>,
    sql: &'seg CStr,
    params: Option<&'seg [u8]>,
}

impl<'seg> JobInput<'seg> {
    fn read(toc: &Toc<'seg>) -> Self {
        let queue = toc.lookup(TocKey::Queue).unwrap_or_else(|| missing_data());
        let sql = toc.lookup(TocKey::Sql).unwrap_or_else(|| missing_data());
        // SAFETY: the launcher copied the SQL text with its terminating NUL into this chunk,
        // and the segment stays mapped while we run.
        let sql = unsafe { CStr::from_ptr(sql.as_ptr().cast()) };
        // SAFETY: the launcher wrote the parameters into this chunk with `write_params`; the
        // segment stays mapped while we run.
        let params = toc
            .lookup(TocKey::Params)
            .map(|chunk| unsafe { crate::shm::read_params(chunk) });
        Self { queue, sql, params }
    }
}

/// Run the job with its errors and notices going to the launcher; its end recorded (the spill
/// file complete, the registry told). True if it failed.
fn run_captured(
    toc: &Toc<'_>,
    fixed: &FixedState,
    input: &JobInput<'_>,
    before_reply: &mut dyn FnMut(),
) -> bool {
    let capture = ErrorCapture::install();
    let failure = PgTryBuilder::new(AssertUnwindSafe(|| {
        run(toc, fixed, input.sql, input.params, before_reply);
        None
    }))
    .catch_others(Some)
    .execute();
    let failed = failure.is_some();
    if let Some(caught) = failure {
        execute::report_failure(caught, &capture, input.sql, fixed);
    }
    // Everything is sent: the spill file, if any, is complete.
    crate::spill::writer::finish();
    crate::registry::ended(fixed);
    drop(capture);
    notify::announce(fixed);
    failed
}

/// The job's fixed state, for the SIGTERM handler: NULL until the segment is attached and
/// again from the moment it is being detached (a SIGTERM can still arrive while the process
/// exits, e.g. a late `cancel_v2` or a server shutdown).
static FIXED: AtomicPtr<FixedState> = AtomicPtr::new(core::ptr::null_mut());

/// SIGTERM: `die` (FATAL 57P01 at the next interrupt check, as in any backend), unless
/// `cancel_v2` asked for a cancel: then the statement is cancelled (ERROR 57014) as by SIGINT.
/// Not `#[pg_guard]`: a signal handler; it only reads two atomics and calls one of the server's
/// handlers, which save and restore errno themselves.
unsafe extern "C-unwind" fn handle_sigterm(signo: core::ffi::c_int) {
    let fixed = FIXED.load(Ordering::Acquire);
    // SAFETY: FIXED is NULL or points into the segment, which stays mapped until `mark_done`
    // has cleared it.
    let cancel =
        unsafe { fixed.as_ref() }.is_some_and(|f| f.cancel_requested.load(Ordering::Acquire));
    // SAFETY: the server's own async-signal-safe handlers.
    unsafe {
        if cancel {
            crate::ffi::StatementCancelHandler(signo)
        } else {
            crate::ffi::die(signo)
        }
    }
}

/// A worker that exits (FATAL, terminated) during a job: record how the job ended in the
/// cluster-wide registry (its error is in the fixed state, still mapped).
#[pg_guard]
unsafe extern "C-unwind" fn end_job_at_exit(_code: core::ffi::c_int, _arg: pg_sys::Datum) {
    let fixed = FIXED.load(Ordering::Acquire);
    // SAFETY: FIXED is NULL or points into the segment, still mapped (see `mark_done`).
    if let Some(fixed) = unsafe { fixed.as_ref() } {
        // (a worker that fails before its job starts has no spill writer to do this)
        crate::spill::writer::finish();
        crate::spill::writer::settle(fixed);
        crate::registry::ended(fixed);
    }
}

/// `on_dsm_detach` callback: tell the launcher we are done (see `FixedState::worker_done`).
#[pg_guard]
unsafe extern "C-unwind" fn mark_done(_segment: *mut pg_sys::dsm_segment, fixed: pg_sys::Datum) {
    // SAFETY: `fixed` is the FixedState of the segment being detached, still mapped.
    let fixed = unsafe { &*(fixed.value() as *const FixedState) };
    // The mapping goes right after the callbacks: the SIGTERM handler must not read it any
    // more. (A handler runs between two instructions of this process, never beside it, so once
    // the pointer is cleared no handler can still be using it.)
    FIXED.store(core::ptr::null_mut(), Ordering::Release);
    fixed.worker_done.store(true, Ordering::Release);
}

/// `pg_background_progress(pct, msg)` from inside a job: store the message (cut to 63 bytes at
/// a character boundary), then the percentage (clamped to 0..100), for the launcher's
/// `get_progress_v2` and for `pg_background_jobs`. `None` when not called from one of our
/// workers.
pub fn report_progress(pct: i32, msg: &str) -> Option<()> {
    let fixed = FIXED.load(Ordering::Acquire);
    // SAFETY: FIXED is NULL or points into the segment, still mapped (see `mark_done`).
    let fixed = unsafe { fixed.as_ref() }?;
    let pct = pct.clamp(0, 100);
    fixed.progress_msg.set(msg);
    fixed.progress_pct.store(pct, Ordering::Release);
    crate::registry::progressed(pct, &fixed.progress_msg.get());
    Some(())
}

/// Keep a FATAL error in the job's fixed state (`error_info_v2`, and what the launcher reports
/// when the queue is gone before the error reached it: a cancel or terminate that interrupts a
/// send on a full queue makes the server's queue output detach instead of sending the error).
/// ERRORs are kept by `execute::report_failure`.
fn record_fatal(edata: &pg_sys::ErrorData) {
    let fixed = FIXED.load(Ordering::Acquire);
    // SAFETY: FIXED is NULL or points into the segment, still mapped (see `mark_done`).
    if let Some(fixed) = unsafe { fixed.as_ref() } {
        execute::record_error_data(fixed, edata);
    }
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

/// While it lives, the restore transaction counts as read-write, as the launcher's settings
/// are put back (the saved state is back when it ends). `RestoreGUCState` first returns every
/// setting to its default, `transaction_read_only` to `off` too — which the server refuses
/// inside a read-only transaction, and on a hot standby every transaction is read-only (the
/// worker then ended with FATAL `failed to initialize transaction_read_only to 0`). Nothing is
/// written meanwhile: the restore only reads the catalogs, and the job runs in a transaction
/// of its own, read-only again on a standby.
struct RestoringSettings {
    read_only: bool,
}

impl RestoringSettings {
    fn begin() -> Self {
        // SAFETY: the current transaction's read-only flag, of this process.
        unsafe {
            let read_only = pg_sys::XactReadOnly;
            pg_sys::XactReadOnly = false;
            Self { read_only }
        }
    }
}

impl Drop for RestoringSettings {
    fn drop(&mut self) {
        // SAFETY: as in `begin`; also when an ERROR unwinds through the restore.
        unsafe { pg_sys::XactReadOnly = self.read_only };
    }
}

fn run(
    toc: &Toc<'_>,
    fixed: &FixedState,
    sql: &CStr,
    params: Option<&[u8]>,
    before_reply: &mut dyn FnMut(),
) {
    // Cancelled before it started: do not start (the reader gets 57014).
    if fixed.cancel_requested.load(Ordering::Acquire) {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
            "canceling statement due to user request"
        );
    }
    // SAFETY: reading this backend's state.
    let connected = unsafe { pg_sys::MyDatabaseId } != pg_sys::Oid::INVALID;
    if !connected {
        // SAFETY: plain call; the launcher's database and login role are OIDs it resolved
        // itself. BYPASS_ALLOWCONN as the C extension: the launcher is already connected to
        // this database.
        unsafe {
            pg_sys::BackgroundWorkerInitializeConnectionByOid(
                fixed.database_id,
                fixed.authenticated_user_id,
                pg_sys::BGWORKER_BYPASS_ALLOWCONN,
            );
        }
    } else if
    // SAFETY: reading this backend's identity.
    unsafe {
        pg_sys::MyDatabaseId != fixed.database_id
            || pg_sys::GetAuthenticatedUserId() != fixed.authenticated_user_id
    } {
        // (a warm worker serves only its own launcher, which cannot change either)
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "warm background worker handed a job of another database or login role"
        );
    }
    let gucs = toc.lookup(TocKey::Gucs).unwrap_or_else(|| missing_data());
    // SAFETY: the launcher serialised its settings into this chunk, mapped while the job runs.
    let wanted = unsafe { settings::serialized(gucs) };
    // SAFETY: `gucs` holds what SerializeGUCState wrote; restoring needs a transaction for
    // catalog look-ups, as in ParallelWorkerMain.
    unsafe {
        pg_sys::StartTransactionCommand();
        if !settings::in_place(wanted) {
            let restoring = RestoringSettings::begin();
            pg_sys::RestoreGUCState(gucs.as_ptr().cast());
            drop(restoring);
            settings::restored(wanted);
        }
        crate::spill::writer::prepare();
        // 1.9: a labelled job shows as pg_background:<label>:<pid>.
        let label = fixed.label.get();
        if !label.is_empty() {
            let pid = pg_sys::MyProcPid;
            let name =
                std::ffi::CString::new(format!("pg_background:{label}:{pid}")).unwrap_or_default();
            pg_sys::SetConfigOption(
                c"application_name".as_ptr(),
                name.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
            );
        }
        pg_sys::CommitTransactionCommand();
    }
    execute::run_string(sql, params, fixed, before_reply);
}
