//! Warm workers (`pg_background.worker_idle_timeout`): a worker whose job succeeded runs the
//! next job of a session of the same database, login role and current user without a new
//! process, with nothing of the previous job or session left, and never a job of another role.
//! The tests run one at a time: one of them holds every worker slot of the cluster, and each
//! ends the workers it left waiting.

use postgres::Client;
use session_tests::*;
use std::sync::Once;

/// Objects of these tests, created once.
fn setup() {
    static CREATED: Once = Once::new();
    CREATED.call_once(|| {
        connect()
            .batch_execute(
                "DROP SEQUENCE IF EXISTS warm_seq;
                 DROP ROLE IF EXISTS warm_other, warm_a, warm_b, warm_su;
                 CREATE ROLE warm_other IN ROLE pgbackground_role;
                 CREATE ROLE warm_a LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE warm_b LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE warm_su LOGIN SUPERUSER;
                 CREATE SEQUENCE warm_seq;
                 GRANT USAGE ON SEQUENCE warm_seq TO warm_other;",
            )
            .unwrap();
    });
}

/// A session whose workers wait `timeout` for its next job.
fn session(user: Option<&str>, timeout: &str) -> Client {
    let mut c = match user {
        Some(u) => connect_as(u),
        None => connect(),
    };
    c.batch_execute(&format!(
        "SET pg_background.worker_idle_timeout = '{timeout}'"
    ))
    .unwrap();
    c
}

/// Launch `sql`, read its one-column result as text; returns the worker's PID and the rows.
fn run(c: &mut Client, sql: &str) -> (i32, Vec<String>) {
    let pid = launch(c, sql);
    (pid, read_text(c, pid))
}

fn run_one(c: &mut Client, sql: &str) -> (i32, String) {
    let (pid, rows) = run(c, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    (pid, rows.into_iter().next().unwrap())
}

fn wait_until_waiting(observer: &mut Client, pid: i32) {
    wait_for(&format!("worker {pid} waiting for a job"), || {
        waiting_for_a_job(observer, pid)
    });
}

fn wait_until_gone(observer: &mut Client, pid: i32) {
    wait_for(&format!("worker {pid} gone"), || !alive(observer, pid));
}

#[test]
fn a_finished_worker_runs_the_next_job_of_its_session_until_its_idle_timeout() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    let (first, r) = run_one(&mut c, "SELECT 'one'");
    assert_eq!(r, "one");
    wait_until_waiting(&mut observer, first);
    let (second, r) = run_one(&mut c, "SELECT 'two'");
    assert_eq!((second, r.as_str()), (first, "two"));
    // the timeout of the last job counts: this one's is short
    c.batch_execute("SET pg_background.worker_idle_timeout = '100ms'")
        .unwrap();
    let (third, _) = run_one(&mut c, "SELECT 'three'");
    assert_eq!(third, first);
    wait_until_gone(&mut observer, first);
    // 0: a new process per job, gone when its job is
    c.batch_execute("SET pg_background.worker_idle_timeout = 0")
        .unwrap();
    let (cold, _) = run_one(&mut c, "SELECT 'cold'");
    assert_ne!(cold, first);
    wait_until_gone(&mut observer, cold);
    let (next, _) = run_one(&mut c, "SELECT 'cold again'");
    assert_ne!(next, cold);
}

