-- pg_background_launch: arguments, queue sizes, return value.
SELECT pg_background_launch(NULL) IS NULL AS null_sql_gives_null;
SELECT pg_background_launch('SELECT 1', NULL) IS NULL AS null_queue_gives_null;

-- queue sizes: below the shm_mq minimum, above 256 MB, 0 and negative mean the default
SELECT pg_background_launch('SELECT 1', 63);
SELECT pg_background_launch('SELECT 1', 268435457);
SELECT read_outcome(pg_background_launch('SELECT 1', 64), 'r int');
SELECT read_outcome(pg_background_launch('SELECT 1', 0), 'r int');
SELECT read_outcome(pg_background_launch('SELECT 1', -5), 'r int');
SELECT read_outcome(pg_background_launch('SELECT 1', 268435456), 'r int');

-- named notation works with the 1.x argument names
SELECT read_outcome(pg_background_launch(sql => 'SELECT 7', queue_size => 1024), 'r int');

-- the PID is a live process while it runs
SELECT pg_background_launch('SELECT 1') AS pid \gset
SELECT :pid > 0 AS positive_pid;
SELECT read_outcome(:pid, 'r int');

-- the default queue size comes from the setting
SET pg_background.default_queue_size = '1kB';
SELECT read_outcome(pg_background_launch('SELECT count(*) FROM generate_series(1, 10000)'), 'r bigint');
RESET pg_background.default_queue_size;

-- settings: units, ranges, reserved prefix
SHOW pg_background.max_workers;
SHOW pg_background.default_queue_size;
SHOW pg_background.worker_timeout;
SET pg_background.worker_timeout = '1s';
SHOW pg_background.worker_timeout;
RESET pg_background.worker_timeout;
SET pg_background.max_workers = 0;
SET pg_background.default_queue_size = 63;
SET pg_background.bogus = 1;
