//! Shared memory layout of one job: the DSM segment, its table of contents, and the fixed state.
//!
//! One segment per job, laid out with `shm_toc` as `src/backend/access/transam/parallel.c` does
//! for parallel workers. Only `#[repr(C)]` plain data lives here: no pointers, no Rust-owned
//! types, because the worker maps the segment at another address.

pub mod dsm;
pub mod mq;
pub mod toc;

use pgrx::pg_sys;

/// Magic number of our table of contents (`"PGBR"`). Differs from the C extension's, so neither
/// library can mistake the other's segment for its own.
pub const MAGIC: u64 = 0x5047_4252;

/// Version of [`FixedState`]'s layout and of the messages in the queue. A backend that still
/// runs an older library can launch a worker that loads a newer one; the worker refuses a
/// segment whose version it does not know. 2: rows as tuples (`M` messages), which a launcher of
/// version 1 would not read. 3: warm workers (`idle_timeout_ms`, [`Control`]). 4: spill (the
/// `spill_*` fields, `ring_size`, `fileset`) and the cluster-wide registry (`job_slot`, `job_id`).
/// 5: results kept after the launcher left (`keep_s`, `leaving`, `in_send`, [`SpillState::Keep`]).
/// 6: the error's object names ([`SharedError::schema`] … `constraint`). 7: warm workers shared
/// by the sessions of a role ([`Control`]'s identity, [`WarmState::Claimed`]).
pub const LAYOUT_VERSION: u32 = 7;

/// Keys of the table of contents.
#[repr(u64)]
#[derive(Clone, Copy, Debug)]
pub enum TocKey {
    /// [`FixedState`].
    Fixed = 1,
    /// The SQL text, NUL-terminated.
    Sql = 2,
    /// The launcher's GUC state, as written by `SerializeGUCState`.
    Gucs = 3,
    /// The response queue (`shm_mq`), worker → launcher.
    Queue = 4,
    /// Bound parameters of an autonomous call (`crate::params`); absent for plain SQL strings.
    Params = 5,
}

