//! The fault matrix: each fault ends in a defined state, the cluster does not restart, and the
//! server's DSM segments, temporary files and background worker processes return to where they
//! were.
//!
//! The tests of this file run one at a time (`fault`), so that the counts they compare are
//! theirs alone.

use postgres::Client;
use session_tests::*;
use std::sync::Mutex;

/// What must be the same after a fault as before it.
struct Baseline {
    started: String,
    segments: usize,
    workers: i64,
    temporary: i64,
}

/// Entries in the default tablespace's directory of temporary files (spill files live there).
fn temporary_entries(observer: &mut Client) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_ls_dir('base/pgsql_tmp', true, false)",
            &[],
        )
        .unwrap()
        .get(0)
}

fn workers(observer: &mut Client) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_background'",
            &[],
        )
        .unwrap()
        .get(0)
}

fn postmaster_start(observer: &mut Client) -> String {
    observer
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .unwrap()
        .get(0)
}

impl Baseline {
    fn take(observer: &mut Client) -> Self {
        Self {
            started: postmaster_start(observer),
            segments: dsm_segments(),
            workers: workers(observer),
            temporary: temporary_entries(observer),
        }
    }

    fn check(&self, observer: &mut Client) {
        wait_for("background workers back to the baseline", || {
            workers(observer) <= self.workers
        });
        wait_for("DSM segments back to the baseline", || {
            dsm_segments() <= self.segments
        });
        wait_for("temporary files back to the baseline", || {
            temporary_entries(observer) <= self.temporary
        });
        assert_eq!(
            postmaster_start(observer),
            self.started,
            "the cluster restarted"
        );
    }
}

/// Run one fault scenario alone, with a fresh observer session and a launcher session, and
/// check the baseline after: the cluster's, and the launcher's session memory if the scenario
/// left it connected.
fn fault(scenario: impl FnOnce(&mut Client, &mut Client)) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _alone = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut observer = connect();
    let baseline = Baseline::take(&mut observer);
    let mut launcher = connect();
    // (one job first, so that the registry's own context exists in the baseline)
    launcher
        .query(
            "SELECT * FROM pg_background_result(pg_background_launch('')) AS (r text)",
            &[],
        )
        .unwrap();
    let memory = session_bytes(&mut launcher);
    scenario(&mut observer, &mut launcher);
    if launcher.query_one("SELECT 1", &[]).is_ok() {
        assert_eq!(
            session_bytes(&mut launcher),
            memory,
            "the launcher's session memory did not return to its baseline"
        );
    }
    drop(launcher);
    // (a new session: the observer of a scenario may have been terminated on purpose)
    baseline.check(&mut connect());
}

/// A job of session `c` that waits on advisory lock `key` (held by `holder`), once it waits.
fn job_waiting_on(c: &mut Client, observer: &mut Client, key: i64) -> i32 {
    let worker = launch(c, &format!("SELECT pg_advisory_lock({key})::text"));
    wait_for("the job waiting on the lock", || {
        waits_on(observer, worker, "advisory")
    });
    worker
}

/// A job that fills a 1 kB queue and blocks on it, once it blocks (with spilling off: the
/// worker waits for its reader, as in 1.x).
fn job_blocked_on_its_queue(c: &mut Client, observer: &mut Client) -> i32 {
    c.batch_execute("SET pg_background.spill_after = -1")
        .unwrap();
    let worker: i32 = c
        .query_one(
            "SELECT pg_background_launch('SELECT g FROM generate_series(1, 1000000) g', 1024)",
            &[],
        )
        .unwrap()
        .get(0);
    wait_for("the job blocked on its full queue", || {
        waits_on(observer, worker, "MessageQueuePutMessage")
    });
    worker
}

fn signal(observer: &mut Client, function: &str, pid: i32) {
    let ok: bool = observer
        .query_one(&format!("SELECT {function}($1)"), &[&pid])
        .unwrap()
        .get(0);
    assert!(ok, "{function}({pid})");
}

