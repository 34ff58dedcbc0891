//! Never stuck on a full queue: a worker whose reader does not make room in its queue for
//! `pg_background.spill_after` writes the rest of its output to a temporary file, finishes
//! (committing and releasing its locks and its worker slot), and the reader later gets every row,
//! in order, from the queue and then the file. The file goes when the result is read, detached,
//! or the session ends.

use postgres::Client;
use session_tests::*;

/// A session whose jobs each get a process of their own: the tests count a worker's spill files
/// by its PID, which a warm worker would share with other sessions' jobs.
fn connect() -> Client {
    let mut c = session_tests::connect();
    c.batch_execute("SET pg_background.worker_idle_timeout = 0")
        .unwrap();
    c
}

/// About 52 MB of rows: far more than the 64 kB queue.
const BIG: &str = "SELECT i, repeat('x', 120) AS s FROM generate_series(1, 400000) i";
const BIG_SUM: i64 = 400_000 * 400_001 / 2;

/// The spill directories (one per file set) of worker `worker` in the default tablespace.
fn spill_dirs(observer: &mut Client, worker: i32) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_ls_dir('base/pgsql_tmp', true, false) AS f
              WHERE f LIKE 'pgsql_tmp' || $1 || '.%.fileset'",
            &[&worker.to_string()],
        )
        .unwrap()
        .get(0)
}

/// Session `c` holds advisory lock `key` only while its job runs: whether another session can
/// take it now.
fn lock_free(observer: &mut Client, key: i64) -> bool {
    let free: bool = observer
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get(0);
    if free {
        observer
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
    }
    free
}

