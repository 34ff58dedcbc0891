//! The convenience functions of 1.10, built on the handle API: outcome, run, run_query, drain,
//! wait_any, cancel_by_label, purge, full_sql.

use super::inspect::WorkerState;
use super::session_jobs::{self, Cookie};
use super::{bind, inspect, result};
use super::{
    cancel, cancel_with_grace, detach, launch_with, wait, wait_discarding_output, LaunchOptions,
};
use crate::error::Error;
use pgrx::pg_sys;

/// `pg_background_outcome` fields.
pub struct Outcome {
    pub pid: i32,
    pub cookie: i64,
    pub state: String,
    pub consumed: bool,
    pub completed: bool,
    pub has_error: bool,
    pub row_count: Option<i64>,
    pub command_tag: Option<String>,
    pub sqlstate: Option<String>,
    pub error_message: Option<String>,
    pub label: Option<String>,
    pub launched_at: Option<pg_sys::TimestampTz>,
}

/// `pg_background_outcome_v2`: never raises; a PID this session does not have (or may not
/// see, or whose cookie differs) has state `unknown`.
pub fn outcome(pid: i32, cookie: i64) -> Outcome {
    let unknown = Outcome {
        pid,
        cookie,
        state: "unknown".to_owned(),
        consumed: false,
        completed: false,
        has_error: false,
        row_count: None,
        command_tag: None,
        sqlstate: None,
        error_message: None,
        label: None,
        launched_at: None,
    };
    let Ok(info) = inspect::result_info(pid, cookie) else {
        return unknown;
    };
    let error = inspect::error_info(pid, cookie).ok().flatten();
    let (state, label, launched_at) = session_jobs::with_entry(pid, |e| {
        (
            inspect::state(e).name().to_owned(),
            e.label.clone(),
            e.launched_at,
        )
    })
    .unwrap_or(("unknown".to_owned(), None, 0));
    Outcome {
        state,
        completed: info.completed,
        has_error: info.has_error,
        row_count: Some(info.row_count),
        command_tag: info.command_tag,
        sqlstate: error.as_ref().map(|e| e.sqlstate.clone()),
        error_message: error.map(|e| e.message),
        label,
        launched_at: Some(launched_at),
        ..unknown
    }
}

/// `pg_background_run_result` fields.
pub struct RunResult {
    pub pid: i32,
    pub completed: bool,
    pub timed_out: bool,
    pub outcome: Outcome,
    pub elapsed_ms: i64,
}

/// Grace given to a job that ran out of time in `run_v2` / `run_query_v2`.
const RUN_GRACE_MS: i32 = 1000;

/// The launch options of the helpers: a handle, and the label if any.
fn labelled(label: Option<&str>) -> LaunchOptions<'_> {
    LaunchOptions {
        label,
        with_cookie: true,
        results_disabled: false,
        params: None,
        // (these jobs are waited for and detached, never left unread)
        keep_s: Some(0),
    }
}

/// Launch, then wait for the job to stop (at most `timeout_ms` if > 0; cancelled with a grace
/// period when it does not). With `discard`, the job's output is dropped while waiting (the
/// caller wants only the outcome); without, a job whose output exceeds its queue cannot stop
/// before it is read, and only a timeout ends the wait.
fn launch_and_wait(
    sql: &str,
    queue_size: i32,
    timeout_ms: i32,
    label: Option<&str>,
    discard: bool,
) -> Result<(i32, i64, bool), Error> {
    let (pid, cookie) = launch_with(sql, queue_size, labelled(label))?;
    let timeout = (timeout_ms > 0).then_some(timeout_ms);
    let stopped = if discard {
        wait_discarding_output(pid, cookie, timeout)?
    } else {
        wait(pid, cookie, timeout)?
    };
    if !stopped {
        cancel_with_grace(pid, cookie, RUN_GRACE_MS)?;
    }
    Ok((pid, cookie, !stopped))
}

/// `pg_background_run_v2`: run to completion (or timeout) and report, then detach.
pub fn run(
    sql: &str,
    queue_size: i32,
    timeout_ms: i32,
    label: Option<&str>,
) -> Result<RunResult, Error> {
    // SAFETY: reading the clock.
    let start = unsafe { pg_sys::GetCurrentTimestamp() };
    let (pid, cookie, timed_out) = launch_and_wait(sql, queue_size, timeout_ms, label, true)?;
    if timed_out {
        session_jobs::count_timeout();
    }
    let outcome = outcome(pid, cookie);
    detach(pid, Cookie::ForControl(cookie))?;
    // SAFETY: reading the clock.
    let elapsed_ms = (unsafe { pg_sys::GetCurrentTimestamp() } - start) / 1000;
    Ok(RunResult {
        pid,
        completed: outcome.completed && !timed_out,
        timed_out,
        outcome,
        elapsed_ms,
    })
}