/// What the launcher tells the worker about itself (after `FixedParallelState`), and the one
/// thing the worker tells back: its PID, written before it attaches to the queue, so that a
/// launch can return it even when the worker has already finished.
#[repr(C)]
pub struct FixedState {
    pub layout_version: u32,
    /// The launcher's database.
    pub database_id: pg_sys::Oid,
    /// The launcher's login role: the worker's session user.
    pub authenticated_user_id: pg_sys::Oid,
    /// The launcher's current user and security context at launch.
    pub current_user_id: pg_sys::Oid,
    pub sec_context: i32,
    /// For `pg_stat_activity` and messages.
    pub launcher_pid: i32,
    /// `submit_v2`: the worker sends nothing through the queue, so it can never block on it.
    pub results_disabled: bool,
    /// `pg_background.worker_idle_timeout` at launch: how long a worker that finished this job
    /// waits for the launcher's next one (0: it exits). Only for workers with a [`Control`].
    pub idle_timeout_ms: i32,
    /// Set by `cancel_v2` before it signals the worker: the worker's SIGTERM handler then
    /// cancels the running statement (57014) instead of terminating the process, and a worker
    /// that has not started the job yet does not start it.
    pub cancel_requested: core::sync::atomic::AtomicBool,
    /// Written by the worker.
    pub worker_pid: core::sync::atomic::AtomicI32,
    /// Set by the worker when it detaches from the segment, on every way out (normal end,
    /// ERROR, FATAL). A finished worker is no longer counted against
    /// `pg_background.max_workers`, even before the postmaster has noticed its exit.
    pub worker_done: core::sync::atomic::AtomicBool,
    /// Set by a warm worker just before it detaches, when it goes on to wait for the next job:
    /// then the job is over once `worker_done` is set, though the process lives on.
    pub kept_warm: core::sync::atomic::AtomicBool,
    /// Set by the worker after its commit, before it decides whether it waits for a next job
    /// (of any session); `cancel_v2` sets `cancel_requested` before it reads this, the worker this
    /// before it reads `cancel_requested` (both sequentially consistent): either the cancel
    /// finds the job committed and sends no signal, which could otherwise reach a later job of
    /// another session, or the worker finds the cancel and exits after this job.
    pub going_warm: core::sync::atomic::AtomicBool,
    /// Set by the worker after its commit: the job succeeded. A worker that is done without
    /// it failed (ERROR, FATAL, cancel), whether or not anybody reads its result.
    pub succeeded: core::sync::atomic::AtomicBool,
    /// When the worker started and finished the job (`TimestampTz`, 0 = not yet).
    pub started_at: core::sync::atomic::AtomicI64,
    pub finished_at: core::sync::atomic::AtomicI64,
    /// `pg_background_progress`: percentage (-1 = none yet) and message (written before the
    /// percentage).
    pub progress_pct: core::sync::atomic::AtomicI32,
    pub progress_msg: SharedText<64>,
    /// The label of a 1.9 launch (launcher → worker).
    pub label: SharedText<65>,
    /// The last statement's command tag and row count (`result_info_v2`), written by the worker
    /// before it marks itself done.
    pub last_tag: SharedText<64>,
    pub last_rows: core::sync::atomic::AtomicI64,
    /// The error that ended the job (`error_info_v2`), written before `worker_done`.
    pub error: SharedError,
    /// `pg_background.spill_after` at launch: how long (ms) the worker waits for its reader to
    /// make room in a full queue before it writes the rest of its output to a file (-1: it
    /// waits as long as it takes).
    pub spill_after_ms: i32,
    /// `pg_background.spill_limit` at launch (kB of row data in the file; -1: no limit).
    pub spill_limit_kb: i32,
    /// The queue's ring size, as the launcher checked it right after creating the queue; 0 when
    /// the queue's header did not look as expected (then the worker never spills).
    pub ring_size: u64,
    /// Who holds the spill file.
    pub spill_state: AtomicState<SpillState>,
    /// Bytes of complete messages in the spill file (the reader reads no further).
    pub spill_bytes: core::sync::atomic::AtomicU64,
    /// The worker's set of temporary files (written by the worker at the job's start, read by
    /// the launcher only after the state became [`SpillState::Ready`]).
    pub fileset: SpillSet,
    /// The job's slot in the cluster-wide registry (`crate::registry`; -1: not registered) and its
    /// id there.
    pub job_slot: i32,
    pub job_id: u64,
    /// Seconds the result is kept once the launcher has left without reading it (0: not kept).
    pub keep_s: i32,
    /// Set by a launcher that leaves with the result unread: every later message goes to the
    /// spill file (see `crate::spill::writer`).
    pub leaving: core::sync::atomic::AtomicBool,
    /// Set by the worker while it hands a message to the queue, so that a leaving launcher
    /// reads the queue to its very end.
    pub in_send: core::sync::atomic::AtomicBool,
}

impl FixedState {
    /// The job's database, login role, current user and security context: a warm worker runs a
    /// next job only with the same as its last one.
    pub fn identity(&self) -> (u32, u32, u32, i32) {
        (
            self.database_id.to_u32(),
            self.authenticated_user_id.to_u32(),
            self.current_user_id.to_u32(),
            self.sec_context,
        )
    }
}

/// Who holds a job's spill file ([`FixedState::spill_state`]). The worker moves `None →
/// Writing` (its first message that does not fit) `→ Ready` (file complete and closed, before it
/// detaches from the queue), or `None → Empty` (it finished without a file); the launcher `Ready
/// → Taken` (it reads the file and deletes it after) and, when it lets go of the job's segment,
/// anything `→ Abandoned`: then whoever moved last deletes the files (the launcher if it found
/// `Ready`, the worker if it finds `Abandoned` when done). A launcher that leaves keeping the
/// result moves `None` or `Writing → Keep`: the worker files its spill file (or that it has none)
/// in the cluster-wide registry when it finishes, and then sets `Abandoned` (nothing more to
/// settle).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpillState {
    None = 0,
    Writing = 1,
    Ready = 2,
    Taken = 3,
    Abandoned = 4,
    Keep = 5,
    Empty = 6,
}

