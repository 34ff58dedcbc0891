//! Learning that a job ended without polling: the notice on `pg_background.notify_channel`,
//! heard by a listener in another session, and `pg_background_wait_any(job_ids)`.

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use session_tests::*;
use std::thread;
use std::time::Duration;

/// The next notification on `listener`'s channels (bounded: fails after a minute).
fn next_notice(listener: &mut Client) -> (String, String) {
    let mut notices = listener.notifications();
    let mut iter = notices.timeout_iter(Duration::from_secs(60));
    let n = iter
        .next()
        .expect("no error while listening")
        .expect("a notification within a minute");
    (n.channel().to_owned(), n.payload().to_owned())
}

/// A listening session on a channel of its own.
fn listener(channel: &str) -> Client {
    let mut c = connect();
    c.batch_execute(&format!("LISTEN {channel}")).unwrap();
    c
}

/// Field `key` of a JSON payload, as text (NULL for JSON null), read by the server.
fn field(c: &mut Client, payload: &str, key: &str) -> Option<String> {
    c.query_one("SELECT $1::text::jsonb ->> $2::text", &[&payload, &key])
        .unwrap()
        .get(0)
}

fn job_id(c: &mut Client, worker: i32) -> i64 {
    c.query_one("SELECT pg_background_job_id($1)", &[&worker])
        .unwrap()
        .get(0)
}

#[test]
fn a_listener_hears_a_finished_job_after_its_commit() {
    let mut l = listener("pgbg_done_1");
    let mut c = connect();
    table(&mut c, "signals_done");
    c.batch_execute("SET pg_background.notify_channel = 'pgbg_done_1'")
        .unwrap();
    let worker = launch(
        &mut c,
        "INSERT INTO signals_done SELECT generate_series(1, 3)",
    );
    let id = job_id(&mut c, worker);
    c.execute("SELECT pg_background_detach($1)", &[&worker])
        .unwrap();
    let (channel, payload) = next_notice(&mut l);
    assert_eq!(channel, "pgbg_done_1");
    assert_eq!(
        field(&mut l, &payload, "state").as_deref(),
        Some("finished")
    );
    assert_eq!(field(&mut l, &payload, "sqlstate"), None);
    assert_eq!(field(&mut l, &payload, "rows").as_deref(), Some("3"));
    assert_eq!(field(&mut l, &payload, "job_id"), Some(id.to_string()));
    assert_eq!(field(&mut l, &payload, "pid"), Some(worker.to_string()));
    // sent after the job's commit: the listener sees its rows and its final state
    assert_eq!(count(&mut l, "signals_done"), 3);
    let state: String = l
        .query_one(
            "SELECT state FROM pg_background_jobs WHERE job_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(state, "finished");
}

#[test]
fn a_failed_job_is_announced_after_its_session_has_gone() {
    let mut l = listener("pgbg_done_2");
    let mut observer = connect();
    let key = lock_key();
    observer
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    let mut c = connect();
    let session = backend_pid(&mut c);
    c.batch_execute("SET pg_background.notify_channel = 'pgbg_done_2'")
        .unwrap();
    let sql = format!("SELECT pg_advisory_lock({key}); SELECT 1/0");
    launch(&mut c, &sql);
    drop(c);
    wait_for("the launching session to end", || {
        !alive(&mut observer, session)
    });
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    let (_, payload) = next_notice(&mut l);
    assert_eq!(field(&mut l, &payload, "state").as_deref(), Some("failed"));
    assert_eq!(
        field(&mut l, &payload, "sqlstate").as_deref(),
        Some("22012")
    );
}

#[test]
fn a_canceled_job_is_announced_as_canceled() {
    let mut l = listener("pgbg_done_3");
    let mut c = connect();
    c.batch_execute("SET pg_background.notify_channel = 'pgbg_done_3'")
        .unwrap();
    let key = lock_key();
    let mut observer = connect();
    observer
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    let (worker, cookie) = launch_v2(&mut c, &format!("SELECT pg_advisory_lock({key})"));
    wait_for("the job to wait for the lock", || {
        waits_on(&mut observer, worker, "advisory")
    });
    c.execute(
        "SELECT pg_background_cancel_v2_grace($1, $2, 10000)",
        &[&worker, &cookie],
    )
    .unwrap();
    let (_, payload) = next_notice(&mut l);
    assert_eq!(
        field(&mut l, &payload, "state").as_deref(),
        Some("canceled")
    );
    assert_eq!(
        field(&mut l, &payload, "sqlstate").as_deref(),
        Some("57014")
    );
}

#[test]
fn a_channel_name_too_long_for_notify_is_refused_at_launch() {
    let mut c = connect();
    c.batch_execute(&format!(
        "SET pg_background.notify_channel = '{}'",
        "c".repeat(64)
    ))
    .unwrap();
    let err = c
        .query("SELECT pg_background_launch('SELECT 1')", &[])
        .unwrap_err();
    assert_error(
        &err,
        "22023",
        "pg_background.notify_channel must not exceed 63 bytes",
    );
}

/// `wait_any` in its own thread and session: (the id it returned, or the error's SQLSTATE).
fn wait_any_in(
    c: Client,
    ids: Vec<i64>,
    timeout_ms: i32,
) -> thread::JoinHandle<Result<Option<i64>, String>> {
    let mut c = c;
    thread::spawn(move || {
        c.query_one(
            "SELECT pg_background_wait_any($1, $2)",
            &[&ids, &timeout_ms],
        )
        .map(|r| r.get(0))
        .map_err(|e| sqlstate(&e))
    })
}

#[test]
fn wait_any_returns_the_first_job_to_end_and_null_on_timeout() {
    let mut c = connect();
    let mut observer = connect();
    let (k1, k2) = (lock_key(), lock_key());
    observer
        .execute(
            "SELECT pg_advisory_lock($1), pg_advisory_lock($2)",
            &[&k1, &k2],
        )
        .unwrap();
    let w1 = launch(&mut c, &format!("SELECT pg_advisory_lock({k1})"));
    let w2 = launch(&mut c, &format!("SELECT pg_advisory_lock({k2})"));
    let (j1, j2) = (job_id(&mut c, w1), job_id(&mut c, w2));
    let none: Option<i64> = c
        .query_one("SELECT pg_background_wait_any($1, 50)", &[&vec![j1, j2]])
        .unwrap()
        .get(0);
    assert_eq!(none, None, "neither job can end while the locks are held");
    let session = backend_pid(&mut c);
    let waiter = wait_any_in(c, vec![j1, j2], 0);
    let event = our_wait_event(&mut observer, "PgBackgroundJob");
    wait_for("the session to wait", || {
        waits_on(&mut observer, session, &event)
    });
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&k2])
        .unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(Some(j2)));
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&k1])
        .unwrap();
}

