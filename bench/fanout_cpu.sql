SET pg_background.max_workers = 64;
SELECT count(*) FROM unnest((SELECT array_agg(pg_background_launch('SELECT count(*) FROM generate_series(1, 1000000)')) FROM generate_series(1, @N@))) p, LATERAL pg_background_result(p) AS (r bigint);
