//! The rows of the job's last statement as MinimalTuples, in batches (message `M`, see
//! [`crate::protocol::BackendMessage::Tuples`]), instead of one DataRow message per row.
//!
//! As a Gather node's tuple queue (`src/backend/executor/tqueue.c`) does, the worker ships each
//! row in the server's own tuple format, so neither side converts values to and from their
//! binary or text form; the launcher stores the tuple as it is when the caller's column types are
//! the worker's, and converts column by column otherwise. Rows go in batches of about
//! [`BATCH_BYTES`]: the server's queue output wakes the reader for every message, which would
//! otherwise cost two context switches per row. Unlike a parallel worker, ours commits
//! and ends before its rows may be read, so values stored out of line (TOAST pointers) are
//! fetched here and sent inline.
//!
//! The receiver wraps the server's `printtup` receiver, which still sends the RowDescription
//! (with each column's format: binary where the type has a send function, else text) at
//! startup; the launcher matches the caller's columns against it exactly as for DataRows.

use crate::protocol::{TUPLE_ALIGN, TUPLE_PADDING};

/// A batch is sent once it holds this many bytes (and at the end of the rows).
const BATCH_BYTES: i32 = 8192;
use pgrx::pg_sys;
use pgrx::prelude::*;

/// A `DestReceiver` the server calls back; `base` must come first.
#[repr(C)]
struct TupleSender {
    base: pg_sys::DestReceiver,
    /// The printtup receiver: RowDescription at startup, its own clean-up at the end.
    inner: *mut pg_sys::DestReceiver,
    /// The batch being filled; reused for every batch.
    buf: pg_sys::StringInfoData,
    /// Whether `buf` holds a begun batch.
    pending: bool,
    /// Rows in the batch being filled (for the job's counters in `crate::registry`).
    batch_rows: i64,
    /// Reset after each row.
    /// `None` (zeroed memory) until `startup`.
    row_context: Option<crate::server::MemoryContext>,
    /// A virtual slot of the row type, for rows with values stored out of line.
    inline_slot: *mut pg_sys::TupleTableSlot,
    /// Whether the row type has variable-length columns at all.
    has_varlena: bool,
}

