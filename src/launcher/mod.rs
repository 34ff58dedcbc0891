//! The launching side: build a job's segment, start its worker, track it, read or drop it.
//!
//! Sequence (after `test_shm_mq/setup.c` and `parallel.c`): create the segment (still owned by
//! the resource owner, so an ERROR detaches it) → attach as the queue's receiver *before*
//! registering, so the worker never writes to an orphaned queue → register → wait until the
//! worker has attached as sender → pin the mapping and file the entry. From then on the entry
//! owns everything, and the launching transaction may roll back without touching the job.

pub mod bgworker;
pub mod bind;
mod channel;
mod deadlock;
pub mod helpers;
pub mod inspect;
mod pool;
mod relay;
pub mod result;
mod session_jobs;

use crate::error::Error;
use crate::guc;
use crate::shm::dsm::{DsmSegment, Segment};
use crate::shm::mq::{self, MqReceiver};
use crate::shm::toc::{Toc, TocEstimator};
use crate::shm::{FixedState, TocKey, LAYOUT_VERSION};
use bgworker::WorkerStatus;
use channel::Channel;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
use pool::TerminateOnDrop;
pub use session_jobs::Cookie;
use session_jobs::Entry;

/// The queue size a launch asked for, checked: `<= 0` means `pg_background.default_queue_size`.
fn effective_queue_size(requested: i32) -> Result<usize, Error> {
    let size = if requested <= 0 {
        guc::DEFAULT_QUEUE_SIZE.get()
    } else {
        requested
    };
    let min = mq::minimum_size();
    if (size as usize) < min {
        return Err(Error::QueueTooSmall(min));
    }
    if size > guc::MAX_QUEUE_SIZE {
        return Err(Error::QueueTooLarge(guc::MAX_QUEUE_SIZE));
    }
    Ok(size as usize)
}

/// How a job is launched.
#[derive(Clone, Copy, Default)]
pub struct LaunchOptions<'a> {
    /// 1.9: a label (at most 64 bytes) for list_v2 and the worker's application_name.
    pub label: Option<&'a str>,
    /// Handle API: give the job a random cookie.
    pub with_cookie: bool,
    /// `submit_v2`: nothing is sent back; the result cannot be read.
    pub results_disabled: bool,
    /// Bound parameters (`crate::params` encoding): the SQL is then one statement with `$n`.
    pub params: Option<&'a [u8]>,
    /// Seconds to keep the result once this session has gone without reading it; `None`:
    /// `pg_background.keep_result`.
    pub keep_s: Option<i32>,
}

/// A random, non-zero cookie (`pg_strong_random`).
fn new_cookie() -> i64 {
    loop {
        let mut bytes = [0u8; 8];
        // SAFETY: fills the buffer we pass; false only if no random source is available.
        let ok = unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) };
        assert!(ok, "could not generate a random cookie");
        let cookie = i64::from_ne_bytes(bytes);
        if cookie != 0 {
            return cookie;
        }
    }
}

/// Start a worker running `sql` and return its PID (classic API).
pub fn launch(sql: &str, queue_size: i32) -> Result<i32, Error> {
    launch_with(sql, queue_size, LaunchOptions::default()).map(|(pid, _)| pid)
}

/// Start a worker running `sql` whose result is kept `keep_s` seconds (`None`:
/// `pg_background.keep_result`, at least one second) after this session ends unread; returns its
/// job id.
pub fn launch_kept(
    sql: &str,
    queue_size: i32,
    label: Option<&str>,
    keep_s: Option<i32>,
) -> Result<i64, Error> {
    let keep_s = keep_s.unwrap_or_else(|| guc::KEEP_RESULT.get()).max(1);
    let options = LaunchOptions {
        label,
        keep_s: Some(keep_s),
        ..LaunchOptions::default()
    };
    let (pid, _) = launch_with(sql, queue_size, options)?;
    job_id(pid)
}

/// The cluster-wide id of this session's job `pid`.
pub fn job_id(pid: i32) -> Result<i64, Error> {
    session_jobs::check(pid, Cookie::Ignore)?;
    let (slot, id) = session_jobs::with_entry(pid, |e| (e.fixed().job_slot, e.fixed().job_id))?;
    if slot < 0 {
        return Err(if crate::registry::available() {
            Error::NotRegistered(pid)
        } else {
            Error::RegistryUnavailable("pg_background_job_id")
        });
    }
    Ok(id as i64)
}

