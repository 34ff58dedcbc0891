-- The helpers: run, run_query, outcome, drain, wait_any, cancel_by_label, purge.

-- run: the whole outcome, whether it timed out, and the time taken
SELECT state, consumed, completed, has_error, row_count, command_tag, sqlstate, label,
       launched_at BETWEEN now() AND clock_timestamp() AS launched, timed_out, elapsed_ms >= 0 AS timed
  FROM pg_background_run('INSERT INTO t2 VALUES (10), (11)', 0, 0, 'two-rows');
SELECT completed, has_error, sqlstate, error_message FROM pg_background_run('SELECT 1/0');
-- a timeout cancels the job and is counted in workers_timed_out
SELECT workers_timed_out AS before FROM pg_background_stats() \gset
SELECT completed, timed_out, has_error, sqlstate FROM pg_background_run('SELECT pg_sleep(30)', 0, 100);
SELECT workers_timed_out - :before AS counted FROM pg_background_stats();
SELECT count(*) AS nothing_left FROM pg_background_list;

-- run_query: the rows; a timeout fails with 57014, naming the function called
SELECT * FROM pg_background_run_query('SELECT g, g * 2 FROM generate_series(1, 3) g') AS (a int, b int);
SELECT try_sql($$SELECT count(*) FROM pg_background_run_query('SELECT pg_sleep(30)::text', 0, 100) AS (r text)$$);
SELECT try_sql($$SELECT count(*) FROM pg_background_run_query_v2('SELECT pg_sleep(30)::text', 0, 100) AS (r text)$$);
SELECT workers_timed_out - :before AS counted FROM pg_background_stats();

-- outcome never raises; it is not STRICT, and NULL arguments give NULL
SELECT state, completed, has_error FROM pg_background_outcome(0, 0);
SELECT pg_background_outcome(NULL, NULL) IS NULL AS null_outcome;
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch('SELECT 1/0', 0, 'oc') h \gset
SELECT pg_background_wait(:pid, :cookie);
SELECT pid = :pid AS same, state, consumed, completed, has_error, sqlstate, error_message, label
  FROM pg_background_outcome(:pid, :cookie);

-- drain: every handle's outcome, in order, then detached
SELECT array_agg(h ORDER BY n) AS handles
  FROM (SELECT n, pg_background_launch(format('SELECT %s', n)) h FROM generate_series(1, 3) n) s \gset
SELECT state, completed, row_count FROM pg_background_drain(:'handles');
SELECT count(*) AS drained FROM pg_background_drain(NULL);
SELECT pg_background_detach(:pid, :cookie);
SELECT count(*) AS nothing_left FROM pg_background_list;

-- wait_any: the first to finish; NULL on timeout, for no handles, or NULL
SELECT pg_background_launch('SELECT pg_sleep(30)', 0, 'slow') AS slow,
       pg_background_launch('SELECT 1', 0, 'fast') AS fast \gset
SELECT (pg_background_wait_any(ARRAY[:'slow', :'fast']::pg_background_handle[])).pid = (:'fast'::pg_background_handle).pid AS fast_first;
SELECT pg_background_wait_any(ARRAY[:'slow']::pg_background_handle[], 50) IS NULL AS timed_out;
SELECT pg_background_wait_any(NULL) IS NULL AS none, pg_background_wait_any('{}') IS NULL AS empty;

-- cancel_by_label (LIKE; a NULL pattern matches nothing) and purge (stopped jobs only)
SELECT pg_background_cancel_by_label(NULL) AS by_null, pg_background_cancel_by_label('nomatch%') AS by_other;
SELECT pg_background_cancel_by_label('sl%', 5000) AS by_label;
SELECT pg_background_purge() AS purged;
SELECT count(*) AS nothing_left FROM pg_background_list;
