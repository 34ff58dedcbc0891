//! The library's C entry points: the background worker's, and the C extension's symbol names.
//!
//! Two lines of the C extension name these symbols: 1.x, whose unsuffixed names are the classic
//! API (`pg_background_launch` returns the worker's PID), and 2.0, which made the unsuffixed names
//! the handle API (`pg_background_launch` returns a `pg_background_handle`, `pg_background_result`
//! takes the cookie too) and bound its `_v2` aliases to them. A symbol both lines use tells them
//! apart by the calling declaration: its argument count, or its declared result type.
//!
//! An installation of the C extension names its C symbols in `pg_proc.prosrc`, each equal to the
//! SQL name (1.9 overloads of launch_v2/submit_v2 share one symbol and dispatch on the argument
//! count). When our library replaces its files, those catalog entries must keep working until
//! `ALTER EXTENSION pg_background UPDATE` points them at pgrx's `*_wrapper` symbols. So each is
//! exported here, with its version-1 `pg_finfo_` record, forwarding to the pgrx wrapper.

use pgrx::pg_sys;

static FINFO_V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };

macro_rules! c_entry_points {
    ($($symbol:literal, $finfo:literal => $target:expr;)*) => {$(
        const _: () = {
            #[unsafe(export_name = $symbol)]
            unsafe extern "C-unwind" fn entry(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
                // SAFETY: fmgr calls us with a valid fcinfo, as it would call the wrapper,
                // which guards against errors and panics itself.
                unsafe { $target(fcinfo) }
            }
            #[unsafe(export_name = $finfo)]
            extern "C" fn finfo() -> &'static pg_sys::Pg_finfo_record {
                &FINFO_V1
            }
        };
    )*};
}

/// A function-manager entry point, as pgrx's wrappers are.
type Entry = unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum;

/// `with` when the call has at least `count` arguments, else `without`: one symbol bound by
/// declarations of different arities.
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn by_arguments(
    fcinfo: pg_sys::FunctionCallInfo,
    count: i16,
    with: Entry,
    without: Entry,
) -> pg_sys::Datum {
    // SAFETY: the caller's contract.
    unsafe {
        if (*fcinfo).nargs >= count {
            with(fcinfo)
        } else {
            without(fcinfo)
        }
    }
}

/// `pg_background_launch_v2`: 1.8's two arguments, or 1.9's with a label.
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn launch_v2_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    use crate::api::{pg_background_launch_v2_labelled_wrapper, pg_background_launch_v2_wrapper};
    // SAFETY: the caller's contract.
    unsafe {
        by_arguments(
            fcinfo,
            3,
            pg_background_launch_v2_labelled_wrapper,
            pg_background_launch_v2_wrapper,
        )
    }
}

/// `pg_background_submit_v2`, likewise.
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn submit_v2_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    use crate::api::{pg_background_submit_v2_labelled_wrapper, pg_background_submit_v2_wrapper};
    // SAFETY: the caller's contract.
    unsafe {
        by_arguments(
            fcinfo,
            3,
            pg_background_submit_v2_labelled_wrapper,
            pg_background_submit_v2_wrapper,
        )
    }
}

/// `pg_background_launch`: 1.x's returns the PID (`int4`), 2.0's a handle (with a label as its
/// third argument).
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn launch_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller's contract; flinfo is set by fmgr for every call.
    unsafe {
        let returns = pg_sys::get_func_rettype((*(*fcinfo).flinfo).fn_oid);
        if returns == pg_sys::INT4OID {
            crate::api::pg_background_launch_wrapper(fcinfo)
        } else {
            launch_v2_any(fcinfo)
        }
    }
}

/// `pg_background_result`: 1.x's takes the PID, 2.0's the PID and the cookie.
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn result_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    use crate::api::{pg_background_result_v2_wrapper, pg_background_result_wrapper};
    // SAFETY: the caller's contract.
    unsafe {
        by_arguments(
            fcinfo,
            2,
            pg_background_result_v2_wrapper,
            pg_background_result_wrapper,
        )
    }
}

/// `pg_background_detach`: 1.x's takes the PID, 2.0's the PID and the cookie.
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn detach_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    use crate::api::{pg_background_detach_v2_wrapper, pg_background_detach_wrapper};
    // SAFETY: the caller's contract.
    unsafe {
        by_arguments(
            fcinfo,
            2,
            pg_background_detach_v2_wrapper,
            pg_background_detach_wrapper,
        )
    }
}

/// 2.0's `pg_background_wait(pid, cookie, timeout_ms)`: up to `timeout_ms` (true if the worker
/// stopped), or as long as it takes when `timeout_ms <= 0` (then always true). STRICT there.
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr, with three non-NULL arguments.
unsafe fn wait_2_0(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller's contract; the third argument is an int4.
    unsafe {
        let timeout_ms = pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 2).unwrap_or(0);
        if timeout_ms > 0 {
            crate::api::pg_background_wait_v2_timeout_wrapper(fcinfo)
        } else {
            // (it reads the PID and the cookie, and returns nothing)
            crate::api::pg_background_wait_v2_wrapper(fcinfo);
            pg_sys::Datum::from(true)
        }
    }
}

