//! Helpers for the multi-session tests: connections to the cluster that `scripts/test.sh`
//! starts (PGHOST, PGPORT, PGUSER, PGBG_TEST_DB), and bounded polling instead of sleeps.

use postgres::{Client, NoTls};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

fn env(name: &str, default: Option<&str>) -> String {
    match (std::env::var(name), default) {
        (Ok(v), _) => v,
        (Err(_), Some(d)) => d.to_owned(),
        (Err(_), None) => panic!("{name} is not set: run these tests through scripts/test.sh"),
    }
}

/// A new session as `user` to database `dbname`.
pub fn connect_as_to(user: &str, dbname: &str) -> Client {
    let conf = format!(
        "host={} port={} user={} dbname={} application_name=session-tests",
        env("PGHOST", None),
        env("PGPORT", None),
        user,
        dbname,
    );
    Client::connect(&conf, NoTls).unwrap_or_else(|e| panic!("cannot connect ({conf}): {e}"))
}

fn default_user() -> String {
    env("PGUSER", Some("postgres"))
}

/// The test database's name.
pub fn test_database() -> String {
    env("PGBG_TEST_DB", Some("pgbg_sessions"))
}

/// A new session as `user` to the test database.
pub fn connect_as(user: &str) -> Client {
    connect_as_to(user, &test_database())
}

/// A new session as PGUSER to database `dbname`.
pub fn connect_to(dbname: &str) -> Client {
    connect_as_to(&default_user(), dbname)
}

/// A new session as PGUSER to the test database.
pub fn connect() -> Client {
    connect_as(&default_user())
}

/// Poll `cond` until it holds, failing the test with `what` after [`DEADLINE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The backend PID of a session.
pub fn backend_pid(c: &mut Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0)
}

/// One row of pg_stat_activity for `pid`, seen from `observer` (fresh snapshot each call).
pub fn activity(
    observer: &mut Client,
    pid: i32,
) -> Option<(String, String, Option<String>, String)> {
    observer
        .query_opt(
            "SELECT backend_type, coalesce(query, ''), wait_event, coalesce(usename::text, '')
               FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
}

/// Whether a process is still listed in pg_stat_activity.
pub fn alive(observer: &mut Client, pid: i32) -> bool {
    activity(observer, pid).is_some()
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// Launch `sql` in session `c`; returns the worker's PID.
pub fn launch(c: &mut Client, sql: &str) -> i32 {
    c.query_one("SELECT pg_background_launch($1)", &[&sql])
        .unwrap()
        .get(0)
}

/// Launch `sql` with the handle API in session `c`; returns the worker's PID and cookie.
pub fn launch_v2(c: &mut Client, sql: &str) -> (i32, i64) {
    let row = c
        .query_one(
            "SELECT (h).pid, (h).cookie FROM pg_background_launch_v2($1) h",
            &[&sql],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// Read `worker`'s result with the column definition list `columns`, expecting an error.
pub fn read_error(c: &mut Client, worker: i32, columns: &str) -> postgres::Error {
    c.query(
        &format!("SELECT * FROM pg_background_result({worker}) AS ({columns})"),
        &[],
    )
    .unwrap_err()
}

/// A unique advisory lock key per call (tests run in parallel).
pub fn lock_key() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(0);
    (std::process::id() as i64) << 20 | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `worker` is not (or no longer) this session's: reading it gives 42704.
pub fn assert_not_attached(c: &mut Client, worker: i32) {
    let err = c
        .query(
            &format!("SELECT * FROM pg_background_result({worker}) AS (r text)"),
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704", "{err}");
}

/// A table of its own for each test.
pub fn table(c: &mut Client, name: &str) {
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {name}; CREATE TABLE {name}(v int)"
    ))
    .unwrap();
}

pub fn count(c: &mut Client, name: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {name}"), &[])
        .unwrap()
        .get(0)
}

/// Whether `pid` waits on an event whose name is `event` (seen from `observer`).
pub fn waits_on(observer: &mut Client, pid: i32, event: &str) -> bool {
    matches!(activity(observer, pid), Some((_, _, Some(e), _)) if e == event)
}

/// The server's DSM segments (POSIX shared memory in /dev/shm: the tests run on the server's
/// machine).
pub fn dsm_segments() -> usize {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("PostgreSQL."))
                .count()
        })
        .unwrap_or(0)
}

/// Bytes of a session's pg_background memory contexts.
pub fn session_bytes(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT coalesce(sum(total_bytes), 0)::int8 FROM pg_backend_memory_contexts
          WHERE name LIKE 'pg_background%'",
        &[],
    )
    .unwrap()
    .get(0)
}

/// `err` has this SQLSTATE and message.
pub fn assert_error(err: &postgres::Error, code: &str, message: &str) {
    assert_eq!(sqlstate(err), code, "{err}");
    assert_eq!(
        err.as_db_error().map(|e| e.message()),
        Some(message),
        "{err}"
    );
}

/// `pg_background_wait_v2_timeout`: whether the handle's job ended within `timeout_ms`.
pub fn wait_v2(c: &mut Client, worker: i32, cookie: i64, timeout_ms: i32) -> bool {
    c.query_one(
        "SELECT pg_background_wait_v2_timeout($1, $2, $3)",
        &[&worker, &cookie, &timeout_ms],
    )
    .unwrap()
    .get(0)
}

