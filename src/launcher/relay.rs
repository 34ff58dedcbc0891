//! Re-raising a worker's errors and notices in the launcher, after `HandleParallelMessage`
//! (`src/backend/access/transam/parallel.c`).
//!
//! The text fields arrive in the client encoding the worker inherited and are converted back to
//! the server encoding. FATAL is lowered to ERROR ("Death of a worker isn't enough justification
//! for suicide."). The context line `background worker, pid N` is added here, once.

use crate::error::Error;
use crate::shm::SharedError;
use core::ffi::{c_char, c_void, CStr};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// What the context callback adds to the error being raised.
#[repr(C)]
struct ExtraFields {
    /// The worker's SQLSTATE, packed: pgrx knows only the codes the server predefines, and
    /// would raise any other (`P0042`, `U0001`) as XX000.
    sqlerrcode: i32,
    context: *mut c_char,
    internal_query: *mut c_char,
    internal_position: i32,
}

#[pg_guard]
unsafe extern "C-unwind" fn add_worker_fields(arg: *mut c_void) {
    // SAFETY: `arg` is the palloc'd ExtraFields pushed by `raise`; errfinish calls us while the
    // error is being built, which is where errcontext and internalerr* are allowed.
    unsafe {
        let extra = &*arg.cast::<ExtraFields>();
        // (only where pgrx put XX000 for a SQLSTATE it does not know: the callback stays on
        // the stack until the error is caught, and a message reported meanwhile, e.g. a LOG,
        // keeps its own)
        if crate::ffi::geterrcode() == crate::protocol::pack_sql_state(b"XX000") {
            crate::ffi::errcode(extra.sqlerrcode);
        }
        crate::ffi::errcontext_msg(c"%s".as_ptr(), extra.context);
        if !extra.internal_query.is_null() {
            crate::ffi::internalerrquery(extra.internal_query);
            crate::ffi::internalerrposition(extra.internal_position);
        }
    }
}

fn to_server(s: *mut c_char) -> *mut c_char {
    if s.is_null() {
        return s;
    }
    // SAFETY: a NUL-terminated string from pq_parse_errornotice; the conversion returns the
    // same pointer or a palloc'd copy.
    unsafe {
        let len = CStr::from_ptr(s).to_bytes().len();
        pg_sys::pg_client_to_server(s, len as i32)
    }
}

