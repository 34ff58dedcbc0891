SELECT * FROM pg_background_job_result(pg_background_launch_kept('SELECT 2+2')) AS (r int);
