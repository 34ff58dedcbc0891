//! The cluster-wide job registry: `pg_background_jobs` shows every job of the cluster to the
//! sessions allowed to see it, with its state, times, rows, bytes and error. The test cluster
//! preloads the library (needed before PostgreSQL 17; `src/tests.rs` covers the view without
//! it).

use postgres::Client;
use session_tests::*;
use std::sync::Once;

fn roles() {
    static CREATED: Once = Once::new();
    CREATED.call_once(|| {
        connect()
            .batch_execute(
                "DROP ROLE IF EXISTS jobs_alice, jobs_bob, jobs_stats;
                 CREATE ROLE jobs_alice LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE jobs_bob LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE jobs_stats LOGIN IN ROLE pgbackground_role, pg_read_all_stats;",
            )
            .unwrap();
    });
}

/// (job_id, state, rows, bytes, sqlstate, message, label, usename) of the jobs of `worker` seen
/// by `c`, newest first.
type Row = (
    i64,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// The jobs that session `launcher` (a backend PID) ran in the worker `worker`, newest first: a
/// warm worker may also have run other sessions' jobs.
fn jobs_of(c: &mut Client, worker: i32, launcher: i32) -> Vec<Row> {
    c.query(
        "SELECT job_id, state, rows, bytes, sqlstate, message, label, usename::text
           FROM pg_background_jobs WHERE worker_pid = $1 AND launcher_pid = $2
          ORDER BY job_id DESC",
        &[&worker, &launcher],
    )
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
        )
    })
    .collect()
}

fn state_of(c: &mut Client, worker: i32, launcher: i32) -> Option<String> {
    jobs_of(c, worker, launcher).first().map(|j| j.1.clone())
}

#[test]
fn another_session_sees_a_job_run_and_finish_with_its_rows() {
    let mut observer = connect();
    let mut c = connect();
    let launcher = backend_pid(&mut c);
    let key = lock_key();
    observer
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    let (worker, cookie) = launch_v2(
        &mut c,
        &format!("SELECT g::text FROM generate_series(1, 1000) g, (SELECT pg_advisory_lock_shared({key})) l"),
    );
    wait_for("the job to show as running", || {
        state_of(&mut observer, worker, launcher).as_deref() == Some("running")
    });
    // joinable with pg_stat_activity
    let waiting: String = observer
        .query_one(
            "SELECT a.wait_event_type FROM pg_background_jobs j JOIN pg_stat_activity a
                 ON a.pid = j.worker_pid
              WHERE j.worker_pid = $1 AND j.state = 'running'",
            &[&worker],
        )
        .unwrap()
        .get(0);
    assert_eq!(waiting, "Lock");
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    assert_eq!(wait_and_read(&mut c, worker, cookie), 1000);
    let job = jobs_of(&mut observer, worker, launcher).remove(0);
    assert_eq!((job.1.as_str(), job.2), ("finished", 1000));
    assert!(job.3 > 1000 * 4, "bytes: {}", job.3);
    // the next job gets a larger id
    let (worker2, cookie2) = launch_v2(&mut c, "SELECT 1::text");
    wait_and_read(&mut c, worker2, cookie2);
    assert!(jobs_of(&mut observer, worker2, launcher)[0].0 > job.0);
}

#[test]
fn a_failed_and_a_canceled_job_show_their_error() {
    let mut c = connect();
    let launcher = backend_pid(&mut c);
    let (worker, cookie) = launch_v2(&mut c, "SELECT 1/(random() * 0)::int");
    assert!(wait_v2(&mut c, worker, cookie, 30_000));
    let job = jobs_of(&mut c, worker, launcher).remove(0);
    assert_eq!(job.1, "failed");
    assert_eq!(job.4.as_deref(), Some("22012"));
    assert_eq!(job.5.as_deref(), Some("division by zero"));

    let (worker, cookie) = launch_v2(&mut c, "SELECT pg_sleep(60)");
    wait_for("the job to run", || {
        state_of(&mut c, worker, launcher).as_deref() == Some("running")
    });
    c.execute(
        "SELECT pg_background_cancel_v2($1, $2)",
        &[&worker, &cookie],
    )
    .unwrap();
    assert!(wait_v2(&mut c, worker, cookie, 30_000));
    let job = jobs_of(&mut c, worker, launcher).remove(0);
    assert_eq!(
        (job.1.as_str(), job.4.as_deref()),
        ("canceled", Some("57014"))
    );
}

#[test]
fn a_role_sees_its_own_jobs_and_those_of_its_roles_and_pg_read_all_stats_sees_all() {
    roles();
    let mut alice = connect_as("jobs_alice");
    let mut bob = connect_as("jobs_bob");
    let mut stats = connect_as("jobs_stats");
    let label = format!("jobs-{}", lock_key());
    let pid: i32 = alice
        .query_one(
            "SELECT (h).pid FROM pg_background_launch_v2('SELECT 1', 0, $1) h",
            &[&label],
        )
        .unwrap()
        .get(0);
    let seen = |c: &mut Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_background_jobs WHERE label = $1",
            &[&label],
        )
        .unwrap()
        .get(0)
    };
    wait_for("alice's job in the view", || seen(&mut alice) == 1);
    assert_eq!(seen(&mut bob), 0, "bob is not a member of alice");
    assert_eq!(seen(&mut stats), 1, "pg_read_all_stats sees every job");
    assert_eq!(seen(&mut connect()), 1, "a superuser sees every job");
    let launcher = backend_pid(&mut alice);
    let job = jobs_of(&mut alice, pid, launcher).remove(0);
    assert_eq!(
        (job.6.as_deref(), job.7.as_str()),
        (Some(label.as_str()), "jobs_alice")
    );
    connect()
        .batch_execute("GRANT jobs_alice TO jobs_bob")
        .unwrap();
    assert_eq!(
        seen(&mut connect_as("jobs_bob")),
        1,
        "a member sees the role's jobs"
    );
    connect()
        .batch_execute("REVOKE jobs_alice FROM jobs_bob")
        .unwrap();
}

#[test]
fn finished_jobs_leave_the_view_after_job_history() {
    let mut c = connect();
    let launcher = backend_pid(&mut c);
    let (worker, cookie) = launch_v2(&mut c, "SELECT 1::text");
    wait_and_read(&mut c, worker, cookie);
    assert_eq!(
        state_of(&mut c, worker, launcher).as_deref(),
        Some("finished")
    );
    c.batch_execute("SET pg_background.job_history = 0")
        .unwrap();
    wait_for("the finished job to leave the view", || {
        jobs_of(&mut c, worker, launcher)
            .iter()
            .all(|j| j.1 != "finished")
    });
}
