//! The SQL-callable functions: validate arguments, call the launcher, map errors. Safe Rust.
#![forbid(unsafe_code)]

use crate::launcher::result::Shape;
use crate::launcher::{self, Cookie, LaunchOptions};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

pgrx::extension_sql!(
    r#"
-- Each type only if absent: the same text serves ALTER EXTENSION UPDATE from the C extension,
-- whose 1.8 and 1.10 installations define some of them already (with these definitions).
DO $types$
BEGIN
  IF to_regtype('pg_background_handle') IS NULL THEN
    CREATE TYPE pg_background_handle AS (pid int4, cookie int8);
  END IF;
  IF to_regtype('pg_background_stats') IS NULL THEN
    CREATE TYPE pg_background_stats AS (
        workers_launched int8, workers_completed int8, workers_failed int8, workers_canceled int8,
        workers_active int4, avg_execution_ms float8, max_workers int4);
  END IF;
  IF to_regtype('pg_background_progress') IS NULL THEN
    CREATE TYPE pg_background_progress AS (progress_pct int4, progress_msg text);
  END IF;
  IF to_regtype('pg_background_result_info') IS NULL THEN
    CREATE TYPE pg_background_result_info AS (
        row_count int8, command_tag text, completed bool, has_error bool);
  END IF;
  IF to_regtype('pg_background_error') IS NULL THEN
    CREATE TYPE pg_background_error AS (
        sqlstate text, message text, detail text, hint text, context text);
  END IF;
  IF to_regtype('pg_background_outcome') IS NULL THEN
    CREATE TYPE pg_background_outcome AS (
        pid int4, cookie int8, state text, consumed bool, completed bool, has_error bool,
        row_count int8, command_tag text, sqlstate text, error_message text, label text,
        launched_at timestamptz);
  END IF;
  IF to_regtype('pg_background_run_result') IS NULL THEN
    CREATE TYPE pg_background_run_result AS (
        pid int4, completed bool, timed_out bool, has_error bool, row_count int8, command_tag text,
        sqlstate text, error_message text, elapsed_ms int8);
  END IF;
END$types$;
"#,
    name = "handle_type",
);

type Handle = pgrx::composite_type!('static, "pg_background_handle");

// ---------------------------------------------------------------------------------------------
// The classic API (1.x v1)
// ---------------------------------------------------------------------------------------------

/// Start a background worker running `sql`; returns its PID.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_launch(sql: &str, queue_size: default!(i32, 0)) -> Result<i32, ErrorReport> {
    Ok(launcher::launch(sql, queue_size)?)
}

/// Read the worker's result: the rows of its last statement, or its command tags.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_result(pid int4) RETURNS SETOF record
    STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_result(pid: i32, fcinfo: pg_sys::FunctionCallInfo) -> Result<(), ErrorReport> {
    Ok(launcher::result::read(pid, Cookie::Ignore, fcinfo)?)
}

/// Stop tracking the worker; it goes on and commits, its output is discarded.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_detach(pid: i32) -> Result<(), ErrorReport> {
    Ok(launcher::detach(pid, Cookie::Ignore)?)
}

// ---------------------------------------------------------------------------------------------
// The handle API of 1.8 (`_v2`)
// ---------------------------------------------------------------------------------------------

fn internal(e: impl std::fmt::Display) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        e.to_string(),
        "pg_background",
    )
}

/// Raise `e` as an ERROR (for functions that return `Option`).
fn raise(e: ErrorReport) -> ! {
    e.report(PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}

fn handle(pid: i32, cookie: i64, fcinfo: pg_sys::FunctionCallInfo) -> Result<Handle, ErrorReport> {
    // Built from the function's declared result type, so that it works whatever the
    // extension's schema and the search_path.
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "pid", pid);
    set(&mut t, "cookie", cookie);
    Ok(t)
}