#[test]
fn wait_any_waits_for_a_job_of_an_ended_session_of_the_same_role() {
    let mut observer = connect();
    let key = lock_key();
    observer
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    let mut launcher = connect();
    let session = backend_pid(&mut launcher);
    let id: i64 = launcher
        .query_one(
            "SELECT pg_background_launch_kept($1)",
            &[&format!("SELECT pg_advisory_lock({key})")],
        )
        .unwrap()
        .get(0);
    drop(launcher);
    wait_for("the launching session to end", || {
        !alive(&mut observer, session)
    });
    let waiter = wait_any_in(connect(), vec![id], 0);
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(Some(id)));
}

#[test]
fn wait_any_on_jobs_blocked_by_the_waiting_session_is_a_deadlock() {
    let mut c = connect();
    c.batch_execute("SET deadlock_timeout = '100ms'").unwrap();
    table(&mut c, "signals_deadlock");
    c.batch_execute("BEGIN; LOCK TABLE signals_deadlock")
        .unwrap();
    let w = launch(&mut c, "SELECT count(*) FROM signals_deadlock");
    let id = job_id(&mut c, w);
    let err = c
        .query_one("SELECT pg_background_wait_any($1)", &[&vec![id]])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "40P01");
}

#[test]
fn wait_any_refuses_unknown_jobs_and_jobs_of_other_roles() {
    let mut admin = connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS signals_eve; CREATE ROLE signals_eve LOGIN IN ROLE pgbackground_role",
        )
        .unwrap();
    let mut c = connect();
    let w = launch(&mut c, "SELECT 1");
    let id = job_id(&mut c, w);
    let mut eve = connect_as("signals_eve");
    let err = eve
        .query_one("SELECT pg_background_wait_any($1)", &[&vec![id]])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    let err = eve
        .query_one("SELECT pg_background_wait_any($1)", &[&vec![-5_i64]])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704");
    let empty: Option<i64> = eve
        .query_one("SELECT pg_background_wait_any('{}')", &[])
        .unwrap()
        .get(0);
    assert_eq!(empty, None);
}
