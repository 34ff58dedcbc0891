//! The registry's layout: one [`Slot`] per job, with its state and, for a result kept after its
//! launcher left, the kept state and files.

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use pgrx::pg_sys;

/// Where a job is. The state of a slot only changes under the registry's exclusive lock.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// No job (all-zero memory).
    Free = 0,
    /// Filed by its launch; the worker has not started the job.
    Queued = 1,
    Running = 2,
    Finished = 3,
    Failed = 4,
    Canceled = 5,
}

impl JobState {
    /// The name the view shows.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Free => "free",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    /// The job has ended.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Failed | JobState::Canceled
        )
    }
}

/// Where a kept result is. Moves only through the methods of [`Slot`]:
/// `None → Pending` (the launcher left, [`Slot::keep_head`]) `→ Ready` (the spill file, or that
/// there is none, is filed: [`Slot::file_body`]) `→ Reading` ([`Slot::claim`]) `→ None`
/// ([`Slot::read_out`]); or `Ready → None` when its time is up ([`Slot::expire`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptState {
    None = 0,
    /// The launcher left and filed the head; the body is not filed yet (the worker still
    /// runs).
    Pending = 1,
    /// Complete, waiting to be read until `kept_until`.
    Ready = 2,
    /// A session reads it.
    Reading = 3,
}

pub const LABEL: usize = 65;
pub const SQLSTATE: usize = 6;
pub const MESSAGE: usize = 256;
pub const QUERY: usize = 121;
/// `pg_background_progress` keeps 63 bytes of its message.
pub const PROGRESS: usize = 64;

/// A file of a kept result: its set and size.
pub type File = (pg_sys::FileSet, u64);

#[repr(C)]
pub struct Slot {
    // (what a launch reads of every slot, under the exclusive lock, comes first: in one cache
    // line)
    pub job_id: u64,
    pub state: JobState,
    pub owner: pg_sys::Oid,
    pub finished_at: i64,
    /// A result kept after its launcher left.
    kept: KeptState,
    keep_s: i32,
    /// Until when a complete kept result waits to be read.
    kept_until: i64,
    /// Counts against the caps on running jobs (a queued slot without it waits for its turn).
    pub admitted: bool,
    /// `pg_background.max_jobs_per_role` of the launching session (-1: none).
    pub role_cap: i32,
    pub database: pg_sys::Oid,
    pub launcher_pid: i32,
    pub worker_pid: i32,
    pub launched_at: i64,
    pub started_at: i64,
    /// Updated by the worker without the lock.
    pub rows: AtomicI64,
    pub bytes: AtomicI64,
    pub label: [u8; LABEL],
    pub sqlstate: [u8; SQLSTATE],
    pub message: [u8; MESSAGE],
    pub query: [u8; QUERY],
    /// The progress the job last reported (`progress_pct` -1: none yet).
    pub progress_pct: i32,
    pub progress_msg: [u8; PROGRESS],
    /// The part the launcher had moved out of the queue (filed by the launcher).
    head: Part,
    /// The spill file (filed by whoever holds it when the launcher leaves).
    body: Part,
}

/// One file of a kept result.
#[repr(C)]
#[derive(Clone, Copy)]
struct Part {
    /// There is a file.
    present: bool,
    bytes: u64,
    set: pg_sys::FileSet,
}

impl Part {
    fn of(file: Option<File>) -> Self {
        // SAFETY: all-zero bytes are a valid FileSet (plain integers).
        let mut part: Part = unsafe { core::mem::zeroed() };
        if let Some((set, bytes)) = file {
            part.present = true;
            part.set = set;
            part.bytes = bytes;
        }
        part
    }

    fn file(&self) -> Option<File> {
        self.present.then_some((self.set, self.bytes))
    }
}

impl Slot {
    /// Holds job `id` (in any state but free).
    pub fn holds_job(&self, id: u64) -> bool {
        self.job_id == id && self.state != JobState::Free
    }

    pub fn kept(&self) -> KeptState {
        self.kept
    }