/// A state machine's state stored in shared memory as a `u32`: its code is its place in
/// [`State::ALL`].
pub trait State: Copy + PartialEq + 'static {
    /// Every state, in the order of their codes (0, 1, …).
    const ALL: &'static [Self];
    /// What a code of none of them reads as (never written: only [`AtomicState`] writes the
    /// cell).
    const UNKNOWN: Self;

    fn code(self) -> u32;

    /// The state of a code.
    fn of(code: u32) -> Self {
        Self::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(Self::UNKNOWN)
    }
}

/// A state in shared memory, changed by two processes: every transition is a store, a
/// compare-and-swap or a swap.
#[repr(transparent)]
pub struct AtomicState<S: State>(core::sync::atomic::AtomicU32, core::marker::PhantomData<S>);

impl<S: State> AtomicState<S> {
    pub fn new(state: S) -> Self {
        Self(
            core::sync::atomic::AtomicU32::new(state.code()),
            core::marker::PhantomData,
        )
    }

    pub fn get(&self) -> S {
        S::of(self.0.load(core::sync::atomic::Ordering::Acquire))
    }

    pub fn set(&self, to: S) {
        self.0
            .store(to.code(), core::sync::atomic::Ordering::Release)
    }

    /// `from → to` if the state is still `from`; else the state found.
    pub fn advance(&self, from: S, to: S) -> Result<(), S> {
        use core::sync::atomic::Ordering;
        self.0
            .compare_exchange(from.code(), to.code(), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(S::of)
    }

    /// `→ to` from whatever it was: the state found.
    pub fn swap(&self, to: S) -> S {
        S::of(self.0.swap(to.code(), core::sync::atomic::Ordering::AcqRel))
    }
}

impl State for SpillState {
    const ALL: &'static [Self] = &[
        SpillState::None,
        SpillState::Writing,
        SpillState::Ready,
        SpillState::Taken,
        SpillState::Abandoned,
        SpillState::Keep,
        SpillState::Empty,
    ];
    const UNKNOWN: Self = SpillState::Abandoned;

    fn code(self) -> u32 {
        self as u32
    }
}

impl AtomicState<SpillState> {
    /// The worker's first message for the file: `None → Writing`; a launcher that left keeping
    /// the result (`Keep`) wants the file too. False when the launcher has let go.
    pub fn start_writing(&self) -> bool {
        matches!(
            self.advance(SpillState::None, SpillState::Writing),
            Ok(()) | Err(SpillState::Keep)
        )
    }

    /// The worker's file is complete: `Writing → Ready`, false when the launcher moved first.
    pub fn finish_writing(&self) -> bool {
        self.advance(SpillState::Writing, SpillState::Ready).is_ok()
    }

    /// The launcher takes over the complete file: `Ready → Taken`.
    pub fn take(&self) -> bool {
        self.advance(SpillState::Ready, SpillState::Taken).is_ok()
    }

    /// The launcher lets go of the job (or the worker has settled a kept result): anything
    /// `→ Abandoned`; the state found.
    pub fn abandon(&self) -> SpillState {
        self.swap(SpillState::Abandoned)
    }
}

/// A `FileSet` (`storage/fileset.h`) in shared memory: plain data (creator PID, number,
/// tablespaces) that names the directory of the job's temporary files in every process.
#[repr(C)]
pub struct SpillSet(core::cell::UnsafeCell<pg_sys::FileSet>);

impl SpillSet {
    pub fn new() -> Self {
        Self(core::cell::UnsafeCell::new(pg_sys::FileSet::default()))
    }

    /// The set, for the server's FileSet functions.
    pub fn as_ptr(&self) -> *mut pg_sys::FileSet {
        self.0.get()
    }
}

