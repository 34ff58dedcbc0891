//! Never stuck on a full queue: when the launcher does not make room in the queue, the rest of
//! the job's output goes to a temporary file, so that the worker finishes (committing, releasing
//! its locks and its worker slot) whether or not anybody reads yet.
//!
//! All protocol output passes through `pq_putmessage`; [`install`] puts [`put`] in front of the
//! server's queue output (`pqmq.c`). For each message it checks, before sending, whether the
//! message fits in the queue's free space ([`Gauge`]): a message the server's queue output has
//! begun cannot be withdrawn, so it is only handed over when it will not block. When it does not
//! fit, the worker waits for the reader; once the reader has released nothing for
//! `pg_background.spill_after` (or at once for a message larger than the whole ring, or when the
//! wait is interrupted), this message and every later one go to the file, in order. The launcher
//! reads the queue to its end, then the file.
//!
//! The server closes every temporary file still open when a transaction ends (with a WARNING),
//! and a job's output spans transactions (its ReadyForQuery follows the commit; a procedure may
//! commit): the file is closed before each transaction ends ([`at_xact_end`]) and opened again,
//! at its end, for the next message.

use crate::ffi::{self, PQcommMethods};
use crate::server::WaitEvent;
use crate::shm::mq::{self, Gauge};
use crate::shm::{FixedState, SpillState};
use core::cell::Cell;
use core::ffi::{c_char, c_int};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use pgrx::prelude::*;

/// One job's spilling. Only shared references exist: [`put`] is re-entered when an error is
/// reported from inside it (an interrupted wait, a FATAL), so all state is in cells.
struct Writer {
    fixed: NonNull<FixedState>,
    gauge: Gauge,
    /// The server's queue output, which [`put`] hands the messages that fit.
    queue_output: NonNull<PQcommMethods>,
    after_ms: i64,
    /// Bytes of row data the file may hold.
    limit: Option<u64>,
    /// The worker's own copy of the file set, once initialised (in the job's first transaction).
    set: Cell<Option<pg_sys::FileSet>>,
    /// Set by the first message that does not fit: every later one goes to the file.
    spilling: Cell<bool>,
    /// The spill file while it is open; NULL between transactions.
    file: Cell<*mut pg_sys::BufFile>,
    /// Bytes of row data in the file (all complete messages: `FixedState::spill_bytes`).
    row_bytes: Cell<u64>,
    /// Inside a write to the file: an error there leaves a partial message behind.
    writing: Cell<bool>,
    /// Waiting for room in the queue: a message reported from inside the wait (its
    /// interruption) goes to the file.
    waiting: Cell<bool>,
    /// A write failed: later messages are dropped (the error is in the fixed state).
    broken: Cell<bool>,
    /// The launcher let go of the job before it spilled: the queue only (whose output the
    /// server drops once the reader has detached).
    refused: Cell<bool>,
}

thread_local! {
    static WRITER: Cell<Option<NonNull<Writer>>> = const { Cell::new(None) };
}

/// Our methods: the server's queue output with [`put`] in front. Made once per process from the
/// queue output's own methods (static in the server, the same for every job).
static METHODS: std::sync::OnceLock<PQcommMethods> = std::sync::OnceLock::new();

fn writer() -> Option<&'static Writer> {
    // SAFETY: the pointer is a leaked Box, live from `install` until `finish` takes it out of
    // the cell (after which no new reference is made); only shared references are made.
    WRITER.with(Cell::get).map(|w| unsafe { w.as_ref() })
}

