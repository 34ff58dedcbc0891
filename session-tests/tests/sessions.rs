//! What one session cannot show: other sessions watching, cancelling and disconnecting.

use postgres::fallible_iterator::FallibleIterator;
use session_tests::*;

#[test]
fn running_job_is_visible_in_pg_stat_activity() {
    let mut a = connect();
    let mut observer = connect();
    let key = lock_key();
    a.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    let sql = format!("SELECT pg_advisory_lock({key})::text");
    let worker = launch(&mut a, &sql);
    wait_for(
        "worker waiting on the advisory lock",
        || matches!(activity(&mut observer, worker), Some((_, _, Some(w), _)) if w == "advisory"),
    );
    let (backend_type, query, _, user) = activity(&mut observer, worker).unwrap();
    assert_eq!(backend_type, "pg_background");
    assert_eq!(query, sql);
    assert_eq!(user, "postgres");
    a.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    let rows = a
        .query(
            &format!("SELECT * FROM pg_background_result({worker}) AS (r text)"),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    wait_for("worker gone after its result was read", || {
        !alive(&mut observer, worker)
    });
}

#[test]
fn detached_job_goes_on_and_commits() {
    let mut a = connect();
    let mut observer = connect();
    table(&mut a, "s_detach");
    let key = lock_key();
    a.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    let worker = launch(
        &mut a,
        &format!("SELECT pg_advisory_lock({key}); INSERT INTO s_detach VALUES (1)"),
    );
    a.execute("SELECT pg_background_detach($1)", &[&worker])
        .unwrap();
    // (launch returns once the worker has attached its queue, before it has connected)
    wait_for(
        "the detached worker to wait on the lock",
        || matches!(activity(&mut observer, worker), Some((_, _, Some(e), _)) if e == "advisory"),
    );
    assert_eq!(count(&mut observer, "s_detach"), 0);
    a.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    wait_for("the detached job's insert", || {
        count(&mut observer, "s_detach") == 1
    });
    assert_not_attached(&mut a, worker);
}

#[test]
fn other_roles_and_other_sessions_cannot_touch_a_worker() {
    let mut admin = connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS s_owner; DROP ROLE IF EXISTS s_other;
             CREATE ROLE s_owner LOGIN IN ROLE pgbackground_role;
             CREATE ROLE s_other LOGIN IN ROLE pgbackground_role;",
        )
        .unwrap();
    let mut a = connect_as("s_owner");
    let worker = launch(&mut a, "SELECT 41 + 1");
    // another session, even a superuser's, does not have it
    assert_not_attached(&mut admin, worker);
    let err = admin
        .execute("SELECT pg_background_detach($1)", &[&worker])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704");
    // in the same session, a role without the owner's privileges is refused
    admin.execute("GRANT s_other TO postgres", &[]).unwrap();
    drop(a);
    let mut a = connect();
    a.execute("SET ROLE s_owner", &[]).unwrap();
    let worker = launch(&mut a, "SELECT 41 + 1");
    a.execute("SET ROLE s_other", &[]).unwrap();
    let err = a
        .query(
            &format!("SELECT * FROM pg_background_result({worker}) AS (r int)"),
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        format!("permission denied for background worker with PID \"{worker}\"")
    );
    a.execute("SET ROLE s_owner", &[]).unwrap();
    let r: i32 = a
        .query_one(
            &format!("SELECT * FROM pg_background_result({worker}) AS (r int)"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(r, 42);
    // the worker ran as the login role with the owner as current user
    a.execute("RESET ROLE", &[]).unwrap();
    drop(a);
    let mut b = connect_as("s_owner");
    let who: String = b
        .query_one(
            "SELECT * FROM pg_background_result(pg_background_launch(
               'SELECT session_user || ''/'' || current_user')) AS (r text)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(who, "s_owner/s_owner");
}

#[test]
fn create_index_concurrently_runs_in_a_worker() {
    let mut a = connect();
    let mut observer = connect();
    table(&mut a, "s_cic");
    a.execute("INSERT INTO s_cic SELECT generate_series(1, 1000)", &[])
        .unwrap();
    let worker = launch(&mut a, "CREATE INDEX CONCURRENTLY s_cic_v ON s_cic(v)");
    a.execute("SELECT pg_background_detach($1)", &[&worker])
        .unwrap();
    wait_for("the concurrently built index to be valid", || {
        observer
            .query_opt(
                "SELECT 1 FROM pg_index WHERE indexrelid = 's_cic_v'::regclass AND indisvalid",
                &[],
            )
            .map(|r| r.is_some())
            .unwrap_or(false)
    });
}

#[test]
fn notifications_of_the_worker_reach_a_listening_launcher() {
    let mut a = connect();
    a.batch_execute("LISTEN s_channel").unwrap();
    let tag: String = a
        .query_one(
            "SELECT * FROM pg_background_result(pg_background_launch(
               'SELECT pg_notify(''s_channel'', ''from worker'')::text')) AS (r text)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tag, "");
    let mut got = None;
    wait_for("the notification", || {
        a.batch_execute("SELECT 1").unwrap();
        if let Some(n) = a.notifications().iter().next().unwrap() {
            got = Some(n.payload().to_owned());
        }
        got.is_some()
    });
    assert_eq!(got.as_deref(), Some("from worker"));
}