    /// Until when a complete kept result waits to be read.
    pub fn kept_until(&self) -> Option<i64> {
        (self.kept == KeptState::Ready).then_some(self.kept_until)
    }

    /// A new job in this slot: nothing kept.
    pub fn reset_kept(&mut self) {
        self.kept = KeptState::None;
        self.keep_s = 0;
        self.kept_until = 0;
    }

    /// The job was launched to have its result kept for `keep_s` seconds if its session leaves
    /// it unread: its slot is given to a new job only when no other finished one is left.
    pub fn launched_to_keep(&mut self, keep_s: i32) {
        if self.kept == KeptState::None {
            self.keep_s = keep_s;
        }
    }

    /// Whether the job was launched to be kept (see [`Slot::launched_to_keep`]).
    pub fn to_keep(&self) -> bool {
        self.keep_s > 0
    }

    /// None → Pending: the launcher leaves the result unread and files what it had read ahead.
    pub fn keep_head(&mut self, keep_s: i32, head: Option<File>) -> bool {
        if self.kept != KeptState::None {
            return false;
        }
        self.kept = KeptState::Pending;
        self.keep_s = keep_s;
        self.head = Part::of(head);
        true
    }

    /// Pending → Ready: the spill file (or none) is filed; the result waits `keep_s` from `now`.
    pub fn file_body(&mut self, body: Option<File>, now: i64) -> bool {
        if self.kept != KeptState::Pending {
            return false;
        }
        self.body = Part::of(body);
        self.kept = KeptState::Ready;
        self.kept_until = now + i64::from(self.keep_s) * 1_000_000;
        true
    }

    /// Ready → Reading: the head's and the body's files, for their one reader.
    pub fn claim(&mut self) -> Option<(Option<File>, Option<File>)> {
        if self.kept != KeptState::Ready {
            return None;
        }
        self.kept = KeptState::Reading;
        Some((self.head.file(), self.body.file()))
    }

    /// Reading → None: the reader is done (and deletes the files).
    pub fn read_out(&mut self) {
        if self.kept == KeptState::Reading {
            self.kept = KeptState::None;
        }
    }

    /// Ready → None when its time is up at `now`: the file sets to delete.
    pub fn expire(&mut self, now: i64) -> Vec<pg_sys::FileSet> {
        if self.kept_until >= now {
            return Vec::new();
        }
        self.discard()
    }

    /// Ready → None, whatever time is left (its owner role was dropped): the file sets to
    /// delete.
    pub fn discard(&mut self) -> Vec<pg_sys::FileSet> {
        if self.kept != KeptState::Ready {
            return Vec::new();
        }
        self.kept = KeptState::None;
        [self.head.file(), self.body.file()]
            .into_iter()
            .flatten()
            .map(|(set, _)| set)
            .collect()
    }
}

/// The registry's header, followed in the same memory by its slots
/// ([`Registry::slots`]): their number is `pg_background.job_slots` at server start; then the
/// list of idle warm workers ([`Registry::idle`]), one place per worker process the server may
/// run (`max_worker_processes`).
#[repr(C)]
pub struct Registry {
    pub lock: pg_sys::LWLock,
    pub tranche: i32,
    /// Broadcast whenever a waiting launch may have got its turn: a job ended, a slot was
    /// freed, a waiting launch was admitted; and when a kept result became complete.
    pub turn: pg_sys::ConditionVariable,
    /// The next job id. Starts at the time of the registry's creation in microseconds, so that
    /// ids keep growing across server restarts (unless jobs were launched at more than one per
    /// microsecond on average).
    pub next_id: u64,
    /// What the whole cluster did since `stats.reset_at`, counted without the lock.
    pub stats: Counters,
    /// How many slots follow.
    slot_count: usize,
    /// How many places the list of idle workers has.
    idle_count: usize,
    /// No kept result expires before this time (0: none is waiting): launches look for expired
    /// ones only from then on.
    pub(super) no_expiry_before: i64,
}