#[test]
fn pg_cancel_backend_on_a_waiting_worker_gives_57014() {
    fault(|observer, a| {
        let key = lock_key();
        a.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
        let worker = job_waiting_on(a, observer, key);
        signal(observer, "pg_cancel_backend", worker);
        let err = read_error(a, worker, "r text");
        assert_eq!(sqlstate(&err), "57014");
        let db = err.as_db_error().unwrap();
        assert_eq!(db.message(), "canceling statement due to user request");
        assert_eq!(
            db.where_(),
            Some(format!("background worker, pid {worker}").as_str())
        );
    });
}

#[test]
fn pg_terminate_backend_on_a_waiting_worker_gives_57p01() {
    fault(|observer, a| {
        let key = lock_key();
        a.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
        let worker = job_waiting_on(a, observer, key);
        signal(observer, "pg_terminate_backend", worker);
        let err = read_error(a, worker, "r text");
        assert_error(
            &err,
            "57P01",
            "terminating background worker \"pg_background\" due to administrator command",
        );
    });
}

#[test]
fn signals_on_a_worker_blocked_on_its_full_queue_reach_the_reader() {
    for (function, code) in [
        ("pg_cancel_backend", "57014"),
        ("pg_terminate_backend", "57P01"),
    ] {
        fault(|observer, a| {
            let worker = job_blocked_on_its_queue(a, observer);
            signal(observer, function, worker);
            // the signal interrupts the send, so the error cannot go through the queue: the
            // reader gets the rows sent before it, then the error the worker recorded
            let err = read_error(a, worker, "g int");
            assert_eq!(sqlstate(&err), code, "{function}: {err}");
            wait_for("the worker gone", || !alive(observer, worker));
        });
    }
}

#[test]
fn our_cancel_with_and_without_grace_gives_57014() {
    for grace in [None, Some(10_000)] {
        fault(|observer, a| {
            let key = lock_key();
            a.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
            let (worker, cookie) = launch_v2(a, &format!("SELECT pg_advisory_lock({key})::text"));
            wait_for("the job waiting on the lock", || {
                waits_on(observer, worker, "advisory")
            });
            match grace {
                None => a.execute(
                    "SELECT pg_background_cancel_v2($1, $2)",
                    &[&worker, &cookie],
                ),
                Some(ms) => a.execute(
                    "SELECT pg_background_cancel_v2_grace($1, $2, $3)",
                    &[&worker, &cookie, &ms],
                ),
            }
            .unwrap();
            if grace.is_some() {
                assert!(
                    !alive(observer, worker),
                    "grace returned while the worker still runs"
                );
            }
            let err = a
                .query(
                    &format!(
                        "SELECT * FROM pg_background_result_v2({worker}, {cookie}) AS (r text)"
                    ),
                    &[],
                )
                .unwrap_err();
            assert_eq!(sqlstate(&err), "57014");
        });
    }
}

#[test]
fn statement_timeout_and_worker_timeout_end_the_job_with_57014() {
    for setting in ["statement_timeout", "pg_background.worker_timeout"] {
        fault(|_, a| {
            a.batch_execute(&format!("SET {setting} = '50ms'")).unwrap();
            let worker = launch(a, "SELECT pg_sleep(60)::text");
            a.batch_execute(&format!("RESET {setting}")).unwrap();
            let err = read_error(a, worker, "r text");
            assert_eq!(sqlstate(&err), "57014", "{setting}");
            assert_eq!(
                err.as_db_error().unwrap().message(),
                "canceling statement due to statement timeout"
            );
        });
    }
}

