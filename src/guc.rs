//! The `pg_background.*` settings (names, ranges and texts of the 1.x reference).
#![forbid(unsafe_code)]

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// Largest queue a launch may ask for (256 MB).
pub const MAX_QUEUE_SIZE: i32 = 256 * 1024 * 1024;

pub static MAX_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(16);
pub static DEFAULT_QUEUE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(65536);
pub static MAX_UNREAD_RESULTS: GucSetting<i32> = GucSetting::<i32>::new(256);
pub static WORKER_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static WORKER_IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(1000);
pub static MAX_WORKER_IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(1000);
pub static MAX_IDLE_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// Largest `pg_background.max_idle_workers` (the server's own limit of worker processes).
pub const MAX_IDLE_WORKERS_LIMIT: i32 = 262_143;

/// How long a worker of a job launched now waits for the next job: the setting, but for a
/// current user without superuser (`superuser()` says) at most the server's
/// `max_worker_idle_timeout`.
pub fn idle_timeout(superuser: impl FnOnce() -> bool) -> i32 {
    let set = WORKER_IDLE_TIMEOUT.get();
    let cap = MAX_WORKER_IDLE_TIMEOUT.get();
    if set <= cap || superuser() {
        set
    } else {
        cap
    }
}

/// The most workers that may wait for a next job in the whole cluster.
pub fn max_idle_workers() -> usize {
    usize::try_from(MAX_IDLE_WORKERS.get()).unwrap_or(usize::MAX)
}

/// `pg_background.on_capacity`: what a launch does when this session's `max_workers` jobs run
/// or the server has no free background worker slot.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnCapacity {
    /// Fail at once (53400 / 53000), as the C extension does.
    #[name = c"error"]
    Error,
    /// Wait, interruptibly, up to `pg_background.capacity_wait_timeout`.
    #[name = c"wait"]
    Wait,
}

pub static ON_CAPACITY: GucSetting<OnCapacity> = GucSetting::<OnCapacity>::new(OnCapacity::Error);
pub static CAPACITY_WAIT_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(0);

pub static SPILL_AFTER: GucSetting<i32> = GucSetting::<i32>::new(100);
pub static SPILL_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

pub static MAX_JOBS: GucSetting<i32> = GucSetting::<i32>::new(-1);
pub static MAX_JOBS_PER_ROLE: GucSetting<i32> = GucSetting::<i32>::new(-1);

pub static JOB_HISTORY: GucSetting<i32> = GucSetting::<i32>::new(600);
pub static JOB_SLOTS: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_JOB_SLOTS);
pub static KEEP_RESULT: GucSetting<i32> = GucSetting::<i32>::new(0);

/// `pg_background.allow_api_change`: read by the update script that replaces the 2.0 API of an
/// installation with the 1.x API, which refuses to run unless it is on.
pub static ALLOW_API_CHANGE: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `pg_background.notify_channel`: the channel a job announces its end on (empty: none).
pub static NOTIFY_CHANNEL: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);

/// Longest channel name NOTIFY takes (NAMEDATALEN - 1).
pub const MAX_CHANNEL_LEN: usize = 63;

