//! The worker's side of warm workers (see `launcher::pool`): map the control segment, reset the
//! session between jobs, wait for the next job — listed in the cluster's idle workers, so that
//! any session of the same database, login role, current user and security context may hand it
//! one.
//!
//! The reset is the one a connection pooler does between clients (DISCARD ALL), and the next
//! job's settings and role are applied afresh. What no reset can clear is the state a loaded
//! library keeps in the process (dblink's and postgres_fdw's open connections, PL/Python's and
//! PL/Perl's global variables): a worker into which a job loaded a library serves only the
//! session of its last job from then on, and exits with it. PL/pgSQL, which keeps nothing of a
//! session but its compiled functions, is the one library that does not count.

use crate::registry::idle::{self, IdleWorker, Listed};
use crate::shm::dsm::{DsmSegment, PinnedSegment, Segment};
use crate::shm::{Control, WarmState, LAYOUT_VERSION};
use core::sync::atomic::Ordering;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::panic::AssertUnwindSafe;

/// Longest sleep of an idle worker between checks that its launcher is still there.
const LAUNCHER_CHECK_MS: i64 = 1000;
/// How long a worker waits for its next job before it sends what its statistics have pending.
const STATS_DELAY_MS: i64 = 1000;

/// This worker's control segment, mapped until the process exits.
pub struct ControlLink {
    segment: PinnedSegment,
}

impl ControlLink {
    /// The control segment named in `bgw_extra`, if the launcher made this worker one that may
    /// be kept warm and the segment is still there.
    pub fn attach() -> Option<Self> {
        // SAFETY: we are a background worker: MyBgworkerEntry is our registration.
        let extra = unsafe { (*pg_sys::MyBgworkerEntry).bgw_extra };
        let mut bytes = [0u8; 4];
        for (b, e) in bytes.iter_mut().zip(extra.iter()) {
            *b = *e as u8;
        }
        let handle = u32::from_ne_bytes(bytes) as pg_sys::dsm_handle;
        if handle == 0 {
            return None;
        }
        let segment = DsmSegment::attach(handle)?.pin_mapping();
        // SAFETY: plain call on an attached segment.
        let len = unsafe { pg_sys::dsm_segment_map_length(segment.as_ptr()) };
        if len < core::mem::size_of::<Control>() {
            return None;
        }
        let link = Self { segment };
        if link.control().layout_version != LAYOUT_VERSION {
            return None;
        }
        // SAFETY: reading our own PID and PGPROC.
        let (pid, proc_) = unsafe { (pg_sys::MyProcPid, pg_sys::MyProc as usize) };
        link.control().worker_proc.store(proc_, Ordering::Release);
        link.control().worker_pid.store(pid, Ordering::Release);
        // SAFETY: the callback runs when this process detaches the segment (at exit, also
        // FATAL), while it is still mapped; the Control lies at its start.
        unsafe {
            pg_sys::on_dsm_detach(
                link.segment.as_ptr(),
                Some(gone),
                pg_sys::Datum::from(link.segment.address() as usize),
            )
        };
        Some(link)
    }

    fn control(&self) -> &Control {
        // SAFETY: the mapping has room for a Control, written by the launcher before it
        // registered us; what changes afterwards is atomic. It lives as long as `self`.
        unsafe { &*self.segment.address().cast::<Control>() }
    }

    /// The job committed and will reply: from now on the launcher may wait a moment for this
    /// worker instead of starting a new one. False if the job must be the last.
    pub fn finishing(&self) -> bool {
        self.control()
            .state
            .advance(WarmState::Busy, WarmState::Finishing)
            .is_ok()
    }

    /// The session is reset and the job's segment detached: offer this worker for the next job
    /// of a launcher with `identity` (database, login role, current user, security context)
    /// and wait up to `timeout_ms` for one. Returns the next job's segment handle; `None` when
    /// the worker must exit (its timeout, retired, its launcher gone while it may serve no
    /// other session, or the cluster has `pg_background.max_idle_workers` idle workers).
    pub fn wait_for_job(
        &self,
        timeout_ms: i32,
        identity: (u32, u32, u32, i32),
    ) -> Option<pg_sys::dsm_handle> {
        let control = self.control();
        // SAFETY: reading our own PID.
        let pid = unsafe { pg_sys::MyProcPid };
        let (index, others_may_use) = self.enter_list(pid, identity)?;
        let leave = || {
            if index.is_some() {
                idle::leave(index, pid);
            }
        };
        control.state.set(WarmState::Idle);
        wake_launcher(control);
        let start = crate::server::now();
        // A worker that only its launcher may use looks at once whether the launcher is still
        // there (it may have left while the job finished, too early to retire this worker);
        // one that others may use looks at its database after a second.
        let mut checked = if others_may_use {
            start
        } else {
            start - LAUNCHER_CHECK_MS * 1000
        };
        let mut stats_sent = false;
        loop {
            match control.state.get() {
                WarmState::Assigned => {
                    leave();
                    control.state.set(WarmState::Busy);
                    return Some(control.next_job.load(Ordering::Acquire));
                }
                // retired by a launcher
                WarmState::Gone => {
                    leave();
                    return None;
                }
                _ => {}
            }
            let idle_ms = crate::server::ms_since(start);
            let left_ms = i64::from(timeout_ms) - idle_ms;
            if left_ms <= 0 || must_go(control, others_may_use, &mut checked) {
                let retired = control
                    .state
                    .advance(WarmState::Idle, WarmState::Gone)
                    .is_ok();
                if retired {
                    leave();
                    return None;
                }
                // being handed a job just now (or a launcher looks at it)
                crate::server::sleep_on_latch_ignoring_cancel(1, crate::server::WaitEvent::Idle);
                continue;
            }
            if !stats_sent && idle_ms >= STATS_DELAY_MS {
                // What the last job's statistics still have pending (the reset's report sends
                // at most once a second), forced, as an idle backend sends them after a while:
                // an unforced report measures time by the last transaction's end.
                // SAFETY: plain call, outside any transaction; returns at once when nothing is
                // pending.
                unsafe { pg_sys::pgstat_report_stat(true) };
                stats_sent = true;
            }
            // A launcher sets our latch when it hands us a job; a SIGTERM ends the process
            // in the interrupt check; a cancel finds no statement to cancel, as in an idle
            // backend.
            crate::server::sleep_on_latch_ignoring_cancel(
                left_ms.min(LAUNCHER_CHECK_MS),
                crate::server::WaitEvent::Idle,
            );
        }
    }
}

