//! The response queue (`storage/shm_mq.h`): worker → launcher.
//!
//! The launcher owns a [`MqReceiver`]; the worker hands its end to `libpq/pqmq.c`
//! ([`redirect_output`]), so that everything PostgreSQL would send to a client — row
//! descriptions, data rows, command tags, notices, errors — goes into the queue instead.

use super::dsm::Segment;
use core::ptr::NonNull;
use pgrx::pg_sys;

/// What `shm_mq_result` says besides success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqError {
    /// The other side detached, or its process is gone.
    Detached,
    /// Non-blocking call that would have had to wait.
    WouldBlock,
}

fn check(result: pg_sys::shm_mq_result::Type) -> Result<(), MqError> {
    match result {
        pg_sys::shm_mq_result::SHM_MQ_SUCCESS => Ok(()),
        pg_sys::shm_mq_result::SHM_MQ_WOULD_BLOCK => Err(MqError::WouldBlock),
        _ => Err(MqError::Detached),
    }
}

/// `shm_mq_minimum_size`: the smallest queue that can carry a message.
pub fn minimum_size() -> usize {
    // SAFETY: a constant the server exports.
    unsafe { pg_sys::shm_mq_minimum_size }
}

/// Lay out a queue of `size` bytes at `chunk` (allocated from the segment's table of contents).
pub fn create(chunk: NonNull<u8>, size: usize) -> NonNull<pg_sys::shm_mq> {
    // SAFETY: `chunk` is `size` bytes of fresh shared memory.
    let mq = unsafe { pg_sys::shm_mq_create(chunk.as_ptr().cast(), size) };
    NonNull::new(mq).expect("shm_mq_create returned NULL")
}

/// The launcher's end of the queue. Detaches when dropped, which tells the worker that nobody
/// reads any more: its further output is dropped without blocking.
pub struct MqReceiver {
    mqh: NonNull<pg_sys::shm_mq_handle>,
}

impl MqReceiver {
    /// Become the receiver of `mq` and attach. The handle is allocated in
    /// `CurrentMemoryContext`, which must outlive the receiver.
    pub fn attach(mq: NonNull<pg_sys::shm_mq>, segment: &impl Segment) -> Self {
        // SAFETY: `mq` lies in `segment`, has no receiver yet, and `MyProc` is our PGPROC.
        let mqh = unsafe {
            pg_sys::shm_mq_set_receiver(mq.as_ptr(), pg_sys::MyProc);
            pg_sys::shm_mq_attach(mq.as_ptr(), segment.as_ptr(), core::ptr::null_mut())
        };
        Self {
            mqh: NonNull::new(mqh).expect("shm_mq_attach returned NULL"),
        }
    }

    /// Let waits on the queue notice when the worker process is gone (`shm_mq_set_handle`).
    pub fn watch_worker(&mut self, handle: NonNull<pg_sys::BackgroundWorkerHandle>) {
        // SAFETY: both handles are live; the worker handle outlives this receiver (same owner).
        unsafe { pg_sys::shm_mq_set_handle(self.mqh.as_ptr(), handle.as_ptr()) };
    }

    /// Wait until the worker has attached as sender, or is gone. Ok also when the worker has
    /// attached, finished and detached already (`shm_mq_wait_for_attach` alone reports that
    /// as detached).
    pub fn wait_for_attach(&mut self) -> Result<(), MqError> {
        // SAFETY: live handle; the wait is interruptible (CHECK_FOR_INTERRUPTS inside); the
        // sender pointer is read under the queue's spinlock.
        unsafe {
            let result = check(pg_sys::shm_mq_wait_for_attach(self.mqh.as_ptr()));
            let queue = pg_sys::shm_mq_get_queue(self.mqh.as_ptr());
            if result.is_err() && !pg_sys::shm_mq_get_sender(queue).is_null() {
                return Ok(());
            }
            result
        }
    }

    /// Whether the worker has attached as sender (and may have detached again since).
    pub fn sender_attached(&self) -> bool {
        // SAFETY: live handle; the sender pointer is read under the queue's spinlock.
        unsafe { !pg_sys::shm_mq_get_sender(pg_sys::shm_mq_get_queue(self.mqh.as_ptr())).is_null() }
    }

    /// The next message, waiting for it; while none is there, `idle` runs (it waits on the
    /// latch, and may give up with its own error). The slice is valid until the next call on
    /// this receiver.
    pub fn receive_or_idle<E>(
        &mut self,
        mut idle: impl FnMut() -> Result<(), E>,
    ) -> Result<Result<&[u8], MqError>, E> {
        loop {
            let mut len: pg_sys::Size = 0;
            let mut data: *mut core::ffi::c_void = core::ptr::null_mut();
            // SAFETY: live handle; a non-blocking receive keeps a partly read message in the
            // handle between calls.
            let result = check(unsafe {
                pg_sys::shm_mq_receive(self.mqh.as_ptr(), &mut len, &mut data, true)
            });
            match result {
                Ok(()) if len == 0 => return Ok(Ok(&[])),
                Ok(()) => {
                    // SAFETY: `data` points at `len` bytes valid until the next receive on this
                    // handle, which the borrow of `self` enforces.
                    let message = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), len) };
                    return Ok(Ok(message));
                }
                Err(MqError::WouldBlock) => idle()?,
                Err(e) => return Ok(Err(e)),
            }
        }
    }
}

