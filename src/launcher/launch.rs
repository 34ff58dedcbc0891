//! A launch, in stages with types: the job's spec, checked ([`JobSpec`]) → admitted by the
//! session's and the cluster's caps ([`Admitted`]) → its segment built ([`Built`]) → a worker
//! started or a warm one claimed ([`Started`]) → the session's entry filed.
//!
//! Sequence (after `test_shm_mq/setup.c` and `parallel.c`): create the segment (still owned by
//! the resource owner, so an ERROR detaches it) → attach as the queue's receiver *before*
//! registering, so the worker never writes to an orphaned queue → register → wait until the
//! worker has attached as sender → pin the mapping and file the entry. From then on the entry
//! owns everything, and the launching transaction may roll back without touching the job.

use super::admission::{Admission, JobSlot};
use super::bgworker::WorkerStatus;
use super::channel::Channel;
use super::pool::{self, TerminateOnDrop};
use super::session_jobs::{self, Entry};
use super::LaunchOptions;
use crate::error::Error;
use crate::guc;
use crate::server::MemoryContext;
use crate::shm::dsm::{DsmSegment, Segment};
use crate::shm::mq::{self, MqReceiver};
use crate::shm::toc::{Toc, TocEstimator};
use crate::shm::{FixedState, TocKey, LAYOUT_VERSION};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
use std::rc::Rc;

/// Longest label of 1.9.
const MAX_LABEL_LEN: usize = 64;

/// Start a worker running `sql`; returns its PID and cookie (0 without `with_cookie`).
pub fn launch(
    sql: &str,
    requested_queue_size: i32,
    options: LaunchOptions<'_>,
) -> Result<(i32, i64), Error> {
    let spec = JobSpec::check(sql, requested_queue_size, options)?;
    match attempt(&spec, true)? {
        Some(launched) => Ok(launched),
        // A waiting worker of this session ended (terminated) just as it was handed the job,
        // before it took it: start the job afresh in a new process.
        None => attempt(&spec, false)?.ok_or(Error::CouldNotStart),
    }
}

/// One try: `None` when the warm worker it claimed was gone before it took the job
/// (everything of this try is released by then). `allow_warm`: a waiting worker of this
/// session may run the job.
fn attempt(spec: &JobSpec<'_>, allow_warm: bool) -> Result<Option<(i32, i64)>, Error> {
    let admission = Admission::new();
    let admitted = Admitted::wait_for(spec, &admission)?;
    // (drop order, the reverse: the receiver before the context it lives in, the segment,
    // then the registry slot)
    let context = session_jobs::job_context();
    let layout = Layout::of(spec);
    let segment = DsmSegment::create(layout.size);
    let built = Built::lay_out(&segment, spec, &layout, &admitted);
    let mut receiver = context.within(|| MqReceiver::attach(built.queue, &segment));
    crate::spill::reader::watch(&segment, built.fixed);
    let job = segment.handle();
    let Some(started) = Started::start(
        spec,
        &admission,
        &admitted,
        &built,
        job,
        &mut receiver,
        allow_warm,
    )?
    else {
        return Ok(None);
    };
    let fixed = NonNull::from(built.fixed);
    Ok(Some(file_entry(
        spec, admitted, segment, receiver, fixed, started, context,
    )))
}

/// What to launch, checked.
struct JobSpec<'a> {
    sql: &'a str,
    queue_size: usize,
    options: LaunchOptions<'a>,
    /// `pg_background.worker_idle_timeout` at launch.
    idle_timeout_ms: i32,
}

impl<'a> JobSpec<'a> {
    fn check(
        sql: &'a str,
        requested_queue_size: i32,
        options: LaunchOptions<'a>,
    ) -> Result<Self, Error> {
        let queue_size = effective_queue_size(requested_queue_size)?;
        if options
            .label
            .is_some_and(|label| label.len() > MAX_LABEL_LEN)
        {
            return Err(Error::LabelTooLong(MAX_LABEL_LEN));
        }
        if crate::guc::notify_channel().len() > crate::guc::MAX_CHANNEL_LEN {
            return Err(Error::ChannelTooLong(crate::guc::MAX_CHANNEL_LEN));
        }
        Ok(Self {
            sql,
            queue_size,
            options,
            // SAFETY: plain call: whether the current user is a superuser.
            idle_timeout_ms: guc::idle_timeout(|| unsafe { pg_sys::superuser() }),
        })
    }
}

/// The sizes of the job's segment.
struct Layout {
    /// This session's settings, serialised (`EstimateGUCStateSpace`).
    gucs_len: usize,
    /// The segment: fixed state, SQL, settings, queue, parameters.
    size: usize,
}