/// Start a worker running `sql`; returns its PID and cookie (0 without `with_cookie`).
pub fn launch_with(
    sql: &str,
    queue_size: i32,
    options: LaunchOptions<'_>,
) -> Result<(i32, i64), Error> {
    launch_in(sql, queue_size, options, true)
}

/// [`launch_with`]; `allow_warm`: a waiting worker of this session may run the job.
fn launch_in(
    sql: &str,
    requested_queue_size: i32,
    options: LaunchOptions<'_>,
    allow_warm: bool,
) -> Result<(i32, i64), Error> {
    let queue_size = effective_queue_size(requested_queue_size)?;
    if let Some(label) = options.label {
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::LabelTooLong(MAX_LABEL_LEN));
        }
    }
    session_jobs::release_finished();
    let admission = Admission::new();
    let limit = guc::MAX_WORKERS.get();
    while session_jobs::running() >= limit as usize {
        // our workers set our latch when they finish (the postmaster, or a warm worker itself)
        admission.wait_or(Error::TooManyWorkers { limit })?;
        session_jobs::release_finished();
    }
    let limit = guc::MAX_UNREAD_RESULTS.get();
    if session_jobs::unread() >= limit as usize {
        return Err(Error::TooManyUnread { limit });
    }

    // SAFETY: plain reads of this backend's state.
    let gucs_len = unsafe { pg_sys::EstimateGUCStateSpace() };
    let mut estimate = TocEstimator::default();
    estimate
        .chunk(core::mem::size_of::<FixedState>())
        .chunk(sql.len() + 1)
        .chunk(gucs_len)
        .chunk(queue_size)
        .keys(4);
    if let Some(params) = options.params {
        estimate
            .chunk(crate::shm::params_chunk_size(params))
            .keys(1);
    }
    let size = estimate.total();

    let idle_timeout_ms = guc::WORKER_IDLE_TIMEOUT.get();
    // In the cluster-wide registry from here on (waiting there for its turn when the caps on
    // running jobs say so); forgotten again if the launch fails.
    let caps = crate::registry::Caps::current();
    let slot = admission.file(options.label.unwrap_or(""), preview(sql), caps)?;
    let keep_s = match options.keep_s.unwrap_or_else(|| guc::KEEP_RESULT.get()) {
        _ if options.results_disabled => 0,
        0 => 0,
        _ if slot.0.is_none() => {
            return Err(if crate::registry::available() {
                Error::TooManyJobs(crate::registry::SLOTS as i32)
            } else {
                Error::RegistryUnavailable("keeping a result (pg_background.keep_result)")
            })
        }
        s => s,
    };
    let context = session_jobs::job_context();
    let segment = DsmSegment::create(size);
    let toc = Toc::create(&segment, size);
    let queue = mq::create(toc.allocate(TocKey::Queue, queue_size), queue_size);
    let ring_size = mq::checked_ring_size(queue, queue_size).unwrap_or(0);
    let fixed = write_fixed_state(
        &toc,
        options.results_disabled,
        idle_timeout_ms,
        ring_size,
        slot.0,
        // (a queue we cannot watch has no spill writer, which keeping needs)
        if ring_size == 0 { 0 } else { keep_s },
    );
    fixed.label.set(options.label.unwrap_or(""));
    let sql_chunk = toc.allocate(TocKey::Sql, sql.len() + 1);
    // SAFETY: the chunk has room for the text and its NUL; the text has no NUL inside (text).
    unsafe {
        core::ptr::copy_nonoverlapping(sql.as_ptr(), sql_chunk.as_ptr(), sql.len());
        sql_chunk.as_ptr().add(sql.len()).write(0);
    }
    let gucs = toc.allocate(TocKey::Gucs, gucs_len);
    // SAFETY: `gucs` has the `gucs_len` bytes that EstimateGUCStateSpace asked for.
    unsafe { pg_sys::SerializeGUCState(gucs_len, gucs.as_ptr().cast()) };
    if let Some(params) = options.params {
        let chunk = toc.allocate(TocKey::Params, crate::shm::params_chunk_size(params));
        // SAFETY: allocated with the size for these parameters.
        unsafe { crate::shm::write_params(chunk, params) };
    }

    let mut receiver = context.within(|| MqReceiver::attach(queue, &segment));
    crate::spill::reader::watch(&segment, fixed);
    // A warm worker of this session if one is idle and last ran a job as the same user in the
    // same security context, else a new process.
    let identity = (fixed.current_user_id, fixed.sec_context);
    let warm = match idle_timeout_ms {
        _ if !allow_warm => None,
        0 => {
            pool::prune();
            None
        }
        _ => pool::claim(segment.handle(), session_jobs::contains, identity),
    };
    let was_warm = warm.is_some();
    let (worker, control) = match warm {
        Some(worker) => (worker, None),
        None => loop {
            match pool::Worker::register(segment.handle(), idle_timeout_ms > 0, identity) {
                // other sessions' workers end without telling us: poll
                Err(Error::CouldNotRegister) => admission.wait_for_worker_slot(&slot, caps)?,
                other => break other?,
            }
        },
    };
    let guard = TerminateOnDrop::arm(&worker);
    receiver.watch_worker(worker.handle().as_ptr());
    // Attached means started, and the PID is known, even if the worker has already finished.
    if receiver.wait_for_attach().is_err() {
        if was_warm {
            // The waiting worker ended (terminated) just as it was handed the job, before it
            // took it: start the job afresh in a new process (this segment goes unused).
            return launch_in(sql, requested_queue_size, options, false);
        }
        return Err(match worker.status() {
            WorkerStatus::PostmasterDied => Error::NoPostmaster,
            _ => Error::CouldNotStart,
        });
    }
    // The worker maps its control segment before the job's queue: it lives on with it.
    drop(control);
    let pid = fixed.worker_pid.load(Ordering::Acquire);
    worker.set_pid(pid);
    let fixed = core::ptr::NonNull::from(fixed);

    guard.disarm();
    slot.keep();
    let segment = segment.pin_mapping();
    // SAFETY: reading the current user at launch.
    let owner = unsafe { pg_sys::GetUserId() };
    let cookie = if options.with_cookie { new_cookie() } else { 0 };
    session_jobs::insert(Entry {
        pid,
        owner,
        cookie,
        results_disabled: options.results_disabled,
        canceled: core::cell::Cell::new(false),
        // SAFETY: reading the clock.
        launched_at: unsafe { pg_sys::GetCurrentTimestamp() },
        queue_size,
        sql_preview: preview(sql).to_owned(),
        label: options.label.map(str::to_owned),
        channel: Channel::new(receiver, segment, fixed),
        worker,
        _context: context,
    });
    session_jobs::count_launch();
    Ok((pid, cookie))
}

