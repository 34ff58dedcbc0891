//! The launcher's side of a spilled result (see `crate::worker::spill`): take the file over
//! from the worker once it is complete, read its messages after the queue's, and delete it when
//! the job goes — read, detached, or the session ends.

use crate::shm::dsm::Segment;
use crate::shm::{spill as state, FixedState};
use core::cell::RefCell;
use core::sync::atomic::Ordering;
use pgrx::prelude::*;

/// A complete spill file this session owns. Deleted when dropped, or at the session's exit.
pub struct SpillFile {
    set: pg_sys::FileSet,
    /// Bytes of complete messages not read yet.
    left: u64,
    /// Opened at the first read.
    file: *mut pg_sys::BufFile,
    /// The message last read.
    message: Vec<u8>,
}

thread_local! {
    /// The sets of every [`SpillFile`] alive, for the exit callback.
    static OWNED: RefCell<Vec<pg_sys::FileSet>> = const { RefCell::new(Vec::new()) };
    /// The fixed states of the segments this session maps, for the exit callback.
    static LIVE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    static EXIT_CALLBACK: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// At this session's exit, before the server's own exit callbacks: deleting a file reports its
/// size to the cumulative statistics, which are shut down before segments are detached, so
/// files are never deleted from the detach callbacks of an exiting process.
fn register_exit_callback() {
    if !EXIT_CALLBACK.with(|c| c.replace(true)) {
        // SAFETY: registered once per process, after the backend's own callbacks (it runs
        // before them): the statistics and the segments are still there.
        unsafe { pg_sys::before_shmem_exit(Some(delete_at_exit), pg_sys::Datum::from(0)) };
    }
}

fn same(a: &pg_sys::FileSet, b: &pg_sys::FileSet) -> bool {
    a.creator_pid == b.creator_pid && a.number == b.number
}

impl SpillFile {
    /// Take over the file the worker finished (READY → TAKEN), if it wrote one.
    pub fn take(fixed: &FixedState) -> Option<Self> {
        fixed
            .spill_state
            .compare_exchange(
                state::READY,
                state::TAKEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        // SAFETY: READY (acquired above) comes after the worker wrote the set; nobody writes it
        // any more. A plain copy: the set is plain data naming the files.
        let set = unsafe { *fixed.fileset.as_ptr() };
        register_exit_callback();
        OWNED.with(|o| o.borrow_mut().push(set));
        Some(Self {
            set,
            left: fixed.spill_bytes.load(Ordering::Acquire),
            file: core::ptr::null_mut(),
            message: Vec::new(),
        })
    }

    /// The next message in the file; `None` at its end (also when it is shorter than announced:
    /// the worker could not write all of it).
    pub fn next(&mut self) -> Option<&[u8]> {
        let mut header = [0u8; crate::spill::HEADER];
        if self.left < header.len() as u64 {
            return None;
        }
        if self.file.is_null() {
            let set = &mut self.set;
            // SAFETY: the worker closed the file before READY; opened read-only, in
            // TopMemoryContext under the spill owner (it outlives transactions), closed in drop.
            self.file = crate::spill::with_owner(|| unsafe {
                pg_sys::BufFileOpenFileSet(
                    set,
                    crate::spill::FILE_NAME.as_ptr(),
                    crate::spill::O_RDONLY,
                    false,
                )
            });
        }
        if !self.read_exact(header.as_mut_ptr(), header.len()) {
            return None;
        }
        let len = crate::spill::announced(header);
        let total = (header.len() + len) as u64;
        if len == 0 || total > self.left {
            return None;
        }
        self.message.resize(len, 0);
        let buffer = self.message.as_mut_ptr();
        if !self.read_exact(buffer, len) {
            return None;
        }
        self.left -= total;
        Some(&self.message)
    }

    fn read_exact(&mut self, into: *mut u8, len: usize) -> bool {
        // SAFETY: our open file; `into` has room for `len` bytes. A short read is the end.
        let read = unsafe { pg_sys::BufFileRead(self.file, into.cast(), len) };
        if read != len {
            self.left = 0;
        }
        read == len
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if !self.file.is_null() {
            let file = core::mem::replace(&mut self.file, core::ptr::null_mut());
            // SAFETY: our open file, closed once, under the owner it was opened with.
            crate::spill::with_owner(|| unsafe { pg_sys::BufFileClose(file) });
        }
        crate::spill::delete_all(&mut self.set);
        OWNED.with(|o| o.borrow_mut().retain(|s| !same(s, &self.set)));
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn delete_at_exit(_code: core::ffi::c_int, _arg: pg_sys::Datum) {
    for fixed in LIVE.with(|l| core::mem::take(&mut *l.borrow_mut())) {
        // SAFETY: the segments are still mapped (they are detached after this callback).
        let_go(unsafe { &*(fixed as *const FixedState) });
    }
    for mut set in OWNED.with(|o| core::mem::take(&mut *o.borrow_mut())) {
        crate::spill::delete_all(&mut set);
    }
}

/// Arrange for a job's spill file to be deleted when this session lets go of the job's segment
/// (the job is read, detached, dropped with an error, or the session ends) before taking the
/// file over: the worker deletes it if it is still writing, we do if it is complete.
pub fn watch(segment: &impl Segment, fixed: &FixedState) {
    register_exit_callback();
    let address = fixed as *const FixedState as usize;
    LIVE.with(|l| l.borrow_mut().push(address));
    // SAFETY: the callback runs when this process detaches the segment, while it is still
    // mapped; `fixed` lies inside it.
    unsafe {
        pg_sys::on_dsm_detach(
            segment.as_ptr(),
            Some(abandon),
            pg_sys::Datum::from(address),
        )
    };
}

#[pg_guard]
unsafe extern "C-unwind" fn abandon(_segment: *mut pg_sys::dsm_segment, fixed: pg_sys::Datum) {
    let address = fixed.value();
    let watched = LIVE.with(|l| {
        let mut live = l.borrow_mut();
        let before = live.len();
        live.retain(|&a| a != address);
        live.len() != before
    });
    // (at exit the exit callback has let go of it already)
    if watched {
        // SAFETY: `fixed` is the FixedState of the segment being detached, still mapped.
        let_go(unsafe { &*(address as *const FixedState) });
    }
}

/// Let go of a job's spill file: delete it if the worker finished it and we had not taken it.
fn let_go(fixed: &FixedState) {
    if fixed.spill_state.swap(state::ABANDONED, Ordering::AcqRel) == state::READY {
        // SAFETY: as in `SpillFile::take`: READY means the worker is done with the set.
        let mut set = unsafe { *fixed.fileset.as_ptr() };
        crate::spill::delete_all(&mut set);
    }
}