/// The result of a job by its id: of a job of this session, or kept after its launching
/// session ended (read once, by a role with the privileges of the job's owner). A name of its
/// own: as an overload of `pg_background_result`, a call with an untyped NULL or literal would
/// no longer resolve to the 1.x function.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_job_result(job_id int8) RETURNS SETOF record
    STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_result_of_job(
    job_id: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    Ok(launcher::result::read_job(job_id, fcinfo, Shape::Typed)?)
}

/// The rows of the worker's result as jsonb objects keyed by column name (no column definition
/// list); a command without rows gives `{"command_tag": …}`.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_result_json(pid int4) RETURNS SETOF jsonb
    STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_result_json(
    pid: i32,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    Ok(launcher::result::read_as(
        pid,
        Cookie::Ignore,
        fcinfo,
        Shape::Json,
    )?)
}

/// [`pg_background_result_json`] with the handle's cookie checked.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_result_json(pid int4, cookie int8) RETURNS SETOF jsonb
    STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_result_json_of_handle(
    pid: i32,
    cookie: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    Ok(launcher::result::read_as(
        pid,
        Cookie::ForResult(cookie),
        fcinfo,
        Shape::Json,
    )?)
}

/// [`pg_background_result_of_job`] as jsonb objects.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_job_result_json(job_id int8) RETURNS SETOF jsonb
    STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_job_result_json(
    job_id: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    Ok(launcher::result::read_job(job_id, fcinfo, Shape::Json)?)
}

/// Launch `sql` like `pg_background_launch`, keeping its result for `keep_for` after this
/// session ends unread; returns the job's id in the cluster-wide registry.
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_launch_kept(
    sql: Option<&str>,
    keep_for: default!(Option<pgrx::datum::Interval>, "'1 hour'"),
    queue_size: default!(Option<i32>, 0),
    label: default!(Option<&str>, "NULL"),
) -> Result<i64, ErrorReport> {
    let sql = sql.ok_or(crate::error::Error::NullSql)?;
    let keep_s = match keep_for {
        None => None,
        Some(i) => {
            let micros = i128::from(i.months()) * 30 * 86_400_000_000
                + i128::from(i.days()) * 86_400_000_000
                + i128::from(i.micros());
            let seconds = micros / 1_000_000;
            if seconds < 1 || seconds > i128::from(crate::guc::MAX_KEEP_RESULT) {
                return Err(crate::error::Error::KeepOutOfRange.into());
            }
            Some(seconds as i32)
        }
    };
    Ok(launcher::launch_kept(
        sql,
        queue_size.unwrap_or(0),
        label,
        keep_s,
    )?)
}

/// The id in the cluster-wide registry of this session's job `pid`.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_job_id(pid: i32) -> Result<i64, ErrorReport> {
    Ok(launcher::job_id(pid)?)
}

/// Like `pg_background_launch`, returning a handle `(pid, cookie)`.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_launch_v2(
    sql: &str,
    queue_size: default!(i32, 0),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_handle"), ErrorReport> {
    launch_labelled(Some(sql), Some(queue_size), None, false, fcinfo)
}

/// Fire and forget: the job's results, errors and notices are never readable.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_submit_v2(
    sql: &str,
    queue_size: default!(i32, 0),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_handle"), ErrorReport> {
    launch_labelled(Some(sql), Some(queue_size), None, true, fcinfo)
}

/// `pg_background_result` with the handle's cookie checked.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_result_v2(pid int4, cookie int8) RETURNS SETOF record
    STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_result_v2(
    pid: i32,
    cookie: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    Ok(launcher::result::read(
        pid,
        Cookie::ForResult(cookie),
        fcinfo,
    )?)
}

/// `pg_background_detach` with the handle's cookie checked.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_detach_v2(pid: i32, cookie: i64) -> Result<(), ErrorReport> {
    Ok(launcher::detach(pid, Cookie::ForControl(cookie))?)
}

