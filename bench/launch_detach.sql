SELECT pg_background_detach(pg_background_launch('SELECT 1', @QUEUE@));
