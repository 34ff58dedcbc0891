//! The library's C entry points: the background worker's, and the C extension's symbol names.
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

/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn launch_v2_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller's contract; nargs tells the 1.8 (2 arguments) from the 1.9 form.
    unsafe {
        if (*fcinfo).nargs >= 3 {
            crate::api::pg_background_launch_v2_labelled_wrapper(fcinfo)
        } else {
            crate::api::pg_background_launch_v2_wrapper(fcinfo)
        }
    }
}

/// # Safety
/// As for the wrappers: a valid fcinfo from fmgr.
unsafe fn submit_v2_any(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: as above.
    unsafe {
        if (*fcinfo).nargs >= 3 {
            crate::api::pg_background_submit_v2_labelled_wrapper(fcinfo)
        } else {
            crate::api::pg_background_submit_v2_wrapper(fcinfo)
        }
    }
}

c_entry_points! {
    "pg_background_launch", "pg_finfo_pg_background_launch" => crate::api::pg_background_launch_wrapper;
    "pg_background_result", "pg_finfo_pg_background_result" => crate::api::pg_background_result_wrapper;
    "pg_background_detach", "pg_finfo_pg_background_detach" => crate::api::pg_background_detach_wrapper;
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
