//! Where the launcher reads a job from: its shared segment while the worker runs, session memory
//! once the worker has finished.
//!
//! A finished worker has nothing more to write, so everything still to be read lies in its queue
//! (at most the queue's size). [`Channel::release`] moves those messages, the job's fixed state
//! and its SQL into session memory and detaches the segment: an unread or never-read job then
//! holds neither a segment nor a worker slot (in the C extension, such jobs keep both until
//! they are detached).
//!
//! A worker whose queue stayed full wrote the rest of its output to a spill file
//! ([`SpillFile`]): its messages follow the queue's, once the queue has ended.

use super::bgworker::{WorkerHandle, WorkerStatus};
use crate::error::Error;
use crate::shm::dsm::PinnedSegment;
use crate::shm::mq::MqReceiver;
use crate::shm::toc::Toc;
use crate::shm::{FixedState, TocKey};
use crate::spill;
use crate::spill::reader::SpillFile;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

/// The queue and the segment it lives in. Field order is drop order: the queue is detached
/// before the segment.
struct Live {
    queue: MqReceiver,
    segment: PinnedSegment,
}

/// What survives a released segment.
struct Retained {
    /// Held: `Channel::fixed` points into it.
    _fixed: Box<FixedState>,
    sql: String,
}

pub struct Channel {
    live: Option<Live>,
    /// Set when `live` is gone.
    retained: Option<Retained>,
    /// Messages moved out of the queue, each as a native-endian `u32` length and its bytes.
    buffered: Vec<u8>,
    /// How much of `buffered` the reader has consumed.
    read_offset: usize,
    /// Where the fixed state lives now: inside the segment, then inside `retained`.
    fixed: NonNull<FixedState>,
    /// The worker's spill file, read after the queue (and after `buffered`).
    spill: Option<SpillFile>,
    /// Output was read and dropped (`discard_available`): nothing is left to keep.
    dropped: bool,
}

impl Channel {
    /// `fixed` lies in `segment`, which stays mapped as long as the channel owns it.
    pub fn new(queue: MqReceiver, segment: PinnedSegment, fixed: NonNull<FixedState>) -> Self {
        Self {
            live: Some(Live { queue, segment }),
            retained: None,
            buffered: Vec::new(),
            read_offset: 0,
            fixed,
            spill: None,
            dropped: false,
        }
    }

    pub fn fixed(&self) -> &FixedState {
        // SAFETY: `fixed` points into the live segment or into `retained`, both owned by self
        // and only replaced together (in `release`).
        unsafe { self.fixed.as_ref() }
    }

    /// Whether the segment has been released.
    pub fn released(&self) -> bool {
        self.live.is_none()
    }

    /// The job's SQL text.
    pub fn sql(&self) -> String {
        match (&self.live, &self.retained) {
            (Some(live), _) => sql_in(&live.segment),
            (None, Some(retained)) => retained.sql.clone(),
            (None, None) => String::new(),
        }
    }

    /// The next message: buffered ones first, then from the queue, waiting for it (and checking,
    /// while it waits, that the worker is not blocked by this session: 40P01). Once the worker
    /// has detached and everything has been read: the error the worker recorded, if its queue
    /// went before the error could be sent, else a lost connection.
    pub fn receive(&mut self, pid: i32, worker: &WorkerHandle) -> Result<&[u8], Error> {
        if self.read_offset < self.buffered.len() {
            let start = self.read_offset + spill::HEADER;
            let mut header = [0u8; spill::HEADER];
            header.copy_from_slice(&self.buffered[self.read_offset..start]);
            let end = start + spill::announced(header);
            self.read_offset = end;
            return Ok(&self.buffered[start..end]);
        }
        let fixed = self.fixed;
        if let Some(live) = self.live.as_mut() {
            let mut waiter = super::deadlock::Waiter::new(pid);
            if let Ok(message) = live
                .queue
                .receive_or_idle(|| waiter.wait(crate::server::WaitEvent::QueueReceive))?
            {
                return Ok(message);
            }
            // The queue has ended: the worker is done sending (a spill file is complete
            // before the worker detaches from the queue).
            if self.spill.is_none() {
                // SAFETY: as in `Channel::fixed` (a copy of the pointer: `live` is borrowed).
                self.spill = SpillFile::take(unsafe { fixed.as_ref() });
            }
        }
        if let Some(message) = self.spill.as_mut().and_then(SpillFile::next) {
            return Ok(message);
        }
        Err(ended_without_reply(fixed, pid, worker))
    }

