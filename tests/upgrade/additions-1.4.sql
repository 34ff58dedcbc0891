-- Added to pg_background--1.0.sql, the stand-in for 1.4 (see run.sh): EXECUTE revoked from
-- PUBLIC; grant helpers taking `user_name`, without a pinned search_path; still no types and no
-- role.
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
