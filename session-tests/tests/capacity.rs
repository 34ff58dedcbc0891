//! Admission control within a session: `pg_background.on_capacity = wait` makes a launch that
//! finds no capacity — the session's `max_workers` jobs running, or no free worker slot in the
//! server — wait for it (interruptibly, up to `pg_background.capacity_wait_timeout`) instead of
//! failing. The tests run one at a time: one of them holds every worker slot of the cluster.

use postgres::Client;
use session_tests::*;
use std::thread;

/// A session that holds advisory lock `key` until it is dropped or unlocks.
fn holder(key: i64) -> Client {
    let mut c = connect();
    c.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    c
}

/// What most of these tests start with: an observer, a lock key held by another session, and
/// the launching session with its PID.
struct Scene {
    observer: Client,
    key: i64,
    lock: Client,
    c: Client,
    launcher: i32,
}

fn scene() -> Scene {
    let key = lock_key();
    let mut c = connect();
    let launcher = backend_pid(&mut c);
    Scene {
        observer: connect(),
        key,
        lock: holder(key),
        c,
        launcher,
    }
}

/// Let go of advisory lock `key` that session `lock` holds.
fn unlock(lock: &mut Client, key: i64) {
    lock.execute("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
}

/// The error of a launch that session `c` expects to be refused.
fn launch_error(c: &mut Client) -> postgres::Error {
    c.query_one("SELECT pg_background_launch('SELECT 1')", &[])
        .unwrap_err()
}

/// A job that waits for `key`, then returns one row.
fn blocked_job(key: i64) -> String {
    format!("SELECT pg_advisory_lock_shared({key})::text")
}

/// Whether session `pid` waits in a launch.
fn launch_waits(observer: &mut Client, pid: i32) -> bool {
    let event = our_wait_event(observer, "PgBackgroundCapacity");
    observer
        .query_opt(
            "SELECT 1 FROM pg_stat_activity
              WHERE pid = $1 AND wait_event = $2 AND query LIKE '%pg_background_launch%'",
            &[&pid, &event],
        )
        .unwrap()
        .is_some()
}

/// This test's jobs that run (waiting for the lock).
fn blocked_jobs(observer: &mut Client, key: i64) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE backend_type = 'pg_background' AND wait_event_type = 'Lock'
                AND query = $1",
            &[&blocked_job(key)],
        )
        .unwrap()
        .get(0)
}

fn read_all(c: &mut Client, pids: &[i32]) {
    for &pid in pids {
        assert_eq!(read_text(c, pid).len(), 1, "job {pid}");
    }
}

#[test]
fn launches_beyond_the_sessions_limit_wait_and_all_complete() {
    let _alone = one_at_a_time();
    let Scene {
        mut observer,
        key,
        mut lock,
        mut c,
        launcher,
    } = scene();
    c.batch_execute("SET pg_background.on_capacity = wait; SET pg_background.max_workers = 2")
        .unwrap();
    let sql = blocked_job(key);
    // 12 launches in one statement: 2 start, the third waits for one of them to end
    let launches = thread::spawn(move || {
        let pids: Vec<i32> = c
            .query_one(
                "SELECT array_agg(pg_background_launch($1) ORDER BY i) FROM generate_series(1, 12) i",
                &[&sql],
            )
            .unwrap()
            .get(0);
        (c, pids)
    });
    wait_for("the third launch to wait", || {
        launch_waits(&mut observer, launcher)
    });
    wait_for("two jobs to run", || blocked_jobs(&mut observer, key) == 2);
    // the others wait in the launch, not in the server
    assert!(launch_waits(&mut observer, launcher));
    unlock(&mut lock, key);
    let (mut c, pids) = launches.join().unwrap();
    assert_eq!(pids.len(), 12);
    read_all(&mut c, &pids);
}

#[test]
fn a_waiting_launch_gives_up_at_its_timeout_and_can_be_cancelled() {
    let _alone = one_at_a_time();
    let Scene {
        mut observer,
        key,
        mut lock,
        mut c,
        launcher,
    } = scene();
    c.batch_execute(
        "SET pg_background.on_capacity = wait; SET pg_background.max_workers = 1;
         SET pg_background.capacity_wait_timeout = '200ms'",
    )
    .unwrap();
    let first = launch(&mut c, &blocked_job(key));
    let err = launch_error(&mut c);
    assert_error(
        &err,
        "53000",
        "no background worker became available within pg_background.capacity_wait_timeout (200 ms)",
    );
    // without a timeout it waits until cancelled; the session and its job go on
    c.batch_execute("SET pg_background.capacity_wait_timeout = 0")
        .unwrap();
    let waiting = thread::spawn(move || {
        let err = c
            .query_one("SELECT pg_background_launch('SELECT 1')", &[])
            .unwrap_err();
        (c, err)
    });
    wait_for("the launch to wait", || {
        launch_waits(&mut observer, launcher)
    });
    observer
        .execute("SELECT pg_cancel_backend($1)", &[&launcher])
        .unwrap();
    let (mut c, err) = waiting.join().unwrap();
    assert_eq!(sqlstate(&err), "57014", "{err}");
    unlock(&mut lock, key);
    read_all(&mut c, &[first]);
    // on_capacity = error (the default): at once, as in the C extension
    c.batch_execute("RESET pg_background.on_capacity").unwrap();
    let mut lock = holder(key);
    let again = launch(&mut c, &blocked_job(key));
    let err = launch_error(&mut c);
    assert_error(&err, "53400", "too many background workers");
    unlock(&mut lock, key);
    read_all(&mut c, &[again]);
}

