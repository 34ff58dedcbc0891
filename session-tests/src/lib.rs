//! Helpers for the multi-session tests: connections to the cluster that `scripts/test.sh`
//! starts (PGHOST, PGPORT, PGUSER, PGBG_TEST_DB), and bounded polling instead of sleeps.

use postgres::{Client, NoTls};
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

/// A new session as `user` (default: PGUSER) to the test database.
pub fn connect_as(user: &str) -> Client {
    let conf = format!(
        "host={} port={} user={} dbname={} application_name=session-tests",
        env("PGHOST", None),
        env("PGPORT", None),
        user,
        env("PGBG_TEST_DB", Some("pgbg_sessions")),
    );
    Client::connect(&conf, NoTls).unwrap_or_else(|e| panic!("cannot connect ({conf}): {e}"))
}

pub fn connect() -> Client {
    connect_as(&env("PGUSER", Some("postgres")))
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

/// A unique advisory lock key per call (tests run in parallel).
pub fn lock_key() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(0);
    (std::process::id() as i64) << 20 | NEXT.fetch_add(1, Ordering::Relaxed)
}