impl Layout {
    fn of(spec: &JobSpec<'_>) -> Self {
        // SAFETY: plain reads of this backend's settings.
        let gucs_len = unsafe { pg_sys::EstimateGUCStateSpace() };
        let mut estimate = TocEstimator::default();
        estimate
            .chunk(core::mem::size_of::<FixedState>())
            .chunk(spec.sql.len() + 1)
            .chunk(gucs_len)
            .chunk(spec.queue_size)
            .keys(4);
        if let Some(params) = spec.options.params {
            estimate
                .chunk(crate::shm::params_chunk_size(params))
                .keys(1);
        }
        Self {
            gucs_len,
            size: estimate.total(),
        }
    }
}

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

/// A job the caps let start: the session's `max_workers` and `max_unread_results`, then the
/// cluster's caps through its slot in the registry (waiting for its turn when
/// `pg_background.on_capacity = wait`).
struct Admitted {
    slot: JobSlot,
    caps: crate::registry::Caps,
    /// Seconds its result is kept after this session leaves it unread (0: not kept).
    keep_s: i32,
}

impl Admitted {
    fn wait_for(spec: &JobSpec<'_>, admission: &Admission) -> Result<Self, Error> {
        session_jobs::release_finished();
        let limit = guc::MAX_WORKERS.get();
        while session_jobs::running() >= limit as usize {
            // our workers set our latch when they finish (the postmaster, or a warm worker)
            admission.wait_or(Error::TooManyWorkers { limit })?;
            session_jobs::release_finished();
        }
        let limit = guc::MAX_UNREAD_RESULTS.get();
        if session_jobs::unread() >= limit as usize {
            return Err(Error::TooManyUnread { limit });
        }
        // In the cluster-wide registry from here on; forgotten again if the launch fails.
        let caps = crate::registry::Caps::current();
        let options = &spec.options;
        let slot = admission.file(options.label.unwrap_or(""), preview(spec.sql), caps)?;
        let keep_s = match options.keep_s.unwrap_or_else(|| guc::KEEP_RESULT.get()) {
            _ if options.results_disabled => 0,
            0 => 0,
            _ if !slot.is_filed() => {
                return Err(if crate::registry::available() {
                    Error::RegistryFull(crate::registry::slot_count())
                } else {
                    Error::RegistryUnavailable("keeping a result (pg_background.keep_result)")
                })
            }
            s => s,
        };
        if let (Some((index, id)), true) = (slot.filed(), keep_s > 0) {
            crate::registry::launched_to_keep(index, id, keep_s);
        }
        Ok(Self { slot, caps, keep_s })
    }
}

/// The job's segment, laid out: fixed state, SQL, settings, parameters and the queue.
struct Built<'seg> {
    queue: NonNull<pg_sys::shm_mq>,
    fixed: &'seg FixedState,
}

impl<'seg> Built<'seg> {
    fn lay_out(
        segment: &'seg DsmSegment,
        spec: &JobSpec<'_>,
        layout: &Layout,
        admitted: &Admitted,
    ) -> Self {
        let toc = Toc::create(segment, layout.size);
        let queue = mq::create(
            toc.allocate(TocKey::Queue, spec.queue_size),
            spec.queue_size,
        );
        let ring_size = mq::checked_ring_size(queue, spec.queue_size).unwrap_or(0);
        let fixed = write_fixed_state(
            &toc,
            spec,
            ring_size,
            admitted.slot.filed(),
            // (a queue we cannot watch has no spill writer, which keeping needs)
            if ring_size == 0 { 0 } else { admitted.keep_s },
        );
        fixed.label.set(spec.options.label.unwrap_or(""));
        let sql = spec.sql;
        let sql_chunk = toc.allocate(TocKey::Sql, sql.len() + 1);
        // SAFETY: the chunk has room for the text and its NUL; the text has no NUL inside.
        unsafe {
            core::ptr::copy_nonoverlapping(sql.as_ptr(), sql_chunk.as_ptr(), sql.len());
            sql_chunk.as_ptr().add(sql.len()).write(0);
        }
        let gucs = toc.allocate(TocKey::Gucs, layout.gucs_len);
        // SAFETY: `gucs` has the bytes that EstimateGUCStateSpace asked for.
        unsafe { pg_sys::SerializeGUCState(layout.gucs_len, gucs.as_ptr().cast()) };
        if let Some(params) = spec.options.params {
            let chunk = toc.allocate(TocKey::Params, crate::shm::params_chunk_size(params));
            // SAFETY: allocated with the size for these parameters.
            unsafe { crate::shm::write_params(chunk, params) };
        }
        Self { queue, fixed }
    }
}

/// The worker that runs the job (attached to its queue) and its PID.
struct Started {
    worker: Rc<pool::Worker>,
    pid: i32,
}