impl ControlLink {
    /// Write who this worker is into its control segment and enter the cluster's list of idle
    /// workers: `(its place, whether other sessions may use it)`, or `None` when the cluster has
    /// `pg_background.max_idle_workers` idle workers already.
    fn enter_list(
        &self,
        pid: i32,
        identity: (u32, u32, u32, i32),
    ) -> Option<(Option<usize>, bool)> {
        let control = self.control();
        let shareable = !loaded_a_library();
        let (database_id, login_role, current_user, sec_context) = identity;
        control.database_id.store(database_id, Ordering::Release);
        control.login_role.store(login_role, Ordering::Release);
        control.current_user.store(current_user, Ordering::Release);
        control.sec_context.store(sec_context, Ordering::Release);
        let listed = idle::enter(
            IdleWorker {
                pid,
                control: self.segment.handle(),
                nonce: control.nonce,
                database_id,
                login_role,
                current_user,
                sec_context,
                own_session_only: !shareable,
            },
            crate::guc::max_idle_workers(),
        );
        let index = match listed {
            Listed::Refused => return None,
            Listed::At(index) => {
                leave_list_at_exit();
                Some(index)
            }
            Listed::NoRegistry => None,
        };
        // Without the list no other session can find this worker.
        let others_may_use = shareable && index.is_some();
        control.shareable.store(others_may_use, Ordering::Release);
        Some((index, others_may_use))
    }
}

/// Once a second (since `checked`): whether a waiting worker must exit. One that may outlive
/// its launcher gives way to DROP DATABASE and the like; one that may not, goes with its
/// launcher.
fn must_go(control: &Control, others_may_use: bool, checked: &mut pg_sys::TimestampTz) -> bool {
    if crate::server::ms_since(*checked) < LAUNCHER_CHECK_MS {
        return false;
    }
    *checked = crate::server::now();
    if others_may_use {
        crate::server::database_wanted_exclusively()
    } else {
        !launcher_alive(control)
    }
}

/// Whether the launcher of the last job still runs.
fn launcher_alive(control: &Control) -> bool {
    // SAFETY: BackendPidGetProc takes ProcArrayLock itself and returns a pointer into the
    // process array, or NULL.
    let proc_ = unsafe { pg_sys::BackendPidGetProc(control.launcher_pid.load(Ordering::Acquire)) };
    proc_ as usize == control.launcher_proc.load(Ordering::Acquire)
}

fn wake_launcher(control: &Control) {
    if launcher_alive(control) {
        let proc_ = control.launcher_proc.load(Ordering::Acquire) as *mut pg_sys::PGPROC;
        // SAFETY: the launcher's PGPROC lies in the main shared memory; setting the latch of a
        // backend that is just exiting is harmless.
        unsafe { pg_sys::SetLatch(&mut (*proc_).procLatch) };
    }
}

/// A worker that exits in any way (also FATAL: a SIGTERM while it waits) leaves the list of
/// idle workers, while the registry is still mapped.
fn leave_list_at_exit() {
    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn at_exit(_code: core::ffi::c_int, _arg: pg_sys::Datum) {
        // SAFETY: reading our own PID.
        idle::leave(None, unsafe { pg_sys::MyProcPid });
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&REGISTERED, at_exit);
}

