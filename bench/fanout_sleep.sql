SET pg_background.max_workers = 64;
SELECT count(*) FROM unnest((SELECT array_agg(pg_background_launch('SELECT 1 FROM pg_sleep(0.1)')) FROM generate_series(1, @N@))) p, LATERAL pg_background_result(p) AS (r int);