/// `pg_background_run_query_v2`: run and return the rows, typed by the caller's column
/// definition list; 57014 when the job does not finish in time.
pub fn run_query(
    sql: &str,
    queue_size: i32,
    timeout_ms: i32,
    label: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), Error> {
    if timeout_ms <= 0 {
        // no time limit: read at once, so that a result larger than the queue streams
        let (pid, cookie) = launch_with(sql, queue_size, labelled(label))?;
        return super::result::read(pid, Cookie::ForResult(cookie), fcinfo);
    }
    let (pid, cookie, timed_out) = launch_and_wait(sql, queue_size, timeout_ms, label, false)?;
    if timed_out {
        session_jobs::count_timeout();
        detach(pid, Cookie::ForControl(cookie))?;
        return Err(Error::RunTimedOut(super::called_name(fcinfo), timeout_ms));
    }
    super::result::read(pid, Cookie::ForResult(cookie), fcinfo)
}

/// `pg_background_drain_v2`: wait for every handle (all within `timeout_ms` if > 0), return
/// their outcomes, and detach them.
pub fn drain(handles: &[(i32, i64)], timeout_ms: i32) -> Result<Vec<Outcome>, Error> {
    // SAFETY: reading the clock.
    let start = unsafe { pg_sys::GetCurrentTimestamp() };
    let mut outcomes = Vec::with_capacity(handles.len());
    for &(pid, cookie) in handles {
        if session_jobs::check(pid, Cookie::ForControl(cookie)).is_ok() {
            let remaining = if timeout_ms > 0 {
                // SAFETY: reading the clock.
                let spent = (unsafe { pg_sys::GetCurrentTimestamp() } - start) / 1000;
                Some((i64::from(timeout_ms) - spent).max(0) as i32)
            } else {
                None
            };
            wait_discarding_output(pid, cookie, remaining)?;
        }
        outcomes.push(outcome(pid, cookie));
        let _ = detach(pid, Cookie::ForControl(cookie));
    }
    Ok(outcomes)
}

/// `pg_background_wait_any_v2`: the first handle whose worker has stopped, or `None` when
/// `timeout_ms` (> 0) passes first. Unknown handles are skipped.
pub fn wait_any(handles: &[(i32, i64)], timeout_ms: i32) -> Result<Option<(i32, i64)>, Error> {
    let known: Vec<(i32, i64)> = handles
        .iter()
        .copied()
        .filter(|&(pid, cookie)| session_jobs::check(pid, Cookie::ForControl(cookie)).is_ok())
        .collect();
    let Some(&first) = known.first() else {
        return Ok(None);
    };
    // SAFETY: reading the clock.
    let start = unsafe { pg_sys::GetCurrentTimestamp() };
    loop {
        for &(pid, cookie) in &known {
            if wait(pid, cookie, Some(0))? {
                return Ok(Some((pid, cookie)));
            }
        }
        // SAFETY: reading the clock.
        let spent = (unsafe { pg_sys::GetCurrentTimestamp() } - start) / 1000;
        if timeout_ms > 0 && spent >= i64::from(timeout_ms) {
            return Ok(None);
        }
        // Sleep on our latch (set by the postmaster when any of our workers stops).
        wait(first.0, first.1, Some(10))?;
    }
}

/// Where one of the jobs `wait_any_job` waits for is: ended, or running in this worker
/// (0: not started yet).
fn job_state(job_id: i64) -> Result<(bool, i32), Error> {
    let id = u64::try_from(job_id).map_err(|_| Error::NoSuchJob(job_id))?;
    if let Some(pid) = session_jobs::pid_of_job(id) {
        return session_jobs::with_entry(pid, |e| (inspect::state(e) == WorkerState::Stopped, pid));
    }
    if !crate::registry::available() {
        return Err(Error::RegistryUnavailable("pg_background_wait_any"));
    }
    crate::registry::ended_job(id).map_err(|e| match e {
        crate::registry::NotKept::Denied => Error::JobPermissionDenied(job_id),
        _ => Error::NoSuchJob(job_id),
    })
}

