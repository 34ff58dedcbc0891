SELECT count(*) FROM (SELECT g FROM generate_series(1, 1000000) g) s;