/// Run a job in `c` (whose work_mem is 3MB and search_path public) that leaves everything a
/// session can keep: a temporary table, settings, a prepared statement, a cursor, an advisory
/// lock, a sequence value, a role. Returns its worker's PID, once the worker waits, holding no
/// lock of the job.
fn leave_everything(c: &mut Client, observer: &mut Client) -> i32 {
    let key = lock_key();
    let (worker, r) = run_one(
        c,
        &format!(
            "CREATE TEMP TABLE warm_t(v int);
             SET work_mem = '77MB';
             SET search_path = pg_catalog;
             SELECT set_config('application_name', 'left by the job', false);
             SELECT set_config('warm.custom', 'left by the job', false);
             PREPARE warm_p AS SELECT 1;
             DECLARE warm_c CURSOR WITH HOLD FOR SELECT 1;
             SELECT pg_advisory_lock({key});
             SELECT nextval('public.warm_seq');
             SET ROLE warm_other;
             SELECT 'done'"
        ),
    );
    assert_eq!(r, "done");
    wait_until_waiting(observer, worker);
    let locks: i64 = observer
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory'",
            &[&worker],
        )
        .unwrap()
        .get(0);
    assert_eq!(locks, 0);
    worker
}

/// In `c` (work_mem 3MB, search_path public), a job that finds nothing of what
/// [`leave_everything`] left: it runs in `worker`, and sees its caller's settings and no
/// sequence value.
fn assert_nothing_left(c: &mut Client, observer: &mut Client, worker: i32) {
    let (again, state) = run_one(
        c,
        "SELECT concat_ws(' | ',
                  coalesce(to_regclass('pg_temp.warm_t')::text, 'no temp table'),
                  current_setting('work_mem'),
                  current_setting('search_path'),
                  current_setting('application_name'),
                  coalesce(nullif(current_setting('warm.custom', true), ''), 'no custom setting'),
                  (SELECT count(*) FROM pg_prepared_statements) || ' prepared',
                  (SELECT count(*) FROM pg_cursors) || ' cursors',
                  (SELECT count(*) FROM pg_locks
                    WHERE pid = pg_backend_pid() AND locktype = 'advisory') || ' advisory locks',
                  current_user,
                  session_user)",
    );
    assert_eq!(again, worker, "the job did not run in the warm worker");
    assert_eq!(
        state,
        "no temp table | 3MB | public | session-tests | no custom setting | 0 prepared | \
         0 cursors | 0 advisory locks | postgres | postgres"
    );
    // sequence state too: currval is not defined in a fresh session
    wait_until_waiting(observer, worker);
    let again = launch(c, "SELECT currval('public.warm_seq')::text");
    assert_eq!(again, worker);
    let err = read_error(c, again, "r text");
    assert_error(
        &err,
        "55000",
        "currval of sequence \"warm_seq\" is not yet defined in this session",
    );
}

/// A session whose settings [`assert_nothing_left`] expects.
fn plain_session() -> Client {
    let mut c = session(None, "60s");
    c.batch_execute("SET work_mem = '3MB'; SET search_path = public")
        .unwrap();
    c
}

#[test]
fn nothing_of_a_job_is_left_for_the_next_job_of_a_warm_worker() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = plain_session();
    let worker = leave_everything(&mut c, &mut observer);
    assert_nothing_left(&mut c, &mut observer, worker);
}

#[test]
fn each_job_of_a_warm_worker_gets_its_callers_settings_and_role_afresh() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    let who = "SELECT current_setting('work_mem') || ' ' || current_user || ' ' || session_user";
    c.batch_execute("SET work_mem = '5MB'").unwrap();
    let (worker, r) = run_one(&mut c, who);
    assert_eq!(r, "5MB postgres postgres");
    wait_until_waiting(&mut observer, worker);
    c.batch_execute("SET work_mem = '7MB'").unwrap();
    let (again, r) = run_one(&mut c, who);
    assert_eq!((again, r.as_str()), (worker, "7MB postgres postgres"));
    wait_until_waiting(&mut observer, worker);
    // a job as another current user gets another process: whatever a job leaves in its process
    // beyond the session's reset (an extension's connections) stays with jobs of the same rights
    c.batch_execute("SET ROLE warm_other").unwrap();
    let (other, r) = run_one(&mut c, who);
    assert_ne!(other, worker);
    assert_eq!(r, "7MB warm_other postgres");
    wait_until_waiting(&mut observer, other);
    c.batch_execute("RESET ROLE; RESET work_mem").unwrap();
    let (again, r) = run_one(&mut c, who);
    assert_eq!((again, r.as_str()), (worker, "4MB postgres postgres"));
    c.batch_execute("SET ROLE warm_other").unwrap();
    let (again, _) = run_one(&mut c, who);
    assert_eq!(again, other);
}

