SELECT count(*) FROM bench_ints() AS g;
