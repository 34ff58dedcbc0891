-- pg_background_result_json: the rows as jsonb objects keyed by column name, in row order,
-- with no column definition list; values as to_jsonb gives them (keys in jsonb's order).
SELECT pg_background_result_json(pg_background_launch(
  'SELECT g AS n, g * 1.5 AS x, g::text AS t, g % 2 = 0 AS even, NULL::int AS nothing
     FROM generate_series(1, 3) g'));
-- the server's conversions: numbers, NaN and infinity as strings, timestamps in ISO form
-- whatever the DateStyle, arrays, json and jsonb inline, composite values as objects
SET datestyle = 'SQL, DMY';
SELECT pg_background_result_json(pg_background_launch($$
  SELECT 'NaN'::float8 AS nan, 'infinity'::numeric AS inf, 12345678901234567890::numeric AS big,
         '2026-12-04 10:00:00+00'::timestamptz AS ts, '2026-12-04'::date AS d,
         ARRAY[1, NULL, 3] AS arr, '{"k": [1, 2]}'::jsonb AS doc, '[true]'::json AS j,
         ROW(1, 2)::pg_background_handle AS handle, 'a"b\c'::text AS quoted$$));
RESET datestyle;
-- a later duplicate of a column name gets _2, _3, … (no value is lost to a duplicate key)
SELECT pg_background_result_json(pg_background_launch('SELECT 1 AS a, 2 AS a, 3 AS a_2, 4 AS a'));
-- in FROM, as a table of objects
SELECT r->>'n' AS n FROM pg_background_result_json(pg_background_launch(
  'SELECT g AS n FROM generate_series(1, 2) g')) AS r;
-- a command without rows: its tag, one object per command
SELECT pg_background_result_json(pg_background_launch(
  'INSERT INTO t VALUES (1); UPDATE t SET id = 2 WHERE id = 1'));
SELECT pg_background_result_json(pg_background_launch('SELECT 1 WHERE false'));
-- errors are the job's, with its SQLSTATE
SELECT try_sql($$SELECT count(*) FROM pg_background_result_json(pg_background_launch('SELECT 1/0'))$$);
SELECT try_sql($x$SELECT count(*) FROM pg_background_result_json(pg_background_launch(
  $q$DO $b$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'P0042'; END $b$ $q$))$x$);
-- an anonymous record's row type exists only in the worker
SELECT try_sql($$SELECT count(*) FROM pg_background_result_json(pg_background_launch('SELECT ROW(1, 2) AS r'))$$);
SELECT pg_background_result_json(pg_background_launch('SELECT NULL::record AS r'));
-- the handle form checks the cookie; a result is read once
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 7 AS seven') h \gset
SELECT try_sql(format('SELECT count(*) FROM pg_background_result_json(%s, %s)', :pid, :cookie + 1));
SELECT pg_background_result_json(:pid, :cookie);
SELECT try_sql(format('SELECT count(*) FROM pg_background_result_json(%s, %s)', :pid, :cookie));
-- by job id, for a job of this session
SELECT pg_background_launch_kept('SELECT 8 AS eight') AS job \gset
SELECT pg_background_job_result_json(:job);
SELECT regexp_replace(try_sql(format('SELECT count(*) FROM pg_background_job_result_json(%s)', :job)),
                      'job \d+', 'job N') AS read_twice;
-- rows of submit's jobs are never readable
SELECT try_sql(format('SELECT count(*) FROM pg_background_result_json(%s)',
                      (pg_background_submit_v2('SELECT 1')).pid));
SELECT pg_background_detach_all_v2() >= 0 AS cleaned;