impl Registry {
    /// Bytes of shared memory for a registry of `slots` slots and `idle` places for idle
    /// workers.
    pub fn size(slots: usize, idle: usize) -> usize {
        Self::idle_offset(slots) + idle * core::mem::size_of::<IdleWorker>()
    }

    fn slots_offset() -> usize {
        core::mem::size_of::<Registry>().next_multiple_of(core::mem::align_of::<Slot>())
    }

    fn idle_offset(slots: usize) -> usize {
        (Self::slots_offset() + slots * core::mem::size_of::<Slot>())
            .next_multiple_of(core::mem::align_of::<IdleWorker>())
    }

    /// Lay out a registry of `slots` free slots and `idle` free places in `memory`.
    ///
    /// # Safety
    /// `memory` is `Registry::size(slots, idle)` bytes of shared memory nobody else uses yet.
    pub unsafe fn initialize(memory: *mut Registry, slots: usize, idle: usize) {
        // SAFETY: the caller's contract; all-zero bytes are a valid header, valid free slots
        // and free places.
        unsafe {
            core::ptr::write_bytes(memory.cast::<u8>(), 0, Self::size(slots, idle));
            (*memory).slot_count = slots;
            (*memory).idle_count = idle;
            (*memory).tranche = pg_sys::LWLockNewTrancheId();
            pg_sys::LWLockInitialize(&mut (*memory).lock, (*memory).tranche);
            pg_sys::ConditionVariableInit(&mut (*memory).turn);
            let now = pg_sys::GetCurrentTimestamp();
            (*memory).next_id = now.max(1) as u64;
            (*memory).stats.reset_at.store(now, Ordering::Relaxed);
        }
    }

    /// Every slot.
    pub fn slots(&self) -> &[Slot] {
        // SAFETY: `initialize` laid out `slot_count` slots right after the header, in the same
        // shared memory, which stays mapped for the life of the process.
        unsafe {
            let first = core::ptr::from_ref(self)
                .cast::<u8>()
                .add(Self::slots_offset())
                .cast::<Slot>();
            core::slice::from_raw_parts(first, self.slot_count)
        }
    }

    /// Every slot, to change (under the exclusive lock).
    pub fn slots_mut(&mut self) -> &mut [Slot] {
        // SAFETY: as in `slots`; `&mut self` is the exclusive access to the whole registry.
        unsafe {
            let first = core::ptr::from_mut(self)
                .cast::<u8>()
                .add(Self::slots_offset())
                .cast::<Slot>();
            core::slice::from_raw_parts_mut(first, self.slot_count)
        }
    }

    /// The list of idle workers.
    pub fn idle(&self) -> &[IdleWorker] {
        // SAFETY: `initialize` laid out `idle_count` places after the slots, in the same
        // shared memory, which stays mapped for the life of the process.
        unsafe {
            let first = core::ptr::from_ref(self)
                .cast::<u8>()
                .add(Self::idle_offset(self.slot_count))
                .cast::<IdleWorker>();
            core::slice::from_raw_parts(first, self.idle_count)
        }
    }

    /// The list of idle workers, to change (under the exclusive lock).
    pub fn idle_mut(&mut self) -> &mut [IdleWorker] {
        // SAFETY: as in `idle`; `&mut self` is the exclusive access to the whole registry.
        unsafe {
            let first = core::ptr::from_mut(self)
                .cast::<u8>()
                .add(Self::idle_offset(self.slot_count))
                .cast::<IdleWorker>();
            core::slice::from_raw_parts_mut(first, self.idle_count)
        }
    }
}

/// A warm worker waiting for a job, in the registry's list of idle workers: how to reach it
/// (its control segment) and who may hand it a job. A free place has `pid` 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleWorker {
    pub pid: i32,
    pub control: pg_sys::dsm_handle,
    pub nonce: u64,
    pub database_id: u32,
    pub login_role: u32,
    pub current_user: u32,
    pub sec_context: i32,
    /// Only its last launcher may hand it a job (see `worker::warm`).
    pub own_session_only: bool,
}