/// Cancel the job (its reader gets 57014); returns at once. No effect on a stopped worker.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_cancel_v2(pid: i32, cookie: i64) -> Result<(), ErrorReport> {
    Ok(launcher::cancel(pid, cookie)?)
}

/// Cancel, then wait up to `grace_ms` (0 – 3,600,000) for the worker to stop.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_cancel_v2_grace(pid: i32, cookie: i64, grace_ms: i32) -> Result<(), ErrorReport> {
    Ok(launcher::cancel_with_grace(pid, cookie, grace_ms)?)
}

/// Wait until the worker has exited.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_wait_v2(pid: i32, cookie: i64) -> Result<(), ErrorReport> {
    launcher::wait(pid, cookie, None)?;
    Ok(())
}

/// Wait at most `timeout_ms` (0 – 86,400,000; 0 = one look); true if the worker has exited.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_wait_v2_timeout(
    pid: i32,
    cookie: i64,
    timeout_ms: i32,
) -> Result<bool, ErrorReport> {
    Ok(launcher::wait(pid, cookie, Some(timeout_ms))?)
}

/// This session's workers (needs a column definition list: 9 columns as in 1.8, or 10 with
/// `label` as in 1.9).
#[pg_extern(sql = "
CREATE FUNCTION pg_background_list_v2() RETURNS SETOF record
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_list_v2(fcinfo: pg_sys::FunctionCallInfo) -> Result<(), ErrorReport> {
    Ok(launcher::inspect::list(fcinfo)?)
}

/// Session statistics. Not STRICT, as in 1.8–1.10 (pgrx would declare a function without
/// arguments STRICT).
#[pg_extern(requires = ["handle_type"], sql = "
CREATE FUNCTION pg_background_stats_v2() RETURNS pg_background_stats
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_stats_v2(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "pg_background_stats") {
    let s = launcher::inspect::stats();
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "workers_launched", s.launched);
    set(&mut t, "workers_completed", s.completed);
    set(&mut t, "workers_failed", s.failed);
    set(&mut t, "workers_canceled", s.canceled);
    set_if_present(&mut t, "workers_timed_out", s.timed_out);
    set(&mut t, "workers_active", s.active);
    set(&mut t, "avg_execution_ms", s.avg_execution_ms);
    set(&mut t, "max_workers", s.max_workers);
    t
}

/// Report progress from inside a job (percentage clamped to 0–100, message cut to 63 bytes).
/// (2.0's `pg_background_report_progress` too.)
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_progress(
    pct: Option<i32>,
    msg: default!(Option<&str>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    crate::worker::report_progress(pct.unwrap_or(0), msg.unwrap_or("")).ok_or_else(|| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "{} can only be called from a background worker",
                launcher::called_name(fcinfo)
            ),
            "pg_background",
        )
    })
}

/// The progress a job last reported; NULL for an unknown PID, a stale cookie or no progress.
#[pg_extern(volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_get_progress_v2(
    pid: Option<i32>,
    cookie: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<pgrx::composite_type!('static, "pg_background_progress")> {
    let (pid, cookie) = (pid?, cookie?);
    let (pct, msg) =
        launcher::inspect::progress(pid, cookie).unwrap_or_else(|e| raise(e.into()))?;
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "progress_pct", pct);
    set(&mut t, "progress_msg", msg);
    Some(t)
}

// ---------------------------------------------------------------------------------------------
// The additions of 1.9
// ---------------------------------------------------------------------------------------------

fn launch_labelled(
    sql: Option<&str>,
    queue_size: Option<i32>,
    label: Option<&str>,
    results_disabled: bool,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<Handle, ErrorReport> {
    let sql = sql.ok_or(crate::error::Error::NullSql)?;
    let options = LaunchOptions {
        label,
        with_cookie: true,
        results_disabled,
        params: None,
        keep_s: None,
    };
    let (pid, cookie) = launcher::launch_with(sql, queue_size.unwrap_or(0), options)?;
    handle(pid, cookie, fcinfo)
}

/// `launch_v2` with a label (not STRICT: NULL label and NULL queue size are allowed).
#[pg_extern(name = "pg_background_launch_v2", volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_launch_v2_labelled(
    sql: Option<&str>,
    queue_size: Option<i32>,
    label: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_handle"), ErrorReport> {
    launch_labelled(sql, queue_size, label, false, fcinfo)
}

