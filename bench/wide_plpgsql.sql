SELECT sum(length(r)) FROM bench_wide() AS r;
