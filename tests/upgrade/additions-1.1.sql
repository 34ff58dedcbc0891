-- Added to pg_background--1.0.sql to make the stand-in for 1.1 (see run.sh).
-- 1.1's pg_background_discard_result was reverted in 1.2, but no later update dropped it. Our
-- library has no such symbol; the stand-in binds it to detach, which is what it amounted to.
CREATE FUNCTION pg_background_discard_result(pid int4) RETURNS void
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
