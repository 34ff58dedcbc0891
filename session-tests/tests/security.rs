//! The worker never has more privileges than its caller: one test per rule, each with two or
//! more roles. (Handles of other roles and sessions: sessions.rs,
//! `other_roles_and_other_sessions_cannot_touch_a_worker` and
//! `handle_api_across_roles_and_sessions`.)

use postgres::Client;
use session_tests::*;
use std::sync::Once;

/// Roles of these tests, created once: two application roles, a group role, a definer, and a
/// role without the extension's privileges.
fn roles() {
    static CREATED: Once = Once::new();
    CREATED.call_once(|| {
        connect()
            .batch_execute(
                "DROP MATERIALIZED VIEW IF EXISTS sec_mv;
                 DROP FUNCTION IF EXISTS sec_run(text), sec_job(text);
                 DROP TABLE IF EXISTS sec_secret, sec_rows;
                 DROP ROLE IF EXISTS sec_alice, sec_bob, sec_group, sec_owner, sec_nobody;
                 CREATE ROLE sec_group IN ROLE pgbackground_role;
                 CREATE ROLE sec_alice LOGIN IN ROLE pgbackground_role, sec_group;
                 CREATE ROLE sec_bob LOGIN IN ROLE pgbackground_role;
                 CREATE ROLE sec_owner IN ROLE pgbackground_role;
                 CREATE ROLE sec_nobody LOGIN;
                 CREATE TABLE sec_secret(v text);
                 INSERT INTO sec_secret VALUES ('secret');
                 CREATE TABLE sec_rows(owner name, v int);
                 INSERT INTO sec_rows VALUES ('sec_alice', 1), ('sec_alice', 2), ('sec_bob', 3);
                 ALTER TABLE sec_rows ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY own ON sec_rows USING (owner = current_user);
                 GRANT SELECT ON sec_rows TO sec_alice, sec_bob;
                 CREATE FUNCTION sec_run(sql text) RETURNS text LANGUAGE sql SECURITY DEFINER
                   SET search_path = public, pg_catalog
                   AS $$ SELECT r FROM pg_background_result(pg_background_launch(sql)) AS (r text) $$;
                 ALTER FUNCTION sec_run(text) OWNER TO sec_owner;
                 GRANT EXECUTE ON FUNCTION sec_run(text) TO sec_alice;",
            )
            .unwrap();
    });
}

fn run(c: &mut Client, sql: &str) -> Result<String, postgres::Error> {
    c.query_one(
        "SELECT string_agg(r, ',') FROM pg_background_result(pg_background_launch($1)) AS (r text)",
        &[&sql],
    )
    .map(|row| row.get::<_, Option<String>>(0).unwrap_or_default())
}

fn who(c: &mut Client) -> String {
    run(c, "SELECT session_user || '/' || current_user").unwrap()
}

#[test]
fn the_worker_runs_as_the_callers_session_user_and_current_user() {
    roles();
    let mut alice = connect_as("sec_alice");
    assert_eq!(who(&mut alice), "sec_alice/sec_alice");
    alice.batch_execute("SET ROLE sec_group").unwrap();
    assert_eq!(who(&mut alice), "sec_alice/sec_group");
    // RESET ROLE in the job gives back the login user, no more
    assert_eq!(
        run(&mut alice, "RESET ROLE; SELECT current_user::text").unwrap(),
        "sec_alice"
    );
    let err = run(&mut alice, "SET ROLE sec_bob").unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    // a superuser's SET SESSION AUTHORIZATION: the job's session user is the caller's
    let mut admin = connect();
    admin
        .batch_execute("SET SESSION AUTHORIZATION sec_bob")
        .unwrap();
    // (as in a parallel worker: the setting travels with the others; 1.x is said to keep the
    // login user; either way only a superuser can use it, and can undo it in its own session)
    assert_eq!(who(&mut admin), "sec_bob/sec_bob");
}