/// The channel set for jobs launched now (a worker sees its launcher's, restored with the
/// other settings).
pub fn notify_channel() -> String {
    NOTIFY_CHANNEL
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Longest time a result is kept after its launcher left (seven days).
pub const MAX_KEEP_RESULT: i32 = 7 * 24 * 3600;

/// Largest `pg_background.max_jobs` and `max_jobs_per_role`: the cluster-wide registry has a
/// slot for this many jobs.
pub const MAX_JOBS_LIMIT: i32 = 1024;

/// `pg_background.job_slots`: how many jobs the cluster-wide registry holds by default, and at
/// most.
pub const DEFAULT_JOB_SLOTS: i32 = 1024;
pub const MAX_JOB_SLOTS: i32 = 65536;

/// Longest `pg_background.spill_after` (one hour).
pub const MAX_SPILL_AFTER: i32 = 3_600_000;

/// Longest `pg_background.worker_idle_timeout` (one hour).
pub const MAX_IDLE_TIMEOUT: i32 = 3_600_000;

/// Define the settings and reserve the prefix. Called from `_PG_init`, in launchers and workers.
/// (Long: one definition per setting, in the order of the reference.)
pub fn init() {
    GucRegistry::define_int_guc(
        c"pg_background.max_workers",
        c"Maximum number of concurrent background workers per session.",
        c"Prevents resource exhaustion from excessive worker creation.",
        &MAX_WORKERS,
        1,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_background.default_queue_size",
        c"Default shared memory queue size for workers.",
        c"Can be overridden per-worker. Larger sizes support bigger result sets.",
        &DEFAULT_QUEUE_SIZE,
        crate::shm::mq::minimum_size() as i32,
        MAX_QUEUE_SIZE,
        GucContext::Userset,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_int_guc(
        c"pg_background.worker_timeout",
        c"Maximum execution time for background workers.",
        c"Workers exceeding this timeout are terminated. 0 means no limit.",
        &WORKER_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_background.max_unread_results",
        c"Maximum number of finished background workers per session whose results are kept unread.",
        c"A finished worker no longer counts against pg_background.max_workers; its remaining output is kept in session memory until it is read or detached.",
        &MAX_UNREAD_RESULTS,
        1,
        100_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_background.worker_idle_timeout",
        c"How long a background worker that finished a job waits for the next job of the same role.",
        c"A waiting (warm) worker starts the next job of a session of the same database, login role and current user without a new process; it holds a background worker slot while it waits. 0 disables. Without superuser, at most pg_background.max_worker_idle_timeout.",
        &WORKER_IDLE_TIMEOUT,
        0,
        MAX_IDLE_TIMEOUT,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_background.max_worker_idle_timeout",
        c"Longest pg_background.worker_idle_timeout that counts for a role without superuser.",
        c"A higher value set by such a role is accepted, and its workers wait this long.",
        &MAX_WORKER_IDLE_TIMEOUT,
        0,
        MAX_IDLE_TIMEOUT,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_background.max_idle_workers",
        c"Maximum number of background workers of the whole cluster that wait for a next job.",
        c"A worker that finishes its job when this many wait exits instead. -1 means no limit (max_worker_processes still applies). Needs the job registry.",
        &MAX_IDLE_WORKERS,
        -1,
        MAX_IDLE_WORKERS_LIMIT,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"pg_background.on_capacity",
        c"What a launch does when no background worker can be started now: error or wait.",
        c"wait: the launch waits until one of the session's jobs ends or the server has a free worker slot, up to pg_background.capacity_wait_timeout.",
        &ON_CAPACITY,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_background.capacity_wait_timeout",
        c"Longest wait of a launch for a background worker when pg_background.on_capacity is wait.",
        c"0 means no limit (the statement_timeout still applies).",
        &CAPACITY_WAIT_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_background.spill_after",
        c"How long a background worker waits for its reader to make room in a full queue before it writes the rest of its result to a temporary file.",
        c"The worker then finishes, releasing its locks and its worker slot; the reader reads the rows from the queue and then from the file. 0: as soon as the queue is full; -1: never (the worker waits for its reader).",
        &SPILL_AFTER,
        -1,
        MAX_SPILL_AFTER,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_background.spill_limit",
        c"Largest result a background worker may write to its spill file.",
        c"A job whose rows exceed it fails with an error. -1 means no limit (temp_file_limit still applies).",
        &SPILL_LIMIT,
        -1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pg_background.job_history",
        c"How long finished jobs stay visible in pg_background_jobs.",
        c"The view also keeps at most pg_background.job_slots jobs: the oldest finished ones make room for new ones.",
        &JOB_HISTORY,
        0,
        7 * 24 * 3600,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    // (a server-start setting can only be defined while the postmaster loads the library;
    // loaded later, from PostgreSQL 17 on, the registry has the default size)
    if crate::server::preloading() {
        GucRegistry::define_int_guc(
            c"pg_background.job_slots",
            c"Number of jobs the cluster-wide job registry holds: running, waiting and the most recent finished ones.",
            c"Each slot takes 744 bytes of shared memory. Read at server start; needs shared_preload_libraries.",
            &JOB_SLOTS,
            16,
            MAX_JOB_SLOTS,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"pg_background.max_jobs",
        c"Maximum number of background jobs running at once in the whole cluster.",
        c"A launch beyond it fails, or waits with pg_background.on_capacity = wait. -1 means no limit (max_worker_processes still applies). Needs the job registry.",
        &MAX_JOBS,
        -1,
        MAX_JOBS_LIMIT,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_background.max_jobs_per_role",
        c"Maximum number of background jobs of one role running at once in the whole cluster.",
        c"Counts the jobs launched by the current role; set it per role with ALTER ROLE ... SET. -1 means no limit. Needs the job registry.",
        &MAX_JOBS_PER_ROLE,
        -1,
        MAX_JOBS_LIMIT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_background.keep_result",
        c"How long the unread result of a job is kept after its launching session has ended.",
        c"Its owner reads it once, from any session, with pg_background_job_result(job_id bigint). 0 means not kept. Needs the job registry.",
        &KEEP_RESULT,
        0,
        MAX_KEEP_RESULT,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"pg_background.allow_api_change",
        c"Lets ALTER EXTENSION pg_background UPDATE replace the 2.0 API with the 1.x API.",
        c"Off, an update from a version with the 2.0 API to one with the 1.x API stops with an error, so that a plain ALTER EXTENSION ... UPDATE never changes the API under its callers.",
        &ALLOW_API_CHANGE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_background.notify_channel",
        c"Channel on which each job launched announces its end with NOTIFY.",
        c"Empty means none. The payload is a JSON object with job_id, pid, state, sqlstate and rows; it is sent after the job has committed or rolled back.",
        &NOTIFY_CHANNEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    crate::server::reserve_guc_prefix(c"pg_background");
}
