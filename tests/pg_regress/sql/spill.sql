-- Never stuck on a full queue: a job whose result does not fit its queue, and that nobody reads
-- yet, writes the rest to a temporary file and finishes; the reader gets every row, in order.
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT i, md5(i::text) AS m FROM generate_series(1, 100000) i', 8192) h \gset
SHOW pg_background.spill_after;
SHOW pg_background.spill_limit;
-- the job ends without anybody reading (in 1.x this wait never returned)
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 60000) AS finished;
SELECT count(*) AS rows, sum(i) AS sum, bool_and(m = md5(i::text)) AS intact,
       bool_and(i = n) AS in_order
  FROM (SELECT i, m, row_number() OVER () AS n
          FROM pg_background_result_v2(:pid, :cookie) AS (i int, m text)) r;

-- rows beyond pg_background.spill_limit: the job fails with a clear error
SET pg_background.spill_limit = '64kB';
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT md5(i::text) FROM generate_series(1, 100000) i', 8192) h \gset
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 60000) AS finished;
SELECT read_outcome(:pid);
RESET pg_background.spill_limit;

-- spill_after = -1: the worker waits for its reader, as in 1.x; reading still gets everything
SET pg_background.spill_after = -1;
SELECT count(*) AS rows, sum(i) AS sum
  FROM pg_background_result(pg_background_launch(
         'SELECT i, md5(i::text) AS m FROM generate_series(1, 100000) i', 8192)) AS (i int, m text);
RESET pg_background.spill_after;
