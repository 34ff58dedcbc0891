//! Runs the SQL string the way `exec_simple_query` (`src/backend/tcop/postgres.c`) runs a
//! simple-query message, and reports the outcome through the redirected protocol output.
//!
//! One transaction wraps the whole string. Each statement is parsed, analysed, planned and run
//! in an unnamed portal; the command counter advances after each one, so later statements see
//! the effects of earlier ones. Only the last statement's rows go to the launcher (binary format
//! where the type has a send function, text otherwise); every statement sends its command tag.

use super::error_capture::ErrorCapture;
use crate::ffi;
use crate::guc;
use crate::params::{self, Param, Value};
use crate::shm::FixedState;
use core::ffi::{c_char, CStr};
use core::sync::atomic::Ordering;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

/// Execute `sql` as the launcher's current user, commit, and send ReadyForQuery. With `params`
/// (an autonomous call), `sql` must be one statement, run with them bound as `$1 … $n`.
/// `before_reply` runs after the commit, before ReadyForQuery.
pub fn run_string(
    sql: &CStr,
    params: Option<&[u8]>,
    fixed: &FixedState,
    before_reply: &mut dyn FnMut(),
) {
    let params = params.map(|bytes| {
        let Ok(params) = params::decode(bytes) else {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "malformed bound parameters in the job's shared memory"
            );
        };
        params
    });
    let sql_ptr = sql.as_ptr();
    // submit_v2 jobs send nothing: not even command tags (their number is unbounded).
    let dest = if fixed.results_disabled {
        pg_sys::CommandDest::DestNone
    } else {
        pg_sys::CommandDest::DestRemote
    };
    // SAFETY: we are connected and idle; everything below is the per-query sequence of
    // exec_simple_query on server APIs, with the SQL text alive for the whole call.
    unsafe {
        // Parse trees, plans and receivers live in a context of their own, as they live in
        // MessageContext in exec_simple_query: a statement that commits inside (VACUUM, CREATE
        // INDEX CONCURRENTLY, CALL of a procedure that commits) frees the transaction's memory.
        // (not deleted when an ERROR unwinds: it may be current then; the worker exits)
        let job_context = core::mem::ManuallyDrop::new(crate::server::MemoryContext::top_level(
            c"pg_background statement",
            crate::server::ContextSize::Default,
        ));
        pg_sys::SetCurrentStatementStartTimestamp();
        fixed
            .started_at
            .store(pg_sys::GetCurrentTimestamp(), Ordering::Release);
        pg_sys::StartTransactionCommand();
        pg_sys::CurrentMemoryContext = job_context.as_ptr();
        // The transaction restores the previous identity on abort (xact.c saves it at start).
        pg_sys::SetUserIdAndSecContext(fixed.current_user_id, fixed.sec_context);
        pg_sys::debug_query_string = sql_ptr;
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, sql_ptr);

        let timeout = match guc::WORKER_TIMEOUT.get() {
            ms if ms > 0 => ms,
            _ => pg_sys::StatementTimeout,
        };
        if timeout > 0 {
            ffi::enable_timeout_after(ffi::STATEMENT_TIMEOUT, timeout);
        }
        run_statements(sql, params.as_deref(), dest, fixed);
        if timeout > 0 {
            ffi::disable_timeout(ffi::STATEMENT_TIMEOUT, false);
        }
        pg_sys::CommitTransactionCommand();
        fixed
            .finished_at
            .store(pg_sys::GetCurrentTimestamp(), Ordering::Release);
        fixed.succeeded.store(true, Ordering::Release);
        crate::registry::settled(fixed);
        // (before this backend shows as idle: whoever sees it idle may count on it)
        before_reply();
        pg_sys::CurrentMemoryContext = pg_sys::TopMemoryContext;
        drop(core::mem::ManuallyDrop::into_inner(job_context));
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, core::ptr::null());
        pg_sys::debug_query_string = core::ptr::null();
        pg_sys::ReadyForQuery(dest);
    }
}

