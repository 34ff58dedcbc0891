SELECT pg_background_autonomous_exec('INSERT INTO bench_log(msg) VALUES ($1)', 'logged'::text);
