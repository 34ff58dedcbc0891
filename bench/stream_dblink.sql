SELECT CASE WHEN 'bench' = ANY (coalesce(dblink_get_connections(), '{}')) THEN 'OK' ELSE dblink_connect('bench', '@CONN@') END;
SELECT count(*) FROM dblink('bench', 'SELECT g FROM generate_series(1, 1000000) g') AS (g int);