#[test]
fn a_warm_worker_with_its_callers_settings_in_place_keeps_nothing_else_of_the_last_job() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    c.batch_execute("SET work_mem = '6MB'").unwrap();
    let state = "SELECT concat_ws(' ', current_setting('work_mem'), current_user,
                   current_setting('role'), current_setting('application_name'))";
    let (worker, r) = run_one(&mut c, state);
    assert_eq!(r, "6MB postgres none session-tests");
    wait_until_waiting(&mut observer, worker);
    // what a job changes beyond the settings it was given: a role, and a label's name
    let row = c
        .query_one(
            "SELECT pid, cookie
               FROM pg_background_launch_v2('SET ROLE warm_other; SELECT 1', 0, 'warm_label')",
            &[],
        )
        .unwrap();
    let (labelled, cookie): (i32, i64) = (row.get(0), row.get(1));
    assert_eq!(labelled, worker);
    c.query(
        "SELECT * FROM pg_background_result_v2($1, $2) AS (r int)",
        &[&worker, &cookie],
    )
    .unwrap();
    wait_until_waiting(&mut observer, worker);
    // while it waits it shows its session's name, not the last job's label
    let name: String = observer
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&worker],
        )
        .unwrap()
        .get(0);
    assert_eq!(name, "session-tests");
    // the same settings again: the job has them, and neither the role nor the label
    let (again, r) = run_one(&mut c, state);
    assert_eq!(
        (again, r.as_str()),
        (worker, "6MB postgres none session-tests")
    );
    wait_until_waiting(&mut observer, worker);
    let (again, r) = run_one(&mut c, state);
    assert_eq!(
        (again, r.as_str()),
        (worker, "6MB postgres none session-tests")
    );
}

#[test]
fn a_job_launched_from_a_security_definer_function_gets_a_worker_of_its_own() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    c.batch_execute(
        "CREATE OR REPLACE FUNCTION warm_definer() RETURNS int LANGUAGE sql SECURITY DEFINER
           SET search_path = public, pg_catalog
           AS $$ SELECT pg_background_launch('SELECT current_user::text') $$;
         ALTER FUNCTION warm_definer() OWNER TO warm_other;",
    )
    .unwrap();
    let (worker, _) = run_one(&mut c, "SELECT current_user::text");
    wait_until_waiting(&mut observer, worker);
    let definer: i32 = c.query_one("SELECT warm_definer()", &[]).unwrap().get(0);
    assert_ne!(definer, worker);
    assert_eq!(read_text(&mut c, definer), ["warm_other"]);
    c.batch_execute("DROP FUNCTION warm_definer()").unwrap();
}

#[test]
fn a_warm_worker_serves_the_next_session_of_its_role_and_never_another_role() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut a = session(Some("warm_su"), "60s");
    let (worker, r) = run_one(&mut a, "SELECT session_user::text");
    assert_eq!(r, "warm_su");
    wait_until_waiting(&mut observer, worker);
    // another role gets processes of its own
    let mut b = session(Some("warm_b"), "60s");
    for _ in 0..3 {
        let (pid, r) = run_one(&mut b, "SELECT session_user::text");
        assert_eq!(r, "warm_b");
        assert_ne!(pid, worker);
    }
    assert!(waiting_for_a_job(&mut observer, worker));
    // a new session of the same role gets the worker, also once the first session has ended
    drop(a);
    let mut a2 = session(Some("warm_su"), "60s");
    let (again, r) = run_one(&mut a2, "SELECT session_user::text");
    assert_eq!((again, r.as_str()), (worker, "warm_su"));
    let user: String = observer
        .query_one(
            "SELECT usename::text FROM pg_stat_activity WHERE pid = $1",
            &[&worker],
        )
        .unwrap()
        .get(0);
    assert_eq!(user, "warm_su");
    // and its jobs with another current user do not
    wait_until_waiting(&mut observer, worker);
    a2.batch_execute("SET ROLE warm_other").unwrap();
    let (other, r) = run_one(&mut a2, "SELECT current_user::text");
    assert_eq!(r, "warm_other");
    assert_ne!(other, worker);
    a2.batch_execute("RESET ROLE").unwrap();
    let (again, _) = run_one(&mut a2, "SELECT current_user::text");
    assert_eq!(again, worker);
}

