SELECT CASE WHEN 'bench' = ANY (coalesce(dblink_get_connections(), '{}')) THEN 'OK' ELSE dblink_connect('bench', '@CONN@') END;
SELECT dblink_exec('bench', format('INSERT INTO bench_log(msg) VALUES (%L)', 'logged'));