#[test]
fn a_launch_waits_for_a_worker_slot_that_another_session_frees() {
    let _alone = one_at_a_time();
    let mut observer = connect();
    let key = lock_key();
    let mut lock = holder(key);
    // another session takes every free worker slot of the server
    let mut greedy = connect();
    greedy
        .batch_execute(
            "SET pg_background.max_workers = 1000; SET pg_background.worker_idle_timeout = 0",
        )
        .unwrap();
    let sql = blocked_job(key);
    let mut held = Vec::new();
    loop {
        match greedy.query_one("SELECT pg_background_launch($1)", &[&sql]) {
            Ok(row) => held.push(row.get::<_, i32>(0)),
            Err(e) => {
                assert_eq!(sqlstate(&e), "53000", "{e}");
                break;
            }
        }
        assert!(held.len() <= 1000, "no slot limit reached");
    }
    let (waiting, launcher) = launching("SELECT 'in' ", 1);
    wait_for("the launch to wait for a slot", || {
        launch_waits(&mut observer, launcher)
    });
    unlock(&mut lock, key);
    let (mut c, pids) = waiting.join().unwrap();
    read_all(&mut c, &pids);
    read_all(&mut greedy, &held);
}

#[test]
fn a_session_waiting_for_its_job_shows_a_named_wait() {
    let _alone = one_at_a_time();
    let Scene {
        mut observer,
        key,
        mut lock,
        mut c,
        launcher,
    } = scene();
    let (pid, cookie) = launch_v2(&mut c, &blocked_job(key));
    let waiting = thread::spawn(move || {
        let done: bool = c
            .query_one("SELECT pg_background_wait_v2($1, $2)", &[&pid, &cookie])
            .map(|_| true)
            .unwrap();
        (c, done)
    });
    let event = our_wait_event(&mut observer, "PgBackgroundJob");
    wait_for("the session to wait for its job", || {
        waits_on(&mut observer, launcher, &event)
    });
    unlock(&mut lock, key);
    let (mut c, done) = waiting.join().unwrap();
    assert!(done);
    read_all(&mut c, &[pid]);
}

/// A new session in wait mode whose `count` launches of `sql` run in a thread: (thread,
/// session PID).
fn launching(sql: &str, count: i32) -> (thread::JoinHandle<(Client, Vec<i32>)>, i32) {
    launching_in(connect(), sql, count)
}

/// [`launching`] in session `c`.
fn launching_in(
    mut c: Client,
    sql: &str,
    count: i32,
) -> (thread::JoinHandle<(Client, Vec<i32>)>, i32) {
    let pid = backend_pid(&mut c);
    c.batch_execute("SET pg_background.on_capacity = wait")
        .unwrap();
    let sql = sql.to_owned();
    let launches = thread::spawn(move || {
        let pids: Vec<i32> = c
            .query_one(
                "SELECT array_agg(pg_background_launch($1) ORDER BY i) FROM generate_series(1, $2) i",
                &[&sql, &count],
            )
            .unwrap()
            .get(0);
        (c, pids)
    });
    (launches, pid)
}

/// Jobs the registry shows as queued (launches waiting for their turn, or starting).
fn queued_jobs(observer: &mut Client) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_background_jobs WHERE state = 'queued'",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn ten_launches_beyond_the_clusters_cap_from_several_sessions_wait_and_all_complete() {
    let _alone = one_at_a_time();
    let Scene {
        mut observer,
        key,
        mut lock,
        ..
    } = scene();
    let _cap = ClusterCap::set(2);
    let sql = blocked_job(key);
    // four sessions launch three jobs each: two run, ten wait in the registry
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(launching(&sql, 3));
    }
    wait_for("two jobs to run", || blocked_jobs(&mut observer, key) == 2);
    wait_for("the other launches to wait", || {
        sessions
            .iter()
            .filter(|(_, pid)| launch_waits(&mut observer, *pid))
            .count()
            >= 3
    });
    assert_eq!(blocked_jobs(&mut observer, key), 2, "the cap holds");
    assert!(queued_jobs(&mut observer) >= 3);
    unlock(&mut lock, key);
    for (launches, _) in sessions {
        let (mut c, pids) = launches.join().unwrap();
        assert_eq!(pids.len(), 3);
        read_all(&mut c, &pids);
    }
    assert_eq!(queued_jobs(&mut observer), 0);
}