/// Parse `sql` and run its statements.
///
/// # Safety
/// Inside the job's transaction, with its settings, identity and memory context in place.
unsafe fn run_statements(
    sql: &CStr,
    params: Option<&[Param<'_>]>,
    dest: pg_sys::CommandDest::Type,
    fixed: &FixedState,
) {
    let sql_ptr = sql.as_ptr();
    // SAFETY: a raw parse of a live NUL-terminated string, in the job's transaction; the list
    // and its statements live in the current (statement) context.
    let parsetrees = unsafe { pg_sys::pg_parse_query(sql_ptr) };
    // SAFETY: the list the parser returned.
    let count = unsafe { list_length(parsetrees) };
    if params.is_some() && count > 1 {
        // (what Parse says of a multi-statement string)
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "cannot insert multiple commands into a prepared statement"
        );
    }
    for i in 0..count {
        // SAFETY: `i` is below the list's length.
        let raw = unsafe { list_nth(parsetrees, i) }.cast::<pg_sys::RawStmt>();
        let statement = Statement {
            raw,
            sql: sql_ptr,
            params,
            top_level: count == 1,
            last: i + 1 == count,
        };
        // SAFETY: the caller's contract; `raw` is a statement of `sql`.
        unsafe { run_statement(&statement, dest, fixed) };
    }
}

/// # Safety
/// A valid (or NIL) list.
unsafe fn list_length(list: *mut pg_sys::List) -> usize {
    // SAFETY: NIL is NULL; otherwise a live List.
    unsafe { list.as_ref().map_or(0, |l| l.length as usize) }
}

/// # Safety
/// `n` < `list_length(list)`.
unsafe fn list_nth(list: *mut pg_sys::List, n: usize) -> *mut core::ffi::c_void {
    // SAFETY: the caller's bound; pointer lists keep their cells in `elements`.
    unsafe { (*(*list).elements.add(n)).ptr_value }
}

/// Statements refused before they run, with the 1.x texts.
///
/// # Safety
/// `stmt` is a live parse node.
unsafe fn check_statement(stmt: *mut pg_sys::Node) {
    // SAFETY: every node starts with its tag.
    let tag = unsafe { (*stmt).type_ };
    if tag == pg_sys::NodeTag::T_TransactionStmt {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "transaction control statements are not allowed in pg_background"
        );
    }
    if tag == pg_sys::NodeTag::T_CopyStmt {
        // SAFETY: the tag says it is a CopyStmt.
        let copy = unsafe { &*stmt.cast::<pg_sys::CopyStmt>() };
        // COPY TO STDOUT / FROM STDIN need the copy sub-protocol with a client; files and
        // programs are fine (the server checks their privileges).
        if copy.filename.is_null() {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "COPY protocol not allowed in pg_background"
            );
        }
    }
}

/// One statement of the job's string.
struct Statement<'a> {
    raw: *mut pg_sys::RawStmt,
    sql: *const c_char,
    /// Bound parameters (autonomous calls only).
    params: Option<&'a [Param<'a>]>,
    /// The string's only statement (non-atomic CALL, VACUUM, … are allowed).
    top_level: bool,
    /// Its rows go to the launcher.
    last: bool,
}