/// A launch's slot in the cluster-wide registry, freed again unless the launch succeeds.
struct JobSlot(Option<(usize, u64)>);

impl JobSlot {
    fn keep(mut self) {
        if let Some((index, id)) = self.0.take() {
            crate::registry::handed_over(index, id);
        }
    }
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        if let Some((index, id)) = self.0 {
            crate::registry::forget(index, id);
        }
    }
}

/// `pg_background.on_capacity`: whether a launch that cannot start a worker now fails, or
/// waits (interruptibly, up to `pg_background.capacity_wait_timeout`) and tries again.
///
/// Three things can stop a launch: the session's own `pg_background.max_workers` (its workers
/// tell it when they end), the cluster-wide caps `pg_background.max_jobs` and
/// `max_jobs_per_role` (a launch then waits in the registry, first come first served, woken
/// when a job ends), and the server's free worker slots (which nothing announces: the launch
/// polls, keeping its place in the registry's line).
struct Admission {
    wait: bool,
    timeout_ms: i32,
    start: pg_sys::TimestampTz,
}

/// How often a waiting launch looks again.
const ADMISSION_POLL_MS: i64 = 10;

impl Admission {
    fn new() -> Self {
        Self {
            wait: guc::ON_CAPACITY.get() == guc::OnCapacity::Wait,
            timeout_ms: guc::CAPACITY_WAIT_TIMEOUT.get(),
            start: crate::server::now(),
        }
    }