/// `submit_v2` with a label.
#[pg_extern(name = "pg_background_submit_v2", volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_submit_v2_labelled(
    sql: Option<&str>,
    queue_size: Option<i32>,
    label: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_handle"), ErrorReport> {
    launch_labelled(sql, queue_size, label, true, fcinfo)
}

/// Row count and tag of the last statement, whether the worker stopped and whether it failed;
/// does not consume the result.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_result_info_v2(
    pid: i32,
    cookie: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_result_info"), ErrorReport> {
    let info = launcher::inspect::result_info(pid, cookie)?;
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "row_count", info.row_count);
    set(&mut t, "command_tag", info.command_tag);
    set(&mut t, "completed", info.completed);
    set(&mut t, "has_error", info.has_error);
    set_if_present(&mut t, "started_at", timestamptz(info.started_at));
    set_if_present(&mut t, "finished_at", timestamptz(info.finished_at));
    Ok(t)
}

/// The error that ended the job, or NULL; does not consume the result.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_error_info_v2(
    pid: i32,
    cookie: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<pgrx::composite_type!('static, "pg_background_error")> {
    let e = launcher::inspect::error_info(pid, cookie).unwrap_or_else(|e| raise(e.into()))?;
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "sqlstate", e.sqlstate);
    set(&mut t, "message", e.message);
    set(&mut t, "detail", e.detail);
    set(&mut t, "hint", e.hint);
    set(&mut t, "context", e.context);
    set_if_present(&mut t, "schema_name", e.schema);
    set_if_present(&mut t, "table_name", e.table);
    set_if_present(&mut t, "column_name", e.column);
    set_if_present(&mut t, "constraint_name", e.constraint);
    Some(t)
}

/// Detach every worker of this session whose owner the caller has the privileges of.
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_detach_all_v2() -> i32 {
    launcher::detach_all()
}

/// Cancel every such worker that is still running.
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_cancel_all_v2() -> i32 {
    launcher::cancel_all()
}

// ---------------------------------------------------------------------------------------------
// The helpers of 1.10
// ---------------------------------------------------------------------------------------------

type Tuple = pgrx::heap_tuple::PgHeapTuple<'static, pgrx::AllocatedByRust>;

/// A tuple of the composite type `oid`, with fields set by name.
fn tuple_of(oid: pg_sys::Oid) -> Tuple {
    Tuple::new_composite_type_by_oid(oid).unwrap_or_else(|e| raise(internal(e)))
}

fn set<T: pgrx::IntoDatum>(t: &mut Tuple, name: &str, value: T) {
    t.set_by_name(name, value)
        .unwrap_or_else(|e| raise(internal(e)));
}

/// [`set`] where the declared type has the column: the 2.0 catalog's types have columns that
/// 1.x's do not (`workers_timed_out`, `started_at`, `finished_at`).
fn set_if_present<T: pgrx::IntoDatum>(t: &mut Tuple, name: &str, value: T) {
    match t.set_by_name(name, value) {
        Ok(()) | Err(pgrx::datum::TryFromDatumError::NoSuchAttributeName(_)) => {}
        Err(e) => raise(internal(e)),
    }
}

fn timestamptz(ts: Option<pg_sys::TimestampTz>) -> Option<pgrx::datum::TimestampWithTimeZone> {
    ts.and_then(|t| pgrx::datum::TimestampWithTimeZone::try_from(t).ok())
}

