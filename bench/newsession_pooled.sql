SET pg_background.worker_idle_timeout = 1000;
SELECT * FROM pg_background_result(pg_background_launch('SELECT 2+2')) AS (r int);