#[test]
fn a_launcher_cancelled_while_reading_goes_on_and_so_does_its_job() {
    fault(|observer, _| {
        let mut holder = connect();
        table(observer, "f_reader_cancel");
        let key = lock_key();
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        let mut a = connect();
        a.query(
            "SELECT * FROM pg_background_result(pg_background_launch('')) AS (r text)",
            &[],
        )
        .unwrap();
        let before = session_bytes(&mut a);
        let reader_pid = backend_pid(&mut a);
        let worker = launch(
            &mut a,
            &format!("SELECT pg_advisory_lock({key}); INSERT INTO f_reader_cancel VALUES (1)"),
        );
        let reading = std::thread::spawn(move || {
            let err = read_error(&mut a, worker, "r text");
            (a, sqlstate(&err))
        });
        wait_for("the reader waiting on the queue", || {
            waits_on(observer, reader_pid, "MessageQueueReceive")
        });
        signal(observer, "pg_cancel_backend", reader_pid);
        let (mut a, state) = reading.join().unwrap();
        assert_eq!(state, "57014");
        // the session goes on; the job goes on and commits
        let one: i32 = a.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
        wait_for("the job, still running, to wait on the lock", || {
            waits_on(observer, worker, "advisory")
        });
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
        wait_for("the job's insert after its reader was cancelled", || {
            count(observer, "f_reader_cancel") == 1
        });
        // the aborted read forgot the job, and its memory
        assert_not_attached(&mut a, worker);
        assert_eq!(session_bytes(&mut a), before);
    });
}

#[test]
fn a_launcher_timed_out_while_waiting_keeps_its_job() {
    fault(|observer, a| {
        let mut holder = connect();
        let key = lock_key();
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        let (worker, cookie) = launch_v2(a, &format!("SELECT pg_advisory_lock({key})::text"));
        wait_for("the job waiting on the lock", || {
            waits_on(observer, worker, "advisory")
        });
        a.batch_execute("SET statement_timeout = '50ms'").unwrap();
        let err = a
            .execute("SELECT pg_background_wait_v2($1, $2)", &[&worker, &cookie])
            .unwrap_err();
        assert_eq!(sqlstate(&err), "57014");
        // the job is still this session's
        a.batch_execute("RESET statement_timeout").unwrap();
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
        assert_eq!(wait_and_read(a, worker, cookie), 1);
    });
}

#[test]
fn a_launcher_disconnecting_leaves_its_running_jobs_to_finish() {
    fault(|observer, _| {
        let mut holder = connect();
        table(observer, "f_disconnect");
        let key = lock_key();
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        let worker = {
            let mut a = connect();
            launch(
                &mut a,
                &format!("SELECT pg_advisory_lock({key}); INSERT INTO f_disconnect VALUES (1)"),
            )
            // `a` disconnects here
        };
        wait_for("the orphaned job waiting on the lock", || {
            waits_on(observer, worker, "advisory")
        });
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
        wait_for("the orphaned job's insert", || {
            count(observer, "f_disconnect") == 1
        });
    });
}

#[test]
fn a_launcher_disconnecting_unblocks_its_job_on_a_full_queue() {
    fault(|observer, _| {
        let worker = {
            let mut a = connect();
            job_blocked_on_its_queue(&mut a, observer)
        };
        wait_for("the job to end once nobody can read", || {
            !alive(observer, worker)
        });
    });
}

#[test]
fn a_worker_ending_with_fatal_gives_its_error_to_the_reader() {
    fault(|_, a| {
        let worker = launch(a, "SELECT pg_terminate_backend(pg_backend_pid())::text");
        let err = read_error(a, worker, "r text");
        assert_eq!(sqlstate(&err), "57P01");
        // and error_info_v2 has it too
        let (worker, cookie) = launch_v2(a, "SELECT pg_terminate_backend(pg_backend_pid())");
        wait_v2(a, worker, cookie, 30_000);
        let code: String = a
            .query_one(
                "SELECT sqlstate FROM pg_background_error_info_v2($1, $2)",
                &[&worker, &cookie],
            )
            .unwrap()
            .get(0);
        assert_eq!(code, "57P01");
        a.execute(
            "SELECT pg_background_detach_v2($1, $2)",
            &[&worker, &cookie],
        )
        .unwrap();
    });
}

/// A new database with the extension; returns its name.
fn scratch_database(admin: &mut Client, name: &str) -> String {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    connect_to(name)
        .batch_execute("CREATE EXTENSION pg_background")
        .unwrap();
    name.to_owned()
}