    /// Read and drop what the worker has written so far, without waiting: for callers that
    /// want only the job's outcome (kept in the fixed state), so that its worker never blocks on
    /// a full queue.
    pub fn discard_available(&mut self) {
        self.dropped = true;
        if let Some(live) = self.live.as_mut() {
            // (an idle step that gives up at once; ends at an empty or detached queue)
            while let Ok(Ok(_)) = live.queue.receive_or_idle(|| Err(())) {}
        }
    }

    /// For a worker that has finished: move what is left in its queue to session memory and
    /// detach the segment. Returns false, keeping what it moved so far, when the queue is not
    /// complete yet (the worker is still detaching); a later call goes on.
    pub fn release(&mut self) -> bool {
        let Some(live) = self.live.as_mut() else {
            return true;
        };
        loop {
            // (an idle step that gives up at once: never wait for a message)
            match live.queue.receive_or_idle(|| Err(())) {
                Ok(Ok(message)) => buffer(&mut self.buffered, message),
                // the worker has detached and everything is here
                Ok(Err(_)) => break,
                // not complete yet
                Err(()) => return false,
            }
        }
        if self.spill.is_none() {
            self.spill = SpillFile::take(self.fixed());
        }
        let Some(live) = self.live.as_mut() else {
            return true;
        };
        let sql = sql_in(&live.segment);
        // SAFETY: the worker has detached from the segment, so nobody writes the fixed state any
        // more; it is plain data (atomics and bytes) and is copied bit for bit before the
        // segment goes.
        let fixed = Box::new(unsafe { core::ptr::read(self.fixed.as_ptr()) });
        self.fixed = NonNull::from(&*fixed);
        self.retained = Some(Retained { _fixed: fixed, sql });
        self.live = None;
        true
    }
}

impl Channel {
    /// This session ends with the job unread and its result to be kept
    /// (`FixedState::keep_s`): move everything the worker has put into the queue to a file of
    /// ours, and have the rest (the spill file, and all it still sends) filed in the cluster-wide
    /// registry, where its owner reads it with `pg_background_job_result(job_id)`. False when there is
    /// nothing to keep or keeping failed (the job is then let go as usual).
    pub fn keep(&mut self) -> bool {
        // SAFETY: as in `Channel::fixed` (a copy of the pointer: `self` is borrowed below).
        let fixed = unsafe { self.fixed.as_ref() };
        let Ok(index) = usize::try_from(fixed.job_slot) else {
            return false;
        };
        if fixed.keep_s <= 0 || self.dropped || self.read_offset > 0 {
            return false;
        }
        if self.spill.as_ref().is_some_and(SpillFile::opened) {
            // its reading has begun
            return false;
        }
        if !self.drain_for_keeping(fixed) {
            return false;
        }
        // The head first: a worker files its spill file only for a result filed as kept.
        let head = match &self.buffered[..] {
            [] => None,
            messages => match spill::reader::write_set(
                crate::spill::HEAD_NAME,
                crate::spill::set_number(fixed, crate::spill::Part::Head),
                messages,
            ) {
                None => return false,
                written => written,
            },
        };
        if !crate::registry::keep_head(index, fixed.job_id, fixed.keep_s, head) {
            if let Some((mut set, _)) = head {
                crate::server::delete_file_set(&mut set);
            }
            return false;
        }
        // Then the spill file: ours to file if complete, else the worker's when it finishes.
        if let Some(body) = self.settle_body(fixed) {
            if !crate::registry::keep_body_of(index, fixed.job_id, body) {
                if let Some((mut set, _)) = body {
                    crate::server::delete_file_set(&mut set);
                }
            }
        }
        true
    }

