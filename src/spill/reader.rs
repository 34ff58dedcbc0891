//! The launcher's side of a spilled result (see `crate::spill::writer`): take the file over
//! from the worker once it is complete, read its messages after the queue's, and delete it when
//! the job goes — read, detached, or the session ends.

use crate::shm::dsm::Segment;
use crate::shm::{FixedState, SpillState};
use core::cell::RefCell;
use core::sync::atomic::Ordering;
use pgrx::prelude::*;

/// A complete spill file this session owns. Deleted when dropped, or at the session's exit.
pub struct SpillFile {
    set: pg_sys::FileSet,
    /// The file's name in the set.
    name: &'static core::ffi::CStr,
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
}

/// At this session's exit, before the server's own exit callbacks: deleting a file reports its
/// size to the cumulative statistics, which are shut down before segments are detached, so
/// files are never deleted from the detach callbacks of an exiting process.
fn register_exit_callback() {
    // (after the backend's own callbacks, so it runs before them: the statistics and the
    // segments are still there)
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&REGISTERED, delete_at_exit);
}

fn same(a: &pg_sys::FileSet, b: &pg_sys::FileSet) -> bool {
    a.creator_pid == b.creator_pid && a.number == b.number
}

impl SpillFile {
    /// Take over the file the worker finished (Ready → Taken), if it wrote one.
    pub fn take(fixed: &FixedState) -> Option<Self> {
        if !fixed.spill_state.take() {
            return None;
        }
        // SAFETY: Ready (acquired above) comes after the worker wrote the set; nobody writes it
        // any more. A plain copy: the set is plain data naming the files.
        let set = unsafe { *fixed.fileset.as_ptr() };
        let bytes = fixed.spill_bytes.load(Ordering::Acquire);
        Some(Self::own(set, crate::spill::FILE_NAME, bytes))
    }

    /// Own file `name` of `set`, of `bytes` bytes of complete messages.
    pub fn own(set: pg_sys::FileSet, name: &'static core::ffi::CStr, bytes: u64) -> Self {
        register_exit_callback();
        OWNED.with(|o| o.borrow_mut().push(set));
        Self {
            set,
            name,
            left: bytes,
            file: core::ptr::null_mut(),
            message: Vec::new(),
        }
    }

    /// Whether its reading has begun.
    pub fn opened(&self) -> bool {
        !self.file.is_null()
    }

    /// Give the file up without deleting it (for a result kept after this session): its set
    /// and the bytes not read yet. Only for a file not opened yet.
    pub fn hand_over(self) -> Option<(pg_sys::FileSet, u64)> {
        if !self.file.is_null() {
            return None;
        }
        let this = core::mem::ManuallyDrop::new(self);
        OWNED.with(|o| o.borrow_mut().retain(|s| !same(s, &this.set)));
        Some((this.set, this.left))
    }

    /// The next message in the file; `None` at its end (also when it is shorter than announced:
    /// the worker could not write all of it).
    pub fn next(&mut self) -> Option<&[u8]> {
        self.advance().then_some(&self.message[..])
    }