impl Drop for MqReceiver {
    fn drop(&mut self) {
        // SAFETY: we own the handle; shm_mq_detach cancels its on_dsm_detach callback and frees
        // it. Runs before the segment is detached (field and declaration order of the owners).
        unsafe { pg_sys::shm_mq_detach(self.mqh.as_ptr()) };
    }
}

/// Worker side: become the sender of `mq` and send all protocol output through it.
///
/// The handle then belongs to `pqmq.c`, which detaches it when the segment is detached.
pub fn redirect_output(mq: NonNull<pg_sys::shm_mq>, segment: &impl Segment) {
    // SAFETY: `mq` lies in `segment`, which stays attached until the process exits; the
    // launcher set itself as receiver before it registered us.
    unsafe {
        pg_sys::shm_mq_set_sender(mq.as_ptr(), pg_sys::MyProc);
        let mqh = pg_sys::shm_mq_attach(mq.as_ptr(), segment.as_ptr(), core::ptr::null_mut());
        crate::ffi::pq_redirect_to_shm_mq(segment.as_ptr(), mqh);
    }
}

/// Offsets in `struct shm_mq` (`storage/ipc/shm_mq.c`) on 64-bit platforms: the server exports
/// no way to ask how full a queue is, which a worker must know to choose between the queue and
/// its spill file *before* it begins a message (a message once begun cannot be withdrawn). The
/// struct is private to shm_mq.c, so no header can confirm these offsets at build time;
/// [`layout_proven`] confirms each of them at run time through the queue's public functions,
/// once per process, before any queue is measured.
mod layout {
    pub const RECEIVER: usize = 8;
    pub const SENDER: usize = 16;
    pub const BYTES_READ: usize = 24;
    pub const BYTES_WRITTEN: usize = 32;
    pub const RING_SIZE: usize = 40;
    pub const DETACHED: usize = 48;
    pub const RING_OFFSET: usize = 49;
    /// `MAXALIGN(offsetof(shm_mq, mq_ring))`.
    pub const HEADER: usize = 56;
}

const _: () = assert!(
    core::mem::size_of::<usize>() == 8,
    "the shm_mq layout is that of 64-bit platforms"
);

/// Whether this server's `shm_mq` has the layout of [`layout`]: a queue in this process's own
/// memory, with this process as both sender and receiver, is created, attached, sent one
/// message, read and detached through the public functions, and after each step the field the
/// step must have changed is read at its offset. Computed once per process.
pub fn layout_proven() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    // 0: not tested yet, 1: proven, 2: differs
    static PROVEN: AtomicU8 = AtomicU8::new(0);
    match PROVEN.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let proven = prove_layout();
            PROVEN.store(if proven { 1 } else { 2 }, Ordering::Relaxed);
            if !proven {
                pgrx::ereport!(
                    pgrx::PgLogLevel::WARNING,
                    pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "pg_background cannot measure this server's message queues",
                    "Results that do not fit in a job's queue wait for the reader instead of \
                     spilling to a temporary file, and results are not kept after their \
                     session ends."
                );
            }
            proven
        }
    }
}

fn prove_layout() -> bool {
    const SIZE: usize = 1024;
    const MESSAGE: &[u8] = b"pg_background";
    let mut memory = vec![0u64; SIZE / 8];
    let base = memory.as_mut_ptr().cast::<u8>();
    // SAFETY: `base` is SIZE bytes, 8-aligned, owned by this function and outliving every use
    // below: the queue needs no shared memory when one process is both of its ends. Both
    // handles are attached without a segment (no detach callback) and detached again before
    // `memory` is freed; the field reads are aligned and within the first HEADER bytes.
    unsafe {
        let word = |offset: usize| base.add(offset).cast::<u64>().read_volatile();
        let byte = |offset: usize| base.add(offset).read_volatile();
        let mq = pg_sys::shm_mq_create(base.cast(), SIZE);
        let Some(ring) = header_ring_size(NonNull::new_unchecked(mq), SIZE) else {
            return false;
        };
        let me = pg_sys::MyProc as u64;
        // (each step checks the field it must change, and that its neighbour did not change)
        pg_sys::shm_mq_set_receiver(mq, pg_sys::MyProc);
        let mut proven = word(layout::RECEIVER) == me && word(layout::SENDER) == 0;
        pg_sys::shm_mq_set_sender(mq, pg_sys::MyProc);
        proven &= word(layout::SENDER) == me;
        let sender = pg_sys::shm_mq_attach(mq, core::ptr::null_mut(), core::ptr::null_mut());
        let receiver = pg_sys::shm_mq_attach(mq, core::ptr::null_mut(), core::ptr::null_mut());
        // (sending sets the receiver's latch, ours: a wake-up every wait tolerates)
        proven &= check(pg_sys::shm_mq_send(
            sender,
            MESSAGE.len(),
            MESSAGE.as_ptr().cast(),
            true,
            true,
        ))
        .is_ok();
        let cost = message_cost(MESSAGE.len());
        proven &= word(layout::BYTES_WRITTEN) == cost
            && word(layout::BYTES_READ) == 0
            && word(layout::HEADER) == MESSAGE.len() as u64
            && core::slice::from_raw_parts(base.add(layout::HEADER + 8), MESSAGE.len()) == MESSAGE;
        let mut len: pg_sys::Size = 0;
        let mut data: *mut core::ffi::c_void = core::ptr::null_mut();
        proven &= check(pg_sys::shm_mq_receive(receiver, &mut len, &mut data, true)).is_ok()
            && len == MESSAGE.len();
        // an empty queue makes the receiver release what it has consumed, then give up
        proven &= check(pg_sys::shm_mq_receive(receiver, &mut len, &mut data, true))
            == Err(MqError::WouldBlock)
            && word(layout::BYTES_READ) == cost;
        proven &= byte(layout::DETACHED) == 0;
        pg_sys::shm_mq_detach(sender);
        proven &= byte(layout::DETACHED) == 1;
        pg_sys::shm_mq_detach(receiver);
        proven && word(layout::RING_SIZE) == ring
    }
}