#[test]
fn beyond_the_clusters_cap_a_launch_fails_at_once_in_error_mode() {
    let _alone = one_at_a_time();
    let Scene {
        key,
        mut lock,
        mut c,
        ..
    } = scene();
    let _cap = ClusterCap::set(1);
    let mut other = connect();
    let first = launch(&mut other, &blocked_job(key));
    let err = launch_error(&mut c);
    assert_error(
        &err,
        "53400",
        "too many background jobs running in the cluster",
    );
    assert_eq!(
        err.as_db_error().and_then(|e| e.detail()),
        Some("pg_background.max_jobs is 1.")
    );
    // a waiting launch gives up at its timeout
    c.batch_execute(
        "SET pg_background.on_capacity = wait; SET pg_background.capacity_wait_timeout = 50",
    )
    .unwrap();
    let err = launch_error(&mut c);
    assert_eq!(sqlstate(&err), "53000", "{err}");
    unlock(&mut lock, key);
    read_all(&mut other, &[first]);
}

#[test]
fn waiting_launches_start_first_come_first_served() {
    let _alone = one_at_a_time();
    let Scene {
        mut observer,
        key,
        mut lock,
        mut c,
        ..
    } = scene();
    c.batch_execute(
        "DROP TABLE IF EXISTS admission_order;
         CREATE TABLE admission_order (n serial, who text)",
    )
    .unwrap();
    let _cap = ClusterCap::set(1);
    let first = launch(&mut c, &blocked_job(key));
    wait_for("the first job to run", || {
        blocked_jobs(&mut observer, key) == 1
    });
    // five sessions queue up, one after the other
    let mut sessions = Vec::new();
    for who in ["a", "b", "c", "d", "e"] {
        let (launches, pid) = launching(
            &format!("INSERT INTO admission_order (who) VALUES ('{who}')"),
            1,
        );
        wait_for("the launch to wait for its turn", || {
            launch_waits(&mut observer, pid)
        });
        sessions.push(launches);
    }
    unlock(&mut lock, key);
    for launches in sessions {
        let (mut c, pids) = launches.join().unwrap();
        let tags: Vec<String> = c
            .query(
                &format!(
                    "SELECT * FROM pg_background_result({}) AS (t text)",
                    pids[0]
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(tags, ["INSERT 0 1"]);
    }
    read_all(&mut c, &[first]);
    let order: Vec<String> = c
        .query("SELECT who FROM admission_order ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(order, ["a", "b", "c", "d", "e"]);
    c.batch_execute("DROP TABLE admission_order").unwrap();
}

#[test]
fn a_roles_cap_holds_its_jobs_and_leaves_other_roles_alone() {
    let _alone = one_at_a_time();
    connect()
        .batch_execute(
            "DROP ROLE IF EXISTS cap_carol;
             CREATE ROLE cap_carol LOGIN IN ROLE pgbackground_role;
             ALTER ROLE cap_carol SET pg_background.max_jobs_per_role = 1;",
        )
        .unwrap();
    let Scene {
        mut observer,
        key,
        mut lock,
        mut c,
        ..
    } = scene();
    let sql = blocked_job(key);
    let mut carol = connect_as("cap_carol");
    let carols = launch(&mut carol, &sql);
    // a second session of the role: refused, or waits
    let mut carol2 = connect_as("cap_carol");
    let err = launch_error(&mut carol2);
    assert_error(
        &err,
        "53400",
        "too many background jobs running for the current role",
    );
    // the role cannot lift its own cap
    let err = carol2
        .batch_execute("SET pg_background.max_jobs_per_role = 10")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let (waiting, carol2_pid) = launching_in(carol2, "SELECT 'later'", 1);
    wait_for("the role's second launch to wait", || {
        launch_waits(&mut observer, carol2_pid)
    });
    // another role is not held
    let mine = launch(&mut c, &sql);
    wait_for("both roles' jobs to run", || {
        blocked_jobs(&mut observer, key) == 2
    });
    assert!(launch_waits(&mut observer, carol2_pid));
    unlock(&mut lock, key);
    let (mut carol2, later) = waiting.join().unwrap();
    read_all(&mut carol2, &later);
    read_all(&mut carol, &[carols]);
    read_all(&mut c, &[mine]);
}