    /// `Err(error)` in error mode, or 53000 once the wait has lasted `capacity_wait_timeout`;
    /// else how long the next sleep may last (at most `poll_ms`).
    fn may_wait(&self, error: Error, poll_ms: i64) -> Result<i64, Error> {
        if !self.wait {
            return Err(error);
        }
        let waited_ms = crate::server::ms_since(self.start);
        if self.timeout_ms > 0 && waited_ms >= i64::from(self.timeout_ms) {
            return Err(Error::CapacityTimeout(self.timeout_ms));
        }
        Ok(match self.timeout_ms {
            0 => poll_ms,
            t => (i64::from(t) - waited_ms).clamp(1, poll_ms),
        })
    }

    /// [`Self::may_wait`], then sleep a little (on the latch, interruptibly).
    fn wait_or(&self, error: Error) -> Result<(), Error> {
        let ms = self.may_wait(error, ADMISSION_POLL_MS)?;
        crate::server::sleep_on_latch(ms, crate::server::WaitEvent::Capacity);
        Ok(())
    }

    /// File the job in the cluster-wide registry and wait there for its turn when the caps
    /// on running jobs are reached (or fail, in error mode). With a cap set, the registry must
    /// be there; without one, a job the registry cannot take runs unregistered.
    fn file(
        &self,
        label: &str,
        query: &str,
        caps: crate::registry::Caps,
    ) -> Result<JobSlot, Error> {
        use crate::registry::Filed;
        match crate::registry::register(label, query, caps, self.wait) {
            Filed::Unavailable if caps.any() => Err(Error::RegistryUnavailable(
                "pg_background.max_jobs and pg_background.max_jobs_per_role",
            )),
            Filed::Full if caps.any() => Err(Error::TooManyJobs(crate::registry::SLOTS as i32)),
            Filed::Unavailable | Filed::Full => Ok(JobSlot(None)),
            Filed::Slot { index, id, refusal } => {
                let slot = JobSlot(Some((index, id)));
                if let Some(refusal) = refusal {
                    self.wait_for_turn(index, id, caps, refusal)?;
                }
                Ok(slot)
            }
        }
    }

    /// Wait in the registry until job `(index, id)` is admitted.
    fn wait_for_turn(
        &self,
        index: usize,
        id: u64,
        caps: crate::registry::Caps,
        mut refusal: crate::registry::Refusal,
    ) -> Result<(), Error> {
        use crate::registry::Refusal;
        let event = crate::server::WaitEvent::Capacity.info();
        let outcome = loop {
            let error = match refusal {
                Refusal::Role(limit) => Error::TooManyRoleJobs(limit),
                Refusal::Cluster(limit) => Error::TooManyJobs(limit),
                Refusal::Behind => Error::TooManyJobs(caps.total),
            };
            // (woken when a job ends or a launch ahead is admitted; the timeout only bounds
            // the wait for a launcher that vanished without a word, which cannot happen short
            // of a crash)
            match self.may_wait(error, TURN_POLL_MS) {
                Err(e) => break Err(e),
                Ok(ms) => crate::registry::sleep_for_turn(ms, event),
            }
            match crate::registry::admit(index, id, caps, self.wait) {
                None => break Ok(()),
                Some(again) => refusal = again,
            }
        };
        crate::registry::stop_sleeping();
        outcome
    }

    /// No free worker slot for an admitted job: fail (error mode), or give the place back,
    /// sleep a little and wait for the turn again (the earliest waiting launch goes first).
    fn wait_for_worker_slot(
        &self,
        slot: &JobSlot,
        caps: crate::registry::Caps,
    ) -> Result<(), Error> {
        if let Some((index, id)) = slot.0 {
            if self.wait {
                crate::registry::requeue(index, id);
            }
            self.wait_or(Error::CouldNotRegister)?;
            if let Some(refusal) = crate::registry::admit(index, id, caps, self.wait) {
                self.wait_for_turn(index, id, caps, refusal)?;
            }
            Ok(())
        } else {
            self.wait_or(Error::CouldNotRegister)
        }
    }
}

/// Longest sleep of a launch waiting for its turn in the registry between two looks.
const TURN_POLL_MS: i64 = 1000;

