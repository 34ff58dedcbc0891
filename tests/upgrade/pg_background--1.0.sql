-- A stand-in for the install script of the C extension pg_background 1.0 (see
-- pg_background--1.8.sql): the classic API only, with the old queue size default of 65536, no
-- types, no role, no helpers; EXECUTE stays with PUBLIC as it did then.

CREATE FUNCTION pg_background_launch(sql text, queue_size int4 DEFAULT 65536) RETURNS int4
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_result(pid int4) RETURNS SETOF record
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach(pid int4) RETURNS void
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