/// Bytes a message of `len` bytes (type byte included) takes in a queue's ring: its length word
/// and its data, each padded to MAXALIGN (`shm_mq_sendv`).
pub fn message_cost(len: usize) -> u64 {
    (8 + len.next_multiple_of(8)) as u64
}

/// The ring size of a queue `shm_mq_create` just laid out in `size` bytes, if its header is
/// exactly what we expect (see [`layout`]); `None` otherwise, or when the layout is not
/// [proven](layout_proven) on this server.
pub fn checked_ring_size(mq: NonNull<pg_sys::shm_mq>, size: usize) -> Option<u64> {
    if !layout_proven() {
        return None;
    }
    header_ring_size(mq, size)
}

/// The ring size of a queue just laid out in `size` bytes, if its header holds what
/// `shm_mq_create` writes at the offsets of [`layout`].
fn header_ring_size(mq: NonNull<pg_sys::shm_mq>, size: usize) -> Option<u64> {
    let base = mq.as_ptr().cast::<u8>();
    // SAFETY: the queue header lies in the `size` bytes at `base` (size > HEADER, checked by
    // the caller's minimum); aligned reads of fields nobody else touches yet (no sender or
    // receiver is set).
    unsafe {
        let word = |offset: usize| base.add(offset).cast::<u64>().read();
        let byte = |offset: usize| base.add(offset).read();
        let expected = (size & !7).checked_sub(layout::HEADER)? as u64;
        let matches = word(layout::RECEIVER) == 0
            && word(layout::SENDER) == 0
            && word(layout::BYTES_READ) == 0
            && word(layout::BYTES_WRITTEN) == 0
            && word(layout::RING_SIZE) == expected
            && byte(layout::DETACHED) == 0
            && usize::from(byte(layout::RING_OFFSET)) == layout::HEADER - 50;
        matches.then_some(expected)
    }
}

/// The worker's view of how full its queue is: the queue's own counters of bytes written and
/// read (the server's queue output flushes its count of bytes written with every message).
pub struct Gauge {
    base: NonNull<u8>,
    ring: u64,
}

impl Gauge {
    /// `ring` comes from [`checked_ring_size`] for this queue.
    pub fn new(mq: NonNull<pg_sys::shm_mq>, ring: u64) -> Self {
        Self {
            base: mq.cast(),
            ring,
        }
    }

    fn counter(&self, offset: usize) -> u64 {
        // SAFETY: the field is a `pg_atomic_uint64` (a plain aligned u64 on 64-bit platforms)
        // in the mapped queue header; atomic loads race with the other side's updates safely.
        unsafe {
            (*self
                .base
                .as_ptr()
                .add(offset)
                .cast::<core::sync::atomic::AtomicU64>())
            .load(core::sync::atomic::Ordering::Acquire)
        }
    }

    pub fn ring(&self) -> u64 {
        self.ring
    }

    /// Bytes the reader has released so far.
    pub fn read(&self) -> u64 {
        self.counter(layout::BYTES_READ)
    }

    /// Bytes free in the ring now (at least; the reader may have released more since).
    pub fn free(&self) -> u64 {
        let written = self.counter(layout::BYTES_WRITTEN);
        self.ring
            .saturating_sub(written.saturating_sub(self.read()))
    }

    /// Whether either side has detached.
    pub fn detached(&self) -> bool {
        // SAFETY: a bool field of the mapped header, only ever set from false to true.
        unsafe {
            (*self
                .base
                .as_ptr()
                .add(layout::DETACHED)
                .cast::<core::sync::atomic::AtomicU8>())
            .load(core::sync::atomic::Ordering::Acquire)
                != 0
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_costs_its_length_word_and_its_padded_data() {
        assert_eq!(super::message_cost(1), 16);
        assert_eq!(super::message_cost(8), 16);
        assert_eq!(super::message_cost(9), 24);
        assert_eq!(super::message_cost(8193), 8 + 8200);
    }
}
