//! Results that outlive the launching session: a job launched to keep its result
//! (`pg_background_launch_kept`, or `pg_background.keep_result`) whose session ends without
//! reading it is read once, from any session of a role with its owner's privileges, with
//! `pg_background_job_result(job_id bigint)` — in full, in order, spilled or not — until it expires.

use postgres::Client;
use session_tests::*;
use std::sync::Once;
use std::thread;

/// A session whose jobs each get a process of their own: the tests find a job's files by its
/// worker's PID, which a warm worker would share with other sessions' jobs.
fn connect() -> Client {
    let mut c = session_tests::connect();
    c.batch_execute("SET pg_background.worker_idle_timeout = 0")
        .unwrap();
    c
}

/// About 52 MB of rows.
const BIG: &str = "SELECT i, repeat('x', 120) AS s FROM generate_series(1, 400000) i";
const BIG_SUM: i64 = 400_000 * 400_001 / 2;

fn roles() {
    static CREATED: Once = Once::new();
    CREATED.call_once(|| {
        connect()
            .batch_execute(
                "DROP ROLE IF EXISTS kept_alice, kept_bob, kept_carol;
                 CREATE ROLE kept_alice LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE kept_bob LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE kept_carol LOGIN IN ROLE pgbackground_role;",
            )
            .unwrap();
    });
}

