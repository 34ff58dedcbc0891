SELECT sum(length(r)) FROM (SELECT repeat('x', 1000) AS r FROM generate_series(1, 100000)) s;
