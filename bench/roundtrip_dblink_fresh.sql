SELECT * FROM dblink('@CONN@', 'SELECT 2+2') AS (r int);