#[test]
fn launched_from_a_security_definer_function_the_job_runs_as_the_definer() {
    roles();
    let mut alice = connect_as("sec_alice");
    let got: String = alice
        .query_one(
            "SELECT sec_run('SELECT session_user || ''/'' || current_user')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(got, "sec_alice/sec_owner");
    // and keeps the security-definer context: it cannot change its role
    let err = alice
        .query_one("SELECT sec_run('SET ROLE sec_alice')", &[])
        .unwrap_err();
    assert_error(
        &err,
        "42501",
        "cannot set parameter \"role\" within security-definer function",
    );
}

#[test]
fn a_job_reads_only_what_its_caller_may_read() {
    roles();
    let mut alice = connect_as("sec_alice");
    let mut bob = connect_as("sec_bob");
    let err = run(&mut alice, "SELECT v FROM sec_secret").unwrap_err();
    assert_error(&err, "42501", "permission denied for table sec_secret");
    // row level security applies to the job as to its caller
    let rows = "SELECT string_agg(v::text, ' ' ORDER BY v) FROM sec_rows";
    assert_eq!(run(&mut alice, rows).unwrap(), "1 2");
    assert_eq!(run(&mut bob, rows).unwrap(), "3");
    let direct: String = bob.query_one(rows, &[]).unwrap().get(0);
    assert_eq!(direct, "3");
}

#[test]
fn a_job_cannot_do_what_only_a_superuser_may() {
    roles();
    let mut alice = connect_as("sec_alice");
    let mut admin = connect();
    let admin_pid = backend_pid(&mut admin);
    for sql in [
        "ALTER SYSTEM SET work_mem = '1MB'".to_owned(),
        "LOAD 'auto_explain'".to_owned(),
        "SET log_statement = 'all'".to_owned(),
        "SELECT pg_read_file('/etc/passwd')".to_owned(),
        "COPY sec_rows FROM PROGRAM 'id'".to_owned(),
        "CREATE ROLE sec_evil SUPERUSER".to_owned(),
        format!("SELECT pg_terminate_backend({admin_pid})::text"),
    ] {
        let err = run(&mut alice, &sql).expect_err(&sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    assert!(admin.query_one("SELECT 1", &[]).is_ok());
    // a superuser's job may (the refusal is the role's, not ours)
    run(&mut admin, "SET log_statement = 'all'").unwrap();
}

#[test]
fn a_role_without_the_extensions_privileges_can_call_nothing() {
    roles();
    let mut admin = connect();
    let calls: Vec<String> = admin
        .query(
            // (arguments that are not constants: a STRICT call with constant NULLs is folded
            // away before its privileges are checked)
            "SELECT format('SELECT %s(%s)', p.oid::regproc, (
                      SELECT string_agg(format('(SELECT NULL::%s)', CASE WHEN t = '\"any\"'::regtype
                                                THEN 'text' ELSE format_type(t, NULL) END), ', ')
                        FROM unnest(p.proargtypes) AS t))
               FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
              WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_background')
                AND p.prorettype <> 'record'::regtype",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(calls.len() > 20);
    let mut nobody = connect_as("sec_nobody");
    for call in &calls {
        let err = nobody.batch_execute(call).unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{call}: {err}");
    }
    for view in ["pg_background_list", "pg_background_activity"] {
        let err = nobody
            .batch_execute(&format!("SELECT * FROM {view}"))
            .unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{view}");
    }
}

#[test]
fn the_grant_helpers_cannot_be_used_to_escalate() {
    roles();
    let mut alice = connect_as("sec_alice");
    for call in [
        "SELECT grant_pg_background_privileges('sec_nobody')",
        "SELECT revoke_pg_background_privileges('sec_bob')",
        "SELECT pg_background_drop_executor_role()",
        "GRANT pgbackground_role TO sec_nobody",
    ] {
        let err = alice.batch_execute(call).unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{call}: {err}");
    }
    // nor through a job
    let err = run(
        &mut alice,
        "SELECT grant_pg_background_privileges('sec_nobody')::text",
    )
    .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    let granted: bool = connect()
        .query_one(
            "SELECT pg_has_role('sec_nobody', 'pgbackground_role', 'MEMBER')
                 OR has_function_privilege('sec_nobody', 'pg_background_launch(text,int4)', 'EXECUTE')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!granted);
}

#[test]
fn a_job_launched_in_a_security_restricted_operation_stays_restricted() {
    roles();
    connect()
        .batch_execute(
            "DROP MATERIALIZED VIEW IF EXISTS sec_mv;
             CREATE OR REPLACE FUNCTION sec_job(sql text) RETURNS text LANGUAGE sql VOLATILE
               SET search_path = public, pg_catalog AS
               $$ SELECT string_agg(r, ',') FROM pg_background_result(pg_background_launch(sql)) AS (r text) $$;
             CREATE MATERIALIZED VIEW sec_mv AS
               SELECT public.sec_job('CREATE TEMP TABLE sec_x(a int)') AS a WITH NO DATA;
             ALTER MATERIALIZED VIEW sec_mv OWNER TO sec_alice;",
        )
        .unwrap();
    let mut alice = connect_as("sec_alice");
    // REFRESH MATERIALIZED VIEW runs the view's query as its owner in a security-restricted
    // operation, which must not create a temporary table (it could outlive the operation)
    alice
        .batch_execute("CREATE TEMP TABLE outside_the_operation(a int)")
        .unwrap();
    let err = alice
        .batch_execute("REFRESH MATERIALIZED VIEW sec_mv")
        .unwrap_err();
    assert_error(
        &err,
        "42501",
        "cannot create temporary table within security-restricted operation",
    );
    connect()
        .batch_execute("DROP MATERIALIZED VIEW sec_mv; DROP FUNCTION sec_job(text)")
        .unwrap();
}