impl Started {
    /// A warm worker of this session if one is idle and last ran a job as the same user in
    /// the same security context, else a new process; `None` when the warm worker was gone
    /// before it took the job.
    fn start(
        spec: &JobSpec<'_>,
        admission: &Admission,
        admitted: &Admitted,
        built: &Built<'_>,
        job: pg_sys::dsm_handle,
        receiver: &mut MqReceiver,
        allow_warm: bool,
    ) -> Result<Option<Self>, Error> {
        let fixed = built.fixed;
        let identity = fixed.identity();
        let warm = match spec.idle_timeout_ms {
            _ if !allow_warm => None,
            0 => {
                pool::prune();
                None
            }
            _ => pool::claim(job, session_jobs::contains, identity),
        };
        let was_warm = warm.is_some();
        let (worker, control) = match warm {
            Some(worker) => (worker, None),
            None => loop {
                match pool::Worker::register(job, spec.idle_timeout_ms > 0) {
                    // other sessions' workers end without telling us: poll
                    Err(Error::CouldNotRegister) => {
                        admission.wait_for_worker_slot(&admitted.slot, admitted.caps)?
                    }
                    other => break other?,
                }
            },
        };
        let guard = TerminateOnDrop::arm(&worker);
        // Attached means started, and the PID is known, even if the worker has already
        // finished.
        if !attached(receiver, &worker) {
            if was_warm {
                return Ok(None);
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
        guard.disarm();
        crate::registry::add(
            |c| {
                if was_warm {
                    &c.warm_starts
                } else {
                    &c.cold_starts
                }
            },
            1,
        );
        crate::registry::add(|c| &c.launched, 1);
        Ok(Some(Self { worker, pid }))
    }
}

/// Wait until the worker has attached to the job's queue (true), or is gone (false). The queue
/// watches a worker this session registered itself; one of another session's (a warm worker
/// handed our job) is watched here, by its process (it sets our latch when it attaches, and
/// when it exits).
fn attached(receiver: &mut MqReceiver, worker: &pool::Worker) -> bool {
    if let Some(registration) = worker.handle().registration() {
        receiver.watch_worker(registration);
        return receiver.wait_for_attach().is_ok();
    }
    loop {
        if receiver.sender_attached() {
            return true;
        }
        if !matches!(worker.status(), WorkerStatus::Running(_)) {
            return receiver.sender_attached();
        }
        crate::server::sleep_on_latch(ADOPTED_ATTACH_CHECK_MS, crate::server::WaitEvent::HandOver);
    }
}

/// Longest sleep between looks at a warm worker of another session's that was handed our job.
const ADOPTED_ATTACH_CHECK_MS: i64 = 100;

/// The last stage: the session's entry owns the job from now on.
fn file_entry(
    spec: &JobSpec<'_>,
    admitted: Admitted,
    segment: DsmSegment,
    receiver: MqReceiver,
    fixed: NonNull<FixedState>,
    started: Started,
    context: MemoryContext,
) -> (i32, i64) {
    admitted.slot.keep();
    let segment = segment.pin_mapping();
    // SAFETY: reading the current user at launch.
    let owner = unsafe { pg_sys::GetUserId() };
    let cookie = if spec.options.with_cookie {
        new_cookie()
    } else {
        0
    };
    let pid = started.pid;
    session_jobs::insert(Entry {
        pid,
        owner,
        cookie,
        results_disabled: spec.options.results_disabled,
        canceled: core::cell::Cell::new(false),
        launched_at: crate::server::now(),
        queue_size: spec.queue_size,
        sql_preview: preview(spec.sql).to_owned(),
        label: spec.options.label.map(str::to_owned),
        channel: Channel::new(receiver, segment, fixed),
        worker: started.worker,
        _context: context,
    });
    session_jobs::count_launch();
    (pid, cookie)
}

/// A random, non-zero cookie.
fn new_cookie() -> i64 {
    loop {
        let cookie = crate::server::strong_random_u64() as i64;
        if cookie != 0 {
            return cookie;
        }
    }
}

/// The first 120 bytes of `sql`, cut at a character boundary (`list_v2.sql_preview`).
fn preview(sql: &str) -> &str {
    crate::text::clip(sql, 120)
}

fn write_fixed_state<'seg>(
    toc: &Toc<'seg>,
    spec: &JobSpec<'_>,
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
            results_disabled: spec.options.results_disabled,
            idle_timeout_ms: spec.idle_timeout_ms,
            cancel_requested: core::sync::atomic::AtomicBool::new(false),
            worker_pid: core::sync::atomic::AtomicI32::new(0),
            worker_done: core::sync::atomic::AtomicBool::new(false),
            kept_warm: core::sync::atomic::AtomicBool::new(false),
            going_warm: core::sync::atomic::AtomicBool::new(false),
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
    // segment; afterwards only its atomics change.
    unsafe {
        chunk.cast::<FixedState>().as_ptr().write(fixed);
        chunk.cast::<FixedState>().as_ref()
    }
}