/// Route the job's protocol output through [`put`], right after `pq_redirect_to_shm_mq`. Nothing
/// changes for a job that sends nothing, a queue whose layout we did not recognise, or
/// `spill_after = -1`.
pub fn install(fixed: &FixedState, queue: NonNull<pg_sys::shm_mq>) {
    if fixed.results_disabled || fixed.ring_size == 0 {
        return;
    }
    if fixed.spill_after_ms < 0 && fixed.keep_s == 0 {
        return;
    }
    // SAFETY: reading the pointer the redirect just set (the queue output's static methods).
    let Some(queue_output) = NonNull::new(unsafe { ffi::PqCommMethods }.cast_mut()) else {
        return;
    };
    let limit = u64::try_from(fixed.spill_limit_kb).ok().map(|kb| kb * 1024);
    let writer = Box::new(Writer {
        fixed: NonNull::from(fixed),
        gauge: Gauge::new(queue, fixed.ring_size),
        queue_output,
        after_ms: i64::from(fixed.spill_after_ms),
        limit,
        set: Cell::new(None),
        spilling: Cell::new(false),
        file: Cell::new(core::ptr::null_mut()),
        row_bytes: Cell::new(0),
        writing: Cell::new(false),
        waiting: Cell::new(false),
        broken: Cell::new(false),
        refused: Cell::new(false),
    });
    WRITER.with(|w| w.set(Some(NonNull::from(Box::leak(writer)))));
    static XACT_CALLBACK: std::sync::Once = std::sync::Once::new();
    // SAFETY: registered once per process; the callback only closes our own file.
    XACT_CALLBACK.call_once(|| unsafe {
        pg_sys::RegisterXactCallback(Some(at_xact_end), core::ptr::null_mut())
    });
    let ours = METHODS.get_or_init(|| PQcommMethods {
        putmessage: Some(put),
        // SAFETY: the queue output's methods are static in the server.
        ..unsafe { *queue_output.as_ptr() }
    });
    // SAFETY: `ours` is static.
    unsafe { ffi::PqCommMethods = ours };
}

/// Create the job's file set (in its first transaction: `temp_tablespaces` as the caller set
/// it). No file exists until the first message that does not fit.
pub fn prepare() {
    let Some(w) = writer() else { return };
    // SAFETY: `fixed` is the job's fixed state, mapped while the writer lives; the launcher
    // reads the set only after Ready, which we set afterwards.
    unsafe {
        let shared = w.fixed.as_ref().fileset.as_ptr();
        pg_sys::FileSetInit(shared);
        if let Some(number) = crate::spill::set_number(w.fixed.as_ref(), crate::spill::Part::Body) {
            (*shared).number = number;
        }
        w.set.set(Some(*shared));
    }
    // (after connecting: it runs before the backend's own exit callbacks, while the statistics,
    // which a file's deletion reports to, still work)
    static EXIT_CALLBACK: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&EXIT_CALLBACK, at_exit);
}

/// A worker that exits (FATAL) while it spills: complete the file first. Later messages of
/// the exit are dropped.
#[pg_guard]
unsafe extern "C-unwind" fn at_exit(_code: c_int, _arg: pg_sys::Datum) {
    finish();
}

/// Close the spill file before the server closes it at the transaction's end.
#[pg_guard]
unsafe extern "C-unwind" fn at_xact_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut core::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
            | XACT_EVENT_PREPARE
    ) {
        if let Some(w) = writer() {
            if !w.close() {
                w.broken.set(true);
            }
        }
    }
}

/// Close the file and hand it to the launcher (or delete it when the launcher has let go). At
/// the job's end, before its segment is detached, or at the worker's exit. Until the next job's
/// [`install`], output is dropped: everything of this job has been sent.
pub fn finish() {
    let Some(ptr) = WRITER.with(|w| w.take()) else {
        return;
    };
    // SAFETY: taken out of the cell: no new reference will be made; this is the leaked Box.
    let w = unsafe { Box::from_raw(ptr.as_ptr()) };
    if !w.spilling.get() {
        // SAFETY: as below.
        settle(unsafe { w.fixed.as_ref() });
        return;
    }
    // Closing flushes the last buffered block. If that fails, the reader finds the file
    // shorter than announced, reads what is complete and then reports the job's recorded error
    // or a lost connection.
    w.close();
    // SAFETY: the fixed state is mapped until the segment is detached, after this.
    let fixed = unsafe { w.fixed.as_ref() };
    if fixed.spill_state.finish_writing() {
        return;
    }
    let set = w.set.get();
    let bytes = fixed.spill_bytes.load(Ordering::Acquire);
    let kept = fixed.spill_state.get() == SpillState::Keep
        && set.is_some_and(|set| crate::registry::keep_body(fixed, Some((set, bytes))));
    if kept {
        // filed: nothing more to settle
        fixed.spill_state.abandon();
    } else {
        // The launcher has let go of the job: nobody will read the file.
        if let Some(mut set) = set {
            crate::server::delete_file_set(&mut set);
        }
    }
}

