SELECT sum(length(r)) FROM pg_background_result(pg_background_launch('SELECT repeat(''x'', 1000) FROM generate_series(1, 100000)', @QUEUE@)) AS (r text);
