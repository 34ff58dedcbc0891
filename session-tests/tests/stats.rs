//! The whole cluster at a glance: `pg_background_cluster_stats` counts what every session's jobs
//! did, any role can read it, only superusers and the roles they grant it can reset it; and
//! `pg_background_jobs` shows a running job's rows, bytes and reported progress.
//!
//! The counters are the cluster's, so every test of this file runs alone
//! ([`one_at_a_time`]) and waits for its jobs to end before it compares them. Only launches move
//! `launched`, and no other session launches meanwhile: that one is compared exactly; a job of
//! an earlier test file may still end meanwhile, so the counts of ended jobs are lower bounds.

use postgres::Client;
use session_tests::*;
use std::collections::BTreeMap;

/// A role with no privileges on the extension (created once).
fn plain_role() -> &'static str {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        connect()
            .batch_execute(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stats_plain') THEN
                     CREATE ROLE stats_plain LOGIN;
                   END IF;
                 END $$",
            )
            .unwrap();
    });
    "stats_plain"
}

/// The counters as the plain role reads them, by name (`stats_reset` left out).
fn stats() -> BTreeMap<String, i64> {
    let mut c = connect_as(plain_role());
    let row = c
        .query_one("SELECT * FROM pg_background_cluster_stats", &[])
        .unwrap();
    row.columns()
        .iter()
        .enumerate()
        .filter(|(_, col)| col.name() != "stats_reset")
        .map(|(i, col)| (col.name().to_owned(), row.get::<_, i64>(i)))
        .collect()
}

/// How much each counter grew from `before` to `after` (only those that did).
fn growth(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before[k]))
        .filter(|(_, d)| *d != 0)
        .collect()
}

/// Wait until counter `name` has grown by at least `by` since `before`.
fn wait_for_growth(before: &BTreeMap<String, i64>, name: &str, by: i64) {
    wait_for(&format!("{name} to grow by {by}"), || {
        stats()[name] - before[name] >= by
    });
}

/// A session that never keeps a worker warm, so that every launch starts a new process.
fn cold_session() -> Client {
    let mut c = connect();
    c.batch_execute("SET pg_background.worker_idle_timeout = 0")
        .unwrap();
    c
}

fn hold_lock(c: &mut Client, key: i64) {
    c.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
}

fn release_lock(c: &mut Client, key: i64) {
    c.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
}

#[test]
fn the_counters_follow_jobs_that_finish_fail_and_are_cancelled_in_other_sessions() {
    let _alone = one_at_a_time();
    let before = stats();
    let mut c = cold_session();
    // finished: 3 rows read
    let worker = launch(&mut c, "SELECT generate_series(1, 3)::text");
    assert_eq!(read_text(&mut c, worker).len(), 3);
    // failed
    let worker = launch(&mut c, "SELECT 1 / 0");
    let err = read_error(&mut c, worker, "r int");
    assert_eq!(sqlstate(&err), "22012");
    // cancelled: a job that waits for a lock another session holds
    let mut holder = connect();
    let key = lock_key();
    hold_lock(&mut holder, key);
    let (worker, cookie) = launch_v2(&mut c, &format!("SELECT pg_advisory_xact_lock({key})"));
    wait_for("the job to wait for the lock", || {
        waits_on(&mut holder, worker, "advisory")
    });
    c.execute(
        "SELECT pg_background_cancel_v2($1, $2)",
        &[&worker, &cookie],
    )
    .unwrap();
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    release_lock(&mut holder, key);
    wait_for_growth(&before, "canceled", 1);
    let grown = growth(&before, &stats());
    assert_eq!(grown["launched"], 3, "{grown:?}");
    assert_eq!(grown["cold_starts"], 3, "{grown:?}");
    assert!(grown["completed"] >= 1, "{grown:?}");
    assert!(grown["failed"] >= 1, "{grown:?}");
    assert!(grown["canceled"] >= 1, "{grown:?}");
    assert!(grown["rows"] >= 3, "{grown:?}");
    assert!(grown["bytes"] > 0, "{grown:?}");
    for quiet in ["warm_starts", "deadlocks", "timed_out", "capacity_waits"] {
        assert!(!grown.contains_key(quiet), "{quiet}: {grown:?}");
    }
}

