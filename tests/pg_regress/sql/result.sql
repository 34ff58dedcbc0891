-- pg_background_result: rows, command tags, type matching, call shape.

-- rows of the last statement only
SELECT run('SELECT 1; SELECT 2', 'r int');
SELECT run('INSERT INTO t VALUES (4) RETURNING id', 'r int');
SELECT run('SELECT g FROM generate_series(1, 5) g', 'r int');

-- command tags, one row per statement, in order, when no statement returns rows
SELECT run('INSERT INTO t VALUES (2); UPDATE t SET id = id WHERE false; DELETE FROM t WHERE false');
SELECT run('SELECT 1; INSERT INTO t VALUES (3)');
SELECT run('');
SELECT run('SET work_mem = ''8MB''');
SELECT run('DO $$BEGIN END$$');

-- each statement sees the effects of the earlier ones (fixed: the C extension saw none)
SELECT run('INSERT INTO t VALUES (7); SELECT count(*) FROM t WHERE id = 7', 'r bigint');
SELECT run('CREATE TABLE t3(a int); INSERT INTO t3 VALUES (1); SELECT count(*) FROM t3', 'r bigint');

-- NULLs and several columns
SELECT * FROM pg_background_result(pg_background_launch('SELECT NULL::int, ''x''::text, 2.5::numeric'))
  AS (a int, b text, c numeric);

-- type matching: exact OIDs, no casts
SELECT run('SELECT 1', 'r bigint');
SELECT run('SELECT 1', 'r text');
SELECT run('SELECT 1, 2', 'r int');
SELECT run('INSERT INTO t VALUES (8)', 'r int');
SELECT run('SELECT', 'r int');
SELECT run('SELECT ''abcdef''::varchar(10)', 'r varchar(2)');
SELECT run('SELECT ''abcdef''::varchar(10)', 'r varchar');
SELECT run('SELECT pg_sleep(0)::text');
SELECT run('SELECT pg_sleep(0)', 'r void');
-- a type without a binary send function comes as text and must be read as text
SELECT run('SELECT ''postgres=arwdDxt/postgres''::aclitem');
SELECT run('SELECT ''postgres=arwdDxt/postgres''::aclitem', 'r aclitem');

-- call shape: a wrong call does not consume the results (fixed: the C extension lost them)
SELECT pg_background_launch('SELECT 42') AS pid \gset
SELECT pg_background_result(:pid);
\set VERBOSITY terse
SELECT * FROM pg_background_result(:pid);
\set VERBOSITY default
SELECT read_outcome(:pid, 'r int');

-- a rowtype mismatch found at the row description does consume them (as in 1.x)
SELECT pg_background_launch('SELECT 42') AS pid \gset
SELECT read_outcome(:pid, 'r text');
SELECT read_outcome(:pid, 'r int');

-- unknown PIDs, NULL
SELECT * FROM pg_background_result(0) AS (r text);
SELECT count(*) FROM pg_background_result(NULL::int4) AS (r text);
-- (an untyped NULL or literal resolves to the PID form, as in 1.x)
SELECT count(*) FROM pg_background_result(NULL) AS (r text);
SELECT * FROM pg_background_result('0') AS (r text);

-- a 100,000-row result streams through a 1 kB queue
SELECT count(*), sum(g) FROM pg_background_result(
  pg_background_launch('SELECT g FROM generate_series(1, 100000) g', 1024)) AS (g int);

-- results survive the worker's exit, and a LIMIT does not lose the rest of the stream
SELECT pg_background_launch('SELECT 42') AS pid \gset
SELECT wait_until(format('NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)', :pid));
SELECT * FROM pg_background_result(:pid) AS (r int) LIMIT 1;

-- rows travel as the worker's tuples, with values stored out of line fetched by the worker: the
-- result stays readable after the rows are gone (deleted and vacuumed) before it is read
CREATE TABLE toasted(v text);
ALTER TABLE toasted ALTER COLUMN v SET STORAGE EXTERNAL;
INSERT INTO toasted SELECT string_agg(md5(g::text), '') FROM generate_series(1, 1000) g;
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT v FROM toasted') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
DELETE FROM toasted;
VACUUM toasted;
SELECT length(r), md5(r) = md5((SELECT string_agg(md5(g::text), '') FROM generate_series(1, 1000) g)) AS same
  FROM pg_background_result_v2(:pid, :cookie) AS (r text);
-- a composite, an array, a range and NULLs keep their values
SELECT * FROM pg_background_result(pg_background_launch(
  'SELECT ROW(1, 2)::pg_background_handle, ARRAY[[1, NULL], [3, 4]], int4range(1, 5), NULL::text, ''''::text'))
  AS (h pg_background_handle, a int[], r int4range, n text, e text);
