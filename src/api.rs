//! The SQL-callable functions: validate arguments, call the launcher, map errors. Safe Rust.
#![forbid(unsafe_code)]

use crate::launcher::{self, Cookie, LaunchOptions};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

pgrx::extension_sql!(
    r#"
CREATE TYPE pg_background_handle AS (pid int4, cookie int8);
CREATE TYPE pg_background_stats AS (
    workers_launched int8, workers_completed int8, workers_failed int8, workers_canceled int8,
    workers_active int4, avg_execution_ms float8, max_workers int4);
CREATE TYPE pg_background_progress AS (progress_pct int4, progress_msg text);
CREATE TYPE pg_background_result_info AS (
    row_count int8, command_tag text, completed bool, has_error bool);
CREATE TYPE pg_background_error AS (
    sqlstate text, message text, detail text, hint text, context text);
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
    let mut tuple =
        Handle::new_composite_type_by_oid(launcher::result_type(fcinfo)).map_err(internal)?;
    tuple.set_by_name("pid", pid).map_err(internal)?;
    tuple.set_by_name("cookie", cookie).map_err(internal)?;
    Ok(tuple)
}

/// Like `pg_background_launch`, returning a handle `(pid, cookie)`.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_launch_v2(
    sql: &str,
    queue_size: default!(i32, 0),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_handle"), ErrorReport> {
    let options = LaunchOptions {
        label: None,
        with_cookie: true,
        results_disabled: false,
    };
    let (pid, cookie) = launcher::launch_with(sql, queue_size, options)?;
    handle(pid, cookie, fcinfo)
}

/// Fire and forget: the job's results, errors and notices are never readable.
#[pg_extern(strict, volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_submit_v2(
    sql: &str,
    queue_size: default!(i32, 0),
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_handle"), ErrorReport> {
    let options = LaunchOptions {
        label: None,
        with_cookie: true,
        results_disabled: true,
    };
    let (pid, cookie) = launcher::launch_with(sql, queue_size, options)?;
    handle(pid, cookie, fcinfo)
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

/// Session statistics.
#[pg_extern(volatile, parallel_unsafe, requires = ["handle_type"])]
fn pg_background_stats_v2(
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<pgrx::composite_type!('static, "pg_background_stats"), ErrorReport> {
    let s = launcher::inspect::stats();
    let mut t =
        pgrx::heap_tuple::PgHeapTuple::new_composite_type_by_oid(launcher::result_type(fcinfo))
            .map_err(internal)?;
    t.set_by_name("workers_launched", s.launched)
        .map_err(internal)?;
    t.set_by_name("workers_completed", s.completed)
        .map_err(internal)?;
    t.set_by_name("workers_failed", s.failed)
        .map_err(internal)?;
    t.set_by_name("workers_canceled", s.canceled)
        .map_err(internal)?;
    t.set_by_name("workers_active", s.active)
        .map_err(internal)?;
    t.set_by_name("avg_execution_ms", s.avg_execution_ms)
        .map_err(internal)?;
    t.set_by_name("max_workers", s.max_workers)
        .map_err(internal)?;
    Ok(t)
}

/// Report progress from inside a job (percentage clamped to 0–100, message cut to 63 bytes).
#[pg_extern(volatile, parallel_unsafe)]
fn pg_background_progress(
    pct: Option<i32>,
    msg: default!(Option<&str>, "NULL"),
) -> Result<(), ErrorReport> {
    crate::worker::report_progress(pct.unwrap_or(0), msg.unwrap_or("")).ok_or_else(|| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "pg_background_progress can only be called from a background worker",
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
    let oid = launcher::result_type(fcinfo);
    let mut t = pgrx::heap_tuple::PgHeapTuple::new_composite_type_by_oid(oid)
        .unwrap_or_else(|e| raise(internal(e)));
    t.set_by_name("progress_pct", pct)
        .unwrap_or_else(|e| raise(internal(e)));
    t.set_by_name("progress_msg", msg)
        .unwrap_or_else(|e| raise(internal(e)));
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
    let mut t =
        pgrx::heap_tuple::PgHeapTuple::new_composite_type_by_oid(launcher::result_type(fcinfo))
            .map_err(internal)?;
    t.set_by_name("row_count", info.row_count)
        .map_err(internal)?;
    t.set_by_name("command_tag", info.command_tag)
        .map_err(internal)?;
    t.set_by_name("completed", info.completed)
        .map_err(internal)?;
    t.set_by_name("has_error", info.has_error)
        .map_err(internal)?;
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
    let oid = launcher::result_type(fcinfo);
    let mut t = pgrx::heap_tuple::PgHeapTuple::new_composite_type_by_oid(oid)
        .unwrap_or_else(|e| raise(internal(e)));
    let set = |t: &mut pgrx::heap_tuple::PgHeapTuple<'static, pgrx::AllocatedByRust>,
               name,
               value: Option<String>| {
        t.set_by_name(name, value)
            .unwrap_or_else(|e| raise(internal(e)))
    };
    set(&mut t, "sqlstate", Some(e.sqlstate));
    set(&mut t, "message", Some(e.message));
    set(&mut t, "detail", e.detail);
    set(&mut t, "hint", e.hint);
    set(&mut t, "context", e.context);
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

// 1.10's views.
pgrx::extension_sql!(
    r#"
CREATE VIEW pg_background_list AS
  SELECT * FROM pg_background_list_v2() AS (
    pid int4, cookie int8, launched_at timestamptz, user_id oid, queue_size int4, state text,
    sql_preview text, last_error text, consumed bool, label text);
CREATE VIEW pg_background_activity AS
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