/// The job ends without a spill file (also when it never got as far as [`install`], e.g. a
/// FATAL while connecting): say so to the launcher, or, when the launcher has left keeping the
/// result, file that there is no file (else the kept result would wait for it for ever).
pub fn settle(fixed: &FixedState) {
    let finished = fixed
        .spill_state
        .advance(SpillState::None, SpillState::Empty);
    if finished == Err(SpillState::Keep) {
        crate::registry::keep_body(fixed, None);
        fixed.spill_state.abandon();
    }
}

/// Where [`put`] sends a message.
enum Route {
    Queue,
    Done,
}

/// [`FixedState::in_send`] while a message may go to the queue.
///
/// With the launcher's [`FixedState::leaving`] it makes a handshake (both sequentially
/// consistent): the worker sets `in_send` and then reads `leaving`; the launcher sets `leaving`
/// and then reads `in_send`. So either the worker sees `leaving` (and the message goes to the
/// file), or the launcher sees `in_send` and reads the queue until the message is in it and
/// `in_send` is clear again.
struct Sending<'a>(&'a FixedState);

impl<'a> Sending<'a> {
    fn start(fixed: &'a FixedState) -> Self {
        fixed.in_send.store(true, Ordering::SeqCst);
        Self(fixed)
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.in_send.store(false, Ordering::SeqCst);
    }
}

/// `pq_putmessage` while the job runs.
#[pg_guard]
unsafe extern "C-unwind" fn put(msgtype: c_char, s: *const c_char, len: usize) -> c_int {
    let Some(w) = writer() else {
        return 0;
    };
    // SAFETY: the server passes `len` readable bytes at `s`.
    let body = unsafe { core::slice::from_raw_parts(s.cast::<u8>(), len) };
    // (cleared however this returns: a leaving launcher waits for it)
    let _sending = Sending::start(w.fixed());
    match w.route(msgtype as u8, body) {
        Route::Done => 0,
        Route::Queue => {
            let send = w.send_to_queue();
            // SAFETY: the queue output's putmessage, as pq_putmessage would call it; guarded,
            // so that an ERROR it raises unwinds through this frame.
            unsafe { ffi::pg_guard_ffi_boundary(|| send(msgtype, s, len)) }
        }
    }
}

impl Writer {
    /// Close the file if it is open (flushing its buffer); false if that failed.
    fn close(&self) -> bool {
        let file = self.file.replace(core::ptr::null_mut());
        if file.is_null() {
            return true;
        }
        pgrx::PgTryBuilder::new(|| {
            // SAFETY: our open file, closed once, under the owner it was opened with.
            crate::spill::with_owner(|| unsafe { pg_sys::BufFileClose(file) });
            true
        })
        .catch_others(|_| false)
        .execute()
    }

    /// The open file, opened again at its end after a transaction closed it.
    fn open(&self) -> *mut pg_sys::BufFile {
        let file = self.file.get();
        if !file.is_null() {
            return file;
        }
        let shared = self.fixed().fileset.as_ptr();
        // SAFETY: the file exists (`start` created it) and nobody else has it open; in
        // TopMemoryContext under the spill owner.
        let file = crate::spill::with_owner(|| unsafe {
            let file = pg_sys::BufFileOpenFileSet(
                shared,
                crate::spill::FILE_NAME.as_ptr(),
                crate::spill::O_RDWR,
                false,
            );
            pg_sys::BufFileSeek(file, 0, 0, crate::spill::SEEK_END);
            file
        });
        self.file.set(file);
        file
    }

    fn fixed(&self) -> &FixedState {
        // SAFETY: mapped while the writer lives (see `writer`).
        unsafe { self.fixed.as_ref() }
    }

    fn send_to_queue(&self) -> unsafe extern "C-unwind" fn(c_char, *const c_char, usize) -> c_int {
        // SAFETY: the queue output's static methods; pqmq always has putmessage.
        unsafe { self.queue_output.as_ref() }
            .putmessage
            .expect("queue output without putmessage")
    }