/// Wrap the printtup receiver `inner` (already given its portal).
///
/// # Safety
/// `inner` is a live receiver made by `CreateDestReceiver(DestRemote)`; the result is palloc'd
/// in the current memory context and must be destroyed with its `rDestroy`.
pub unsafe fn wrap(inner: *mut pg_sys::DestReceiver) -> *mut pg_sys::DestReceiver {
    // SAFETY: the caller's contract; palloc0 gives a zeroed TupleSender (all pointers NULL).
    unsafe {
        let this = pg_sys::palloc0(core::mem::size_of::<TupleSender>()).cast::<TupleSender>();
        (*this).base = pg_sys::DestReceiver {
            receiveSlot: Some(receive),
            rStartup: Some(startup),
            rShutdown: Some(shutdown),
            rDestroy: Some(destroy),
            mydest: (*inner).mydest,
        };
        (*this).inner = inner;
        this.cast()
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn startup(
    this: *mut pg_sys::DestReceiver,
    operation: core::ffi::c_int,
    desc: pg_sys::TupleDesc,
) {
    // SAFETY: `this` is the TupleSender made by `wrap`; the server calls startup once, in the
    // portal's memory context, before any row.
    unsafe {
        let this = this.cast::<TupleSender>();
        let inner = (*this).inner;
        if let Some(inner_startup) = (*inner).rStartup {
            inner_startup(inner, operation, desc);
        }
        pg_sys::initStringInfo(&mut (*this).buf);
        (*this).row_context = Some(crate::server::MemoryContext::under_current(
            c"pg_background tuple",
            crate::server::ContextSize::Default,
        ));
        let natts = (*desc).natts as usize;
        (*this).has_varlena =
            (0..natts).any(|i| (*crate::server::tuple_desc_attr(desc, i)).attlen == -1);
        if (*this).has_varlena {
            (*this).inline_slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsVirtual);
        }
    }
}

// (the header test below is the little-endian one)
const _: () = assert!(
    cfg!(target_endian = "little"),
    "varlena headers are read little-endian"
);

/// Whether a (non-NULL) varlena value is a pointer to a value stored elsewhere: on disk,
/// indirect or expanded (`VARATT_IS_EXTERNAL`: a one-byte header of exactly 0x01).
///
/// # Safety
/// `value` points at a varlena.
unsafe fn is_external(value: pg_sys::Datum) -> bool {
    // SAFETY: the caller's contract; the first byte of any varlena is its header.
    unsafe { *value.cast_mut_ptr::<u8>() == 0x01 }
}

#[pg_guard]
unsafe extern "C-unwind" fn receive(
    slot: *mut pg_sys::TupleTableSlot,
    this: *mut pg_sys::DestReceiver,
) -> bool {
    // SAFETY: `this` is a started TupleSender; `slot` holds a row of the descriptor given at
    // startup. Everything allocated for the row goes to the row context, reset at the end;
    // the message is sent (copied into the queue) before that.
    unsafe {
        let this = this.cast::<TupleSender>();
        let Some(row_context) = (*this).row_context.as_ref() else {
            return false; // (never: startup comes first)
        };
        let previous = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = row_context.as_ptr();
        let mut slot = slot;
        if (*this).has_varlena {
            let desc = (*slot).tts_tupleDescriptor;
            let natts = (*desc).natts as usize;
            if ((*slot).tts_nvalid as usize) < natts {
                pg_sys::slot_getsomeattrs_int(slot, natts as i32);
            }
            let values = core::slice::from_raw_parts((*slot).tts_values, natts);
            let nulls = core::slice::from_raw_parts((*slot).tts_isnull, natts);
            let external = |i: usize| {
                !nulls[i]
                    && (*crate::server::tuple_desc_attr(desc, i)).attlen == -1
                    && is_external(values[i])
            };
            if (0..natts).any(external) {
                let inline = (*this).inline_slot;
                pg_sys::ExecClearTuple(inline);
                for i in 0..natts {
                    *(*inline).tts_isnull.add(i) = nulls[i];
                    *(*inline).tts_values.add(i) = if external(i) {
                        let fetched = pg_sys::detoast_external_attr(values[i].cast_mut_ptr());
                        pg_sys::Datum::from(fetched)
                    } else {
                        values[i]
                    };
                }
                pg_sys::ExecStoreVirtualTuple(inline);
                slot = inline;
            }
        }
        // (formed in the row context when it is a copy, freed with it)
        let mut should_free = false;
        let tuple = pg_sys::ExecFetchSlotMinimalTuple(slot, &mut should_free);
        let buf = &mut (*this).buf;
        let zeros = [0u8; TUPLE_ALIGN];
        if !(*this).pending {
            pg_sys::pq_beginmessage_reuse(buf, b'M' as core::ffi::c_char);
            pg_sys::pq_sendbytes(buf, zeros.as_ptr().cast(), TUPLE_PADDING as i32);
            (*this).pending = true;
        }
        let len = (*tuple).t_len as usize;
        pg_sys::pq_sendbytes(buf, tuple.cast(), len as i32);
        let padding = len.next_multiple_of(TUPLE_ALIGN) - len;
        pg_sys::pq_sendbytes(buf, zeros.as_ptr().cast(), padding as i32);
        (*this).batch_rows += 1;
        if buf.len >= BATCH_BYTES {
            flush(this);
        }
        pg_sys::CurrentMemoryContext = previous;
        row_context.reset();
        true
    }
}

/// Send the batch being filled, if any.
///
/// # Safety
/// `this` is a started TupleSender.
unsafe fn flush(this: *mut TupleSender) {
    // SAFETY: the caller's contract; the batch was begun with pq_beginmessage_reuse.
    unsafe {
        if (*this).pending {
            let bytes = i64::from((*this).buf.len);
            pg_sys::pq_endmessage_reuse(&mut (*this).buf);
            (*this).pending = false;
            crate::registry::count(core::mem::take(&mut (*this).batch_rows), bytes);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shutdown(this: *mut pg_sys::DestReceiver) {
    // SAFETY: `this` is a started TupleSender; the last batch goes before the command's
    // completion; what startup made is released once.
    unsafe {
        let this = this.cast::<TupleSender>();
        flush(this);
        if !(*this).inline_slot.is_null() {
            pg_sys::ExecDropSingleTupleTableSlot((*this).inline_slot);
            (*this).inline_slot = core::ptr::null_mut();
        }
        drop((*this).row_context.take());
        if !(*this).buf.data.is_null() {
            pg_sys::pfree((*this).buf.data.cast());
            (*this).buf.data = core::ptr::null_mut();
        }
        let inner = (*this).inner;
        if let Some(inner_shutdown) = (*inner).rShutdown {
            inner_shutdown(inner);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn destroy(this: *mut pg_sys::DestReceiver) {
    // SAFETY: `this` was made by `wrap`; the server calls destroy once, last.
    unsafe {
        let this = this.cast::<TupleSender>();
        let inner = (*this).inner;
        if let Some(inner_destroy) = (*inner).rDestroy {
            inner_destroy(inner);
        }
        pg_sys::pfree(this.cast());
    }
}