/// The cluster's counters (`pg_background_cluster_stats`). Each one is added to with one atomic
/// instruction by whoever saw the event: launches, workers, waiting sessions.
#[repr(C)]
pub struct Counters {
    pub launched: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub canceled: AtomicU64,
    pub timed_out: AtomicU64,
    pub deadlocks: AtomicU64,
    pub capacity_waits: AtomicU64,
    pub capacity_wait_ms: AtomicU64,
    pub warm_starts: AtomicU64,
    pub cold_starts: AtomicU64,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub spilled_bytes: AtomicU64,
    /// When they were last set to zero (a timestamp).
    pub reset_at: AtomicI64,
}

/// The counters, read at one moment (each one exact; together, as in PostgreSQL's cumulative
/// statistics, not one atomic picture).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub launched: u64,
    pub completed: u64,
    pub failed: u64,
    pub canceled: u64,
    pub timed_out: u64,
    pub deadlocks: u64,
    pub capacity_waits: u64,
    pub capacity_wait_ms: u64,
    pub warm_starts: u64,
    pub cold_starts: u64,
    pub rows: u64,
    pub bytes: u64,
    pub spilled_bytes: u64,
    pub reset_at: i64,
}

impl Counters {
    fn each(&self) -> [&AtomicU64; 13] {
        [
            &self.launched,
            &self.completed,
            &self.failed,
            &self.canceled,
            &self.timed_out,
            &self.deadlocks,
            &self.capacity_waits,
            &self.capacity_wait_ms,
            &self.warm_starts,
            &self.cold_starts,
            &self.rows,
            &self.bytes,
            &self.spilled_bytes,
        ]
    }

    pub fn snapshot(&self) -> Snapshot {
        let [launched, completed, failed, canceled, timed_out, deadlocks, capacity_waits, capacity_wait_ms, warm_starts, cold_starts, rows, bytes, spilled_bytes] =
            self.each().map(|c| c.load(Ordering::Relaxed));
        Snapshot {
            launched,
            completed,
            failed,
            canceled,
            timed_out,
            deadlocks,
            capacity_waits,
            capacity_wait_ms,
            warm_starts,
            cold_starts,
            rows,
            bytes,
            spilled_bytes,
            reset_at: self.reset_at.load(Ordering::Relaxed),
        }
    }

    /// Every counter back to zero, from `now`.
    pub fn reset(&self, now: i64) {
        for counter in self.each() {
            counter.store(0, Ordering::Relaxed);
        }
        self.reset_at.store(now, Ordering::Relaxed);
    }
}

/// Store `s` in a NUL-padded field, cut at a character boundary.
pub fn copy_text<const N: usize>(to: &mut [u8; N], s: &str) {
    let clipped = crate::text::clip(s, N - 1).as_bytes();
    to.fill(0);
    to[..clipped.len()].copy_from_slice(clipped);
}

/// The text of a NUL-padded field.
pub fn text_of(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{IdleWorker, Registry, Slot};

    #[test]
    fn the_slots_follow_the_header_aligned_and_each_costs_its_size() {
        let header = Registry::size(0, 0);
        assert_eq!(header % core::mem::align_of::<Slot>(), 0);
        assert!(header >= core::mem::size_of::<Registry>());
        for slots in [16, 1024, crate::guc::MAX_JOB_SLOTS as usize] {
            assert_eq!(
                Registry::size(slots, 0),
                header + slots * core::mem::size_of::<Slot>()
            );
            // the idle workers' places follow the slots
            assert_eq!(
                Registry::size(slots, 8),
                Registry::size(slots, 0) + 8 * core::mem::size_of::<IdleWorker>()
            );
        }
        // docs/reference.md and the description of pg_background.job_slots give these sizes
        assert_eq!(core::mem::size_of::<Slot>(), 744);
        assert_eq!(core::mem::size_of::<IdleWorker>(), 40);
        println!(
            "one slot: {} bytes; the header: {} bytes; 1,024 slots: {} bytes",
            core::mem::size_of::<Slot>(),
            header,
            Registry::size(1024, 0)
        );
    }
}