fn outcome_tuple(o: launcher::helpers::Outcome, oid: pg_sys::Oid) -> Tuple {
    let mut t = tuple_of(oid);
    set(&mut t, "pid", o.pid);
    set(&mut t, "cookie", o.cookie);
    set(&mut t, "state", o.state);
    set(&mut t, "consumed", o.consumed);
    set(&mut t, "completed", o.completed);
    set(&mut t, "has_error", o.has_error);
    set(&mut t, "row_count", o.row_count);
    set(&mut t, "command_tag", o.command_tag);
    set(&mut t, "sqlstate", o.sqlstate);
    set(&mut t, "error_message", o.error_message);
    set(&mut t, "label", o.label);
    set(&mut t, "launched_at", timestamptz(o.launched_at));
    t
}

fn handles_of<'a>(
    handles: pgrx::Array<'a, pgrx::composite_type!('a, "pg_background_handle")>,
) -> Vec<(i32, i64)> {
    handles
        .iter()
        .flatten()
        .filter_map(|h| {
            let pid = h.get_by_name::<i32>("pid").ok().flatten()?;
            let cookie = h.get_by_name::<i64>("cookie").ok().flatten()?;
            Some((pid, cookie))
        })
        .collect()
}

/// What is known of a handle, without raising (state `unknown` for a handle this session does
/// not have). STRICT in the 1.x API; in the 2.0 API, where it is not, NULL for a NULL argument.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_outcome_v2(
    p_pid: Option<i32>,
    p_cookie: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<pgrx::composite_type!('static, "pg_background_outcome")> {
    Some(outcome_tuple(
        launcher::helpers::outcome(p_pid?, p_cookie?),
        launcher::result_type(fcinfo),
    ))
}

/// The outcome as jsonb.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_status_v2(p_pid: i32, p_cookie: i64) -> pgrx::JsonB {
    let o = launcher::helpers::outcome(p_pid, p_cookie);
    let launched_at = timestamptz(o.launched_at).map(|t| t.to_string());
    pgrx::JsonB(serde_json::json!({
        "pid": o.pid, "cookie": o.cookie, "state": o.state, "consumed": o.consumed,
        "completed": o.completed, "has_error": o.has_error, "row_count": o.row_count,
        "command_tag": o.command_tag, "sqlstate": o.sqlstate, "error_message": o.error_message,
        "label": o.label, "launched_at": launched_at,
    }))
}

/// Launch, wait (at most `timeout_ms` if > 0; then cancel with 1 s grace), report, detach.
#[pg_extern(volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_run_v2(
    sql: Option<&str>,
    queue_size: default!(Option<i32>, 0),
    timeout_ms: default!(Option<i32>, 0),
    label: default!(Option<&str>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_run_result"), ErrorReport> {
    let sql = sql.ok_or(crate::error::Error::NullSql)?;
    let r = launcher::helpers::run(sql, queue_size.unwrap_or(0), timeout_ms.unwrap_or(0), label)?;
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "pid", r.pid);
    set(&mut t, "completed", r.completed);
    set(&mut t, "timed_out", r.timed_out);
    set(&mut t, "has_error", r.outcome.has_error);
    set(&mut t, "row_count", r.outcome.row_count);
    set(&mut t, "command_tag", r.outcome.command_tag);
    set(&mut t, "sqlstate", r.outcome.sqlstate);
    set(&mut t, "error_message", r.outcome.error_message);
    set(&mut t, "elapsed_ms", r.elapsed_ms);
    // 2.0's type has every column of the outcome
    set_if_present(&mut t, "cookie", r.outcome.cookie);
    set_if_present(&mut t, "state", r.outcome.state);
    set_if_present(&mut t, "consumed", r.outcome.consumed);
    set_if_present(&mut t, "label", r.outcome.label);
    set_if_present(&mut t, "launched_at", timestamptz(r.outcome.launched_at));
    Ok(t)
}