#[test]
fn a_warm_worker_counts_as_a_warm_start() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    // a role of its own: no other session's waiting worker serves its first job
    observer
        .batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stats_warm') THEN
                 CREATE ROLE stats_warm LOGIN SUPERUSER;
               END IF;
             END $$",
        )
        .unwrap();
    let mut c = connect_as("stats_warm");
    c.batch_execute("SET pg_background.worker_idle_timeout = '1min'")
        .unwrap();
    let before = stats();
    let first = launch(&mut c, "SELECT '1'");
    read_text(&mut c, first);
    let idle = our_wait_event(&mut observer, "PgBackgroundIdle");
    wait_for("the worker to wait for the next job", || {
        waits_on(&mut observer, first, &idle)
    });
    let second = launch(&mut c, "SELECT '2'");
    read_text(&mut c, second);
    assert_eq!(first, second, "the same process ran both jobs");
    wait_for_growth(&before, "completed", 2);
    let grown = growth(&before, &stats());
    assert_eq!(grown["launched"], 2, "{grown:?}");
    assert_eq!(grown["cold_starts"], 1, "{grown:?}");
    assert_eq!(grown["warm_starts"], 1, "{grown:?}");
    // (the worker waits for a next job of its role after the session: `one_at_a_time` ends it)
}