/// # Safety
/// Inside the job's transaction; `s.raw` is a statement of `s.sql`.
unsafe fn run_statement(s: &Statement<'_>, dest: pg_sys::CommandDest::Type, fixed: &FixedState) {
    let (raw, sql, top_level, last) = (s.raw, s.sql, s.top_level, s.last);
    // SAFETY: the sequence of exec_simple_query for one statement (with exec_bind_message's
    // parameter handling when there are parameters).
    unsafe {
        let stmt = (*raw).stmt;
        check_statement(stmt);
        let tag = pg_sys::CreateCommandTag(stmt);
        pg_sys::BeginCommand(tag, dest);

        // (input functions of parameters may need a snapshot, as in exec_bind_message)
        let snapshot = pg_sys::analyze_requires_snapshot(raw) || s.params.is_some();
        if snapshot {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        let (queries, bound) = match s.params {
            None => (
                crate::server::analyze_and_rewrite(raw, sql),
                core::ptr::null_mut(),
            ),
            Some(params) => analyze_with_params(raw, sql, params),
        };
        let plans =
            pg_sys::pg_plan_queries(queries, sql, pg_sys::CURSOR_OPT_PARALLEL_OK as i32, bound);
        if snapshot {
            pg_sys::PopActiveSnapshot();
        }
        pg_sys::check_for_interrupts!();

        let portal = pg_sys::CreatePortal(c"".as_ptr(), true, true);
        (*portal).visible = false;
        pg_sys::PortalDefineQuery(
            portal,
            core::ptr::null(),
            sql,
            tag,
            plans,
            core::ptr::null_mut(),
        );
        pg_sys::PortalStart(portal, bound, 0, core::ptr::null_mut());
        set_result_formats(portal);

        // Only the last statement's rows go to the launcher.
        let rows_dest = if last {
            dest
        } else {
            pg_sys::CommandDest::DestNone
        };
        let mut receiver = pg_sys::CreateDestReceiver(rows_dest);
        if rows_dest == pg_sys::CommandDest::DestRemote {
            ffi::SetRemoteDestReceiverParams(receiver, portal);
            // rows as tuples; the RowDescription as printtup sends it
            receiver = super::tuples::wrap(receiver);
        }
        let mut qc = pg_sys::QueryCompletion {
            commandTag: pg_sys::CommandTag::CMDTAG_UNKNOWN,
            nprocessed: 0,
        };
        crate::server::portal_run(portal, top_level, receiver, &mut qc);
        if let Some(destroy) = (*receiver).rDestroy {
            destroy(receiver);
        }
        pg_sys::PortalDrop(portal, false);

        // What exec_simple_query does between the statements of one implicit transaction.
        pg_sys::CommandCounterIncrement();
        pg_sys::EndCommand(&qc, dest, false);
        // For result_info_v2: the last statement's tag and row count.
        let tag_name = CStr::from_ptr(pg_sys::GetCommandTagName(qc.commandTag));
        fixed.last_tag.set(&tag_name.to_string_lossy());
        fixed
            .last_rows
            .store(qc.nprocessed as i64, Ordering::Release);
    }
}

/// Analyse with bound parameters, as Parse and Bind do: given types are kept, type 0 is inferred
/// from the statement; every parameter the statement uses must be supplied and typed. Returns
/// the rewritten queries and the parameter list (allocated in the current memory context).
///
/// # Safety
/// As for `crate::server::analyze_and_rewrite`, with an active snapshot.
unsafe fn analyze_with_params(
    raw: *mut pg_sys::RawStmt,
    sql: *const c_char,
    params: &[Param<'_>],
) -> (*mut pg_sys::List, pg_sys::ParamListInfo) {
    // SAFETY: the caller's contract; the type array is palloc'd as the analyser expects (it may
    // repalloc it); the parameter list has `count` slots.
    unsafe {
        let supplied = params.len();
        let mut types = pg_sys::palloc0(core::mem::size_of::<pg_sys::Oid>() * supplied.max(1))
            .cast::<pg_sys::Oid>();
        for (i, p) in params.iter().enumerate() {
            *types.add(i) = pg_sys::Oid::from(p.type_oid);
        }
        let mut count = supplied as core::ffi::c_int;
        let Some(queries) =
            crate::server::analyze_and_rewrite_with_params(raw, sql, &mut types, &mut count)
        else {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "bound parameters need PostgreSQL 15 or later"
            );
        };
        let count = count as usize;
        if count > supplied {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_UNDEFINED_PARAMETER,
                format!("there is no parameter ${}", supplied + 1)
            );
        }
        let list = pg_sys::makeParamList(supplied as core::ffi::c_int);
        let slots = (*list).params.as_mut_slice(supplied);
        for (i, (param, slot)) in params.iter().zip(slots.iter_mut()).enumerate() {
            let ptype = *types.add(i);
            if ptype == pg_sys::InvalidOid || ptype == pg_sys::UNKNOWNOID {
                ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_INDETERMINATE_DATATYPE,
                    format!("could not determine data type of parameter ${}", i + 1)
                );
            }
            slot.ptype = ptype;
            slot.pflags = pg_sys::PARAM_FLAG_CONST as u16;
            slot.isnull = matches!(param.value, Value::Null);
            slot.value = match param.value {
                Value::Null => pg_sys::Datum::from(0),
                Value::Text(text) => {
                    let mut input = pg_sys::InvalidOid;
                    let mut ioparam = pg_sys::InvalidOid;
                    pg_sys::getTypeInputInfo(ptype, &mut input, &mut ioparam);
                    let cstr = pg_sys::pnstrdup(text.as_ptr().cast(), text.len());
                    pg_sys::OidInputFunctionCall(input, cstr, ioparam, -1)
                }
                Value::Binary(bytes) => {
                    let mut recv = pg_sys::InvalidOid;
                    let mut ioparam = pg_sys::InvalidOid;
                    pg_sys::getTypeBinaryInputInfo(ptype, &mut recv, &mut ioparam);
                    let buf = pg_sys::makeStringInfo();
                    pg_sys::appendBinaryStringInfo(buf, bytes.as_ptr().cast(), bytes.len() as i32);
                    let value = pg_sys::OidReceiveFunctionCall(recv, buf, ioparam, -1);
                    if (*buf).cursor != (*buf).len {
                        ereport!(
                            ERROR,
                            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                            format!("incorrect binary data format in bind parameter {}", i + 1)
                        );
                    }
                    value
                }
            };
        }
        (queries, list)
    }
}

