SET pg_background.max_jobs_per_role = 64;
SELECT * FROM pg_background_result(pg_background_launch('SELECT 2+2')) AS (r int);
