SELECT CASE WHEN 'bench' = ANY (coalesce(dblink_get_connections(), '{}')) THEN 'OK' ELSE dblink_connect('bench', '@CONN@') END;
SELECT sum(length(r)) FROM dblink('bench', 'SELECT repeat(''x'', 1000) FROM generate_series(1, 100000)') AS (r text);