/// Launch, wait, and return the rows (read with a column definition list). `col_def` is
/// accepted for 1.10 compatibility; the caller's column definition list decides the types.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_run_query_v2(sql text, queue_size int4 DEFAULT 0,
    timeout_ms int4 DEFAULT 0, label text DEFAULT NULL, col_def text DEFAULT NULL)
    RETURNS SETOF record VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_run_query_v2(
    sql: Option<&str>,
    queue_size: Option<i32>,
    timeout_ms: Option<i32>,
    label: Option<&str>,
    _col_def: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let sql = sql.ok_or(crate::error::Error::NullSql)?;
    let (queue_size, timeout_ms) = (queue_size.unwrap_or(0), timeout_ms.unwrap_or(0));
    Ok(launcher::helpers::run_query(
        sql, queue_size, timeout_ms, label, fcinfo,
    )?)
}

/// Wait for every handle (within `timeout_ms` overall if > 0), return their outcomes, detach.
/// (In the 2.0 API, where it is not STRICT, NULL handles are none and a NULL timeout is 0.)
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_drain_v2<'a>(
    handles: Option<pgrx::Array<'a, pgrx::composite_type!('a, "pg_background_handle")>>,
    timeout_ms: default!(Option<i32>, 0),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<
    SetOfIterator<'static, pgrx::composite_type!('static, "pg_background_outcome")>,
    ErrorReport,
> {
    let oid = launcher::result_type(fcinfo);
    let handles = handles.map(handles_of).unwrap_or_default();
    let outcomes = launcher::helpers::drain(&handles, timeout_ms.unwrap_or(0))?;
    let tuples: Vec<Tuple> = outcomes
        .into_iter()
        .map(|o| outcome_tuple(o, oid))
        .collect();
    Ok(SetOfIterator::new(tuples))
}

/// The first handle whose worker has stopped; NULL if `timeout_ms` (> 0) passes first. (NULL
/// arguments as for drain.)
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_wait_any_v2<'a>(
    handles: Option<pgrx::Array<'a, pgrx::composite_type!('a, "pg_background_handle")>>,
    timeout_ms: default!(Option<i32>, 0),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<pgrx::composite_type!('static, "pg_background_handle")> {
    let handles = handles.map(handles_of).unwrap_or_default();
    let (pid, cookie) = launcher::helpers::wait_any(&handles, timeout_ms.unwrap_or(0))
        .unwrap_or_else(|e| raise(e.into()))?;
    let mut t = tuple_of(launcher::result_type(fcinfo));
    set(&mut t, "pid", pid);
    set(&mut t, "cookie", cookie);
    Some(t)
}

/// The id of the first of the jobs to end (of this session, or of the cluster with an owner
/// whose privileges the caller has); NULL if `timeout_ms` (> 0) passes first. (In the 2.0
/// API: `pg_background_wait_any_job`, 2.0's `pg_background_wait_any` taking handles.)
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_wait_any(
    job_ids: pgrx::Array<'_, i64>,
    timeout_ms: default!(i32, 0),
) -> Result<Option<i64>, ErrorReport> {
    let ids: Vec<i64> = job_ids.iter().flatten().collect();
    Ok(launcher::helpers::wait_any_job(&ids, timeout_ms)?)
}

/// Cancel the running workers whose label matches `pattern` (LIKE); returns how many. (In the
/// 2.0 API, where it is not STRICT, a NULL pattern matches none and a NULL grace is 0.)
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_cancel_by_label_v2(
    pattern: Option<&str>,
    grace_ms: default!(Option<i32>, 0),
) -> Result<i32, ErrorReport> {
    let Some(pattern) = pattern else {
        return Ok(0);
    };
    Ok(launcher::helpers::cancel_by_label(
        pattern,
        grace_ms.unwrap_or(0),
    )?)
}

/// Detach the workers that have stopped; returns how many.
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_purge_v2() -> i32 {
    launcher::helpers::purge()
}

/// The job's whole SQL (cut at 64 KiB, with `[...]`).
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_full_sql_v2(pid: i32, cookie: i64) -> Result<String, ErrorReport> {
    Ok(launcher::helpers::full_sql(pid, cookie)?)
}