/// Launch `sql` keeping its result for `keep_for`: (job id, worker PID).
fn launch_kept(c: &mut Client, sql: &str, keep_for: &str) -> (i64, i32) {
    let id: i64 = c
        .query_one(
            "SELECT pg_background_launch_kept($1, $2::text::interval)",
            &[&sql, &keep_for],
        )
        .unwrap()
        .get(0);
    let worker: i32 = c
        .query_one(
            "SELECT worker_pid FROM pg_background_jobs WHERE job_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    (id, worker)
}

/// End session `c` (PID `session`) and wait until it is gone.
fn leave(observer: &mut Client, c: Client, session: i32) {
    drop(c);
    wait_for("the session to end", || !alive(observer, session));
}

/// Whether the registry shows job `id`'s result as kept.
fn kept(observer: &mut Client, id: i64) -> bool {
    observer
        .query_one(
            "SELECT coalesce(bool_or(result_kept_until IS NOT NULL), false)
               FROM pg_background_jobs WHERE job_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0)
}

/// Read a `BIG`-shaped kept result: (rows, sum of i, whether i came in order).
fn read_big(c: &mut Client, id: i64) -> (i64, i64, bool) {
    let row = c
        .query_one(
            "SELECT count(*), sum(i)::int8, bool_and(i = n)
               FROM (SELECT i, row_number() OVER () AS n
                       FROM pg_background_job_result($1) AS (i int, s text)) r",
            &[&id],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

fn read_kept_text(c: &mut Client, id: i64) -> Result<Vec<String>, postgres::Error> {
    c.query(
        "SELECT * FROM pg_background_job_result($1) AS (r text)",
        &[&id],
    )
    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
}

/// Temporary file sets of processes `pids` in the default tablespace.
fn file_sets(observer: &mut Client, pids: &[i32]) -> Vec<String> {
    let patterns: Vec<String> = pids
        .iter()
        .map(|p| format!("pgsql_tmp{p}.%.fileset"))
        .collect();
    observer
        .query(
            "SELECT f || ': ' || coalesce((SELECT string_agg(g, ', ')
                                             FROM pg_ls_dir('base/pgsql_tmp/' || f, true, false) g), '')
               FROM pg_ls_dir('base/pgsql_tmp', true, false) AS f
              WHERE f LIKE ANY ($1)",
            &[&patterns],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn assert_not_available(err: &postgres::Error, id: i64) {
    assert_error(
        err,
        "55000",
        &format!("result of background job {id} is not available"),
    );
}

#[test]
fn a_large_result_is_read_in_full_from_another_session_after_its_launcher_left() {
    let mut observer = connect();
    let mut c = connect();
    let session = backend_pid(&mut c);
    // the session leaves while the job still sends: the worker writes the rest to its file
    let (id, worker) = launch_kept(&mut c, BIG, "10 min");
    leave(&mut observer, c, session);
    wait_for("the result to be complete and kept", || {
        kept(&mut observer, id)
    });
    // (the worker files its part, then exits)
    wait_for("the worker to exit", || !alive(&mut observer, worker));
    let mut reader = connect();
    assert_eq!(read_big(&mut reader, id), (400_000, BIG_SUM, true));
    // read once, and its files are gone
    let err = read_kept_text(&mut reader, id).unwrap_err();
    assert_not_available(&err, id);
    assert_eq!(
        file_sets(&mut observer, &[session, worker]),
        Vec::<String>::new()
    );
    assert!(!kept(&mut observer, id));
}

#[test]
fn a_finished_job_is_kept_when_its_launcher_is_terminated() {
    let mut observer = connect();
    let mut c = connect();
    let session = backend_pid(&mut c);
    let (id, _) = launch_kept(
        &mut c,
        "SELECT g::text FROM generate_series(1, 3) g",
        "10 min",
    );
    wait_for("the job to finish", || {
        observer
            .query_one(
                "SELECT state FROM pg_background_jobs WHERE job_id = $1",
                &[&id],
            )
            .unwrap()
            .get::<_, String>(0)
            == "finished"
    });
    // (the launcher has moved the job's output into session memory by now)
    c.query("SELECT count(*) FROM pg_background_list", &[])
        .unwrap();
    observer
        .execute("SELECT pg_terminate_backend($1)", &[&session])
        .unwrap();
    wait_for("the session to end", || !alive(&mut observer, session));
    wait_for("the result to be kept", || kept(&mut observer, id));
    assert_eq!(read_kept_text(&mut connect(), id).unwrap(), ["1", "2", "3"]);
    assert_eq!(file_sets(&mut observer, &[session]), Vec::<String>::new());
}

#[test]
fn a_reader_waits_for_a_kept_job_that_still_runs() {
    let mut observer = connect();
    let key = lock_key();
    let mut lock = connect();
    lock.execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    let mut c = connect();
    let session = backend_pid(&mut c);
    let (id, _) = launch_kept(
        &mut c,
        &format!("SELECT 'done' FROM (SELECT pg_advisory_lock_shared({key})) l"),
        "10 min",
    );
    leave(&mut observer, c, session);
    let mut reader = connect();
    let reader_pid = backend_pid(&mut reader);
    let reading = thread::spawn(move || read_kept_text(&mut reader, id).unwrap());
    let event = our_wait_event(&mut observer, "PgBackgroundJob");
    wait_for("the reader to wait for the job", || {
        waits_on(&mut observer, reader_pid, &event)
    });
    lock.execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    assert_eq!(reading.join().unwrap(), ["done"]);
}

#[test]
fn a_reader_holding_a_lock_the_kept_job_waits_for_gets_a_deadlock_error() {
    let mut observer = connect();
    observer
        .batch_execute("DROP TABLE IF EXISTS kept_locked; CREATE TABLE kept_locked (v int)")
        .unwrap();
    let mut reader = connect();
    reader
        .batch_execute("BEGIN; LOCK TABLE kept_locked IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut c = connect();
    let session = backend_pid(&mut c);
    let (id, worker) = launch_kept(&mut c, "SELECT count(*)::text FROM kept_locked", "10 min");
    leave(&mut observer, c, session);
    wait_for("the job to wait for the reader's lock", || {
        waits_on(&mut observer, worker, "relation")
    });
    let err = read_kept_text(&mut reader, id).unwrap_err();
    assert_error(&err, "40P01", "deadlock detected");
    reader.batch_execute("ROLLBACK").unwrap();
    // not consumed: read once the job could finish
    assert_eq!(read_kept_text(&mut reader, id).unwrap(), ["0"]);
    observer.batch_execute("DROP TABLE kept_locked").unwrap();
}

#[test]
fn a_kept_job_that_fails_gives_its_error_to_the_reader() {
    let mut observer = connect();
    let mut c = connect();
    let session = backend_pid(&mut c);
    let (id, _) = launch_kept(
        &mut c,
        "SELECT (1 / (g - 3))::text FROM generate_series(1, 5) g",
        "10 min",
    );
    leave(&mut observer, c, session);
    wait_for("the result to be kept", || kept(&mut observer, id));
    let err = read_kept_text(&mut connect(), id).unwrap_err();
    assert_error(&err, "22012", "division by zero");
}

#[test]
fn a_kept_job_whose_worker_cannot_even_connect_gives_that_error() {
    roles();
    let mut observer = connect();
    let mut carol = connect_as("kept_carol");
    let session = backend_pid(&mut carol);
    // the session stays; its worker cannot log in as the role any more
    observer
        .batch_execute("ALTER ROLE kept_carol NOLOGIN")
        .unwrap();
    let id: i64 = carol
        .query_one("SELECT pg_background_launch_kept('SELECT 1')", &[])
        .unwrap()
        .get(0);
    leave(&mut observer, carol, session);
    observer
        .batch_execute("ALTER ROLE kept_carol LOGIN")
        .unwrap();
    wait_for("the result to be kept", || kept(&mut observer, id));
    let err = read_kept_text(&mut connect(), id).unwrap_err();
    assert_error(
        &err,
        "28000",
        "role \"kept_carol\" is not permitted to log in",
    );
}

#[test]
fn only_roles_with_the_owners_privileges_read_a_kept_result() {
    roles();
    let mut observer = connect();
    let mut alice = connect_as("kept_alice");
    let session = backend_pid(&mut alice);
    let (id, _) = launch_kept(&mut alice, "SELECT current_user::text", "10 min");
    leave(&mut observer, alice, session);
    wait_for("the result to be kept", || kept(&mut observer, id));
    let err = read_kept_text(&mut connect_as("kept_bob"), id).unwrap_err();
    assert_error(
        &err,
        "42501",
        &format!("permission denied for background job {id}"),
    );
    // the refusal did not consume it
    assert_eq!(
        read_kept_text(&mut connect_as("kept_alice"), id).unwrap(),
        ["kept_alice"]
    );
}

#[test]
fn a_kept_result_expires() {
    let mut observer = connect();
    let mut c = connect();
    let session = backend_pid(&mut c);
    c.batch_execute("SET pg_background.keep_result = '1s'")
        .unwrap();
    // (the setting keeps the results of every launch)
    let worker = launch(&mut c, BIG);
    let id: i64 = c
        .query_one("SELECT pg_background_job_id($1)", &[&worker])
        .unwrap()
        .get(0);
    leave(&mut observer, c, session);
    wait_for("the result to be kept", || kept(&mut observer, id));
    wait_for("its time to be up", || {
        observer
            .query_one(
                "SELECT coalesce(bool_and(result_kept_until < now()), true)
                   FROM pg_background_jobs WHERE job_id = $1",
                &[&id],
            )
            .unwrap()
            .get(0)
    });
    let err = read_kept_text(&mut connect(), id).unwrap_err();
    assert_not_available(&err, id);
    assert!(!kept(&mut observer, id));
    assert_eq!(
        file_sets(&mut observer, &[session, worker]),
        Vec::<String>::new()
    );
}

#[test]
fn the_kept_results_of_a_dropped_role_are_deleted_with_their_files() {
    let mut observer = connect();
    observer
        .batch_execute(
            "DROP ROLE IF EXISTS kept_dropped;
             CREATE ROLE kept_dropped LOGIN IN ROLE pgbackground_role;",
        )
        .unwrap();
    let mut c = connect_as("kept_dropped");
    let session = backend_pid(&mut c);
    let (small, _) = launch_kept(&mut c, "SELECT 'x'", "10 min");
    let (big, worker) = launch_kept(&mut c, BIG, "10 min");
    leave(&mut observer, c, session);
    wait_for("both results to be kept", || {
        kept(&mut observer, small) && kept(&mut observer, big)
    });
    assert_ne!(
        file_sets(&mut observer, &[session, worker]),
        Vec::<String>::new()
    );
    // nothing in the catalogs depends on a kept result: the role can be dropped
    observer.batch_execute("DROP ROLE kept_dropped").unwrap();
    // the next look at the registry deletes its results, files and all
    assert!(!kept(&mut observer, big));
    assert!(!kept(&mut observer, small));
    assert_eq!(
        file_sets(&mut observer, &[session, worker]),
        Vec::<String>::new()
    );
    // not even a superuser reads them now
    let err = read_kept_text(&mut connect(), small).unwrap_err();
    assert_not_available(&err, small);
    // the jobs stay in the history, without a role name
    let role: Option<String> = observer
        .query_one(
            "SELECT usename::text FROM pg_background_jobs WHERE job_id = $1",
            &[&big],
        )
        .unwrap()
        .get(0);
    assert_eq!(role, None);
}

#[test]
fn a_result_is_kept_only_when_asked_for_and_not_yet_read() {
    let mut observer = connect();
    // not asked for
    let mut c = connect();
    let session = backend_pid(&mut c);
    let worker = launch(&mut c, "SELECT 'x'");
    let plain: i64 = c
        .query_one("SELECT pg_background_job_id($1)", &[&worker])
        .unwrap()
        .get(0);
    // read by its launcher (by job id, in its own session)
    let (read, _) = launch_kept(&mut c, "SELECT 'y'", "10 min");
    assert_eq!(read_kept_text(&mut c, read).unwrap(), ["y"]);
    leave(&mut observer, c, session);
    let mut reader = connect();
    for id in [plain, read] {
        let err = read_kept_text(&mut reader, id).unwrap_err();
        assert_not_available(&err, id);
    }
    // the launcher's own session cannot read another session's job that is still there
    let mut holder = connect();
    let (held, _) = launch_kept(&mut holder, "SELECT 'z'", "10 min");
    let err = read_kept_text(&mut reader, held).unwrap_err();
    assert_not_available(&err, held);
    assert_eq!(read_kept_text(&mut holder, held).unwrap(), ["z"]);
    let err = read_kept_text(&mut reader, 1).unwrap_err();
    assert_error(&err, "42704", "background job 1 does not exist");
}