fn text(s: *const c_char) -> Option<String> {
    // SAFETY: NULL or a NUL-terminated string.
    unsafe {
        s.as_ref()
            .map(|_| CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

/// Relay one ErrorResponse or NoticeResponse body from worker `pid`. Notices are re-emitted at
/// their level and return; an error is raised in the caller with the worker's SQLSTATE.
pub fn relay(body: &[u8], pid: i32) -> Result<(), Error> {
    // pq_parse_errornotice reads NUL-terminated strings; give it a terminated copy.
    let mut copy = Vec::with_capacity(body.len() + 1);
    copy.extend_from_slice(body);
    copy.push(0);
    let context_line =
        std::ffi::CString::new(format!("background worker, pid {pid}")).expect("no NUL");

    // SAFETY: `edata` starts zeroed as in HandleParallelMessage; pq_parse_errornotice fills it
    // with palloc'd strings in the current memory context; the buffer outlives the call.
    unsafe {
        let mut buf = pg_sys::StringInfoData {
            data: copy.as_mut_ptr().cast(),
            len: body.len() as i32,
            maxlen: copy.len() as i32,
            cursor: 0,
        };
        let mut edata: pg_sys::ErrorData = core::mem::zeroed();
        crate::ffi::pq_parse_errornotice(&mut buf, &mut edata);
        edata.message = to_server(edata.message);
        edata.detail = to_server(edata.detail);
        edata.hint = to_server(edata.hint);
        edata.context = to_server(edata.context);
        edata.internalquery = to_server(edata.internalquery);

        let context = match text(edata.context) {
            Some(inner) => format!("{inner}\n{}", context_line.to_str().unwrap_or_default()),
            None => context_line.to_str().unwrap_or_default().to_owned(),
        };
        let context = pgrx::PgMemoryContexts::CurrentMemoryContext.pstrdup(&context);

        if edata.elevel >= PgLogLevel::ERROR as i32 {
            raise(&edata, context)
        }
        edata.context = context;
        pg_sys::ThrowErrorData(&mut edata);
    }
    Ok(())
}

/// Raise the error a worker recorded in its fixed state (in the server encoding already) as if
/// it had been relayed: same SQLSTATE, message, detail, hint and context lines.
pub fn raise_recorded(err: &SharedError, pid: i32) -> ! {
    let fields = [
        err.message.get(),
        err.detail.get(),
        err.hint.get(),
        err.context.get(),
    ];
    raise_fields(&err.sqlstate.get(), &fields, pid)
}

/// Raise an error of worker `pid` from its SQLSTATE and its [message, detail, hint, context]
/// (empty: none), as if it had been relayed.
pub fn raise_fields(sqlstate: &str, fields: &[String; 4], pid: i32) -> ! {
    let [message, detail, hint, inner] = fields;
    let context = match inner {
        inner if inner.is_empty() => format!("background worker, pid {pid}"),
        inner => format!("{inner}\nbackground worker, pid {pid}"),
    };
    let code = <[u8; 5]>::try_from(sqlstate.as_bytes()).unwrap_or(*b"XX000");
    // SAFETY: a zeroed ErrorData as HandleParallelMessage starts from, with palloc'd strings
    // in the current memory context, which lives until the error has been raised.
    unsafe {
        let mem = pgrx::PgMemoryContexts::CurrentMemoryContext;
        let text_or_null = |s: &str| {
            if s.is_empty() {
                core::ptr::null_mut()
            } else {
                mem.pstrdup(s)
            }
        };
        let mut edata: pg_sys::ErrorData = core::mem::zeroed();
        edata.elevel = PgLogLevel::ERROR as i32;
        edata.sqlerrcode = crate::protocol::pack_sql_state(&code);
        edata.message = mem.pstrdup(message);
        edata.detail = text_or_null(detail);
        edata.hint = text_or_null(hint);
        raise(&edata, mem.pstrdup(&context))
    }
}

/// Raise the worker's error as an ERROR of the caller.
///
/// pgrx re-raises errors at the function boundary with SQLSTATE, message, detail and hint only,
/// and with a SQLSTATE it knows. So the exact SQLSTATE, the context line and the internal query
/// travel in an error context callback, pushed here
/// in palloc'd memory and deliberately not popped: it fires when pgrx raises the ERROR at the
/// boundary, and whoever catches that ERROR (PostgresMain, a PL/pgSQL exception block) resets
/// `error_context_stack` to its own saved value, the way every `PG_TRY` does.
///
/// # Safety
/// `edata` was filled by `pq_parse_errornotice`; `context` is palloc'd in a context that lives
/// until the error is raised.
unsafe fn raise(edata: &pg_sys::ErrorData, context: *mut c_char) -> ! {
    // SAFETY: the caller's contract; palloc0 in the current memory context, which lives at
    // least until the transaction or subtransaction aborts, after the callback has run.
    unsafe {
        let extra = pg_sys::palloc0(core::mem::size_of::<ExtraFields>()).cast::<ExtraFields>();
        (*extra).sqlerrcode = edata.sqlerrcode;
        (*extra).context = context;
        (*extra).internal_query = edata.internalquery;
        (*extra).internal_position = edata.internalpos;
        let callback = pg_sys::palloc0(core::mem::size_of::<pg_sys::ErrorContextCallback>())
            .cast::<pg_sys::ErrorContextCallback>();
        (*callback).previous = pg_sys::error_context_stack;
        (*callback).callback = Some(add_worker_fields);
        (*callback).arg = extra.cast();
        pg_sys::error_context_stack = callback;
    }
    let message = text(edata.message).unwrap_or_else(|| "missing error text".to_owned());
    let mut report = ErrorReport::new(
        PgSqlErrorCode::from(edata.sqlerrcode),
        message,
        "pg_background",
    );
    if let Some(detail) = text(edata.detail) {
        report = report.set_detail(detail);
    }
    if let Some(hint) = text(edata.hint) {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}