#[test]
fn nothing_of_a_session_reaches_the_next_session_through_a_warm_worker() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut a = plain_session();
    let worker = leave_everything(&mut a, &mut observer);
    // another session of the role, the first one still there
    let mut b = plain_session();
    assert_nothing_left(&mut b, &mut observer, worker);
}

/// A worker into which a job loaded a library serves only its own session from then on, and
/// ends with it: here the Snowball stemmers (in every server), and dblink, whose connections
/// live in the library's memory, which no reset clears (where the server has dblink).
#[test]
fn a_worker_into_which_a_job_loaded_a_library_serves_only_its_own_session() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut a = session(None, "60s");
    let (stemmer, r) = run_one(&mut a, "SELECT to_tsvector('english', 'running')::text");
    assert_eq!(r, "'run':1");
    wait_until_waiting(&mut observer, stemmer);
    let mut b = session(None, "60s");
    let (other, _) = run_one(&mut b, "SELECT 'b'");
    assert_ne!(other, stemmer);
    let (again, _) = run_one(&mut a, "SELECT 'a'");
    assert_eq!(again, stemmer);
    wait_until_waiting(&mut observer, stemmer);
    drop(a);
    wait_until_gone(&mut observer, stemmer);

    let dblink: bool = observer
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'dblink')",
            &[],
        )
        .unwrap()
        .get(0);
    if !dblink {
        println!("this server has no dblink: its connections are not tested here");
        return;
    }
    observer
        .batch_execute("CREATE EXTENSION IF NOT EXISTS dblink")
        .unwrap();
    let mut a = session(None, "60s");
    let conninfo = format!(
        "dbname={} host={} port={} user={}",
        test_database(),
        std::env::var("PGHOST").unwrap(),
        std::env::var("PGPORT").unwrap(),
        std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into()),
    );
    let (worker, r) = run_one(
        &mut a,
        &format!("SELECT dblink_connect('warm_link', '{conninfo}')"),
    );
    assert_eq!(r, "OK");
    wait_until_waiting(&mut observer, worker);
    let connections = "SELECT coalesce(array_to_string(dblink_get_connections(), ','), 'none')";
    let (other, r) = run_one(&mut b, connections);
    assert_ne!(other, worker);
    assert_eq!(r, "none");
    // its own session's next job still finds the connection
    let (again, r) = run_one(&mut a, connections);
    assert_eq!((again, r.as_str()), (worker, "warm_link"));
    wait_until_waiting(&mut observer, worker);
    drop(a);
    wait_until_gone(&mut observer, worker);
}

/// `pg_background.max_idle_workers` counts the waiting workers of the whole cluster: a worker
/// that finishes when that many wait exits.
#[test]
fn no_more_workers_wait_than_max_idle_workers() {
    setup();
    let _alone = one_at_a_time();
    let _cap = ClusterSetting::set("pg_background.max_idle_workers", "1");
    let mut observer = connect();
    // (two roles: neither session can run its job in the other's worker)
    let mut a = session(None, "60s");
    let mut b = session(Some("warm_su"), "60s");
    // unread, the results keep each worker from the next job of its session
    let first = launch(&mut a, "SELECT 'a'");
    let second = launch(&mut b, "SELECT 'b'");
    wait_for("one worker waiting, the other gone", || {
        let waiting = [first, second].map(|pid| waiting_for_a_job(&mut observer, pid));
        let alive = [first, second].map(|pid| alive(&mut observer, pid));
        waiting.iter().filter(|w| **w).count() == 1 && alive.iter().filter(|a| **a).count() == 1
    });
    assert_eq!(read_text(&mut a, first), ["a"]);
    assert_eq!(read_text(&mut b, second), ["b"]);
}