#[test]
fn a_job_keeps_its_database_from_being_renamed_or_dropped_unless_forced() {
    fault(|observer, _| {
        let db = scratch_database(observer, "pgbg_fault_db");
        let mut a = connect_to(&db);
        let worker = launch(&mut a, "SELECT pg_sleep(60)::text");
        a.execute("SELECT pg_background_detach($1)", &[&worker])
            .unwrap();
        drop(a);
        wait_for("the job running in its database", || {
            waits_on(observer, worker, "PgSleep")
        });
        // like any session: 55006 (after the server's 5 s of waiting for it to go)
        let err = observer
            .batch_execute(&format!("ALTER DATABASE {db} RENAME TO pgbg_fault_db2"))
            .unwrap_err();
        assert_eq!(sqlstate(&err), "55006");
        assert!(alive(observer, worker));
        // FORCE terminates it
        observer
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .unwrap();
        wait_for("the job terminated", || !alive(observer, worker));
    });
}

#[test]
fn dropping_the_database_while_its_jobs_start_leaves_nothing_behind() {
    fault(|observer, _| {
        for _ in 0..5 {
            let db = scratch_database(observer, "pgbg_fault_db");
            let mut a = connect_to(&db);
            // the launcher and its just launched jobs are terminated, whether they have
            // connected yet or not
            for _ in 0..3 {
                launch(&mut a, "SELECT pg_sleep(60)::text");
            }
            observer
                .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
                .unwrap();
            assert!(a.query_one("SELECT 1", &[]).is_err(), "launcher terminated");
        }
    });
}

/// A session of database `db` with a worker waiting for its next job: (the session, the
/// worker's PID).
fn session_with_a_waiting_worker(observer: &mut Client, db: &str) -> (Client, i32) {
    let mut c = connect_to(db);
    c.batch_execute("SET pg_background.worker_idle_timeout = '1h'")
        .unwrap();
    let worker = launch(&mut c, "SELECT 1::text");
    assert_eq!(read_text(&mut c, worker), ["1"]);
    wait_for("the worker waiting for its next job", || {
        waiting_for_a_job(observer, worker)
    });
    (c, worker)
}

#[test]
fn a_warm_worker_left_waiting_keeps_its_database_neither_from_a_rename_nor_a_drop() {
    fault(|observer, _| {
        let db = scratch_database(observer, "pgbg_fault_warm");
        let (a, worker) = session_with_a_waiting_worker(observer, &db);
        drop(a);
        // at once: the server waits up to 5 s for the other sessions of the database to go, and
        // a waiting worker, which outlives its session to serve others, gives way within a
        // second to the lock the rename holds
        observer
            .batch_execute(&format!("ALTER DATABASE {db} RENAME TO pgbg_fault_warm2"))
            .unwrap();
        assert!(!alive(observer, worker));
        let (b, worker) = session_with_a_waiting_worker(observer, "pgbg_fault_warm2");
        drop(b);
        observer
            .batch_execute("DROP DATABASE pgbg_fault_warm2")
            .unwrap();
        assert!(!alive(observer, worker));
    });
}

#[test]
fn dropping_a_database_with_force_ends_its_sessions_waiting_workers_and_detached_jobs() {
    fault(|observer, _| {
        let db = scratch_database(observer, "pgbg_fault_force");
        let (mut a, waiting) = session_with_a_waiting_worker(observer, &db);
        let detached = launch(&mut a, "SELECT pg_sleep(60)::text");
        a.execute("SELECT pg_background_detach($1)", &[&detached])
            .unwrap();
        wait_for("the detached job running", || {
            waits_on(observer, detached, "PgSleep")
        });
        observer
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .unwrap();
        // the server waited for every process of the database to end
        assert!(a.query_one("SELECT 1", &[]).is_err(), "session terminated");
        assert!(!alive(observer, waiting));
        assert!(!alive(observer, detached));
    });
}

