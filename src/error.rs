//! Every error the extension raises itself, with the SQLSTATE and texts of the 1.x reference.
#![forbid(unsafe_code)]

use crate::protocol::DecodeError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode as Code;

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("queue size must be at least {0} bytes")]
    QueueTooSmall(usize),
    #[error("queue size must not exceed {0} bytes")]
    QueueTooLarge(i32),
    #[error("too many background workers")]
    TooManyWorkers { limit: i32 },
    #[error("too many unread background worker results")]
    TooManyUnread { limit: i32 },
    #[error("could not register background process")]
    CouldNotRegister,
    #[error("could not start background process")]
    CouldNotStart,
    #[error(
        "no background worker became available within pg_background.capacity_wait_timeout ({0} ms)"
    )]
    CapacityTimeout(i32),
    #[error("cannot start background processes without postmaster")]
    NoPostmaster,
    #[error("PID {0} is not attached to this session")]
    NotAttached(i32),
    #[error("PID {0} is not attached to this session (cookie mismatch)")]
    NotAttachedCookie(i32),
    #[error("cookie mismatch for PID {0}")]
    CookieMismatch(i32),
    #[error("results are disabled for PID {0} (submitted via submit_v2)")]
    ResultsDisabled(i32),
    #[error("permission denied for background worker with PID \"{0}\"")]
    PermissionDenied(i32),
    #[error("function returning record called in context that cannot accept type record")]
    RecordContext,
    #[error("set-valued function called in context that cannot accept a set")]
    SetContext,
    #[error("invalid column count in RowDescription: {0}")]
    BadColumnCount(usize),
    #[error("remote query result rowtype does not match the specified FROM clause rowtype")]
    /// (`detail`: what the job returned against what was asked, where known)
    RowtypeMismatch {
        use_text: bool,
        detail: Option<String>,
    },
    #[error(
        "remote query did not return a result set, but result rowtype is not a single text column"
    )]
    NoResultSet,
    #[error("incorrect binary data format in result column {0}")]
    BinaryFormat(usize),
    /// (the function called, and its timeout)
    #[error("{0}: worker did not complete within {1} ms")]
    RunTimedOut(String, i32),
    #[error("could not determine data type of parameter ${0}")]
    ParamType(usize),
    #[error("parameter ${0} has an anonymous record type")]
    AnonymousRecordParam(usize),
    /// core's text (record_recv) for a value of an anonymous record type
    #[error("input of anonymous composite types is not implemented")]
    AnonymousRecordValue,
    #[error("number of parameters must be between 0 and {0}")]
    TooManyParams(usize),
    #[error("deadlock detected")]
    Deadlock { worker: i32, session: i32 },
    #[error("sql parameter cannot be NULL")]
    NullSql,
    #[error("label must not exceed {0} bytes")]
    LabelTooLong(usize),
    #[error("COPY protocol not allowed in pg_background")]
    CopyProtocol,
    #[error("result of background worker exceeds pg_background.spill_limit ({0} kB)")]
    SpillLimit(u64),
    #[error("{0} needs pg_background in shared_preload_libraries on this server")]
    RegistryUnavailable(&'static str),
    #[error("background worker with PID {0} has no job id")]
    NotRegistered(i32),
    #[error("background job {0} does not exist")]
    NoSuchJob(i64),
    #[error("permission denied for background job {0}")]
    JobPermissionDenied(i64),
    #[error("result of background job {0} is not available")]
    ResultNotKept(i64),
    #[error("pg_background.keep_result must be between 1 second and 7 days")]
    KeepOutOfRange,
    #[error("pg_background.notify_channel must not exceed {0} bytes")]
    ChannelTooLong(usize),
    #[error("too many background jobs running in the cluster")]
    TooManyJobs(i32),
    #[error("too many background jobs running for the current role")]
    TooManyRoleJobs(i32),
    #[error("the background job registry is full")]
    RegistryFull(usize),
    #[error("lost connection to worker process with PID {0}")]
    LostConnection(i32),
    #[error("multiple RowDescription messages")]
    MultipleRowDescriptions,
    #[error("rows not preceded by RowDescription")]
    RowsWithoutDescription,
    #[error("malformed message from background worker: {0}")]
    Malformed(#[from] DecodeError),
}

/// Largest column count a RowDescription may carry (`MaxTupleAttributeNumber`).
pub const MAX_COLUMNS: usize = 1664;

impl From<Error> for ErrorReport {
    // (long: one table of every error's SQLSTATE, HINT and DETAIL, kept in one place)
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::QueueTooSmall(_)
            | Error::QueueTooLarge(_)
            | Error::LabelTooLong(_)
            | Error::KeepOutOfRange
            | Error::ChannelTooLong(_) => Code::ERRCODE_INVALID_PARAMETER_VALUE,
            Error::NullSql => Code::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            Error::Deadlock { .. } => Code::ERRCODE_T_R_DEADLOCK_DETECTED,
            Error::ParamType(_) => Code::ERRCODE_INDETERMINATE_DATATYPE,
            Error::AnonymousRecordParam(_) => Code::ERRCODE_DATATYPE_MISMATCH,
            Error::TooManyParams(_) => Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            Error::RunTimedOut(..) => Code::ERRCODE_QUERY_CANCELED,
            Error::TooManyWorkers { .. }
            | Error::TooManyUnread { .. }
            | Error::SpillLimit(_)
            | Error::TooManyJobs(_)
            | Error::TooManyRoleJobs(_)
            | Error::RegistryFull(_) => Code::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            Error::CouldNotRegister
            | Error::CouldNotStart
            | Error::NoPostmaster
            | Error::CapacityTimeout(_) => Code::ERRCODE_INSUFFICIENT_RESOURCES,
            Error::NotAttached(_) | Error::NotAttachedCookie(_) | Error::NoSuchJob(_) => {
                Code::ERRCODE_UNDEFINED_OBJECT
            }
            Error::CookieMismatch(_)
            | Error::RegistryUnavailable(_)
            | Error::ResultNotKept(_)
            | Error::NotRegistered(_) => Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            Error::ResultsDisabled(_) => Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            Error::PermissionDenied(_) | Error::JobPermissionDenied(_) => {
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            Error::RecordContext
            | Error::SetContext
            | Error::CopyProtocol
            | Error::AnonymousRecordValue => Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            Error::BadColumnCount(_) => Code::ERRCODE_PROTOCOL_VIOLATION,
            Error::RowtypeMismatch { .. } | Error::NoResultSet => Code::ERRCODE_DATATYPE_MISMATCH,
            Error::BinaryFormat(_) => Code::ERRCODE_INVALID_BINARY_REPRESENTATION,
            Error::LostConnection(_) => Code::ERRCODE_CONNECTION_FAILURE,
            Error::MultipleRowDescriptions
            | Error::RowsWithoutDescription
            | Error::Malformed(_) => Code::ERRCODE_INTERNAL_ERROR,
        };
        let report = ErrorReport::new(code, e.to_string(), "pg_background");
        match e {
            Error::QueueTooLarge(_) => {
                report.set_hint("Large result sets should be written to a table instead.")
            }
            Error::TooManyWorkers { limit } => report
                .set_detail(format!(
                    "Current limit is {limit} concurrent workers per session."
                ))
                .set_hint(
                    "Wait for existing workers to complete, or increase pg_background.max_workers.",
                ),
            Error::Deadlock { worker, session } => report
                .set_detail(format!(
                    "Process {session} waits for its background worker {worker}; the worker waits for a lock held by process {session}."
                ))
                .set_hint(
                    "Commit or roll back the transaction that holds the lock before waiting for the job, or detach the job.",
                ),
            Error::AnonymousRecordParam(_) => {
                report.set_hint("Cast it to a named composite type, or pass its text form.")
            }
            Error::TooManyUnread { limit } => report
                .set_detail(format!(
                    "This session keeps at most {limit} finished workers whose results are neither read nor detached."
                ))
                .set_hint(
                    "Read them with pg_background_result(), release them with pg_background_detach(), or increase pg_background.max_unread_results.",
                ),
            Error::SpillLimit(_) => report.set_hint(
                "Read the result while the job runs, write large results to a table, or raise pg_background.spill_limit.",
            ),
            Error::TooManyJobs(limit) => report
                .set_detail(format!("pg_background.max_jobs is {limit}."))
                .set_hint("Wait for running jobs to finish, set pg_background.on_capacity = wait, or raise pg_background.max_jobs."),
            Error::TooManyRoleJobs(limit) => report
                .set_detail(format!("pg_background.max_jobs_per_role is {limit}."))
                .set_hint("Wait for your running jobs to finish, set pg_background.on_capacity = wait, or ask for a higher pg_background.max_jobs_per_role."),
            Error::RegistryFull(slots) => report
                .set_detail(format!("All {slots} slots (pg_background.job_slots) hold running or waiting jobs or kept results."))
                .set_hint("Wait for jobs to finish or for kept results to be read, or raise pg_background.job_slots (read at server start)."),
            Error::ResultNotKept(_) => report
                .set_detail("A result is kept only when the job was launched to keep it (pg_background_launch_kept, pg_background.keep_result) and its launching session ended without reading it; it is read once, until it expires.")
                .set_hint("While the launching session is there, read the result in that session."),
            Error::NoSuchJob(_) => report.set_hint("See pg_background_jobs for the jobs of the cluster."),
            Error::NotRegistered(_) => report
                .set_detail("When it was launched, every slot of the job registry held a running or waiting job or a kept result, so it runs without one.")
                .set_hint("Raise pg_background.job_slots (read at server start)."),
            Error::RegistryUnavailable(_) => report
                .set_detail("Before PostgreSQL 17 the cluster-wide job registry lives in shared memory that only a preloaded library can reserve.")
                .set_hint("Add pg_background to shared_preload_libraries and restart the server."),
            Error::CouldNotRegister => {
                report.set_hint("You may need to increase max_worker_processes.")
            }
            Error::CapacityTimeout(_) => report.set_hint(
                "Wait for existing workers to complete, or increase pg_background.max_workers, pg_background.max_jobs, pg_background.max_jobs_per_role or max_worker_processes.",
            ),
            Error::NoPostmaster => {
                report.set_hint("Kill all remaining database processes and restart the database.")
            }
            Error::RecordContext => {
                report.set_hint("Call it in FROM with a column definition list.")
            }
            Error::CookieMismatch(_) => {
                report.set_hint("The worker may have been restarted or the handle is stale.")
            }
            Error::BadColumnCount(_) => {
                report.set_hint(format!("Column count must be between 0 and {MAX_COLUMNS}."))
            }
            Error::RowtypeMismatch { use_text, detail } => {
                let report = match detail {
                    Some(detail) => report.set_detail(detail.clone()),
                    None => report,
                };
                if use_text {
                    report.set_hint("use text type instead")
                } else {
                    report
                }
            }
            Error::JobPermissionDenied(_) => report.set_hint(
                "Only the role that launched the job, and roles with its privileges, may read it or wait for it.",
            ),
            _ => report,
        }
    }
}
