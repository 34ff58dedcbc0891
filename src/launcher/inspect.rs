//! What a session can see of its workers: `list_v2`, `stats_v2`, `get_progress_v2`.

use super::bgworker::WorkerStatus;
use super::result::Target;
use super::session_jobs::{self, Cookie};
use crate::error::Error;
use crate::guc;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
use pgrx::IntoDatum;

/// The 1.x state of a worker, as `list_v2` and `outcome_v2` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Starting,
    Running,
    Stopped,
    PostmasterDied,
}

impl WorkerState {
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Running => "running",
            WorkerState::Stopped => "stopped",
            WorkerState::PostmasterDied => "postmaster_died",
        }
    }
}

/// The state of an entry's worker.
pub fn state(e: &session_jobs::Entry) -> WorkerState {
    if e.worker_done() {
        return WorkerState::Stopped;
    }
    match e.worker.status() {
        WorkerStatus::NotYetStarted => WorkerState::Starting,
        WorkerStatus::Running(_) => WorkerState::Running,
        WorkerStatus::Stopped => WorkerState::Stopped,
        WorkerStatus::PostmasterDied => WorkerState::PostmasterDied,
    }
}

/// `pg_background_list_v2()`: one row per tracked worker the current role has the privileges
/// of, read with the 1.8 column definition list (9 columns) or 1.9's (10, with `label`).
pub fn list(fcinfo: pg_sys::FunctionCallInfo) -> Result<(), Error> {
    let target = Target::from_call(fcinfo)?;
    let base = [
        pg_sys::INT4OID,
        pg_sys::INT8OID,
        pg_sys::TIMESTAMPTZOID,
        pg_sys::OIDOID,
        pg_sys::INT4OID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::BOOLOID,
    ];
    let with_label = [&base[..], &[pg_sys::TEXTOID]].concat();
    let label = if target.has_types(&base) {
        false
    } else if target.has_types(&with_label) {
        true
    } else {
        return Err(Error::RowtypeMismatch {
            use_text: false,
            detail: Some(
                "pg_background_list_v2() returns 9 columns as in 1.8, or 10 with label as in 1.9."
                    .to_owned(),
            ),
        });
    };
    session_jobs::for_each_visible(|e| {
        let mut values = vec![
            e.pid.into_datum(),
            e.cookie.into_datum(),
            pgrx::datum::TimestampWithTimeZone::try_from(e.launched_at)
                .ok()
                .into_datum(),
            e.owner.into_datum(),
            (e.queue_size as i32).into_datum(),
            state(e).name().into_datum(),
            e.sql_preview.as_str().into_datum(),
            None::<&str>.into_datum(),
            false.into_datum(),
        ];
        if label {
            values.push(e.label.as_deref().into_datum());
        }
        let mut nulls: Vec<bool> = values.iter().map(Option::is_none).collect();
        let mut datums: Vec<pg_sys::Datum> = values
            .into_iter()
            .map(|v| v.unwrap_or(pg_sys::Datum::from(0)))
            .collect();
        target.put(&mut datums, &mut nulls);
    });
    Ok(())
}

/// `pg_background_stats_v2()` fields.
pub struct Stats {
    pub launched: i64,
    pub completed: i64,
    pub failed: i64,
    pub canceled: i64,
    pub timed_out: i64,
    pub active: i32,
    pub avg_execution_ms: f64,
    pub max_workers: i32,
}

pub fn stats() -> Stats {
    let s = session_jobs::stats();
    let released = s.completed + s.failed + s.canceled;
    Stats {
        launched: s.launched,
        completed: s.completed,
        failed: s.failed,
        canceled: s.canceled,
        timed_out: s.timed_out,
        active: session_jobs::tracked() as i32,
        avg_execution_ms: if released > 0 {
            s.total_us as f64 / 1000.0 / released as f64
        } else {
            0.0
        },
        max_workers: guc::MAX_WORKERS.get(),
    }
}

/// `pg_background_get_progress_v2(pid, cookie)`: the last progress the job reported, or
/// `None` for an unknown PID, a cookie mismatch or no progress yet. Privileges still apply.
pub fn progress(pid: i32, cookie: i64) -> Result<Option<(i32, String)>, Error> {
    match session_jobs::check(pid, Cookie::ForControl(cookie)) {
        Err(Error::NotAttached(_) | Error::CookieMismatch(_)) => return Ok(None),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    session_jobs::with_entry(pid, |e| {
        let fixed = e.fixed();
        let pct = fixed.progress_pct.load(Ordering::Acquire);
        if pct < 0 {
            return None;
        }
        Some((pct, fixed.progress_msg.get()))
    })
}

/// `pg_background_result_info_v2` fields.
pub struct ResultInfo {
    pub row_count: i64,
    pub command_tag: Option<String>,
    pub completed: bool,
    pub has_error: bool,
    /// When the worker started and finished the job (the 2.0 catalog's `result_info` shows
    /// them).
    pub started_at: Option<pg_sys::TimestampTz>,
    pub finished_at: Option<pg_sys::TimestampTz>,
}

pub fn result_info(pid: i32, cookie: i64) -> Result<ResultInfo, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    session_jobs::with_entry(pid, |e| {
        let fixed = e.fixed();
        let completed = e.worker_done() || state(e) == WorkerState::Stopped;
        let tag = fixed.last_tag.get();
        let time = |t: i64| (t != 0).then_some(t);
        ResultInfo {
            row_count: fixed.last_rows.load(Ordering::Acquire),
            command_tag: (!tag.is_empty()).then_some(tag),
            completed,
            has_error: fixed.error.present.load(Ordering::Acquire),
            started_at: time(fixed.started_at.load(Ordering::Acquire)),
            finished_at: time(fixed.finished_at.load(Ordering::Acquire)),
        }
    })
}

/// `pg_background_error` fields; empty texts are NULL.
pub struct ErrorInfo {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub context: Option<String>,
    /// The objects the error names (the 2.0 catalog's `pg_background_error` shows them).
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

pub fn error_info(pid: i32, cookie: i64) -> Result<Option<ErrorInfo>, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    session_jobs::with_entry(pid, |e| {
        let err = &e.fixed().error;
        if !err.present.load(Ordering::Acquire) {
            return None;
        }
        let opt = |s: String| (!s.is_empty()).then_some(s);
        Some(ErrorInfo {
            sqlstate: err.sqlstate.get(),
            message: err.message.get(),
            detail: opt(err.detail.get()),
            hint: opt(err.hint.get()),
            context: opt(err.context.get()),
            schema: opt(err.schema.get()),
            table: opt(err.table.get()),
            column: opt(err.column.get()),
            constraint: opt(err.constraint.get()),
        })
    })
}