/// The first 120 bytes of `sql`, cut at a character boundary (`list_v2.sql_preview`).
fn preview(sql: &str) -> &str {
    crate::text::clip(sql, 120)
}

fn write_fixed_state<'seg>(
    toc: &Toc<'seg>,
    results_disabled: bool,
    idle_timeout_ms: i32,
    ring_size: u64,
    job: Option<(usize, u64)>,
    keep_s: i32,
) -> &'seg FixedState {
    let mut current_user_id = pg_sys::Oid::INVALID;
    let mut sec_context = 0;
    // SAFETY: plain reads of this backend's identity.
    let fixed = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut current_user_id, &mut sec_context);
        FixedState {
            layout_version: LAYOUT_VERSION,
            database_id: pg_sys::MyDatabaseId,
            authenticated_user_id: pg_sys::GetAuthenticatedUserId(),
            current_user_id,
            sec_context,
            launcher_pid: pg_sys::MyProcPid,
            results_disabled,
            idle_timeout_ms,
            cancel_requested: core::sync::atomic::AtomicBool::new(false),
            worker_pid: core::sync::atomic::AtomicI32::new(0),
            worker_done: core::sync::atomic::AtomicBool::new(false),
            kept_warm: core::sync::atomic::AtomicBool::new(false),
            succeeded: core::sync::atomic::AtomicBool::new(false),
            started_at: core::sync::atomic::AtomicI64::new(0),
            finished_at: core::sync::atomic::AtomicI64::new(0),
            progress_pct: core::sync::atomic::AtomicI32::new(-1),
            progress_msg: crate::shm::SharedText::new(),
            label: crate::shm::SharedText::new(),
            last_tag: crate::shm::SharedText::new(),
            last_rows: core::sync::atomic::AtomicI64::new(0),
            error: crate::shm::SharedError::new(),
            spill_after_ms: guc::SPILL_AFTER.get(),
            spill_limit_kb: guc::SPILL_LIMIT.get(),
            ring_size,
            spill_state: crate::shm::AtomicState::new(crate::shm::SpillState::None),
            spill_bytes: core::sync::atomic::AtomicU64::new(0),
            fileset: crate::shm::SpillSet::new(),
            job_slot: job.map_or(-1, |(index, _)| index as i32),
            job_id: job.map_or(0, |(_, id)| id),
            keep_s,
            leaving: core::sync::atomic::AtomicBool::new(false),
            in_send: core::sync::atomic::AtomicBool::new(false),
        }
    };
    let chunk = toc.allocate(TocKey::Fixed, core::mem::size_of::<FixedState>());
    // SAFETY: the chunk is sized and buffer-aligned for a FixedState, and lives as long as the
    // segment; afterwards only `worker_pid` changes, atomically.
    unsafe {
        chunk.cast::<FixedState>().as_ptr().write(fixed);
        chunk.cast::<FixedState>().as_ref()
    }
}

/// The declared result type of the calling SQL function.
pub fn result_type(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Oid {
    // SAFETY: fcinfo is the live call info of a SQL-callable function; flinfo is set by fmgr.
    unsafe { pg_sys::get_func_rettype((*(*fcinfo).flinfo).fn_oid) }
}

/// Number of this session's workers that still run (see [`session_jobs::running`]).
#[cfg(any(test, feature = "pg_test"))]
pub fn running() -> usize {
    session_jobs::running()
}

/// Stop tracking `pid`: the worker goes on and commits; its further output is discarded.
pub fn detach(pid: i32, cookie: Cookie) -> Result<(), Error> {
    session_jobs::check(pid, cookie)?;
    drop(session_jobs::take(pid)?);
    Ok(())
}

/// Whether the job is over: its process has exited, or it was kept warm (it waits for the next
/// job) and has detached from the job's segment — with everything of the job released.
fn stopped(e: &Entry) -> bool {
    (e.worker_done() && e.fixed().kept_warm.load(Ordering::Acquire))
        || matches!(
            e.worker.status(),
            WorkerStatus::Stopped | WorkerStatus::PostmasterDied
        )
}

/// `cancel_v2`: ask the worker to cancel its job (a reader then gets 57014), through the
/// postmaster and the worker's own handle — never a signal to a bare PID, never SIGKILL. A
/// worker that has already stopped is left alone, without error.
pub fn cancel(pid: i32, cookie: i64) -> Result<(), Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    session_jobs::with_entry(pid, |e| {
        if e.worker_done() || stopped(e) {
            return;
        }
        e.canceled.set(true);
        e.fixed().cancel_requested.store(true, Ordering::Release);
        e.worker.terminate();
    })
}