/// Binary for every column whose type has a send function, text for the others.
///
/// # Safety
/// `portal` is started.
unsafe fn set_result_formats(portal: pg_sys::Portal) {
    // SAFETY: a started portal has its result descriptor (NULL when it returns no rows).
    unsafe {
        let desc = (*portal).tupDesc;
        if desc.is_null() {
            return;
        }
        let natts = (*desc).natts as usize;
        let mut formats: Vec<i16> = (0..natts)
            .map(|i| {
                i16::from(has_send_function(
                    (*crate::server::tuple_desc_attr(desc, i)).atttypid,
                ))
            })
            .collect();
        pg_sys::PortalSetResultFormat(portal, natts as i32, formats.as_mut_ptr());
    }
}

fn has_send_function(type_id: pg_sys::Oid) -> bool {
    crate::catalog::io_function(type_id, pg_sys::IOFuncSelector::IOFunc_send) != pg_sys::InvalidOid
}

/// Send the error that ended the job to the launcher, log it, and roll back.
/// `send` is false for submit_v2 jobs, whose output nobody reads.
pub fn report_failure(caught: CaughtError, capture: &ErrorCapture, sql: &CStr, fixed: &FixedState) {
    let send = !fixed.results_disabled;
    // SAFETY: reading the clock.
    fixed
        .finished_at
        .store(unsafe { pg_sys::GetCurrentTimestamp() }, Ordering::Release);
    let report = match &caught {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    let sqlstate = report.sql_error_code() as i32;
    let captured = capture.matching(sqlstate, report.message());
    // SAFETY: we are past the failing call, in the aborted-but-not-cleaned-up state that a
    // PG_CATCH block sees. A pending query cancel (statement timeout) has done its job; a
    // pending die still ends the process at the next CHECK_FOR_INTERRUPTS.
    unsafe {
        pg_sys::QueryCancelPending = 0;
        ffi::disable_timeout(ffi::STATEMENT_TIMEOUT, false);
    }
    match captured {
        Some(edata) => {
            // SAFETY: a complete copy made by CopyErrorData, alive while `capture` is.
            let edata = unsafe { edata.as_ref() };
            let mut fields = ErrorFields::from_error_data(edata);
            record_error(fixed, &fields);
            crate::registry::settled(fixed);
            // A position in the job's SQL means nothing against the launcher's query: send it
            // as an internal position with the job's SQL as internal query.
            if fields.cursor_position > 0 && fields.internal_query.is_none() {
                fields.internal_position = fields.cursor_position;
                fields.cursor_position = 0;
                fields.internal_query = Some(sql.to_string_lossy().into_owned());
            }
            if send {
                try_send_error(&fields);
            }
            // SAFETY: ThrowErrorData below ERROR only logs and returns; LOG_SERVER_ONLY keeps
            // it out of the queue (the launcher already has the error).
            unsafe {
                let mut copy = *edata;
                copy.elevel = pg_sys::LOG_SERVER_ONLY as i32;
                copy.output_to_client = false;
                pg_sys::ThrowErrorData(&mut copy);
            }
        }
        None => {
            let fields = ErrorFields {
                sqlstate,
                message: report.message().to_owned(),
                detail: report.detail().map(str::to_owned),
                hint: report.hint().map(str::to_owned),
                ..Default::default()
            };
            record_error(fixed, &fields);
            crate::registry::settled(fixed);
            if send {
                try_send_error(&fields);
            }
            pgrx::log!("background worker failed: {}", report.message());
        }
    }
    // SAFETY: as after a PG_CATCH: abort the failed transaction (also drops its portals and
    // restores the identity); the caller then returns and the worker exits normally.
    unsafe { pg_sys::AbortCurrentTransaction() };
}

/// Keep the error in the segment for `error_info_v2` (read without consuming the result).
/// Record an error the worker did not catch itself (FATAL), with the time it ended.
pub(super) fn record_error_data(fixed: &FixedState, edata: &pg_sys::ErrorData) {
    // SAFETY: reading the clock.
    fixed
        .finished_at
        .store(unsafe { pg_sys::GetCurrentTimestamp() }, Ordering::Release);
    record_error(fixed, &ErrorFields::from_error_data(edata));
}

fn record_error(fixed: &FixedState, f: &ErrorFields) {
    let e = &fixed.error;
    let sqlstate = crate::protocol::unpack_sql_state(f.sqlstate);
    e.sqlstate
        .set(std::str::from_utf8(&sqlstate).unwrap_or("XX000"));
    e.message.set(&f.message);
    e.detail.set(f.detail.as_deref().unwrap_or(""));
    e.hint.set(f.hint.as_deref().unwrap_or(""));
    e.context.set(f.context.as_deref().unwrap_or(""));
    e.schema.set(f.schema.as_deref().unwrap_or(""));
    e.table.set(f.table.as_deref().unwrap_or(""));
    e.column.set(f.column.as_deref().unwrap_or(""));
    e.constraint.set(f.constraint.as_deref().unwrap_or(""));
    e.present.store(true, Ordering::Release);
}

/// The fields of an ErrorResponse we send.
#[derive(Default)]
struct ErrorFields {
    sqlstate: i32,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    context: Option<String>,
    internal_query: Option<String>,
    cursor_position: i32,
    internal_position: i32,
    schema: Option<String>,
    table: Option<String>,
    column: Option<String>,
    datatype: Option<String>,
    constraint: Option<String>,
}

fn opt(s: *const c_char) -> Option<String> {
    // SAFETY: NULL or a NUL-terminated string of an ErrorData.
    unsafe {
        s.as_ref()
            .map(|_| CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

impl ErrorFields {
    fn from_error_data(e: &pg_sys::ErrorData) -> Self {
        Self {
            sqlstate: e.sqlerrcode,
            message: opt(e.message).unwrap_or_default(),
            detail: opt(e.detail),
            hint: opt(e.hint),
            context: opt(e.context),
            internal_query: opt(e.internalquery),
            cursor_position: e.cursorpos,
            internal_position: e.internalpos,
            schema: opt(e.schema_name),
            table: opt(e.table_name),
            column: opt(e.column_name),
            datatype: opt(e.datatype_name),
            constraint: opt(e.constraint_name),
        }
    }
}

/// Send the job's ErrorResponse, unless an interrupt ends the wait on a full queue first: a
/// cancel (57014, e.g. `run_v2`'s timeout) is then only swallowed, as the error is recorded in
/// the fixed state already and the server's queue output has detached (the launcher reads the
/// recorded error); a terminate ends the process as always.
fn try_send_error(f: &ErrorFields) {
    PgTryBuilder::new(|| send_error(f))
        .catch_others(|_| ())
        .execute();
}

/// Build and send an ErrorResponse as `send_message_to_frontend` (elog.c) does.
fn send_error(f: &ErrorFields) {
    let sqlstate = crate::protocol::unpack_sql_state(f.sqlstate);
    let sqlstate = std::str::from_utf8(&sqlstate).unwrap_or("XX000").to_owned();
    let cursor = (f.cursor_position > 0).then(|| f.cursor_position.to_string());
    let internal = (f.internal_position > 0).then(|| f.internal_position.to_string());
    let fields: [(u8, Option<&str>); 14] = [
        (b'S', Some("ERROR")),
        (b'V', Some("ERROR")),
        (b'C', Some(&sqlstate)),
        (b'M', Some(&f.message)),
        (b'D', f.detail.as_deref()),
        (b'H', f.hint.as_deref()),
        (b'P', cursor.as_deref()),
        (b'p', internal.as_deref()),
        (b'q', f.internal_query.as_deref()),
        (b'W', f.context.as_deref()),
        (b's', f.schema.as_deref()),
        (b't', f.table.as_deref()),
        (b'c', f.column.as_deref()),
        (b'd', f.datatype.as_deref()),
    ];
    // SAFETY: pq_* build a message in a StringInfo of the current memory context and hand it
    // to the redirected output (the queue); strings are NUL-terminated copies.
    unsafe {
        let mut buf = pg_sys::StringInfoData::default();
        pg_sys::pq_beginmessage(&mut buf, b'E' as c_char);
        for (code, value) in fields
            .iter()
            .chain([(b'n', f.constraint.as_deref())].iter())
        {
            if let Some(value) = value {
                let value = std::ffi::CString::new(value.replace('\0', "")).unwrap_or_default();
                pg_sys::pq_sendbyte(&mut buf, *code);
                pg_sys::pq_sendstring(&mut buf, value.as_ptr());
            }
        }
        pg_sys::pq_sendbyte(&mut buf, 0);
        pg_sys::pq_endmessage(&mut buf);
    }
}