/// Read the whole result of a `BIG`-shaped job: (rows, sum of i, whether i came in order).
fn read_big(c: &mut Client, worker: i32, cookie: i64) -> (i64, i64, bool) {
    let row = c
        .query_one(
            "SELECT count(*), sum(i)::int8, bool_and(i = n)
               FROM (SELECT i, row_number() OVER () AS n
                       FROM pg_background_result_v2($1, $2) AS (i int, s text)) r",
            &[&worker, &cookie],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// An observer, and a session whose `BIG` job (launched with `spill_after`) waits for room in
/// its full queue: (observer, session, worker, cookie).
fn waiting_for_room(spill_after: &str) -> (Client, Client, i32, i64) {
    let mut observer = connect();
    let mut c = connect();
    c.batch_execute(&format!("SET pg_background.spill_after = {spill_after}"))
        .unwrap();
    let (worker, cookie) = launch_v2(&mut c, BIG);
    wait_for("the worker to wait for room in its full queue", || {
        waits_on(&mut observer, worker, "MessageQueuePutMessage")
    });
    (observer, c, worker, cookie)
}

#[test]
fn a_large_result_nobody_reads_lets_the_worker_finish_and_is_then_read_in_full() {
    let mut observer = connect();
    let mut c = connect();
    let key = lock_key();
    // the job holds a lock until it commits
    let sql = format!("SELECT i, s FROM ({BIG}) b, (SELECT pg_advisory_xact_lock({key})) l");
    let (worker, cookie) = launch_v2(&mut c, &sql);
    wait_for("the job to commit and release its lock", || {
        lock_free(&mut observer, key)
    });
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    assert_eq!(
        spill_dirs(&mut observer, worker),
        1,
        "its rest is in a file"
    );
    assert_eq!(read_big(&mut c, worker, cookie), (400_000, BIG_SUM, true));
    assert_eq!(
        spill_dirs(&mut observer, worker),
        0,
        "the file went with the read"
    );
}

#[test]
fn a_reader_that_reads_at_once_gets_the_same_rows() {
    let mut c = connect();
    let (worker, cookie) = launch_v2(&mut c, BIG);
    assert_eq!(read_big(&mut c, worker, cookie), (400_000, BIG_SUM, true));
}

#[test]
fn with_spill_after_minus_one_the_worker_waits_for_its_reader() {
    let (mut observer, mut c, worker, cookie) = waiting_for_room("-1");
    assert_eq!(spill_dirs(&mut observer, worker), 0);
    assert_eq!(read_big(&mut c, worker, cookie), (400_000, BIG_SUM, true));
}

#[test]
fn the_error_that_ends_a_spilled_job_reaches_the_reader_after_its_rows() {
    let mut observer = connect();
    let mut c = connect();
    // (not 1/0: the planner would fold that and fail before any row)
    let (worker, cookie) = launch_v2(
        &mut c,
        "SELECT CASE WHEN i < 300000 THEN i ELSE 1/(i - i) END FROM generate_series(1, 400000) i",
    );
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    assert_eq!(spill_dirs(&mut observer, worker), 1);
    let err = read_error(&mut c, worker, "i int");
    assert_error(&err, "22012", "division by zero");
    assert_eq!(spill_dirs(&mut observer, worker), 0);
}

#[test]
fn a_result_beyond_spill_limit_fails_with_a_clear_error() {
    let mut observer = connect();
    let mut c = connect();
    c.batch_execute("SET pg_background.spill_limit = '1MB'")
        .unwrap();
    let (worker, cookie) = launch_v2(&mut c, BIG);
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    let err = read_error(&mut c, worker, "i int, s text");
    assert_error(
        &err,
        "53400",
        "result of background worker exceeds pg_background.spill_limit (1024 kB)",
    );
    assert_eq!(spill_dirs(&mut observer, worker), 0);
}

#[test]
fn detaching_a_spilled_job_removes_its_file() {
    let mut observer = connect();
    let mut c = connect();
    let (worker, cookie) = launch_v2(&mut c, BIG);
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    assert_eq!(spill_dirs(&mut observer, worker), 1);
    c.execute(
        "SELECT pg_background_detach_v2($1, $2)",
        &[&worker, &cookie],
    )
    .unwrap();
    assert_eq!(spill_dirs(&mut observer, worker), 0);
}

#[test]
fn a_job_detached_while_it_spills_removes_its_file_when_it_ends() {
    let mut observer = connect();
    let mut c = connect();
    let key = lock_key();
    observer
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .unwrap();
    // half the rows, then a wait for the observer's lock, then the rest
    let sql = format!(
        "SELECT i, repeat('x', 120) FROM generate_series(1, 400000) i
          WHERE i <> 200000 OR pg_advisory_lock_shared({key}) IS NOT NULL"
    );
    let (worker, cookie) = launch_v2(&mut c, &sql);
    wait_for("the job to spill and then wait for the lock", || {
        waits_on(&mut observer, worker, "advisory") && spill_dirs(&mut observer, worker) == 1
    });
    c.execute(
        "SELECT pg_background_detach_v2($1, $2)",
        &[&worker, &cookie],
    )
    .unwrap();
    observer
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    wait_for("the worker to finish and remove its file", || {
        spill_dirs(&mut observer, worker) == 0
    });
}

#[test]
fn a_session_that_ends_removes_the_files_of_its_unread_jobs() {
    let mut observer = connect();
    for terminated in [false, true] {
        let mut c = connect();
        let session = backend_pid(&mut c);
        let (worker, cookie) = launch_v2(&mut c, BIG);
        assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
        // released into session memory: the session owns the file now
        c.query("SELECT count(*) FROM pg_background_list", &[])
            .unwrap();
        assert_eq!(spill_dirs(&mut observer, worker), 1);
        if terminated {
            observer
                .execute("SELECT pg_terminate_backend($1)", &[&session])
                .unwrap();
        } else {
            drop(c);
        }
        wait_for("the session's file to go", || {
            !alive(&mut observer, session) && spill_dirs(&mut observer, worker) == 0
        });
    }
}

#[test]
fn a_cancel_of_a_worker_waiting_for_room_reaches_the_reader() {
    let (mut observer, mut c, worker, cookie) = waiting_for_room("'1h'");
    c.execute(
        "SELECT pg_background_cancel_v2($1, $2)",
        &[&worker, &cookie],
    )
    .unwrap();
    // the cancel's error does not fit the queue either: it goes to the file, and the job ends
    assert!(wait_v2(&mut c, worker, cookie, 30_000), "the job ended");
    let err = read_error(&mut c, worker, "i int, s text");
    assert_eq!(sqlstate(&err), "57014", "{err}");
    assert_eq!(spill_dirs(&mut observer, worker), 0);
}