/// Without superuser, a session's `worker_idle_timeout` above the server's
/// `max_worker_idle_timeout` is cut to it; a superuser's is not. Both workers start waiting at
/// about the same time.
#[test]
fn without_superuser_a_worker_waits_no_longer_than_the_servers_limit() {
    setup();
    let _alone = one_at_a_time();
    let _server = ClusterSetting::set("pg_background.max_worker_idle_timeout", "2000");
    let mut observer = connect();
    let mut user = session(Some("warm_a"), "1h");
    let mut superuser = session(Some("warm_su"), "1h");
    let shown: String = user
        .query_one("SHOW pg_background.worker_idle_timeout", &[])
        .unwrap()
        .get(0);
    assert_eq!(shown, "1h");
    let (theirs, _) = run_one(&mut user, "SELECT 'user'");
    let (ours, _) = run_one(&mut superuser, "SELECT 'superuser'");
    wait_until_gone(&mut observer, theirs);
    assert!(waiting_for_a_job(&mut observer, ours));
}

/// A launch that finds no free worker slot retires the idle workers of other sessions, also of
/// other roles, that it could not use.
#[test]
fn a_launch_without_a_free_worker_slot_ends_another_sessions_idle_worker() {
    setup();
    let _alone = one_at_a_time();
    let mut observer = connect();
    let slots: i32 = observer
        .query_one("SELECT current_setting('max_worker_processes')::int", &[])
        .unwrap()
        .get(0);
    // two workers of another role wait
    let mut a = session(Some("warm_su"), "1h");
    let first = launch(&mut a, "SELECT 'a'");
    let second = launch(&mut a, "SELECT 'b'");
    for pid in [first, second] {
        wait_until_waiting(&mut observer, pid);
    }
    assert_eq!(read_text(&mut a, first), ["a"]);
    assert_eq!(read_text(&mut a, second), ["b"]);
    // jobs of warm_b that wait for a lock take every slot, the idle workers' too
    let key = lock_key();
    observer
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    let mut b = session(Some("warm_b"), "60s");
    b.batch_execute("SET pg_background.max_workers = 1000")
        .unwrap();
    let mut blocked = Vec::new();
    while alive(&mut observer, first) || alive(&mut observer, second) {
        assert!(
            blocked.len() < slots as usize + 2,
            "the idle workers stayed"
        );
        blocked.push(launch(
            &mut b,
            &format!("SELECT pg_advisory_lock({key})::text"),
        ));
    }
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    for pid in blocked {
        assert_eq!(read_text(&mut b, pid), [""]);
    }
}

#[test]
fn a_worker_whose_job_failed_or_was_cancelled_is_not_kept() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    let failed = launch(&mut c, "SELECT 1/0");
    let err = read_error(&mut c, failed, "r int");
    assert_eq!(sqlstate(&err), "22012");
    wait_until_gone(&mut observer, failed);

    let (worker, _) = run_one(&mut c, "SELECT 'warm'");
    wait_until_waiting(&mut observer, worker);
    let (again, cookie) = launch_v2(&mut c, "SELECT pg_sleep(60)::text");
    assert_eq!(again, worker);
    c.execute("SELECT pg_background_cancel_v2($1, $2)", &[&again, &cookie])
        .unwrap();
    let err = c
        .query(
            &format!("SELECT * FROM pg_background_result_v2({again}, {cookie}) AS (r text)"),
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err}");
    wait_until_gone(&mut observer, worker);
    let (next, _) = run_one(&mut c, "SELECT 'new'");
    assert_ne!(next, worker);
}