// 1.10's views.
pgrx::extension_sql!(
    r#"
CREATE OR REPLACE VIEW pg_background_list AS
  SELECT * FROM pg_background_list_v2() AS (
    pid int4, cookie int8, launched_at timestamptz, user_id oid, queue_size int4, state text,
    sql_preview text, last_error text, consumed bool, label text);
CREATE OR REPLACE VIEW pg_background_activity AS
  SELECT l.pid, l.cookie, l.launched_at, l.user_id, l.queue_size, l.state AS pgbg_state,
         l.sql_preview, l.last_error, l.consumed, l.label,
         a.state AS backend_state, a.wait_event_type, a.wait_event, a.xact_start, a.query_start,
         a.backend_start, a.query
    FROM pg_background_list l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid;
"#,
    name = "views",
    requires = [pg_background_list_v2],
);

// The role, the grant helpers and the lockdown, after every other object.
pgrx::extension_sql_file!("../sql/privileges.sql", name = "privileges", finalize);

// ---------------------------------------------------------------------------------------------
// Autonomous calls: one statement with bound parameters, synchronous
// ---------------------------------------------------------------------------------------------

/// Run one statement in a background worker — its own transaction, committed whatever the
/// caller does next — with the arguments after `sql` bound as `$1 … $n`, and return its rows.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_autonomous(sql text) RETURNS SETOF record
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
CREATE FUNCTION pg_background_autonomous(sql text, VARIADIC params \"any\") RETURNS SETOF record
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_autonomous(
    sql: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let sql = sql.ok_or(crate::error::Error::NullSql)?;
    Ok(launcher::helpers::autonomous_rows(sql, fcinfo)?)
}

/// As `pg_background_autonomous`, returning only the statement's command tag (`INSERT 0 1`).
#[pg_extern(sql = "
CREATE FUNCTION pg_background_autonomous_exec(sql text) RETURNS text
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
CREATE FUNCTION pg_background_autonomous_exec(sql text, VARIADIC params \"any\") RETURNS text
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn pg_background_autonomous_exec(
    sql: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<String, ErrorReport> {
    let sql = sql.ok_or(crate::error::Error::NullSql)?;
    Ok(launcher::helpers::autonomous_exec(sql, fcinfo)?)
}

// ---------------------------------------------------------------------------------------------
// The cluster-wide job registry
// ---------------------------------------------------------------------------------------------

/// Every job of the cluster that the current user may see (the `pg_background_jobs` view).
// (pgrx reads the column names from the type as written: it cannot be an alias)
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_safe)]
fn pg_background_cluster_jobs() -> Result<
    TableIterator<
        'static,
        (
            name!(job_id, i64),
            name!(usename, Option<String>),
            name!(datname, Option<String>),
            name!(launcher_pid, i32),
            name!(worker_pid, Option<i32>),
            name!(label, Option<String>),
            name!(state, String),
            name!(launched_at, Option<pgrx::datum::TimestampWithTimeZone>),
            name!(started_at, Option<pgrx::datum::TimestampWithTimeZone>),
            name!(finished_at, Option<pgrx::datum::TimestampWithTimeZone>),
            name!(rows, i64),
            name!(bytes, i64),
            name!(progress_pct, Option<i32>),
            name!(progress_msg, Option<String>),
            name!(sqlstate, Option<String>),
            name!(message, Option<String>),
            name!(query, String),
            name!(
                result_kept_until,
                Option<pgrx::datum::TimestampWithTimeZone>
            ),
        ),
    >,
    ErrorReport,
> {
    let jobs = crate::registry::visible()?;
    Ok(TableIterator::new(jobs.into_iter().map(|v| {
        let j = v.job;
        (
            j.job_id,
            v.usename,
            v.datname,
            j.launcher_pid,
            j.worker_pid,
            j.label,
            j.state.to_owned(),
            timestamptz(Some(j.launched_at)),
            timestamptz(j.started_at),
            timestamptz(j.finished_at),
            j.rows,
            j.bytes,
            j.progress_pct,
            j.progress_msg,
            j.sqlstate,
            j.message,
            j.query,
            timestamptz(j.kept_until),
        )
    })))
}

pgrx::extension_sql!(
    r#"
CREATE OR REPLACE VIEW pg_background_jobs AS SELECT * FROM pg_background_cluster_jobs();
"#,
    name = "jobs_view",
    requires = [pg_background_cluster_jobs],
);

/// The cluster's counters since their last reset (the `pg_background_cluster_stats` view).
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_safe)]
fn pg_background_get_cluster_stats() -> Result<
    TableIterator<
        'static,
        (
            name!(launched, i64),
            name!(completed, i64),
            name!(failed, i64),
            name!(canceled, i64),
            name!(timed_out, i64),
            name!(deadlocks, i64),
            name!(capacity_waits, i64),
            name!(capacity_wait_ms, i64),
            name!(warm_starts, i64),
            name!(cold_starts, i64),
            name!(rows, i64),
            name!(bytes, i64),
            name!(spilled_bytes, i64),
            name!(stats_reset, Option<pgrx::datum::TimestampWithTimeZone>),
        ),
    >,
    ErrorReport,
