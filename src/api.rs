//! The SQL-callable functions: validate arguments, call the launcher, map errors. Safe Rust.
#![forbid(unsafe_code)]

use crate::launcher;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

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
    Ok(launcher::result::read(pid, fcinfo)?)
}

/// Stop tracking the worker; it goes on and commits, its output is discarded.
#[pg_extern(strict, volatile, parallel_unsafe)]
fn pg_background_detach(pid: i32) -> Result<(), ErrorReport> {
    Ok(launcher::detach(pid)?)
}
