SELECT count(*) FROM pg_background_result(pg_background_launch('SELECT g FROM generate_series(1, 1000000) g', @QUEUE@)) AS (g int);
