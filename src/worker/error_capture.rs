//! Keeps a full copy of the last error reported in the worker.
//!
//! pgrx turns an ERROR raised inside a server function into a Rust panic and keeps only its
//! SQLSTATE, message, detail and hint. The launcher must also see the error's context lines
//! (PL/pgSQL line, SQL statement), its cursor position and internal query. An error context
//! callback at the bottom of the stack runs last for every report, after all other callbacks
//! have added their lines, and copies the complete `ErrorData` here.

use core::ffi::c_void;
use core::ptr::NonNull;
use pgrx::prelude::*;

struct CaptureState {
    /// Holds the copy; reset before each new one.
    context: crate::server::MemoryContext,
    last: *mut pg_sys::ErrorData,
}

/// Owner of the pushed callback; pops it and frees the copy when dropped.
pub struct ErrorCapture {
    callback: Box<pg_sys::ErrorContextCallback>,
    state: Box<CaptureState>,
}

#[pg_guard]
unsafe extern "C-unwind" fn capture_error(arg: *mut c_void) {
    // SAFETY: `arg` is the CaptureState of the live ErrorCapture that pushed this callback.
    // errfinish calls us with the error being reported on top of the error stack, which is
    // what CopyErrorData copies; we copy it into our own context, not ErrorContext.
    unsafe {
        let state = &mut *arg.cast::<CaptureState>();
        state.context.reset();
        let previous = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = state.context.as_ptr();
        state.last = pg_sys::CopyErrorData();
        pg_sys::CurrentMemoryContext = previous;
        // A FATAL error ends the process without returning to the worker's error handling:
        // keep it in the job's fixed state now, for the launcher in case the message itself
        // cannot reach the queue (see `super::record_fatal`).
        if let Some(edata) = state.last.as_ref() {
            if edata.elevel >= pg_sys::FATAL as i32 {
                super::record_fatal(edata);
            }
        }
    }
}

impl ErrorCapture {
    /// Push the capturing callback. Must be the first callback the worker pushes.
    pub fn install() -> Self {
        let context = crate::server::MemoryContext::top_level(
            c"pg_background error capture",
            crate::server::ContextSize::Small,
        );
        let mut state = Box::new(CaptureState {
            context,
            last: core::ptr::null_mut(),
        });
        let mut callback = Box::new(pg_sys::ErrorContextCallback {
            // SAFETY: reading the head of the callback stack.
            previous: unsafe { pg_sys::error_context_stack },
            callback: Some(capture_error),
            arg: (&mut *state as *mut CaptureState).cast(),
        });
        // SAFETY: both boxes live until `drop`, which pops the callback first.
        unsafe { pg_sys::error_context_stack = &mut *callback };
        Self { callback, state }
    }

    /// The captured error, if it is the one pgrx reported: same message, and same SQLSTATE, or
    /// XX000 from pgrx, which reports every SQLSTATE it does not know (`P0042`) as XX000.
    pub fn matching(&self, sqlstate: i32, message: &str) -> Option<NonNull<pg_sys::ErrorData>> {
        let edata = NonNull::new(self.state.last)?;
        let internal = crate::protocol::pack_sql_state(b"XX000");
        // SAFETY: `last` was produced by CopyErrorData and lives in our context.
        let same = unsafe {
            let e = edata.as_ref();
            (e.sqlerrcode == sqlstate || sqlstate == internal)
                && !e.message.is_null()
                && core::ffi::CStr::from_ptr(e.message).to_string_lossy() == message
        };
        same.then_some(edata)
    }
}

impl Drop for ErrorCapture {
    fn drop(&mut self) {
        // SAFETY: ours is the bottom callback, so what lies below it is the stack as it was
        // before `install`; anything still above it belongs to frames that are gone. (The copy
        // goes with the capture's memory context, dropped after this.)
        unsafe {
            pg_sys::error_context_stack = self.callback.previous;
        }
    }
}