/// Wait (at most 30 s) for the handle's worker to stop, then read its result as text rows.
pub fn wait_and_read(c: &mut Client, worker: i32, cookie: i64) -> usize {
    assert!(
        wait_v2(c, worker, cookie, 30_000),
        "worker {worker} did not stop"
    );
    c.query(
        &format!("SELECT * FROM pg_background_result_v2({worker}, {cookie}) AS (r text)"),
        &[],
    )
    .unwrap()
    .len()
}

/// Held by a test that must run alone among the tests of its file (each file is its own
/// process; cargo runs the files one after another). When it is dropped, also when the test
/// fails, the workers left waiting for a next job end: they outlive their sessions, for their
/// idle timeout, and would serve the next test's first launch.
pub fn one_at_a_time() -> Alone {
    static SERIAL: Mutex<()> = Mutex::new(());
    Alone(Some(
        SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    ))
}

/// See [`one_at_a_time`].
pub struct Alone(Option<MutexGuard<'static, ()>>);

impl Drop for Alone {
    fn drop(&mut self) {
        end_waiting_workers();
        drop(self.0.take());
    }
}

/// Terminate every worker of the cluster that waits for a next job, and wait until they are
/// gone.
pub fn end_waiting_workers() {
    let mut observer = connect();
    let event = our_wait_event(&mut observer, "PgBackgroundIdle");
    let waiting = "SELECT pid FROM pg_stat_activity
                    WHERE backend_type = 'pg_background' AND state = 'idle'
                      AND wait_event = $1";
    let pids: Vec<i32> = observer
        .query(waiting, &[&event])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for pid in &pids {
        observer
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .unwrap();
    }
    for pid in pids {
        wait_for(&format!("waiting worker {pid} to end"), || {
            !alive(&mut observer, pid)
        });
    }
}

/// Read a job's result as one text column; NULLs as empty strings.
pub fn read_text(c: &mut Client, worker: i32) -> Vec<String> {
    c.query(
        &format!("SELECT * FROM pg_background_result({worker}) AS (r text)"),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
    .collect()
}

/// What `pg_stat_activity.wait_event` shows for one of the extension's waits: its own name
/// where the server has custom wait events (17 and later), else `Extension`.
pub fn our_wait_event(c: &mut Client, name: &str) -> String {
    let version: i32 = c
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .unwrap()
        .get(0);
    if version >= 170000 {
        name.to_owned()
    } else {
        "Extension".to_owned()
    }
}

/// `pg_background.max_jobs` set cluster-wide (ALTER SYSTEM, reloaded) while it lives; reset when
/// dropped, also when the test fails. Only tests that run alone in their file set it (cargo runs
/// the files one after another); sessions opened after `set` have the new value.
pub struct ClusterCap {
    _setting: ClusterSetting,
}

impl ClusterCap {
    pub fn set(jobs: i32) -> Self {
        ClusterCap {
            _setting: ClusterSetting::set("pg_background.max_jobs", &jobs.to_string()),
        }
    }
}

/// A setting of the server's configuration (ALTER SYSTEM, reloaded) while it lives; reset when
/// dropped, also when the test fails. Sessions opened after `set` have the new value.
pub struct ClusterSetting {
    name: &'static str,
    default: String,
}

impl ClusterSetting {
    pub fn set(name: &'static str, value: &str) -> Self {
        let default: String = loaded()
            .query_one("SELECT boot_val FROM pg_settings WHERE name = $1", &[&name])
            .unwrap()
            .get(0);
        Self::apply(name, &format!("ALTER SYSTEM SET {name} = '{value}'"), value);
        Self { name, default }
    }

    fn apply(name: &str, command: &str, expect: &str) {
        let mut c = connect();
        c.batch_execute(command).unwrap();
        c.batch_execute("SELECT pg_reload_conf()").unwrap();
        // a session that starts after the postmaster has read the file has the new value
        wait_for("the setting to reach new sessions", || {
            loaded()
                .query_one("SELECT setting FROM pg_settings WHERE name = $1", &[&name])
                .unwrap()
                .get::<_, String>(0)
                == expect
        });
    }
}

/// A new session with the library loaded (so that its settings are defined).
fn loaded() -> Client {
    let mut c = connect();
    c.batch_execute("LOAD 'pg_background'").unwrap();
    c
}

impl Drop for ClusterSetting {
    fn drop(&mut self) {
        Self::apply(
            self.name,
            &format!("ALTER SYSTEM RESET {}", self.name),
            &self.default,
        );
    }
}

/// Whether `pid` is a worker waiting for its next job: idle, asleep on its latch.
pub fn waiting_for_a_job(observer: &mut Client, pid: i32) -> bool {
    let event = our_wait_event(observer, "PgBackgroundIdle");
    observer
        .query_opt(
            "SELECT 1 FROM pg_stat_activity
              WHERE pid = $1 AND backend_type = 'pg_background' AND state = 'idle'
                AND wait_event = $2",
            &[&pid, &event],
        )
        .unwrap()
        .is_some()
}