#[test]
fn deadlocks_timeouts_waits_for_capacity_and_spilled_bytes_are_counted() {
    let _alone = one_at_a_time();
    let before = stats();
    let mut c = cold_session();
    // a deadlock between the session and its job
    c.batch_execute(
        "DROP TABLE IF EXISTS stats_locked; CREATE TABLE stats_locked(v int);
         SET deadlock_timeout = '50ms'",
    )
    .unwrap();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("LOCK TABLE stats_locked IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let err = tx
        .query(
            "SELECT * FROM pg_background_result(pg_background_launch('SELECT count(*) FROM stats_locked')) AS (n bigint)",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "40P01", "{err}");
    drop(tx);

    // a run that gives up waiting, and a launch that waits for capacity and gives up too
    let mut holder = connect();
    let key = lock_key();
    hold_lock(&mut holder, key);
    let timed_out: bool = c
        .query_one(
            "SELECT (pg_background_run_v2($1, 0, 50)).timed_out",
            &[&format!("SELECT pg_advisory_xact_lock({key})")],
        )
        .unwrap()
        .get(0);
    assert!(timed_out);
    c.batch_execute(
        "SET pg_background.max_workers = 1;
         SET pg_background.on_capacity = wait;
         SET pg_background.capacity_wait_timeout = '50ms'",
    )
    .unwrap();
    let blocker = launch(
        &mut c,
        &format!("SELECT pg_advisory_xact_lock({key})::text"),
    );
    let err = c
        .query("SELECT pg_background_launch('SELECT 1')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "53000", "{err}");
    release_lock(&mut holder, key);
    read_text(&mut c, blocker);
    c.batch_execute(
        "RESET pg_background.max_workers; RESET pg_background.on_capacity;
         RESET pg_background.capacity_wait_timeout",
    )
    .unwrap();

    // a result nobody reads goes to a spill file once the queue is full
    c.batch_execute("SET pg_background.spill_after = 0")
        .unwrap();
    let (worker, cookie) = launch_v2(
        &mut c,
        "SELECT repeat('x', 1000) FROM generate_series(1, 1000)",
    );
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    assert_eq!(wait_and_read(&mut c, worker, cookie), 1000);

    // the timed-out run's job ends once the lock is free: four jobs in all
    wait_for_growth(&before, "completed", 3);
    let grown = growth(&before, &stats());
    assert_eq!(grown["deadlocks"], 1, "{grown:?}");
    assert_eq!(grown["timed_out"], 1, "{grown:?}");
    assert_eq!(grown["capacity_waits"], 1, "{grown:?}");
    assert!(grown["capacity_wait_ms"] > 0, "{grown:?}");
    assert!(grown["spilled_bytes"] > 0, "{grown:?}");
    assert_eq!(grown["launched"], 4, "{grown:?}");
}

#[test]
fn only_a_superuser_or_a_granted_role_resets_the_counters() {
    let _alone = one_at_a_time();
    let mut admin = connect();
    admin
        .batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stats_resetter') THEN
                 CREATE ROLE stats_resetter LOGIN;
               END IF;
             END $$;
             REVOKE EXECUTE ON FUNCTION pg_background_cluster_stats_reset() FROM stats_resetter",
        )
        .unwrap();
    let mut c = cold_session();
    let worker = launch(&mut c, "SELECT 'one'");
    read_text(&mut c, worker);
    let before = stats();
    assert!(before["launched"] > 0);
    let reset_at = |c: &mut Client| -> String {
        c.query_one(
            "SELECT stats_reset::text FROM pg_background_cluster_stats",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let first_reset = reset_at(&mut admin);

    let err = connect_as(plain_role())
        .execute("SELECT pg_background_cluster_stats_reset()", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    assert_eq!(stats()["launched"], before["launched"], "nothing was reset");

    admin
        .batch_execute(
            "GRANT EXECUTE ON FUNCTION pg_background_cluster_stats_reset() TO stats_resetter",
        )
        .unwrap();
    connect_as("stats_resetter")
        .execute("SELECT pg_background_cluster_stats_reset()", &[])
        .unwrap();
    let after = stats();
    for (name, value) in &after {
        match name.as_str() {
            // (moved only by launches, and nobody launches now)
            "launched" | "warm_starts" | "cold_starts" | "capacity_waits" | "capacity_wait_ms"
            | "deadlocks" | "timed_out" => assert_eq!(*value, 0, "{name}: {after:?}"),
            _ => assert!(*value <= before[name], "{name}: {after:?}"),
        }
    }
    let second_reset = reset_at(&mut admin);
    let later: bool = admin
        .query_one(
            "SELECT $1::text::timestamptz > $2::text::timestamptz",
            &[&second_reset, &first_reset],
        )
        .unwrap()
        .get(0);
    assert!(
        later,
        "stats_reset moved on: {first_reset} → {second_reset}"
    );
    admin
        .batch_execute(
            "REVOKE EXECUTE ON FUNCTION pg_background_cluster_stats_reset() FROM stats_resetter",
        )
        .unwrap();
}

#[test]
fn the_jobs_view_shows_a_running_jobs_rows_bytes_and_progress() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = cold_session();
    let key = lock_key();
    hold_lock(&mut observer, key);
    // (rows go in batches of about 8 kB: the first ones are sent before the job blocks)
    let (worker, cookie) = launch_v2(
        &mut c,
        &format!(
            "SELECT pg_background_progress(40, 'forty per cent');
             SELECT i, CASE WHEN i = 3000 THEN pg_advisory_xact_lock({key})::text END
               FROM generate_series(1, 3000) i"
        ),
    );
    let job_id = |c: &mut Client, worker: i32| -> i64 {
        c.query_one("SELECT pg_background_job_id($1)", &[&worker])
            .unwrap()
            .get(0)
    };
    let seen = |observer: &mut Client, id: i64| {
        let row = observer
            .query_one(
                "SELECT state, rows, bytes, progress_pct, progress_msg
                   FROM pg_background_jobs WHERE job_id = $1",
                &[&id],
            )
            .unwrap();
        let seen: (String, i64, i64, Option<i32>, Option<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        seen
    };
    let id = job_id(&mut c, worker);
    wait_for("the job to report its progress", || {
        seen(&mut observer, id).3 == Some(40)
    });
    let (state, rows, bytes, pct, msg) = seen(&mut observer, id);
    assert_eq!(state, "running");
    assert!(rows > 0 && rows < 3000, "rows so far: {rows}");
    assert!(bytes > 0, "bytes so far: {bytes}");
    assert_eq!(pct, Some(40));
    assert_eq!(msg.as_deref(), Some("forty per cent"));
    release_lock(&mut observer, key);
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    let read: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM pg_background_result_v2({worker}, {cookie}) AS (i int, t text)"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(read, 3000);
    assert_eq!(seen(&mut observer, id).1, 3000, "every row counted");
    // a job that reported nothing shows no progress
    let other = launch(&mut c, "SELECT 'one'");
    let other_id = job_id(&mut c, other);
    read_text(&mut c, other);
    let (_, _, _, pct, msg) = seen(&mut observer, other_id);
    assert_eq!((pct, msg), (None, None));
}
