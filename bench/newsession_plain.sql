SET pg_background.worker_idle_timeout = 1000;
SELECT 2+2;
