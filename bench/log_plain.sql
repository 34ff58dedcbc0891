INSERT INTO bench_log(msg) VALUES ('logged');
