//! Resources return to where they started: memory, DSM segments, worker processes.

use session_tests::*;

/// Peak resident memory of a server process, from /proc (tests run on the server's machine).
fn peak_rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[test]
fn reading_100_mb_keeps_the_launcher_memory_bounded() {
    assert_reading_100_mb_is_bounded(
        "SELECT count(*), sum(length(r)) FROM pg_background_result(pg_background_launch(
           'SELECT repeat(''x'', 1000) FROM generate_series(1, 100000)')) AS (r text)",
    );
}

#[test]
fn reading_100_mb_as_json_keeps_the_launcher_memory_bounded() {
    assert_reading_100_mb_is_bounded(
        "SELECT count(*), sum(length(r->>'r')) FROM pg_background_result_json(pg_background_launch(
           'SELECT repeat(''x'', 1000) AS r FROM generate_series(1, 100000)')) AS r",
    );
}

/// `query` reads 100,000 rows of 1,000 bytes (count, total length): the launcher's peak RSS
/// grows by far less than the result.
fn assert_reading_100_mb_is_bounded(query: &str) {
    let mut a = connect();
    let pid = backend_pid(&mut a);
    a.batch_execute("SET work_mem = '4MB'").unwrap();
    // warm up, so that caches and the library are counted in the baseline
    a.query(
        "SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int)",
        &[],
    )
    .unwrap();
    a.query(
        "SELECT pg_background_result_json(pg_background_launch('SELECT 1'))",
        &[],
    )
    .unwrap();
    let before = peak_rss_kb(pid);
    let row = a.query_one(query, &[]).unwrap();
    assert_eq!(row.get::<_, i64>(0), 100_000);
    assert_eq!(row.get::<_, i64>(1), 100_000_000);
    let growth_mb = (peak_rss_kb(pid) - before) / 1024;
    // the result is 100 MB; what may stay resident is the queue, work_mem and overheads
    assert!(
        growth_mb < 40,
        "launcher peak RSS grew by {growth_mb} MB reading a 100 MB result"
    );
}

#[test]
fn thousand_launches_leave_no_memory_segment_or_worker_behind() {
    let mut a = connect();
    let mut observer = connect();
    let round = |c: &mut postgres::Client| {
        for i in 0..100 {
            if i % 2 == 0 {
                let r: i32 = c
                    .query_one(
                        "SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int)",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(r, 1);
            } else {
                c.execute(
                    "SELECT pg_background_detach(pg_background_launch('SELECT 1'))",
                    &[],
                )
                .unwrap();
            }
        }
    };
    round(&mut a);
    let workers = |o: &mut postgres::Client| -> i64 {
        o.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_background'
                AND query = 'SELECT 1'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    wait_for("warm-up workers to exit", || workers(&mut observer) == 0);
    let bytes = session_bytes(&mut a);
    let segments = dsm_segments();
    for _ in 0..10 {
        round(&mut a);
    }
    wait_for("all workers to exit", || workers(&mut observer) == 0);
    assert_eq!(
        session_bytes(&mut a),
        bytes,
        "session memory of pg_background grew"
    );
    wait_for("DSM segments back to the baseline", || {
        dsm_segments() <= segments
    });
}

/// DSM segments whose size lies in `range` (a queue size no other test uses tells ours apart).
fn dsm_segments_sized(range: std::ops::Range<u64>) -> usize {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("PostgreSQL."))
                .filter(|e| e.metadata().is_ok_and(|m| range.contains(&m.len())))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_finished_unread_job_releases_its_segment_and_stays_readable() {
    const QUEUE: i32 = 47_000_000;
    let ours = QUEUE as u64..QUEUE as u64 + 1_000_000;
    let mut a = connect();
    let pid: i32 = a
        .query_one(
            "SELECT pg_background_launch('SELECT ''kept'' FROM generate_series(1, 1000)', $1)",
            &[&QUEUE],
        )
        .unwrap()
        .get(0);
    assert_eq!(dsm_segments_sized(ours.clone()), 1, "the job's segment");
    // (the list is a call on the registry, which releases the segments of finished jobs; the
    // worker may still be unmapping the segment as the job shows stopped)
    wait_for("the finished job to give back its segment", || {
        let state: String = a
            .query_one(
                "SELECT state FROM pg_background_list WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .get(0);
        state == "stopped" && dsm_segments_sized(ours.clone()) == 0
    });
    let rows = a
        .query(
            "SELECT r FROM pg_background_result($1::int4) AS (r text)",
            &[&pid],
        )
        .unwrap();
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r.get::<_, &str>(0) == "kept"));
}

#[test]
fn jobs_launched_just_before_a_disconnect_still_run_and_leave_no_segment() {
    // the launcher disconnects right after launching: its exit must not take the jobs'
    // segments away from the starting workers, nor leave any segment behind
    const QUEUE: i32 = 45_000_000;
    let ours = QUEUE as u64..QUEUE as u64 + 1_000_000;
    let mut observer = connect();
    observer
        .batch_execute("DROP TABLE IF EXISTS handed_off; CREATE TABLE handed_off(v int)")
        .unwrap();
    {
        let mut a = connect();
        a.execute(
            "SELECT pg_background_launch(format('INSERT INTO handed_off VALUES (%s)', g), $1)
               FROM generate_series(1, 4) g",
            &[&QUEUE],
        )
        .unwrap();
    } // disconnects at once
    wait_for("the four jobs to commit", || {
        let n: i64 = observer
            .query_one("SELECT count(*) FROM handed_off", &[])
            .unwrap()
            .get(0);
        n == 4
    });
    wait_for("their segments to go", || {
        dsm_segments_sized(ours.clone()) == 0
    });
}
