-- A stand-in for the install script of the C extension pg_background 1.4 (see
-- pg_background--1.8.sql): the classic API with the old queue size default of 65536, no
-- types and no role; EXECUTE revoked from PUBLIC; grant helpers taking `user_name`, without a
-- pinned search_path.

CREATE FUNCTION pg_background_launch(sql text, queue_size int4 DEFAULT 65536) RETURNS int4
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_result(pid int4) RETURNS SETOF record
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach(pid int4) RETURNS void
    STRICT VOLATILE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
REVOKE ALL ON FUNCTION pg_background_launch(text, int4) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_result(int4) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_detach(int4) FROM PUBLIC;

CREATE FUNCTION grant_pg_background_privileges(user_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  cmd text;
BEGIN
  FOREACH cmd IN ARRAY ARRAY[
      format('GRANT EXECUTE ON FUNCTION pg_background_launch(text, int4) TO %I', user_name),
      format('GRANT EXECUTE ON FUNCTION pg_background_result(int4) TO %I', user_name),
      format('GRANT EXECUTE ON FUNCTION pg_background_detach(int4) TO %I', user_name)] LOOP
    IF print_commands THEN RAISE INFO 'Executed command: %', cmd; END IF;
    EXECUTE cmd;
  END LOOP;
  RETURN true;
END$$;
CREATE FUNCTION revoke_pg_background_privileges(user_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  cmd text;
BEGIN
  FOREACH cmd IN ARRAY ARRAY[
      format('REVOKE EXECUTE ON FUNCTION pg_background_launch(text, int4) FROM %I', user_name),
      format('REVOKE EXECUTE ON FUNCTION pg_background_result(int4) FROM %I', user_name),
      format('REVOKE EXECUTE ON FUNCTION pg_background_detach(int4) FROM %I', user_name)] LOOP
    IF print_commands THEN RAISE INFO 'Executed command: %', cmd; END IF;
    EXECUTE cmd;
  END LOOP;
  RETURN true;
END$$;
