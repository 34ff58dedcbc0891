//! The launching side: launch a job ([`launch`]), track it in the session's job table, read,
//! wait for, detach or cancel it.

mod admission;
pub mod bgworker;
pub mod bind;
mod channel;
mod deadlock;
pub mod helpers;
pub mod inspect;
mod launch;
mod pool;
mod relay;
pub mod result;
mod session_jobs;

use crate::error::Error;
use crate::guc;
use bgworker::WorkerStatus;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
pub use session_jobs::Cookie;
use session_jobs::Entry;

/// How a job is launched.
#[derive(Clone, Copy, Default)]
pub struct LaunchOptions<'a> {
    /// 1.9: a label (at most 64 bytes) for list_v2 and the worker's application_name.
    pub label: Option<&'a str>,
    /// Handle API: give the job a random cookie.
    pub with_cookie: bool,
    /// `submit_v2`: nothing is sent back; the result cannot be read.
    pub results_disabled: bool,
    /// Bound parameters (`crate::params` encoding): the SQL is then one statement with `$n`.
    pub params: Option<&'a [u8]>,
    /// Seconds to keep the result once this session has gone without reading it; `None`:
    /// `pg_background.keep_result`.
    pub keep_s: Option<i32>,
}

/// Start a worker running `sql` and return its PID (classic API).
pub fn launch(sql: &str, queue_size: i32) -> Result<i32, Error> {
    launch_with(sql, queue_size, LaunchOptions::default()).map(|(pid, _)| pid)
}

/// Start a worker running `sql` whose result is kept `keep_s` seconds (`None`:
/// `pg_background.keep_result`, at least one second) after this session ends unread; returns its
/// job id.
pub fn launch_kept(
    sql: &str,
    queue_size: i32,
    label: Option<&str>,
    keep_s: Option<i32>,
) -> Result<i64, Error> {
    let keep_s = keep_s.unwrap_or_else(|| guc::KEEP_RESULT.get()).max(1);
    let options = LaunchOptions {
        label,
        keep_s: Some(keep_s),
        ..LaunchOptions::default()
    };
    let (pid, _) = launch_with(sql, queue_size, options)?;
    job_id(pid)
}

/// The cluster-wide id of this session's job `pid`.
pub fn job_id(pid: i32) -> Result<i64, Error> {
    session_jobs::check(pid, Cookie::Ignore)?;
    let (slot, id) = session_jobs::with_entry(pid, |e| (e.fixed().job_slot, e.fixed().job_id))?;
    if slot < 0 {
        return Err(if crate::registry::available() {
            Error::NotRegistered(pid)
        } else {
            Error::RegistryUnavailable("pg_background_job_id")
        });
    }
    Ok(id as i64)
}

/// Start a worker running `sql`; returns its PID and cookie (0 without `with_cookie`).
pub fn launch_with(
    sql: &str,
    queue_size: i32,
    options: LaunchOptions<'_>,
) -> Result<(i32, i64), Error> {
    launch::launch(sql, queue_size, options)
}

