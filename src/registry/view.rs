//! The jobs as `pg_background_jobs` shows them.

use super::shmem::shared;
use super::slot::{text_of, JobState};
use core::sync::atomic::Ordering;
use pgrx::pg_sys;

/// One job, as the view shows it.
pub struct Job {
    pub job_id: i64,
    pub state: &'static str,
    pub owner: pg_sys::Oid,
    pub database: pg_sys::Oid,
    pub launcher_pid: i32,
    pub worker_pid: Option<i32>,
    pub launched_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub rows: i64,
    pub bytes: i64,
    pub label: Option<String>,
    pub sqlstate: Option<String>,
    pub message: Option<String>,
    pub query: String,
    /// Until when its kept result waits to be read.
    pub kept_until: Option<i64>,
    /// The progress it last reported.
    pub progress_pct: Option<i32>,
    pub progress_msg: Option<String>,
}

/// `pg_background.job_history` in microseconds.
fn history_us() -> i64 {
    i64::from(crate::guc::JOB_HISTORY.get()) * 1_000_000
}

/// Every job in the registry, finished ones within `pg_background.job_history`; `None` when the
/// registry is not there. Taken under the lock, filtered by the caller afterwards (privilege
/// checks read the catalogs, which must not happen under an LWLock).
fn snapshot() -> Option<Vec<Job>> {
    super::kept::sweep();
    let oldest = crate::server::now() - history_us();
    let r = shared()?;
    let jobs = r
        .slots()
        .iter()
        .filter(|s| {
            s.state != JobState::Free
                && (s.kept() != super::slot::KeptState::None
                    || !(s.state.is_over() && s.finished_at < oldest))
        })
        .map(|s| Job {
            job_id: s.job_id as i64,
            state: s.state.name(),
            owner: s.owner,
            database: s.database,
            launcher_pid: s.launcher_pid,
            worker_pid: (s.worker_pid != 0).then_some(s.worker_pid),
            launched_at: s.launched_at,
            started_at: (s.started_at != 0).then_some(s.started_at),
            finished_at: (s.finished_at != 0).then_some(s.finished_at),
            rows: s.rows.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            label: Some(text_of(&s.label)).filter(|l| !l.is_empty()),
            sqlstate: Some(text_of(&s.sqlstate)).filter(|l| !l.is_empty()),
            message: Some(text_of(&s.message)).filter(|l| !l.is_empty()),
            query: text_of(&s.query),
            kept_until: s.kept_until(),
            progress_pct: (s.progress_pct >= 0).then_some(s.progress_pct),
            progress_msg: (s.progress_pct >= 0).then(|| text_of(&s.progress_msg)),
        })
        .collect();
    Some(jobs)
}

/// A job as the view shows it to the current user.
pub struct VisibleJob {
    pub job: Job,
    pub usename: Option<String>,
    pub datname: Option<String>,
}

/// The jobs the current user may see: those of roles whose privileges it has; every job for
/// superusers and members of `pg_read_all_stats` (as `pg_stat_activity` shows queries).
pub fn visible() -> Result<Vec<VisibleJob>, crate::error::Error> {
    let jobs = snapshot().ok_or(crate::error::Error::RegistryUnavailable(
        "pg_background_jobs",
    ))?;
    // SAFETY: catalog look-ups in the caller's transaction (a SQL function).
    let (user, all) = unsafe {
        let user = pg_sys::GetUserId();
        let all = pg_sys::superuser()
            || pg_sys::has_privs_of_role(user, pg_sys::Oid::from(pg_sys::ROLE_PG_READ_ALL_STATS));
        (user, all)
    };
    let name = |p: *mut core::ffi::c_char| {
        (!p.is_null()).then(|| {
            // SAFETY: a palloc'd NUL-terminated name (checked not NULL).
            unsafe { core::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        })
    };
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        // SAFETY: catalog look-ups, as above; both tolerate OIDs that no longer exist.
        let (visible, usename, datname) = unsafe {
            (
                all || pg_sys::has_privs_of_role(user, job.owner),
                name(pg_sys::GetUserNameFromId(job.owner, true)),
                name(pg_sys::get_database_name(job.database)),
            )
        };
        if visible {
            out.push(VisibleJob {
                job,
                usename,
                datname,
            });
        }
    }
    out.sort_by_key(|v| v.job.job_id);
    Ok(out)
}