#[test]
fn idle_workers_never_take_the_slot_their_sessions_next_launch_needs() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let slots: i32 = observer
        .query_one("SELECT current_setting('max_worker_processes')::int", &[])
        .unwrap()
        .get(0);
    let mut c = session(None, "1h");
    // Unread results keep their workers from being reused; each waits, holding its slot.
    let mut workers = Vec::new();
    for i in 0..slots + 8 {
        let pid = launch(&mut c, &format!("SELECT {i}::text"));
        wait_until_waiting(&mut observer, pid);
        workers.push(pid);
    }
    for (i, &pid) in workers.iter().enumerate() {
        assert_eq!(read_text(&mut c, pid), [i.to_string()]);
    }
}

#[test]
fn the_jobs_of_a_warm_worker_reach_the_statistics() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    table(&mut c, "warm_stats");
    let (worker, _) = run_one(
        &mut c,
        "INSERT INTO warm_stats SELECT generate_series(1, 5); SELECT 'x'",
    );
    wait_until_waiting(&mut observer, worker);
    let (again, _) = run_one(
        &mut c,
        "INSERT INTO warm_stats SELECT generate_series(1, 5); SELECT 'x'",
    );
    assert_eq!(again, worker);
    // (what autovacuum goes by), while the worker lives on
    wait_for("the inserts in pg_stat_user_tables", || {
        observer
            .query_one(
                "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'warm_stats'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 10
    });
    assert!(alive(&mut observer, worker));
}

#[test]
fn waiting_for_a_failed_job_waits_for_its_process_to_end() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let mut c = session(None, "60s");
    let key = lock_key();
    // a failed job's worker is not kept: wait_v2 returns once the process has exited, with its
    // session lock released
    let (pid, cookie) = launch_v2(
        &mut c,
        &format!("SELECT pg_advisory_lock({key}); SELECT 1/0"),
    );
    assert!(wait_v2(&mut c, pid, cookie, 30_000));
    assert!(
        !alive(&mut observer, pid),
        "wait_v2 returned before the process ended"
    );
    let free: bool = observer
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get(0);
    assert!(free);
}

/// Send `signal` (`STOP`, `CONT`) to the server process `pid` (the tests run as root).
fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A waiting worker that ends just as it is handed a job costs the launch nothing: the job runs
/// in a new process. The worker is stopped while idle and asked to terminate, so that it takes
/// the hand-over and then exits instead of running the job. The launch gives its place in the
/// cluster-wide line back before it starts the new process, so a cap of one running job does not
/// refuse the launch because of itself.
#[test]
fn a_launch_whose_warm_worker_ends_as_it_is_handed_the_job_starts_a_new_one() {
    let _alone = one_at_a_time();
    setup();
    let _cap = ClusterCap::set(1);
    let mut c = session(None, "1min");
    let mut observer = connect();
    let launcher = backend_pid(&mut c);
    let (warm, first) = run_one(&mut c, "SELECT 'first'");
    assert_eq!(first, "first");
    wait_until_waiting(&mut observer, warm);
    signal(warm, "STOP");
    // (delivered when it runs again: it then exits at its next interrupt check)
    let terminated: bool = observer
        .query_one("SELECT pg_terminate_backend($1)", &[&warm])
        .unwrap()
        .get(0);
    assert!(terminated);
    let launching = std::thread::spawn(move || run_one(&mut c, "SELECT 'second'"));
    // the launch has handed the job over and waits for the stopped worker to attach
    wait_for(
        "the launch waiting for the worker it handed the job to",
        || {
            observer
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'MessageQueueInternal'",
                &[&launcher],
            )
            .unwrap()
            .is_some()
        },
    );
    signal(warm, "CONT");
    let (worker, second) = launching.join().expect("the launch");
    assert_eq!(second, "second");
    assert_ne!(worker, warm, "the job ran in a new process");
    wait_until_gone(&mut observer, warm);
}