/// The declared result type of the calling SQL function.
pub fn result_type(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Oid {
    // SAFETY: fcinfo is the live call info of a SQL-callable function; flinfo is set by fmgr.
    unsafe { pg_sys::get_func_rettype((*(*fcinfo).flinfo).fn_oid) }
}

/// The name of the SQL function being called (the 1.x and the 2.0 API name some functions
/// differently), for messages.
pub fn called_name(fcinfo: pg_sys::FunctionCallInfo) -> String {
    // SAFETY: fcinfo is the live call info of a SQL-callable function; flinfo is set by fmgr,
    // and get_func_name returns a palloc'd copy or NULL.
    unsafe {
        let name = pg_sys::get_func_name((*(*fcinfo).flinfo).fn_oid);
        if name.is_null() {
            return "pg_background".to_owned();
        }
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Number of this session's workers that still run (see [`session_jobs::running`]).
#[cfg(any(test, feature = "pg_test"))]
pub fn running() -> usize {
    session_jobs::running()
}

/// A caller gave up waiting for a job of this session (`pg_background_record_timeout` of the
/// 2.0 catalog): counted in the session's statistics.
pub fn record_timeout() {
    session_jobs::count_timeout();
}

/// Stop tracking `pid`: the worker goes on and commits; its further output is discarded.
pub fn detach(pid: i32, cookie: Cookie) -> Result<(), Error> {
    session_jobs::check(pid, cookie)?;
    drop(session_jobs::take(pid)?);
    Ok(())
}

/// Whether the job is over: its process has exited, or it was kept warm (it waits for the next
/// job) and has detached from the job's segment — with everything of the job released.
fn stopped(e: &Entry) -> bool {
    (e.worker_done() && e.fixed().kept_warm.load(Ordering::Acquire))
        || matches!(
            e.worker.status(),
            WorkerStatus::Stopped | WorkerStatus::PostmasterDied
        )
}

/// `cancel_v2`: ask the worker to cancel its job (a reader then gets 57014), through the
/// postmaster and the worker's own handle — never a signal to a bare PID, never SIGKILL. A
/// worker that has already stopped is left alone, without error.
pub fn cancel(pid: i32, cookie: i64) -> Result<(), Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    session_jobs::with_entry(pid, |e| {
        if e.worker_done() || stopped(e) {
            return;
        }
        e.canceled.set(true);
        e.fixed().cancel_requested.store(true, Ordering::SeqCst);
        // Committed, and about to wait for a next job (see `FixedState::going_warm`): a signal
        // could reach that job, of this or another session.
        if e.fixed().going_warm.load(Ordering::SeqCst) {
            return;
        }
        e.worker.terminate();
    })
}

/// `detach_all_v2`: detach every entry the current role has the privileges of; returns how many.
pub fn detach_all() -> i32 {
    let mut pids = Vec::new();
    session_jobs::for_each_visible(|e| pids.push(e.pid));
    pids.into_iter()
        .filter(|&pid| session_jobs::take(pid).is_ok())
        .count() as i32
}

/// `cancel_all_v2`: cancel every such worker still running; returns how many.
pub fn cancel_all() -> i32 {
    let mut running = Vec::new();
    session_jobs::for_each_visible(|e| {
        if !e.worker_done() && !stopped(e) {
            running.push((e.pid, e.cookie));
        }
    });
    running
        .into_iter()
        .filter(|&(pid, cookie)| cancel(pid, cookie).is_ok())
        .count() as i32
}

/// Longest waits the 1.x API accepts.
const MAX_GRACE_MS: i32 = 3_600_000;
const MAX_WAIT_MS: i32 = 86_400_000;

/// `cancel_v2_grace`: cancel, then wait up to `grace_ms` for the worker to stop. When the grace
/// period ends first, return anyway (the C extension sent SIGKILL here, which makes the
/// postmaster restart the whole cluster).
pub fn cancel_with_grace(pid: i32, cookie: i64, grace_ms: i32) -> Result<(), Error> {
    cancel(pid, cookie)?;
    wait_stopped(pid, Some(grace_ms.clamp(0, MAX_GRACE_MS)), false)?;
    Ok(())
}

/// `wait_v2` / `wait_v2_timeout`: wait until the worker process has exited (with a timeout,
/// at most that long); true if it has. Interruptible; neither consumes nor detaches.
pub fn wait(pid: i32, cookie: i64, timeout_ms: Option<i32>) -> Result<bool, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    wait_stopped(pid, timeout_ms.map(|t| t.clamp(0, MAX_WAIT_MS)), false)
}

/// Like [`wait`], for callers that want only the outcome (`run_v2`, `drain_v2`): the job's
/// output is read and dropped meanwhile, so a result larger than the queue cannot keep the
/// worker from finishing (in 1.x such a wait never returned).
pub fn wait_discarding_output(
    pid: i32,
    cookie: i64,
    timeout_ms: Option<i32>,
) -> Result<bool, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    wait_stopped(pid, timeout_ms.map(|t| t.clamp(0, MAX_WAIT_MS)), true)
}

fn wait_stopped(pid: i32, timeout_ms: Option<i32>, discard: bool) -> Result<bool, Error> {
    let start = crate::server::now();
    let mut waiter = deadlock::Waiter::new(pid);
    loop {
        if discard {
            session_jobs::with_entry_mut(pid, |e| e.channel.discard_available())?;
        }
        if session_jobs::with_entry(pid, stopped)? {
            return Ok(true);
        }
        let elapsed_ms = crate::server::ms_since(start);
        let left_ms = match timeout_ms {
            Some(t) if elapsed_ms >= i64::from(t) => return Ok(false),
            Some(t) => Some(i64::from(t) - elapsed_ms),
            None => None,
        };
        // The postmaster sets our latch when the worker stops (bgw_notify_pid); each sleep
        // ends after deadlock_timeout at the latest, to check that the job is not blocked by us.
        waiter.wait_at_most(crate::server::WaitEvent::Job, left_ms)?;
    }
}

/// Jobs this backend tracks (a worker that launched jobs of its own is not kept warm while it
/// still tracks them).
pub fn tracked_jobs() -> usize {
    session_jobs::tracked()
}

/// Let go of this backend's warm workers (see [`pool::forget_all`]).
pub fn forget_warm_workers() {
    pool::forget_all();
}
