//! The registry's layout: one [`Slot`] per job, with its state and, for a result kept after its
//! launcher left, the kept state and files.

use super::SLOTS;
use core::sync::atomic::AtomicI64;
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

/// A file of a kept result: its set and size.
pub type File = (pg_sys::FileSet, u64);

#[repr(C)]
pub struct Slot {
    pub job_id: u64,
    pub state: JobState,
    pub owner: pg_sys::Oid,
    pub database: pg_sys::Oid,
    pub launcher_pid: i32,
    pub worker_pid: i32,
    pub launched_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    /// Counts against the caps on running jobs (a queued slot without it waits for its turn).
    pub admitted: bool,
    /// `pg_background.max_jobs_per_role` of the launching session (-1: none).
    pub role_cap: i32,
    /// Updated by the worker without the lock.
    pub rows: AtomicI64,
    pub bytes: AtomicI64,
    pub label: [u8; LABEL],
    pub sqlstate: [u8; SQLSTATE],
    pub message: [u8; MESSAGE],
    pub query: [u8; QUERY],
    /// A result kept after its launcher left.
    kept: KeptState,
    keep_s: i32,
    /// Until when a complete kept result waits to be read.
    kept_until: i64,
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
        self.kept_until = 0;
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
        if self.kept != KeptState::Ready || self.kept_until >= now {
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
    pub slots: [Slot; SLOTS],
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