    fn route(&self, msgtype: u8, body: &[u8]) -> Route {
        if self.writing.replace(false) {
            // The previous write to the file was interrupted by an error: what follows it in
            // the file would not parse.
            self.broken.set(true);
        }
        if self.broken.get() {
            return Route::Done;
        }
        if self.spilling.get() {
            self.append(msgtype, body);
            return Route::Done;
        }
        if self.refused.get() || self.set.get().is_none() {
            return Route::Queue;
        }
        // (a message reported from inside an interrupted wait goes to the file at once; so do
        // all once the launcher leaves with the result kept)
        let spill = self.waiting.replace(false)
            || self.fixed().leaving.load(Ordering::SeqCst)
            || !self.wait_for_room(1 + body.len());
        if spill && self.start() {
            self.append(msgtype, body);
            return Route::Done;
        }
        Route::Queue
    }

    /// Wait until a message of `len` bytes fits in the queue: true when it does (or the queue
    /// is detached: the server's output then drops it), false when the worker should spill.
    fn wait_for_room(&self, len: usize) -> bool {
        let cost = mq::message_cost(len);
        if cost > self.gauge.ring() {
            return self.gauge.detached();
        }
        let mut released = self.gauge.read();
        let mut since = crate::server::now();
        loop {
            if self.gauge.detached() || cost <= self.gauge.free() {
                return true;
            }
            if self.fixed().leaving.load(Ordering::SeqCst) {
                return false;
            }
            let waited = crate::server::ms_since(since);
            // (a negative spill_after: wait as long as it takes; this writer is there only to
            // keep the result once the launcher leaves)
            if self.after_ms >= 0 && waited >= self.after_ms {
                return false;
            }
            let sleep_ms = if self.after_ms >= 0 {
                self.after_ms - waited
            } else {
                1000
            };
            self.waiting.set(true);
            // (the reader sets our latch whenever it releases bytes)
            crate::server::sleep_on_latch(sleep_ms, WaitEvent::QueuePut);
            self.waiting.set(false);
            let now_released = self.gauge.read();
            if now_released != released {
                released = now_released;
                since = crate::server::now();
            }
        }
    }

    /// Open the file; false when the launcher has already let go (then nobody reads).
    fn start(&self) -> bool {
        // (a launcher that left keeping the result wants the file, filed at `finish`)
        if !self.fixed().spill_state.start_writing() {
            self.refused.set(true);
            return false;
        }
        let shared = self.fixed().fileset.as_ptr();
        // SAFETY: the set was initialised by `prepare`; the file and its buffer live in
        // TopMemoryContext under the spill owner, closed by `finish`.
        let file = crate::spill::with_owner(|| unsafe {
            pg_sys::BufFileCreateFileSet(shared, crate::spill::FILE_NAME.as_ptr())
        });
        self.file.set(file);
        self.spilling.set(true);
        true
    }

    /// Append one message to the file; rows beyond `pg_background.spill_limit` end the job with
    /// an ERROR (which itself still goes to the file).
    fn append(&self, msgtype: u8, body: &[u8]) {
        let len = 1 + body.len();
        let Some(header) = crate::spill::header(len) else {
            self.broken.set(true);
            return;
        };
        if msgtype == b'M' {
            let rows = self.row_bytes.get() + len as u64;
            if let Some(limit) = self.limit.filter(|&limit| rows > limit) {
                let report: pgrx::pg_sys::panic::ErrorReport =
                    crate::error::Error::SpillLimit(limit / 1024).into();
                report.report(PgLogLevel::ERROR);
            }
            self.row_bytes.set(rows);
        }
        self.writing.set(true);
        let file = self.open();
        crate::spill::with_owner(|| {
            // SAFETY: our open file; BufFileWrite copies from the buffers we pass and raises
            // an ERROR itself on failure (or past temp_file_limit).
            unsafe {
                pg_sys::BufFileWrite(file, header.as_ptr().cast_mut().cast(), header.len());
                pg_sys::BufFileWrite(file, (&msgtype as *const u8).cast_mut().cast(), 1);
                pg_sys::BufFileWrite(file, body.as_ptr().cast_mut().cast(), body.len());
            }
        });
        self.writing.set(false);
        // (only this worker writes it)
        let spill_bytes = &self.fixed().spill_bytes;
        let bytes = spill_bytes.load(Ordering::Relaxed) + (crate::spill::HEADER + len) as u64;
        spill_bytes.store(bytes, Ordering::Release);
    }
}
