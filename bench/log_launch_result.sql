SELECT * FROM pg_background_result(pg_background_launch(format('INSERT INTO bench_log(msg) VALUES (%L)', 'logged'))) AS (tag text);