/// 2.0's `pg_background_record_timeout()`: its SQL helpers count a job they gave up waiting
/// for in the session's statistics (`workers_timed_out`).
///
/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn record_timeout(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    crate::launcher::record_timeout();
    pg_sys::Datum::from(0)
}

c_entry_points! {
    "pg_background_launch", "pg_finfo_pg_background_launch" => launch_any;
    "pg_background_result", "pg_finfo_pg_background_result" => result_any;
    "pg_background_detach", "pg_finfo_pg_background_detach" => detach_any;
    // 2.0's names (its `_v2` aliases call these too)
    "pg_background_submit", "pg_finfo_pg_background_submit" => submit_v2_any;
    "pg_background_cancel", "pg_finfo_pg_background_cancel" => crate::api::pg_background_cancel_v2_grace_wrapper;
    "pg_background_wait", "pg_finfo_pg_background_wait" => wait_2_0;
    "pg_background_list", "pg_finfo_pg_background_list" => crate::api::pg_background_list_v2_wrapper;
    "pg_background_stats", "pg_finfo_pg_background_stats" => crate::api::pg_background_stats_v2_wrapper;
    "pg_background_record_timeout", "pg_finfo_pg_background_record_timeout" => record_timeout;
    "pg_background_report_progress", "pg_finfo_pg_background_report_progress" => crate::api::pg_background_progress_wrapper;
    "pg_background_get_progress", "pg_finfo_pg_background_get_progress" => crate::api::pg_background_get_progress_v2_wrapper;
    "pg_background_result_info", "pg_finfo_pg_background_result_info" => crate::api::pg_background_result_info_v2_wrapper;
    "pg_background_error_info", "pg_finfo_pg_background_error_info" => crate::api::pg_background_error_info_v2_wrapper;
    "pg_background_detach_all", "pg_finfo_pg_background_detach_all" => crate::api::pg_background_detach_all_v2_wrapper;
    "pg_background_cancel_all", "pg_finfo_pg_background_cancel_all" => crate::api::pg_background_cancel_all_v2_wrapper;
    "pg_background_full_sql", "pg_finfo_pg_background_full_sql" => crate::api::pg_background_full_sql_v2_wrapper;
    "pg_background_launch_v2", "pg_finfo_pg_background_launch_v2" => launch_v2_any;
    "pg_background_submit_v2", "pg_finfo_pg_background_submit_v2" => submit_v2_any;
    "pg_background_result_v2", "pg_finfo_pg_background_result_v2" => crate::api::pg_background_result_v2_wrapper;
    "pg_background_detach_v2", "pg_finfo_pg_background_detach_v2" => crate::api::pg_background_detach_v2_wrapper;
    "pg_background_cancel_v2", "pg_finfo_pg_background_cancel_v2" => crate::api::pg_background_cancel_v2_wrapper;
    "pg_background_cancel_v2_grace", "pg_finfo_pg_background_cancel_v2_grace" => crate::api::pg_background_cancel_v2_grace_wrapper;
    "pg_background_wait_v2", "pg_finfo_pg_background_wait_v2" => crate::api::pg_background_wait_v2_wrapper;
    "pg_background_wait_v2_timeout", "pg_finfo_pg_background_wait_v2_timeout" => crate::api::pg_background_wait_v2_timeout_wrapper;
    "pg_background_list_v2", "pg_finfo_pg_background_list_v2" => crate::api::pg_background_list_v2_wrapper;
    "pg_background_stats_v2", "pg_finfo_pg_background_stats_v2" => crate::api::pg_background_stats_v2_wrapper;
    "pg_background_progress", "pg_finfo_pg_background_progress" => crate::api::pg_background_progress_wrapper;
    "pg_background_get_progress_v2", "pg_finfo_pg_background_get_progress_v2" => crate::api::pg_background_get_progress_v2_wrapper;
    "pg_background_result_info_v2", "pg_finfo_pg_background_result_info_v2" => crate::api::pg_background_result_info_v2_wrapper;
    "pg_background_error_info_v2", "pg_finfo_pg_background_error_info_v2" => crate::api::pg_background_error_info_v2_wrapper;
    "pg_background_detach_all_v2", "pg_finfo_pg_background_detach_all_v2" => crate::api::pg_background_detach_all_v2_wrapper;
    "pg_background_cancel_all_v2", "pg_finfo_pg_background_cancel_all_v2" => crate::api::pg_background_cancel_all_v2_wrapper;
    "pg_background_full_sql_v2", "pg_finfo_pg_background_full_sql_v2" => crate::api::pg_background_full_sql_v2_wrapper;
}

/// The worker's entry point, named in `bgw_function_name`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_background_worker_main(arg: pg_sys::Datum) {
    crate::worker::main(
        arg,
        &crate::worker::NestedJobs {
            tracked: crate::launcher::tracked_jobs,
            forget_warm_workers: crate::launcher::forget_warm_workers,
        },
    );
}
