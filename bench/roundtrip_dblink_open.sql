SELECT CASE WHEN 'bench' = ANY (coalesce(dblink_get_connections(), '{}')) THEN 'OK' ELSE dblink_connect('bench', '@CONN@') END;
SELECT * FROM dblink('bench', 'SELECT 2+2') AS (r int);
