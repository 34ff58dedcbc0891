//! Spill files and kept results: the worker's writer ([`writer`]), the launcher's reader
//! ([`reader`]), and what they share here: the file's name and format, and the resource owner
//! and memory context its `BufFile`s live in. Who holds a job's file is the job's
//! [`crate::shm::SpillState`]; a kept result's files are filed in the cluster-wide registry
//! (`crate::registry`).
//!
//! A job's spill file is one `BufFile` of the worker's `FileSet` (`storage/buffile.h`,
//! `storage/fileset.h`), as parallel hash joins share their batches: named by the worker's PID
//! and a number, in `temp_tablespaces` (or the database's default tablespace), and removed by
//! the server at its next start if nobody else does. It holds the protocol messages the queue
//! had no room for, each as a native-endian `u32` length, then the message (type byte first), as
//! the queue would have delivered it.

pub mod reader;
pub mod writer;

use pgrx::pg_sys;

/// The file's name in its set.
pub const FILE_NAME: &core::ffi::CStr = c"result";

/// The name of a kept result's head: what its launcher had moved out of the queue (in a set of
/// the launcher's).
pub const HEAD_NAME: &core::ffi::CStr = c"head";

/// `open(2)` modes and `lseek(2)` whence, as `fcntl.h` and `unistd.h` define them on Linux.
pub const O_RDONLY: core::ffi::c_int = 0;
pub const O_RDWR: core::ffi::c_int = 2;
pub const SEEK_END: core::ffi::c_int = 2;

/// Bytes before each message.
pub const HEADER: usize = 4;

/// The header of a message of `len` bytes (type byte included); `None` above 4 GB.
pub fn header(len: usize) -> Option<[u8; HEADER]> {
    u32::try_from(len).ok().map(u32::to_ne_bytes)
}

/// The length a header announces.
pub fn announced(header: [u8; HEADER]) -> usize {
    u32::from_ne_bytes(header) as usize
}

/// Run `f` with this process's spill resource owner as `CurrentResourceOwner` and
/// `TopMemoryContext` as the current context. Spill files outlive transactions (a worker writes
/// its last messages after its commit; a session reads a result across calls), so neither may
/// belong to a transaction's resource owner or memory. The owner is created once per process
/// and never released: each file is closed explicitly (which forgets it), and the process's
/// exit closes what is left. (The server still closes every temporary file open at the end of a
/// transaction: a file that is written across transactions is closed before each one ends and
/// opened again after, see `crate::spill::writer`.)
pub fn with_owner<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(pg_sys::ResourceOwner);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: putting back what we replaced, also when `f` unwinds.
            unsafe { pg_sys::CurrentResourceOwner = self.0 };
        }
    }
    thread_local! {
        static OWNER: core::cell::Cell<pg_sys::ResourceOwner> =
            const { core::cell::Cell::new(core::ptr::null_mut()) };
    }
    let owner = OWNER.with(|cell| {
        if cell.get().is_null() {
            // SAFETY: a top-level resource owner (no parent), allocated in TopMemoryContext.
            cell.set(unsafe {
                pg_sys::ResourceOwnerCreate(core::ptr::null_mut(), c"pg_background spill".as_ptr())
            });
        }
        cell.get()
    });
    // SAFETY: a plain assignment of the server's current owner, restored by `Restore` on every
    // way out.
    let _restore = unsafe {
        let restore = Restore(pg_sys::CurrentResourceOwner);
        pg_sys::CurrentResourceOwner = owner;
        restore
    };
    crate::server::in_top_memory_context(f)
}

/// Which file set of a job.
#[derive(Clone, Copy)]
pub enum Part {
    /// The launcher's, for a kept result's head.
    Head,
    /// The worker's spill file.
    Body,
}

/// The number of a registered job's file set, in place of `FileSetInit`'s per-process counter
/// (which wraps below `INT_MAX`): kept results outlive their processes, and a later process with
/// the same PID must not name the same directory. `None` for an unregistered job.
pub fn set_number(fixed: &crate::shm::FixedState, part: Part) -> Option<u32> {
    if fixed.job_slot < 0 {
        return None;
    }
    let bit = match part {
        Part::Head => 0,
        Part::Body => 1,
    };
    Some(0x8000_0000 | ((fixed.job_id << 1) as u32 & 0x7fff_fffe) | bit)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_header_announces_its_length() {
        let h = super::header(70_000).unwrap();
        assert_eq!(super::announced(h), 70_000);
        assert!(super::header(usize::MAX).is_none());
    }
}