    /// Read the next message into `message`; false at the file's end.
    fn advance(&mut self) -> bool {
        let mut header = [0u8; crate::spill::HEADER];
        if self.left < header.len() as u64 {
            return false;
        }
        if self.file.is_null() {
            let (set, name) = (&mut self.set, self.name);
            // SAFETY: the worker closed the file before Ready; opened read-only, in
            // TopMemoryContext under the spill owner (it outlives transactions), closed in drop.
            self.file = crate::spill::with_owner(|| unsafe {
                pg_sys::BufFileOpenFileSet(set, name.as_ptr(), crate::spill::O_RDONLY, false)
            });
        }
        if !self.read_exact(header.as_mut_ptr(), header.len()) {
            return false;
        }
        let len = crate::spill::announced(header);
        let total = (header.len() + len) as u64;
        if len == 0 || total > self.left {
            return false;
        }
        self.message.resize(len, 0);
        let buffer = self.message.as_mut_ptr();
        if !self.read_exact(buffer, len) {
            return false;
        }
        self.left -= total;
        true
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
        crate::server::delete_file_set(&mut self.set);
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
        crate::server::delete_file_set(&mut set);
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

/// Stop watching the job whose fixed state is at `address`: its result is kept after this
/// session (see `Channel::keep`), its files are the registry's.
pub fn unwatch(address: usize) {
    LIVE.with(|l| l.borrow_mut().retain(|&a| a != address));
}

/// Let go of a job's spill file: delete it if the worker finished it and we had not taken it.
fn let_go(fixed: &FixedState) {
    if fixed.spill_state.abandon() == SpillState::Ready {
        // SAFETY: as in `SpillFile::take`: Ready means the worker is done with the set.
        let mut set = unsafe { *fixed.fileset.as_ptr() };
        crate::server::delete_file_set(&mut set);
    }
}

/// Write `messages` (each a native-endian `u32` length and its bytes, the spill file's format)
/// to file `name` of a new set of this process's (numbered `number`, if given); the set and its
/// bytes, or `None` when that failed and nothing is left behind. (At a process's exit an error
/// cannot be caught: it ends the exit callback, and the set stays until the server's restart.)
pub fn write_set(
    name: &'static core::ffi::CStr,
    number: Option<u32>,
    messages: &[u8],
) -> Option<(pg_sys::FileSet, u64)> {
    // SAFETY: all-zero bytes are a valid FileSet (plain integers), initialised below.
    let mut set: pg_sys::FileSet = unsafe { core::mem::zeroed() };
    let set_ptr = &mut set as *mut pg_sys::FileSet;
    let written = pgrx::PgTryBuilder::new(|| {
        crate::spill::with_owner(|| {
            // SAFETY: a new set of ours (`set_ptr` points to `set`, alive and not otherwise
            // used meanwhile), one file written in full and closed; the buffer and the file live
            // under the spill owner, in TopMemoryContext.
            unsafe {
                pg_sys::FileSetInit(set_ptr);
                if let Some(number) = number {
                    (*set_ptr).number = number;
                }
                let file = pg_sys::BufFileCreateFileSet(set_ptr, name.as_ptr());
                pg_sys::BufFileWrite(file, messages.as_ptr().cast_mut().cast(), messages.len());
                pg_sys::BufFileClose(file);
            }
        });
        true
    })
    .catch_others(|_| false)
    .execute();
    if !written {
        if set.creator_pid != 0 {
            crate::server::delete_file_set(&mut set);
        }
        return None;
    }
    Some((set, messages.len() as u64))
}

/// A kept result being read: its head, then its body; deleted (and gone from the registry)
/// when dropped, read in full or not.
pub struct Kept {
    index: usize,
    job_id: u64,
    worker_pid: i32,
    error: Option<(String, String)>,
    files: std::collections::VecDeque<SpillFile>,
}

impl Kept {
    pub fn new(claimed: crate::registry::Claimed, job_id: u64) -> Self {
        let mut files = std::collections::VecDeque::new();
        if let Some((set, bytes)) = claimed.head {
            files.push_back(SpillFile::own(set, crate::spill::HEAD_NAME, bytes));
        }
        if let Some((set, bytes)) = claimed.body {
            files.push_back(SpillFile::own(set, crate::spill::FILE_NAME, bytes));
        }
        Self {
            index: claimed.index,
            job_id,
            worker_pid: claimed.worker_pid,
            error: claimed.error,
            files,
        }
    }

    pub fn worker_pid(&self) -> i32 {
        self.worker_pid
    }

    /// The error the job ended with, if its registry slot recorded one.
    pub fn error(&self) -> Option<&(String, String)> {
        self.error.as_ref()
    }

    /// Read the next message ([`Self::message`]); false after the last.
    pub fn advance(&mut self) -> bool {
        while let Some(file) = self.files.front_mut() {
            if file.advance() {
                return true;
            }
            // this one has ended (deleted as it goes)
            self.files.pop_front();
        }
        false
    }

    /// The message last read.
    pub fn message(&self) -> &[u8] {
        self.files.front().map_or(&[], |f| &f.message[..])
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.files.clear();
        crate::registry::read_out(self.index, self.job_id);
    }
}