#[test]
fn revoking_pgbackground_role_lets_running_jobs_commit_and_refuses_the_next_calls() {
    fault(|observer, _| {
        observer
            .batch_execute(
                "DROP ROLE IF EXISTS f_revoked;
                 CREATE ROLE f_revoked LOGIN IN ROLE pgbackground_role;
                 DROP TABLE IF EXISTS f_revoked_rows;
                 CREATE TABLE f_revoked_rows (i int);
                 GRANT INSERT ON f_revoked_rows TO f_revoked;",
            )
            .unwrap();
        let key = lock_key();
        observer
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        let mut a = connect_as("f_revoked");
        let job = |i: i32| {
            format!("SELECT pg_advisory_xact_lock_shared({key}); INSERT INTO f_revoked_rows VALUES ({i})")
        };
        let read_later = launch(&mut a, &job(1));
        let detached = launch(&mut a, &job(2));
        a.execute("SELECT pg_background_detach($1)", &[&detached])
            .unwrap();
        wait_for("both jobs waiting on the lock", || {
            waits_on(observer, read_later, "advisory") && waits_on(observer, detached, "advisory")
        });
        observer
            .batch_execute("REVOKE pgbackground_role FROM f_revoked")
            .unwrap();
        // what runs was allowed when it was launched: it goes on and commits
        observer
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
        wait_for("both jobs committed", || {
            count(observer, "f_revoked_rows") == 2
        });
        // the session may no longer call the functions: reading, launching, detaching
        for call in [
            format!("SELECT * FROM pg_background_result({read_later}) AS (r text)"),
            "SELECT pg_background_launch('SELECT 1')".to_owned(),
            format!("SELECT pg_background_detach({read_later})"),
        ] {
            let err = a.batch_execute(&call).unwrap_err();
            assert_eq!(sqlstate(&err), "42501", "{call}: {err}");
        }
        // its unread result goes with the session
        drop(a);
        observer
            .batch_execute("DROP TABLE f_revoked_rows; DROP ROLE f_revoked")
            .unwrap();
    });
}

#[test]
fn a_role_that_lost_login_or_was_dropped_cannot_start_a_job() {
    fault(|observer, _| {
        observer
            .batch_execute(
                "DROP ROLE IF EXISTS f_nologin; DROP ROLE IF EXISTS f_dropped;
                 DROP ROLE IF EXISTS f_dropped_member;
                 CREATE ROLE f_nologin LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE f_dropped LOGIN;
                 CREATE ROLE f_dropped_member LOGIN IN ROLE pgbackground_role;",
            )
            .unwrap();
        // losing LOGIN: the session stays, its worker cannot log in as that role
        let mut a = connect_as("f_nologin");
        observer
            .batch_execute("ALTER ROLE f_nologin NOLOGIN")
            .unwrap();
        let worker = launch(&mut a, "SELECT 1");
        let err = read_error(&mut a, worker, "r int");
        assert_error(
            &err,
            "28000",
            "role \"f_nologin\" is not permitted to log in",
        );
        drop(a);
        // dropped: without privileges on the functions any more, the launch is refused
        let mut m = connect_as("f_dropped_member");
        observer
            .batch_execute("DROP ROLE f_dropped_member")
            .unwrap();
        let err = m
            .query_one("SELECT pg_background_launch('SELECT 1')", &[])
            .unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{err}");
        drop(m);
        // where PUBLIC may launch (a scratch database), the worker cannot connect as the gone
        // role
        let db = scratch_database(observer, "pgbg_fault_roles");
        connect_to(&db)
            .batch_execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC")
            .unwrap();
        let mut b = connect_as_to("f_dropped", &db);
        observer.batch_execute("DROP ROLE f_dropped").unwrap();
        let worker = launch(&mut b, "SELECT 1");
        let err = read_error(&mut b, worker, "r int");
        assert_eq!(sqlstate(&err), "28000");
        assert!(
            err.as_db_error()
                .unwrap()
                .message()
                .starts_with("role with OID"),
            "{err}"
        );
        drop(b);
        observer
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .unwrap();
        observer.batch_execute("DROP ROLE f_nologin").unwrap();
    });
}