/// `detach_all_v2`: detach every entry the current role has the privileges of; returns how many.
pub fn detach_all() -> i32 {
    let mut pids = Vec::new();
    session_jobs::for_each_visible(|e| pids.push(e.pid));
    pids.into_iter()
        .filter(|&pid| session_jobs::take(pid).is_ok())
        .count() as i32
}

/// `cancel_all_v2`: cancel every such worker still running; returns how many.
pub fn cancel_all() -> i32 {
    let mut running = Vec::new();
    session_jobs::for_each_visible(|e| {
        if !e.worker_done() && !stopped(e) {
            running.push((e.pid, e.cookie));
        }
    });
    running
        .into_iter()
        .filter(|&(pid, cookie)| cancel(pid, cookie).is_ok())
        .count() as i32
}

/// Longest label of 1.9.
const MAX_LABEL_LEN: usize = 64;

/// Longest waits the 1.x API accepts.
const MAX_GRACE_MS: i32 = 3_600_000;
const MAX_WAIT_MS: i32 = 86_400_000;

/// `cancel_v2_grace`: cancel, then wait up to `grace_ms` for the worker to stop. When the grace
/// period ends first, return anyway (the C extension sent SIGKILL here, which makes the
/// postmaster restart the whole cluster).
pub fn cancel_with_grace(pid: i32, cookie: i64, grace_ms: i32) -> Result<(), Error> {
    cancel(pid, cookie)?;
    wait_stopped(pid, Some(grace_ms.clamp(0, MAX_GRACE_MS)), false)?;
    Ok(())
}

/// `wait_v2` / `wait_v2_timeout`: wait until the worker process has exited (with a timeout,
/// at most that long); true if it has. Interruptible; neither consumes nor detaches.
pub fn wait(pid: i32, cookie: i64, timeout_ms: Option<i32>) -> Result<bool, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    wait_stopped(pid, timeout_ms.map(|t| t.clamp(0, MAX_WAIT_MS)), false)
}

/// Like [`wait`], for callers that want only the outcome (`run_v2`, `drain_v2`): the job's
/// output is read and dropped meanwhile, so a result larger than the queue cannot keep the
/// worker from finishing (in 1.x such a wait never returned).
pub fn wait_discarding_output(
    pid: i32,
    cookie: i64,
    timeout_ms: Option<i32>,
) -> Result<bool, Error> {
    session_jobs::check(pid, Cookie::ForControl(cookie))?;
    wait_stopped(pid, timeout_ms.map(|t| t.clamp(0, MAX_WAIT_MS)), true)
}

fn wait_stopped(pid: i32, timeout_ms: Option<i32>, discard: bool) -> Result<bool, Error> {
    let start = crate::server::now();
    let mut waiter = deadlock::Waiter::new(pid);
    loop {
        if discard {
            session_jobs::with_entry_mut(pid, |e| e.channel.discard_available())?;
        }
        if session_jobs::with_entry(pid, stopped)? {
            return Ok(true);
        }
        let elapsed_ms = crate::server::ms_since(start);
        let left_ms = match timeout_ms {
            Some(t) if elapsed_ms >= i64::from(t) => return Ok(false),
            Some(t) => Some(i64::from(t) - elapsed_ms),
            None => None,
        };
        // The postmaster sets our latch when the worker stops (bgw_notify_pid); each sleep
        // ends after deadlock_timeout at the latest, to check that the job is not blocked by us.
        waiter.wait_at_most(crate::server::WaitEvent::Job, left_ms)?;
    }
}

/// Jobs this backend tracks (a worker that launched jobs of its own is not kept warm while it
/// still tracks them).
pub fn tracked_jobs() -> usize {
    session_jobs::tracked()
}

/// Let go of this backend's warm workers (see [`pool::forget_all`]).
pub fn forget_warm_workers() {
    pool::forget_all();
}