#[test]
fn handle_api_across_roles_and_sessions() {
    let mut admin = connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS h_owner; DROP ROLE IF EXISTS h_other;
             CREATE ROLE h_owner IN ROLE pgbackground_role;
             CREATE ROLE h_other IN ROLE pgbackground_role;",
        )
        .unwrap();
    let mut holder = connect();
    let mut a = connect();
    let mut b = connect();
    let key = lock_key();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    a.batch_execute("SET ROLE h_owner").unwrap();
    let sql = format!(
        "SELECT pg_background_progress(50, 'half way'); SELECT pg_advisory_lock({key})::text"
    );
    let row = a
        .query_one(
            "SELECT (h).pid, (h).cookie FROM pg_background_launch_v2($1, 0, 'h-job') h",
            &[&sql],
        )
        .unwrap();
    let (worker, cookie): (i32, i64) = (row.get(0), row.get(1));
    // progress reported by the job, read by the launcher while the job waits
    wait_for("the job's progress", || {
        a.query_opt(
            "SELECT progress_pct FROM pg_background_get_progress_v2($1, $2) WHERE progress_pct = 50",
            &[&worker, &cookie],
        )
        .unwrap()
        .is_some()
    });
    wait_for(
        "the job waiting on the lock",
        || matches!(activity(&mut b, worker), Some((_, _, Some(e), _)) if e == "advisory"),
    );
    // (pg_stat_activity hides the wait of a backend of another role from h_owner; the worker's
    // session user is the login role, so read the joined view as that role)
    a.batch_execute("RESET ROLE").unwrap();
    let view: (String, Option<String>, Option<String>) = {
        let r = a
            .query_one(
                "SELECT pgbg_state, label, wait_event FROM pg_background_activity WHERE pid = $1",
                &[&worker],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        view,
        (
            "running".to_owned(),
            Some("h-job".to_owned()),
            Some("advisory".to_owned())
        )
    );
    a.batch_execute("SET ROLE h_owner").unwrap();
    assert!(
        !wait_v2(&mut a, worker, cookie, 100),
        "a waiting job is not stopped"
    );
    let active: i32 = a
        .query_one("SELECT workers_active FROM pg_background_stats_v2()", &[])
        .unwrap()
        .get(0);
    assert_eq!(active, 1);

    // another role in the same session: refused, and the list hides the worker
    a.batch_execute("SET ROLE h_other").unwrap();
    for call in [
        "SELECT pg_background_cancel_v2($1, $2)::text",
        "SELECT pg_background_wait_v2_timeout($1, $2, 0)::text",
        "SELECT pg_background_detach_v2($1, $2)::text",
        "SELECT (pg_background_get_progress_v2($1, $2)).progress_msg",
    ] {
        let err = a.query_one(call, &[&worker, &cookie]).unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{call}");
    }
    let listed: i64 = a
        .query_one("SELECT count(*) FROM pg_background_list", &[])
        .unwrap()
        .get(0);
    assert_eq!(listed, 0);
    let canceled: i32 = a
        .query_one("SELECT pg_background_cancel_all_v2()", &[])
        .unwrap()
        .get(0);
    assert_eq!(canceled, 0, "cancel_all_v2 must skip other roles' workers");
    // another session does not have it at all
    let err = b
        .query_one(
            "SELECT pg_background_cancel_v2($1, $2)::text",
            &[&worker, &cookie],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704");
    let listed: i64 = b
        .query_one("SELECT count(*) FROM pg_background_list", &[])
        .unwrap()
        .get(0);
    assert_eq!(listed, 0);

    // the owner again: the job finishes once the lock is free
    a.batch_execute("SET ROLE h_owner").unwrap();
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    assert_eq!(wait_and_read(&mut a, worker, cookie), 1);
    let completed: i64 = a
        .query_one(
            "SELECT workers_completed FROM pg_background_stats_v2()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(completed, 1);
}

/// The messages in auto_log, as `c` sees them now.
fn logged(c: &mut postgres::Client) -> Vec<String> {
    c.query("SELECT msg FROM auto_log ORDER BY msg", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn an_autonomous_call_commits_before_its_caller_and_survives_its_rollback() {
    let mut a = connect();
    let mut b = connect();
    a.batch_execute("DROP TABLE IF EXISTS auto_log; CREATE TABLE auto_log(msg text)")
        .unwrap();
    a.batch_execute("BEGIN").unwrap();
    a.execute("INSERT INTO auto_log VALUES ($1)", &[&"caller's own row"])
        .unwrap();
    let tag: String = a
        .query_one(
            "SELECT pg_background_autonomous_exec('INSERT INTO auto_log VALUES ($1)', $1::text)",
            &[&"autonomous row"],
        )
        .unwrap()
        .get(0);
    assert_eq!(tag, "INSERT 0 1");
    // committed already, while the caller's transaction is still open
    let seen: Vec<String> = logged(&mut b);
    assert_eq!(seen, ["autonomous row"]);
    // an error in the autonomous statement reaches the caller with its SQLSTATE, and the
    // caller's transaction can go on after a savepoint
    a.batch_execute("SAVEPOINT s").unwrap();
    let err = a
        .query_one(
            "SELECT pg_background_autonomous_exec('SELECT 1 / $1', 0)",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22012");
    a.batch_execute("ROLLBACK TO s; ROLLBACK").unwrap();
    let seen: Vec<String> = logged(&mut b);
    assert_eq!(seen, ["autonomous row"]);
}

#[test]
fn a_job_blocked_by_another_session_is_waited_for_not_called_a_deadlock() {
    let mut holder = connect();
    let mut reader = connect();
    let mut observer = connect();
    holder
        .batch_execute("DROP TABLE IF EXISTS dl_other; CREATE TABLE dl_other(v int)")
        .unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE dl_other IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    reader
        .batch_execute("SET deadlock_timeout = '50ms'")
        .unwrap();
    let reader_pid = backend_pid(&mut reader);
    let read = std::thread::spawn(move || {
        reader
            .query_one(
                "SELECT r FROM pg_background_result(pg_background_launch('SELECT count(*) FROM dl_other')) AS (r bigint)",
                &[],
            )
            .map(|row| row.get::<_, i64>(0))
    });
    // the reader has waited ten deadlock_timeouts for a job that another session blocks
    wait_for("the reader to wait past deadlock_timeout", || {
        observer
            .query_opt(
                "SELECT FROM pg_stat_activity WHERE pid = $1
                    AND wait_event = 'MessageQueueReceive' AND now() - query_start > '500ms'",
                &[&reader_pid],
            )
            .unwrap()
            .is_some()
    });
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(
        read.join().unwrap().unwrap(),
        0,
        "the job read the table once it was free"
    );
}