/// States of a warm worker ([`Control::state`]). Who moves it where:
/// the worker `Busy → Finishing` (its job committed; set before its ReadyForQuery) `→ Idle`
/// (session reset, job segment detached) `→ Gone` (idle timeout, launcher gone, exit); a
/// launcher `Idle → Claimed` (now no one else can hand it a job, nor can it time out), then,
/// once it has checked that the worker may run its job, `Claimed → Assigned` (`next_job` and
/// the launcher's own PID and `PGPROC` written first) or back `Claimed → Idle`; a launcher also
/// `Idle → Gone` (retired); the worker `Assigned → Busy`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarmState {
    Busy = 0,
    Finishing = 1,
    Idle = 2,
    Assigned = 3,
    Gone = 4,
    Claimed = 5,
}

impl State for WarmState {
    const ALL: &'static [Self] = &[
        WarmState::Busy,
        WarmState::Finishing,
        WarmState::Idle,
        WarmState::Assigned,
        WarmState::Gone,
        WarmState::Claimed,
    ];
    const UNKNOWN: Self = WarmState::Gone;

    fn code(self) -> u32 {
        self as u32
    }
}

/// The small segment through which a launcher hands a warm worker its next job. One per worker
/// that may be kept warm: the launcher that registers the worker creates it (its handle travels
/// in `bgw_extra`) and maps it only while it hands over a job; the worker maps it for
/// its whole life, so the segment lives exactly as long as the worker. Any session of the same
/// database and login role may later find it through the registry's list of idle workers
/// (`crate::registry::idle`) and hand the worker a job in the same way.
#[repr(C)]
pub struct Control {
    /// Random, chosen by the launcher: a segment handle can be reused once the worker is gone,
    /// and a mapping with another nonce is not ours.
    pub nonce: u64,
    pub layout_version: u32,
    pub state: AtomicState<WarmState>,
    /// The next job's segment, written by the launcher before CLAIMED → ASSIGNED.
    pub next_job: core::sync::atomic::AtomicU32,
    /// Written by the worker at start: its PID and its `PGPROC` (whose latch the launcher sets;
    /// the process array lies in the main shared memory, at the same address in every process).
    pub worker_pid: core::sync::atomic::AtomicI32,
    pub worker_proc: core::sync::atomic::AtomicUsize,
    /// The PID and `PGPROC` of the launcher of the worker's current or last job, whose latch the
    /// worker sets when it becomes idle or exits; written by each launcher that hands it a job.
    pub launcher_pid: core::sync::atomic::AtomicI32,
    pub launcher_proc: core::sync::atomic::AtomicUsize,
    /// Who the worker is, written by the worker before it becomes idle: its database and login
    /// role (fixed for its life), and the current user and security context of its last job.
    /// A launcher hands it a job only with all four its own.
    pub database_id: core::sync::atomic::AtomicU32,
    pub login_role: core::sync::atomic::AtomicU32,
    pub current_user: core::sync::atomic::AtomicU32,
    pub sec_context: core::sync::atomic::AtomicI32,
    /// Whether the worker may run jobs of other sessions than its last launcher's (see
    /// `worker::warm`); written with the identity.
    pub shareable: core::sync::atomic::AtomicBool,
}

impl Control {
    /// The identity a launcher must have to hand the worker a job: database, login role,
    /// current user, security context.
    pub fn identity(&self) -> (u32, u32, u32, i32) {
        use core::sync::atomic::Ordering::Acquire;
        (
            self.database_id.load(Acquire),
            self.login_role.load(Acquire),
            self.current_user.load(Acquire),
            self.sec_context.load(Acquire),
        )
    }
}

/// Text in shared memory, at most `N - 1` bytes, cut at a character boundary. Made of atomic
/// bytes, so that a reader racing a writer sees some bytes, never undefined behaviour; readers
/// that need a complete text read it after a flag the writer sets afterwards.
#[repr(C)]
pub struct SharedText<const N: usize>([core::sync::atomic::AtomicU8; N]);

impl<const N: usize> SharedText<N> {
    pub const fn new() -> Self {
        Self([const { core::sync::atomic::AtomicU8::new(0) }; N])
    }