/// `pg_background_wait_any(job_ids)`: the first of the jobs (of this session, or of the
/// registry with an owner whose privileges the caller has) to have ended, or `None` when
/// `timeout_ms` (> 0) passes first. Sleeps on the latch, which the end of a job of this
/// session or of the registry sets; a deadlock (every job still running waits for a lock this
/// session holds) raises 40P01 after `deadlock_timeout`.
pub fn wait_any_job(job_ids: &[i64], timeout_ms: i32) -> Result<Option<i64>, Error> {
    let start = crate::server::now();
    // SAFETY: reading a setting of this backend.
    let deadlock_ms = i64::from(unsafe { pg_sys::DeadlockTimeout }).max(1);
    let mut quiet_since = start;
    let outcome = loop {
        crate::registry::prepare_to_wait();
        let mut running = Vec::with_capacity(job_ids.len());
        let mut found = None;
        for &id in job_ids {
            match job_state(id) {
                Ok((true, _)) => {
                    found = Some(id);
                    break;
                }
                Ok((false, pid)) => running.push(pid),
                Err(e) => {
                    crate::registry::stop_sleeping();
                    return Err(e);
                }
            }
        }
        if found.is_some() || job_ids.is_empty() {
            break Ok(found);
        }
        let now = crate::server::now();
        let spent_ms = (now - start) / 1000;
        if timeout_ms > 0 && spent_ms >= i64::from(timeout_ms) {
            break Ok(None);
        }
        let mut sleep_ms = deadlock_ms;
        if timeout_ms > 0 {
            sleep_ms = sleep_ms.min(i64::from(timeout_ms) - spent_ms).max(1);
        }
        if crate::server::sleep_on_latch(sleep_ms, crate::server::WaitEvent::Job) {
            if (crate::server::now() - quiet_since) / 1000 >= deadlock_ms
                && running
                    .iter()
                    .all(|&pid| pid > 0 && super::deadlock::blocked_by_me(pid))
            {
                break Err(super::deadlock::detected(running[0]));
            }
        } else {
            quiet_since = crate::server::now();
        }
    };
    crate::registry::stop_sleeping();
    outcome
}

/// `pg_background_cancel_by_label_v2`: cancel the running workers whose label matches
/// `pattern` (LIKE), waiting up to `grace_ms` for each; returns how many.
pub fn cancel_by_label(pattern: &str, grace_ms: i32) -> Result<i32, Error> {
    let mut matching = Vec::new();
    session_jobs::for_each_visible(|e| {
        if e.label
            .as_deref()
            .is_some_and(|l| crate::server::like(l, pattern))
            && inspect::state(e) != WorkerState::Stopped
        {
            matching.push((e.pid, e.cookie));
        }
    });
    let mut n = 0;
    for (pid, cookie) in matching {
        if grace_ms > 0 {
            cancel_with_grace(pid, cookie, grace_ms)?;
        } else {
            cancel(pid, cookie)?;
        }
        n += 1;
    }
    Ok(n)
}

/// `pg_background_purge_v2`: detach the stopped workers only; returns how many.
pub fn purge() -> i32 {
    let mut stopped = Vec::new();
    session_jobs::for_each_visible(|e| {
        if inspect::state(e) == WorkerState::Stopped {
            stopped.push(e.pid);
        }
    });
    stopped
        .into_iter()
        .filter(|&pid| session_jobs::take(pid).is_ok())
        .count() as i32
}

/// `pg_background_autonomous`: run one statement in a worker with the call's arguments from
/// the second on bound as `$1 … $n`, wait, and put its rows into the caller's result (read with
/// a column definition list). A wrong call shape is refused before anything starts.
pub fn autonomous_rows(sql: &str, fcinfo: pg_sys::FunctionCallInfo) -> Result<(), Error> {
    let target = result::Target::from_call(fcinfo)?;
    let pid = launch_bound(sql, fcinfo)?;
    result::read_into(pid, target)
}

/// `pg_background_autonomous_exec`: as [`autonomous_rows`], returning the command tag.
pub fn autonomous_exec(sql: &str, fcinfo: pg_sys::FunctionCallInfo) -> Result<String, Error> {
    let pid = launch_bound(sql, fcinfo)?;
    result::command_tag(pid)
}

fn launch_bound(sql: &str, fcinfo: pg_sys::FunctionCallInfo) -> Result<i32, Error> {
    let params = bind::collect(fcinfo, 1)?;
    let options = LaunchOptions {
        params: Some(&params),
        keep_s: Some(0),
        ..LaunchOptions::default()
    };
    Ok(launch_with(sql, 0, options)?.0)
}

/// Longest text `full_sql_v2` returns before cutting (64 KiB), and the mark of a cut.
const FULL_SQL_MAX: usize = 64 * 1024;
const CUT_MARK: &str = "[...]";

/// `pg_background_full_sql_v2`: the job's whole SQL from its segment (cut at 64 KiB).
pub fn full_sql(pid: i32, cookie: i64) -> Result<String, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    session_jobs::with_entry(pid, |e| {
        let sql = e.channel.sql();
        if sql.len() <= FULL_SQL_MAX {
            return sql;
        }
        format!(
            "{}{CUT_MARK}",
            crate::text::clip(&sql, FULL_SQL_MAX - CUT_MARK.len())
        )
    })
}
