//! Load: several sessions launching many mixed jobs at once (read, detach, cancel, error). Every
//! job must end as its kind says; the only failures allowed are capacity errors (53000, 53400);
//! afterwards nothing is left running or tracked. Size: PGBG_LOAD_SESSIONS (8) sessions ×
//! PGBG_LOAD_JOBS (60 in CI; the full run is PGBG_LOAD_JOBS=1000) jobs.

use session_tests::*;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one session saw.
#[derive(Default, Debug)]
struct Tally {
    read: usize,
    detached: usize,
    canceled: usize,
    failed: usize,
    capacity: usize,
}

fn capacity_error(e: &postgres::Error) -> bool {
    matches!(sqlstate(e).as_str(), "53000" | "53400")
}

fn run_session(session: usize, jobs: usize) -> Tally {
    let mut c = connect();
    let mut t = Tally::default();
    for i in 0..jobs {
        let marker = format!("/* load-test {session}-{i} */");
        match i % 4 {
            0 => match c.query_one(
                &format!("SELECT r FROM pg_background_result(pg_background_launch('SELECT {i} {marker}')) AS (r int)"),
                &[],
            ) {
                Ok(row) => {
                    assert_eq!(row.get::<_, i32>(0), i as i32);
                    t.read += 1;
                }
                Err(e) if capacity_error(&e) => t.capacity += 1,
                Err(e) => panic!("read job: {e}"),
            },
            1 => match c.execute(
                &format!("SELECT pg_background_detach(pg_background_launch('INSERT INTO load_log VALUES ({session}, {i}) {marker}'))"),
                &[],
            ) {
                Ok(_) => t.detached += 1,
                Err(e) if capacity_error(&e) => t.capacity += 1,
                Err(e) => panic!("detached job: {e}"),
            },
            2 => match c.query_one(
                &format!("SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('SELECT 1 FROM pg_sleep(30) {marker}') h"),
                &[],
            ) {
                Ok(row) => {
                    let (pid, cookie): (i32, i64) = (row.get(0), row.get(1));
                    c.execute("SELECT pg_background_cancel_v2_grace($1, $2, 30000)", &[&pid, &cookie])
                        .unwrap();
                    let err = c
                        .query(
                            &format!("SELECT * FROM pg_background_result_v2({pid}, {cookie}) AS (r int)"),
                            &[],
                        )
                        .unwrap_err();
                    assert_eq!(sqlstate(&err), "57014", "cancelled job: {err}");
                    t.canceled += 1;
                }
                Err(e) if capacity_error(&e) => t.capacity += 1,
                Err(e) => panic!("cancelled job: {e}"),
            },
            _ => match c.query_one(
                &format!("SELECT r FROM pg_background_result(pg_background_launch('SELECT 1 / 0 {marker}')) AS (r int)"),
                &[],
            ) {
                Ok(_) => panic!("a division by zero succeeded"),
                Err(e) if capacity_error(&e) => t.capacity += 1,
                Err(e) => {
                    assert_eq!(sqlstate(&e), "22012", "failing job: {e}");
                    t.failed += 1;
                }
            },
        }
    }
    // nothing of this session is still tracked, and its statistics add up
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM pg_background_list), workers_launched,
                    workers_completed + workers_failed + workers_canceled, workers_canceled
               FROM pg_background_stats_v2()",
            &[],
        )
        .unwrap();
    let (tracked, launched, released, canceled): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(tracked, 0, "session {session} still tracks jobs");
    assert_eq!(launched, released, "session {session}: launched = released");
    assert_eq!(canceled as usize, t.canceled);
    t
}

#[test]
fn many_sessions_many_mixed_jobs_all_end_as_expected() {
    let sessions = setting("PGBG_LOAD_SESSIONS", 8);
    let jobs = setting("PGBG_LOAD_JOBS", 60);
    let mut observer = connect();
    observer
        .batch_execute("DROP TABLE IF EXISTS load_log; CREATE TABLE load_log(session int, job int)")
        .unwrap();
    let started: String = observer
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .unwrap()
        .get(0);
    let threads: Vec<_> = (0..sessions)
        .map(|s| std::thread::spawn(move || run_session(s, jobs)))
        .collect();
    let tallies: Vec<Tally> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let detached: usize = tallies.iter().map(|t| t.detached).sum();
    let ended: usize = tallies
        .iter()
        .map(|t| t.read + t.detached + t.canceled + t.failed + t.capacity)
        .sum();
    assert_eq!(ended, sessions * jobs, "{tallies:?}");
    // every detached job committed, and no job of the test is left running
    wait_for("the detached jobs to commit", || {
        let n: i64 = observer
            .query_one("SELECT count(*) FROM load_log", &[])
            .unwrap()
            .get(0);
        n as usize == detached
    });
    wait_for("no load-test worker left", || {
        let n: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE backend_type = 'pg_background' AND query LIKE '%load-test%'",
                &[],
            )
            .unwrap()
            .get(0);
        n == 0
    });
    let now: String = observer
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(now, started, "the cluster restarted");
    eprintln!("load: {sessions} sessions x {jobs} jobs: {tallies:?}");
}