    pub fn set(&self, s: &str) {
        let bytes = crate::text::clip(s, N - 1).as_bytes();
        for (i, slot) in self.0.iter().enumerate() {
            slot.store(
                bytes.get(i).copied().unwrap_or(0),
                core::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    pub fn get(&self) -> String {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .map(|b| b.load(core::sync::atomic::Ordering::Relaxed))
            .take_while(|&b| b != 0)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The fields of `pg_background_error` (1.9: SQLSTATE, then 255 bytes each).
#[repr(C)]
pub struct SharedError {
    /// Set last, once the fields are written.
    pub present: core::sync::atomic::AtomicBool,
    pub sqlstate: SharedText<6>,
    pub message: SharedText<256>,
    pub detail: SharedText<256>,
    pub hint: SharedText<256>,
    pub context: SharedText<256>,
    /// The objects the error is about, where the server names them (a constraint violation,
    /// …): identifiers, so at most `NAMEDATALEN - 1` bytes.
    pub schema: SharedText<64>,
    pub table: SharedText<64>,
    pub column: SharedText<64>,
    pub constraint: SharedText<64>,
}

impl SharedError {
    pub const fn new() -> Self {
        Self {
            present: core::sync::atomic::AtomicBool::new(false),
            sqlstate: SharedText::new(),
            message: SharedText::new(),
            detail: SharedText::new(),
            hint: SharedText::new(),
            context: SharedText::new(),
            schema: SharedText::new(),
            table: SharedText::new(),
            column: SharedText::new(),
            constraint: SharedText::new(),
        }
    }
}

/// The parameters' chunk starts with their length in bytes (a `u64`), then the bytes.
const PARAMS_HEADER: usize = 8;

/// The size of the parameters' chunk for `params` (`crate::params` encoding).
pub fn params_chunk_size(params: &[u8]) -> usize {
    PARAMS_HEADER + params.len()
}

/// Write `params` into its chunk.
///
/// # Safety
/// `chunk` has [`params_chunk_size`] bytes, MAXALIGNed (as every chunk of the table of
/// contents).
pub unsafe fn write_params(chunk: core::ptr::NonNull<u8>, params: &[u8]) {
    // SAFETY: the caller's contract.
    unsafe {
        chunk.cast::<u64>().as_ptr().write(params.len() as u64);
        core::ptr::copy_nonoverlapping(
            params.as_ptr(),
            chunk.as_ptr().add(PARAMS_HEADER),
            params.len(),
        );
    }
}

/// The parameters in their chunk.
///
/// # Safety
/// `chunk` was written by [`write_params`] and stays mapped for `'a`.
pub unsafe fn read_params<'a>(chunk: core::ptr::NonNull<u8>) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe {
        let len = chunk.cast::<u64>().as_ptr().read() as usize;
        core::slice::from_raw_parts(chunk.as_ptr().add(PARAMS_HEADER), len)
    }
}

/// The library the postmaster loads into each worker (the `.so` name, as `module_pathname`).
pub const LIBRARY_NAME: &str = "pg_background";
/// The worker's entry point in that library.
pub const ENTRY_POINT: &str = "pg_background_worker_main";
/// `bgw_type`, shown as `pg_stat_activity.backend_type`.
pub const BGW_TYPE: &str = "pg_background";

#[cfg(test)]
mod tests {
    use super::{SharedText, SpillState, State, WarmState};

    /// Each state's code is its place in `ALL`, so that a code reads back as its state.
    fn codes_read_back<S: State + core::fmt::Debug>() {
        for (i, state) in S::ALL.iter().enumerate() {
            assert_eq!(state.code(), i as u32, "{state:?}");
            assert_eq!(S::of(i as u32), *state);
        }
        assert_eq!(S::of(S::ALL.len() as u32), S::UNKNOWN);
    }

    #[test]
    fn state_codes_read_back() {
        codes_read_back::<SpillState>();
        codes_read_back::<WarmState>();
    }

    #[test]
    fn shared_text_clips_at_a_character_boundary() {
        let t = SharedText::<4>::new();
        t.set("abcdef");
        assert_eq!(t.get(), "abc");
        t.set("aé"); // 3 bytes fit
        assert_eq!(t.get(), "aé");
        t.set("éé"); // 4 bytes: only the first character fits
        assert_eq!(t.get(), "é");
        t.set("");
        assert_eq!(t.get(), "");
    }
}
