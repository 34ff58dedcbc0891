//! A generated stream of calls with random arguments against the running cluster: every call
//! succeeds or fails with a clean ERROR (never XX000, never FATAL), the session stays usable,
//! and the cluster does not restart. Seeded and bounded: PGBG_FUZZ_CASES calls (default 400)
//! from PGBG_FUZZ_SEED (default fixed), so a failure can be replayed.

use postgres::Client;
use session_tests::*;

#[path = "../../src/rng.rs"]
mod rng;
use rng::Rng;

const SQL: &[&str] = &[
    "''",
    "'SELECT 1'",
    "'SELECT g FROM generate_series(1, 100) g'",
    "'SELECT pg_sleep(0.01)'",
    "'SELEC 1'",
    "'SELECT 1/0'",
    "'COPY fuzz_t TO STDOUT'",
    "'BEGIN'",
    "'LISTEN x'",
    "'SELECT $1'",
    "'SELECT repeat(''x'', 100000)'",
    "'CREATE TEMP TABLE f(a int); INSERT INTO f VALUES (1); SELECT * FROM f'",
    "'VACUUM pg_class'",
    "'SELECT pg_terminate_backend(pg_backend_pid())'",
    "'SELECT ''é🐘'''",
    "'-- comment'",
    "NULL",
];

const INT: &[&str] = &[
    "NULL",
    "0",
    "-1",
    "1",
    "63",
    "64",
    "1024",
    "65536",
    "2147483647",
    "-2147483648",
];

const COLDEF: &[&str] = &[
    "r text",
    "r int",
    "r int8",
    "a text, b text",
    "r record",
    "r void",
    "r text[]",
];

const LABEL: &[&str] = &["NULL", "''", "'l'", "'%'", "'x''; --\"'", "repeat('é', 40)"];

/// One call, with PIDs of this session's jobs (and a few others) as likely targets.
fn call(rng: &mut Rng, pids: &[(i32, i64)]) -> String {
    let (pid, cookie) = match rng.below(4) {
        0 => (rng.pick(INT).to_owned(), rng.pick(INT).to_owned()),
        1 => ("pg_backend_pid()".to_owned(), "1".to_owned()),
        _ if !pids.is_empty() => {
            let (p, c) = pids[rng.below(pids.len())];
            let cookie = if rng.below(3) == 0 { c ^ 1 } else { c };
            (p.to_string(), cookie.to_string())
        }
        _ => ("12345".to_owned(), "0".to_owned()),
    };
    let (sql, int, coldef, label) = (
        rng.pick(SQL),
        rng.pick(INT),
        rng.pick(COLDEF),
        rng.pick(LABEL),
    );
    match rng.below(16) {
        0 => format!("SELECT pg_background_launch({sql}, {int})"),
        1 => format!("SELECT pg_background_launch_v2({sql}, {int}, {label})"),
        2 => format!("SELECT pg_background_submit_v2({sql}, {int}, {label})"),
        3 => format!("SELECT count(*) FROM pg_background_result({pid}) AS ({coldef})"),
        4 => format!("SELECT count(*) FROM pg_background_result_v2({pid}, {cookie}) AS ({coldef})"),
        5 => format!("SELECT pg_background_detach({pid})"),
        6 => format!("SELECT pg_background_detach_v2({pid}, {cookie})"),
        7 => format!("SELECT pg_background_cancel_v2({pid}, {cookie})"),
        8 => format!("SELECT pg_background_cancel_v2_grace({pid}, {cookie}, least({int}, 100))"),
        9 => format!("SELECT pg_background_wait_v2_timeout({pid}, {cookie}, least({int}, 50))"),
        10 => format!(
            "SELECT (pg_background_error_info_v2({pid}, {cookie})).sqlstate,
                    pg_background_status_v2({pid}, {cookie}),
                    (pg_background_result_info_v2({pid}, {cookie})).row_count,
                    pg_background_full_sql_v2({pid}, {cookie})"
        ),
        11 => "SELECT count(*) FROM pg_background_list".to_owned(),
        12 => format!(
            "SELECT (pg_background_run_v2({sql}, {int}, least({int}, 200), {label})).sqlstate"
        ),
        13 => format!("SELECT pg_background_autonomous_exec({sql}, {int})"),
        14 => format!("SELECT pg_background_cancel_by_label_v2({label}, least({int}, 50))"),
        _ => "SELECT pg_background_detach_all_v2()".to_owned(),
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// New handles in the result of a call: a launched PID or a (pid, cookie) handle.
fn handles_in(c: &mut Client, sql: &str) -> Result<Option<(i32, i64)>, postgres::Error> {
    if sql.starts_with("SELECT pg_background_launch(") {
        let pid: Option<i32> = c.query_one(sql, &[])?.get(0);
        return Ok(pid.map(|p| (p, 0)));
    }
    if sql.starts_with("SELECT pg_background_launch_v2(")
        || sql.starts_with("SELECT pg_background_submit_v2(")
    {
        let wrapped = format!("SELECT (h).pid, (h).cookie FROM ({sql}) AS s(h)");
        let row = c.query_one(&wrapped, &[])?;
        let pid: Option<i32> = row.get(0);
        let cookie: Option<i64> = row.get(1);
        return Ok(pid.zip(cookie));
    }
    c.batch_execute(sql)?;
    Ok(None)
}

#[test]
fn random_calls_end_in_a_result_or_a_clean_error() {
    let cases = env_or("PGBG_FUZZ_CASES", 400);
    let seed = env_or("PGBG_FUZZ_SEED", 0x5eed_0fb6);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut observer = connect();
    let started: String = observer
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .unwrap()
        .get(0);
    let mut c = connect();
    c.batch_execute(
        "DROP TABLE IF EXISTS fuzz_t; CREATE TABLE fuzz_t(v int); SET deadlock_timeout = '10ms'",
    )
    .unwrap();
    let mut pids: Vec<(i32, i64)> = Vec::new();
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..cases {
        let sql = call(&mut rng, &pids);
        match handles_in(&mut c, &sql) {
            Ok(Some(handle)) => {
                pids.push(handle);
                if pids.len() > 32 {
                    pids.remove(0);
                }
            }
            Ok(None) => {}
            Err(e) => {
                let db = e.as_db_error().unwrap_or_else(|| {
                    panic!("case {case} (seed {seed}): {sql}: not a server error: {e}")
                });
                assert_eq!(
                    db.severity(),
                    "ERROR",
                    "case {case} (seed {seed}): {sql}: {e}"
                );
                assert_ne!(
                    db.code().code(),
                    "XX000",
                    "case {case} (seed {seed}): {sql}: internal error {e}"
                );
                *errors.entry(db.code().code().to_owned()).or_default() += 1;
            }
        }
        // the session is usable after every call
        let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1, "case {case}: {sql}");
    }
    eprintln!("{cases} calls; errors by SQLSTATE: {errors:?}");
    c.batch_execute("SELECT pg_background_cancel_all_v2(); SELECT pg_background_detach_all_v2()")
        .unwrap();
    drop(c);
    let now: String = observer
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(now, started, "the cluster restarted");
}
