//! The caller's settings, in a worker: restored for each job as a parallel worker restores its
//! leader's (`RestoreGUCState`), unless a warm worker already has exactly those. Restoring
//! returns every setting to its default and sets each of the caller's again, and with it reads
//! the time zone abbreviations file: a large part of a short job's cost.
//!
//! A warm worker's reset between jobs leaves its settings as they are (it does everything else
//! DISCARD ALL does). The next job's restore is skipped when both hold: the job brings the
//! same serialised settings as the last one restored, and the worker's own settings, serialised
//! the same way, are what they were right after that restore (so neither the job nor anything
//! since changed one). Otherwise the restore runs as in a new worker.

use core::cell::RefCell;
use core::ptr::NonNull;
use pgrx::pg_sys;

thread_local! {
    /// The serialised settings last restored, and this worker's own right after.
    static LAST: RefCell<Option<(Vec<u8>, Vec<u8>)>> = const { RefCell::new(None) };
}

/// The serialised settings in a chunk that `SerializeGUCState` filled: its first `size_t`
/// gives the length of what follows, which `RestoreGUCState` reads the same way.
///
/// # Safety
/// `chunk` holds what `SerializeGUCState` wrote, and outlives the returned slice.
pub unsafe fn serialized<'a>(chunk: NonNull<u8>) -> &'a [u8] {
    // SAFETY: the caller's contract; the length may be unaligned in the chunk.
    unsafe {
        let len = chunk.cast::<usize>().as_ptr().read_unaligned();
        core::slice::from_raw_parts(chunk.as_ptr(), core::mem::size_of::<usize>() + len)
    }
}

/// This process's settings, serialised as the launcher serialises its own.
fn own() -> Vec<u8> {
    // SAFETY: plain reads of this backend's settings into a buffer of the estimated size.
    unsafe {
        let len = pg_sys::EstimateGUCStateSpace();
        let mut buf = vec![0u8; len];
        pg_sys::SerializeGUCState(len, buf.as_mut_ptr().cast());
        let used = serialized(NonNull::new_unchecked(buf.as_mut_ptr())).len();
        buf.truncate(used);
        buf
    }
}

/// Whether the settings `wanted` are those this process has now, through the last restore.
pub fn in_place(wanted: &[u8]) -> bool {
    LAST.with(|last| {
        last.borrow()
            .as_ref()
            .is_some_and(|(restored, after)| restored.as_slice() == wanted && *after == own())
    })
}

/// `wanted` was just restored.
pub fn restored(wanted: &[u8]) {
    let after = own();
    LAST.with(|last| *last.borrow_mut() = Some((wanted.to_vec(), after)));
}
