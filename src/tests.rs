//! In-backend tests (`cargo pgrx test`): each runs in a transaction that is rolled back, so a
//! worker sees none of the test's own writes.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn launch(sql: &str) -> i32 {
        Spi::get_one_with_args::<i32>("SELECT pg_background_launch($1)", &[sql.into()])
            .expect("launch failed")
            .expect("launch returned NULL")
    }

    /// Before PostgreSQL 17 the registry needs preloading, which `cargo pgrx test`'s cluster
    /// does not do: the view says so instead of showing part of the cluster.
    #[cfg(any(feature = "pg15", feature = "pg16"))]
    #[pg_test(
        error = "pg_background_jobs needs pg_background in shared_preload_libraries on this server"
    )]
    fn without_preloading_the_jobs_view_is_an_error() {
        let pid = launch("SELECT 1");
        Spi::run(&format!(
            "SELECT * FROM pg_background_result({pid}) AS (r int)"
        ))
        .unwrap();
        Spi::run("SELECT count(*) FROM pg_background_jobs").unwrap();
    }

    /// From PostgreSQL 17 on, the registry is a named DSM segment: no preloading.
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    #[pg_test]
    fn without_preloading_the_jobs_view_shows_the_job() {
        let pid = launch("SELECT 1 UNION ALL SELECT 2");
        Spi::run(&format!(
            "SELECT * FROM pg_background_result({pid}) AS (r int)"
        ))
        .unwrap();
        let row = Spi::get_two::<String, i64>(&format!(
            "SELECT state, rows FROM pg_background_jobs WHERE worker_pid = {pid} ORDER BY job_id DESC LIMIT 1"
        ));
        assert_eq!(row, Ok((Some("finished".to_owned()), Some(2))));
    }

    /// Labels are matched with the server's own LIKE (`cancel_by_label_v2`), case and all.
    #[pg_test]
    fn labels_match_as_sql_like_does() {
        use crate::server::like;
        assert!(like("job-a", "job-%"));
        assert!(like("job-a", "job-_"));
        assert!(!like("job-ab", "job-_"));
        assert!(like("job-a", "%"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("étiquette", "_tiq%"));
        assert!(!like("job", "JOB"));
        // exponential for a backtracking matcher; linear for the server's
        assert!(!like(
            &"a".repeat(200),
            &"%a".repeat(40).replace("%a%a", "%a%b")
        ));
    }

    /// A pattern that ends with the escape character is the server's error (once the match
    /// gets that far).
    #[pg_test(error = "LIKE pattern must not end with escape character")]
    fn a_label_pattern_ending_with_the_escape_character_is_an_error() {
        crate::server::like("jobs", "job\\");
    }

    /// The offsets read from the server's private `shm_mq` header match this server, proven
    /// through the queue's public functions (see `shm::mq::layout_proven`); without it no job
    /// would spill.
    #[pg_test]
    fn the_message_queue_layout_is_proven_on_this_server() {
        assert!(crate::shm::mq::layout_proven());
    }

    /// A worker's handle lives in TopMemoryContext and is freed with its owner: a thousand
    /// launches, each registering a new worker (no warm worker takes the next job), leave that
    /// context no bigger than a few dozen did.
    #[pg_test]
    fn worker_handles_are_freed_with_their_jobs() {
        Spi::run("SET pg_background.worker_idle_timeout = 0").unwrap();
        let used = || {
            Spi::get_one::<i64>(
                "SELECT sum(used_bytes)::int8 FROM pg_backend_memory_contexts \
                 WHERE name = 'TopMemoryContext'",
            )
            .unwrap()
            .unwrap()
        };
        let run = |n: usize| {
            for _ in 0..n {
                let pid = launch("SELECT 1");
                Spi::run(&format!(
                    "SELECT * FROM pg_background_result({pid}) AS (r int)"
                ))
                .unwrap();
            }
        };
        run(50);
        let before = used();
        run(1000);
        let grown = used() - before;
        assert!(
            grown < 16 * 1024,
            "TopMemoryContext grew by {grown} bytes over 1000 jobs"
        );
    }

    #[pg_test]
    fn round_trip_returns_the_rows_of_the_last_statement() {
        let pid = launch("SELECT 1; SELECT 2+2");
        let got = Spi::get_one::<i32>(&format!(
            "SELECT * FROM pg_background_result({pid}) AS (r int)"
        ));
        assert_eq!(got, Ok(Some(4)));
    }

    #[pg_test]
    fn command_tags_when_no_statement_returns_rows() {
        let pid = launch("CREATE TEMP TABLE x(a int); INSERT INTO x VALUES (1), (2); DROP TABLE x");
        let tags = Spi::get_one::<String>(&format!(
            "SELECT string_agg(r, ',') FROM pg_background_result({pid}) AS (r text)"
        ));
        assert_eq!(
            tags,
            Ok(Some("CREATE TABLE,INSERT 0 2,DROP TABLE".to_owned()))
        );
    }

    #[pg_test]
    fn each_statement_sees_the_earlier_ones() {
        let pid =
            launch("CREATE TEMP TABLE y(a int); INSERT INTO y VALUES (7); SELECT count(*) FROM y");
        let got = Spi::get_one::<i64>(&format!(
            "SELECT * FROM pg_background_result({pid}) AS (n bigint)"
        ));
        assert_eq!(got, Ok(Some(1)));
    }

    #[pg_test(error = "queue size must be at least 64 bytes")]
    fn queue_too_small() {
        Spi::run("SELECT pg_background_launch('SELECT 1', 63)").unwrap();
    }

    #[pg_test(error = "queue size must not exceed 268435456 bytes")]
    fn queue_too_large() {
        Spi::run("SELECT pg_background_launch('SELECT 1', 268435457)").unwrap();
    }

    #[pg_test(error = "PID 12345 is not attached to this session")]
    fn unknown_pid() {
        Spi::run("SELECT * FROM pg_background_result(12345) AS (r text)").unwrap();
    }

    #[pg_test(error = "division by zero")]
    fn worker_error_is_raised_in_the_caller() {
        let pid = launch("SELECT 1/0");
        Spi::run(&format!(
            "SELECT * FROM pg_background_result({pid}) AS (r int)"
        ))
        .unwrap();
    }

    #[pg_test]
    fn detach_forgets_the_worker() {
        let pid = crate::launcher::launch("SELECT 1", 0).expect("launch");
        assert!(crate::launcher::detach(pid, crate::launcher::Cookie::Ignore).is_ok());
        assert!(
            matches!(crate::launcher::detach(pid, crate::launcher::Cookie::Ignore), Err(crate::error::Error::NotAttached(p)) if p == pid)
        );
    }

    #[pg_test]
    fn finished_unread_workers_do_not_count_against_max_workers() {
        Spi::run("SET pg_background.max_workers = 1").unwrap();
        let first = crate::launcher::launch("SELECT 1", 0).expect("first launch");
        // wait (bounded) for the worker to finish; its result stays unread
        let mut tries = 0;
        while crate::launcher::running() > 0 {
            tries += 1;
            assert!(tries < 10_000, "worker did not finish");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let second = crate::launcher::launch("SELECT 2", 0).expect("second launch");
        assert_ne!(first, second);
        for (pid, want) in [(first, 1), (second, 2)] {
            let got = Spi::get_one::<i32>(&format!(
                "SELECT * FROM pg_background_result({pid}) AS (r int)"
            ));
            assert_eq!(got, Ok(Some(want)));
        }
    }

    #[pg_test(error = "too many dynamic shared memory segments")]
    fn exhausted_dsm_segments_refuse_the_launch() {
        let mut held = 0;
        loop {
            // SAFETY: plain call; the segments belong to the test transaction's resource owner,
            // which detaches them all when the expected error aborts it.
            let segment =
                unsafe { pg_sys::dsm_create(64, pg_sys::DSM_CREATE_NULL_IF_MAXSEGMENTS as i32) };
            if segment.is_null() {
                break;
            }
            held += 1;
            assert!(held < 100_000, "no limit on DSM segments");
        }
        assert!(held > 0);
        // core's ERROR (53000), raised before any worker is registered
        let outcome = crate::launcher::launch("SELECT 1", 0);
        panic!(
            "launch did not fail: {:?}",
            outcome.map_err(|e| e.to_string())
        );
    }
}