> {
    let c = crate::registry::counters()
        .ok_or(crate::error::Error::RegistryUnavailable(
            "pg_background_cluster_stats",
        ))?
        .snapshot();
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(TableIterator::once((
        n(c.launched),
        n(c.completed),
        n(c.failed),
        n(c.canceled),
        n(c.timed_out),
        n(c.deadlocks),
        n(c.capacity_waits),
        n(c.capacity_wait_ms),
        n(c.warm_starts),
        n(c.cold_starts),
        n(c.rows),
        n(c.bytes),
        n(c.spilled_bytes),
        timestamptz(Some(c.reset_at)),
    )))
}

pgrx::extension_sql!(
    r#"
CREATE OR REPLACE VIEW pg_background_cluster_stats AS SELECT * FROM pg_background_get_cluster_stats();
"#,
    name = "cluster_stats_view",
    requires = [pg_background_get_cluster_stats],
);

/// Set the cluster's counters to zero (executable by superusers and the roles they grant it).
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_cluster_stats_reset() -> Result<(), ErrorReport> {
    let counters = crate::registry::counters().ok_or(crate::error::Error::RegistryUnavailable(
        "pg_background_cluster_stats_reset",
    ))?;
    counters.reset(crate::server::now());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Installation
// ---------------------------------------------------------------------------------------------

/// Tell the user who creates (or updates) the extension on a server where the cluster-wide job
/// registry is missing (PostgreSQL 15 and 16 without preloading) what that costs and how to
/// change it. The install script creates this function, calls it once and drops it again. A
/// WARNING, because the server raises `client_min_messages` to WARNING while it runs an
/// extension's script: a NOTICE would never reach the user.
#[pg_extern(sql = "
CREATE FUNCTION pg_background_preload_notice() RETURNS void
    VOLATILE PARALLEL UNSAFE
    LANGUAGE C AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
SELECT pg_background_preload_notice();
DROP FUNCTION pg_background_preload_notice();
")]
fn pg_background_preload_notice() {
    if !crate::registry::available() {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_WARNING,
            "pg_background is not in shared_preload_libraries",
            "pg_background_preload_notice",
        )
        .set_detail(
            "On this server the pg_background_jobs view, job ids, results kept after a session \
             ends and the caps on running jobs need the library preloaded (from PostgreSQL 17 \
             on they do not). Launching jobs and reading their results work without it.",
        )
        .set_hint(
            "Add pg_background to shared_preload_libraries in postgresql.conf (for example \
             shared_preload_libraries = 'pg_background') and restart the server.",
        )
        .report(PgLogLevel::WARNING);
    }
}