thread_local! {
    /// The shared objects this process had mapped when it started, and whether a job has loaded
    /// another one (other than PL/pgSQL) since.
    static LIBRARIES: core::cell::RefCell<Option<Vec<std::ffi::CString>>> =
        const { core::cell::RefCell::new(None) };
    static LOADED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Note the shared objects mapped at the worker's start.
pub fn note_libraries() {
    LIBRARIES.with(|l| *l.borrow_mut() = Some(loaded_objects()));
}

/// Whether a job has loaded a library (other than PL/pgSQL) into this process since it started.
/// The server never unloads one, so as many objects as at the start are the same ones; only
/// when there are more are their names compared.
fn loaded_a_library() -> bool {
    if LOADED.with(core::cell::Cell::get) {
        return true;
    }
    let count = loaded_object_count();
    let loaded = LIBRARIES.with(|l| match l.borrow().as_ref() {
        None => true,
        Some(start) if start.len() == count => false,
        Some(start) => loaded_objects()
            .iter()
            .filter(|name| !start.contains(name))
            .any(|name| !name.to_bytes().ends_with(b"/plpgsql.so")),
    });
    LOADED.with(|l| l.set(loaded));
    loaded
}

/// How many named shared objects are mapped into this process (without copying their names).
fn loaded_object_count() -> usize {
    let mut count = 0;
    for_each_loaded_object(&mut |_| count += 1);
    count
}

/// The names of the shared objects mapped into this process.
fn loaded_objects() -> Vec<std::ffi::CString> {
    let mut names = Vec::new();
    for_each_loaded_object(&mut |name| names.push(name.to_owned()));
    names
}

/// Call `f` with the name of each named shared object mapped into this process.
fn for_each_loaded_object(f: &mut dyn FnMut(&core::ffi::CStr)) {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        f: *mut core::ffi::c_void,
    ) -> core::ffi::c_int {
        // SAFETY: `f` is the closure passed below; `info` describes one loaded object, whose
        // name is a NUL-terminated string or NULL.
        unsafe {
            let f = &mut *f.cast::<&mut dyn FnMut(&core::ffi::CStr)>();
            let name = (*info).dlpi_name;
            if !name.is_null() {
                f(core::ffi::CStr::from_ptr(name));
            }
        }
        0
    }
    let mut f = f;
    // SAFETY: the callback only reads the object descriptions and calls `f`, which outlives the
    // call and never unwinds (it counts or copies names).
    unsafe { libc::dl_iterate_phdr(Some(each), core::ptr::from_mut(&mut f).cast()) };
}

/// `on_dsm_detach` of the control segment: this process exits.
#[pg_guard]
unsafe extern "C-unwind" fn gone(_segment: *mut pg_sys::dsm_segment, control: pg_sys::Datum) {
    // SAFETY: `control` is the start of the segment being detached, still mapped.
    let control = unsafe { &*(control.value() as *const Control) };
    control.state.set(WarmState::Gone);
    wake_launcher(control);
}

/// Reset the session as DISCARD ALL does — role and session authorization, temporary tables,
/// prepared statements, cursors, advisory locks, LISTEN, sequence and plan caches — as the
/// login role outside any security restriction, but for the settings (RESET ALL): the next job
/// restores its caller's unless they are already in place (`super::settings`). False if that
/// failed: the worker then exits.
pub fn reset_session() -> bool {
    PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: we are connected, between transactions, with no portal running: the state in
        // which exec_simple_query runs DISCARD ALL at top level. The steps are DISCARD ALL's,
        // in its order (closing cursors first, as that may run user code).
        unsafe {
            pg_sys::SetUserIdAndSecContext(pg_sys::GetAuthenticatedUserId(), 0);
            pg_sys::StartTransactionCommand();
            pg_sys::PortalHashTableDeleteAll();
            pg_sys::SetPGVariable(
                c"session_authorization".as_ptr(),
                core::ptr::null_mut(),
                false,
            );
            // (RESET ALL would reset the role; it is not among the serialised settings)
            pg_sys::SetPGVariable(c"role".as_ptr(), core::ptr::null_mut(), false);
            // a label's name (`pg_background:label:pid`) does not stay while the worker waits
            pg_sys::SetPGVariable(c"application_name".as_ptr(), core::ptr::null_mut(), false);
            pg_sys::DropAllPreparedStatements();
            crate::ffi::Async_UnlistenAll();
            pg_sys::LockReleaseAll(pg_sys::USER_LOCKMETHOD as pg_sys::LOCKMETHODID, true);
            for target in [
                pg_sys::DiscardMode::DISCARD_PLANS,
                pg_sys::DiscardMode::DISCARD_TEMP,
                pg_sys::DiscardMode::DISCARD_SEQUENCES,
            ] {
                let mut stmt = pg_sys::DiscardStmt {
                    type_: pg_sys::NodeTag::T_DiscardStmt,
                    target,
                };
                crate::ffi::DiscardCommand(&mut stmt, true);
            }
            pg_sys::CommitTransactionCommand();
            // A worker that lives on must send its statistics itself (a new one did at exit),
            // or autovacuum would not learn of the changes of its jobs: as an idle backend
            // does, at most once a second; what is pending goes at exit.
            pg_sys::pgstat_report_stat(false);
        }
        true
    }))
    .catch_others(|_| {
        // SAFETY: as after a PG_CATCH: abort the failed transaction; the worker exits next.
        unsafe { pg_sys::AbortCurrentTransaction() };
        false
    })
    .execute()
}