#[test]
fn exhausted_worker_slots_give_an_error_and_the_jobs_before_still_run() {
    for limit in ["max_worker_processes", "pg_background.max_workers"] {
        fault(|_, a| {
            let mut holder = connect();
            let key = lock_key();
            holder
                .execute("SELECT pg_advisory_lock($1)", &[&key])
                .unwrap();
            if limit == "pg_background.max_workers" {
                a.batch_execute("SET pg_background.max_workers = 3")
                    .unwrap();
            } else {
                a.batch_execute("SET pg_background.max_workers = 1000")
                    .unwrap();
            }
            let sql = format!("SELECT pg_advisory_lock({key})::text");
            let mut jobs = Vec::new();
            let err = loop {
                match a.query_one("SELECT pg_background_launch($1)", &[&sql]) {
                    Ok(row) => jobs.push(row.get::<_, i32>(0)),
                    Err(e) => break e,
                }
                assert!(jobs.len() <= 1000, "no limit reached");
            };
            let expected = if limit == "max_worker_processes" {
                ("53000", "could not register background process")
            } else {
                ("53400", "too many background workers")
            };
            assert_eq!(
                (
                    sqlstate(&err).as_str(),
                    err.as_db_error().unwrap().message()
                ),
                expected
            );
            if limit == "pg_background.max_workers" {
                assert_eq!(jobs.len(), 3);
            }
            holder
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .unwrap();
            for worker in jobs {
                let rows = a
                    .query(
                        &format!("SELECT * FROM pg_background_result({worker}) AS (r text)"),
                        &[],
                    )
                    .unwrap();
                assert_eq!(rows.len(), 1);
            }
        });
    }
}

#[test]
fn a_cancel_while_the_worker_sends_its_error_into_a_full_queue() {
    // the worker's error does not fit its 64-byte queue; a cancel interrupts the send (with
    // spilling off: otherwise the error would go to a file at once)
    fault(|observer, a| {
        a.batch_execute("SET pg_background.spill_after = -1")
            .unwrap();
        let worker: i32 = a
            .query_one("SELECT pg_background_launch('SELECT 1/0', 64)", &[])
            .unwrap()
            .get(0);
        wait_for("the worker blocked sending its error", || {
            waits_on(observer, worker, "MessageQueuePutMessage")
        });
        signal(observer, "pg_cancel_backend", worker);
        wait_for("the worker to end", || !alive(observer, worker));
        let err = read_error(a, worker, "r int");
        assert_eq!(sqlstate(&err), "22012", "{err}");
        // run_query_v2's timeout cancels the job the same way
        let err = a
            .query(
                "SELECT * FROM pg_background_run_query_v2('SELECT 1/0', 64, 100) AS (r int)",
                &[],
            )
            .unwrap_err();
        assert_eq!(sqlstate(&err), "57014", "{err}");
    });
}

#[test]
fn a_launcher_whose_client_vanishes_while_it_reads_ends_and_its_job_goes_on() {
    // with client_connection_check_interval, the server notices a vanished client while the
    // statement runs: also while it waits for a job (the wait is interruptible)
    fault(|observer, _| {
        let mut holder = connect();
        let key = lock_key();
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        let name = format!("f_vanish_{key}");
        let mut client = std::process::Command::new("psql")
            .args(["-X", "-q", "-d", &test_database()])
            .args(["-c", "SET client_connection_check_interval = '100ms'"])
            .args(["-c", &format!("SET application_name = '{name}'")])
            .args(["-c", &format!(
                "SELECT * FROM pg_background_result(pg_background_launch('SELECT pg_advisory_lock({key})::text')) AS (r text)"
            )])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("psql on the PATH");
        let find = |o: &mut Client, backend_type: &str, event: &str| -> Option<i32> {
            o.query_opt(
                "SELECT pid FROM pg_stat_activity
                  WHERE application_name = $1 AND backend_type = $2 AND wait_event = $3",
                &[&name, &backend_type, &event],
            )
            .unwrap()
            .map(|r| r.get(0))
        };
        let mut reader = None;
        wait_for("the client's backend reading its job", || {
            reader = find(observer, "client backend", "MessageQueueReceive");
            reader.is_some()
        });
        let mut job = None;
        wait_for("the job waiting on the lock", || {
            job = find(observer, "pg_background", "advisory");
            job.is_some()
        });
        // the client goes away (SIGTERM to psql: its socket closes)
        let status = std::process::Command::new("kill")
            .arg(client.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        client.wait().unwrap();
        let reader = reader.unwrap();
        wait_for("the reader's backend to end", || !alive(observer, reader));
        let job = job.unwrap();
        assert!(alive(observer, job), "the job goes on");
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
        wait_for("the job to finish", || !alive(observer, job));
    });
}