    /// Read the queue to its end after setting `leaving`: whatever the worker sends from then
    /// on goes to its file (see `Sending` in `crate::spill::writer`); a send it began before is
    /// waited for. False if that send did not end within `KEEP_DRAIN_MS`.
    fn drain_for_keeping(&mut self, fixed: &FixedState) -> bool {
        let Some(live) = self.live.as_mut() else {
            return true;
        };
        fixed.leaving.store(true, Ordering::SeqCst);
        let start = crate::server::now();
        loop {
            let sending = fixed.in_send.load(Ordering::SeqCst);
            // (an idle step that gives up at once)
            while let Ok(Ok(message)) = live.queue.receive_or_idle(|| Err(())) {
                buffer(&mut self.buffered, message);
            }
            if !sending {
                return true;
            }
            if crate::server::ms_since(start) > KEEP_DRAIN_MS {
                return false;
            }
            // SAFETY: a plain sleep of this process.
            unsafe { pgrx::pg_sys::pg_usleep(100) };
        }
    }

    /// The spill file of a result being kept, with one compare-and-swap on its state: `Some`
    /// file (or none) to file now when it is complete (or ours already, or there is none);
    /// `None` when the worker still writes it, or has not begun, and files it itself.
    fn settle_body(&mut self, fixed: &FixedState) -> Option<Option<crate::registry::File>> {
        use crate::shm::SpillState;
        loop {
            let now = fixed.spill_state.get();
            let next = match now {
                SpillState::Ready => SpillState::Taken,
                SpillState::None | SpillState::Writing if self.live.is_some() => SpillState::Keep,
                // ours already (Taken), or none (Empty, or a released job that wrote none)
                _ => return Some(self.spill.take().and_then(SpillFile::hand_over)),
            };
            if fixed.spill_state.advance(now, next).is_ok() {
                return match next {
                    // the worker files it when it finishes
                    SpillState::Keep => None,
                    // SAFETY: Ready: the worker is done with the set (as in SpillFile::take).
                    _ => Some(Some((
                        unsafe { *fixed.fileset.as_ptr() },
                        fixed.spill_bytes.load(Ordering::Acquire),
                    ))),
                };
            }
        }
    }
}

/// Append a message moved out of the queue to `buffered`, in the spill file's format.
fn buffer(buffered: &mut Vec<u8>, message: &[u8]) {
    buffered.extend_from_slice(&spill::header(message.len()).expect("shm_mq message over 4 GB"));
    buffered.extend_from_slice(message);
}

/// Longest wait of a leaving launcher for a message the worker is putting into the queue.
const KEEP_DRAIN_MS: i64 = 10_000;

/// The worker's output ended before its ReadyForQuery. When it detached because a cancel or
/// terminate interrupted a send on its full queue, the error could not be sent but is in
/// the fixed state once the process has exited: wait for that (interruptibly; the
/// postmaster sets our latch), then raise it as if it had been relayed.
fn ended_without_reply(fixed: NonNull<FixedState>, pid: i32, worker: &WorkerHandle) -> Error {
    let mut waiter = super::deadlock::Waiter::new(pid);
    while !matches!(
        worker.status(),
        WorkerStatus::Stopped | WorkerStatus::PostmasterDied
    ) {
        if let Err(e) = waiter.wait(crate::server::WaitEvent::Job) {
            return e;
        }
    }
    // SAFETY: `fixed` is the channel's, valid while the channel is (see `Channel::fixed`).
    let error = unsafe { &fixed.as_ref().error };
    if error.present.load(Ordering::Acquire) {
        super::relay::raise_recorded(error, pid);
    }
    Error::LostConnection(pid)
}

/// The NUL-terminated SQL the launcher wrote into `segment`.
fn sql_in(segment: &PinnedSegment) -> String {
    Toc::attach(segment)
        .and_then(|toc| toc.lookup(TocKey::Sql))
        .map(|chunk| {
            // SAFETY: the launcher wrote the NUL-terminated SQL into this chunk, which lives as
            // long as the segment.
            unsafe { core::ffi::CStr::from_ptr(chunk.as_ptr().cast()) }
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default()
}
