SET pg_background.spill_after = 0;
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT g FROM generate_series(1, 1000000) g') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT count(*) FROM pg_background_result_v2(:pid, :cookie) AS (g int);
