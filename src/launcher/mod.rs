//! The launching side: build a job's segment, start its worker, track it, read or drop it.
//!
//! Sequence (after `test_shm_mq/setup.c` and `parallel.c`): create the segment (still owned by
//! the resource owner, so an ERROR detaches it) → attach as the queue's receiver *before*
//! registering, so the worker never writes to an orphaned queue → register → wait until the
//! worker has attached as sender → pin the mapping and file the entry. From then on the entry
//! owns everything, and the launching transaction may roll back without touching the job.

pub mod bgworker;
mod registry;
mod relay;
pub mod result;

use crate::error::Error;
use crate::guc;
use crate::shm::dsm::{DsmSegment, Segment};
use crate::shm::mq::{self, MqReceiver};
use crate::shm::toc::{Toc, TocEstimator};
use crate::shm::{FixedState, TocKey, LAYOUT_VERSION};
use bgworker::{TerminateOnDrop, WorkerHandle, WorkerStatus};
use core::sync::atomic::Ordering;
use pgrx::pg_sys;
use registry::{Entry, JobContext};

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

/// Start a worker running `sql` and return its PID.
pub fn launch(sql: &str, queue_size: i32) -> Result<i32, Error> {
    let queue_size = effective_queue_size(queue_size)?;
    let limit = guc::MAX_WORKERS.get();
    if registry::running() >= limit as usize {
        return Err(Error::TooManyWorkers { limit });
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
    let size = estimate.total();

    let context = JobContext::new();
    let segment = DsmSegment::create(size);
    let toc = Toc::create(&segment, size);
    let fixed = write_fixed_state(&toc);
    let sql_chunk = toc.allocate(TocKey::Sql, sql.len() + 1);
    // SAFETY: the chunk has room for the text and its NUL; the text has no NUL inside (text).
    unsafe {
        core::ptr::copy_nonoverlapping(sql.as_ptr(), sql_chunk.as_ptr(), sql.len());
        sql_chunk.as_ptr().add(sql.len()).write(0);
    }
    let gucs = toc.allocate(TocKey::Gucs, gucs_len);
    // SAFETY: `gucs` has the `gucs_len` bytes that EstimateGUCStateSpace asked for.
    unsafe { pg_sys::SerializeGUCState(gucs_len, gucs.as_ptr().cast()) };
    let queue = mq::create(toc.allocate(TocKey::Queue, queue_size), queue_size);

    let (mut receiver, worker) = context.within(|| -> Result<_, Error> {
        let receiver = MqReceiver::attach(queue, &segment);
        let worker = WorkerHandle::register(segment.handle())?;
        Ok((receiver, worker))
    })?;
    let guard = TerminateOnDrop::arm(&worker);
    receiver.watch_worker(worker.as_ptr());
    // Attached means started, and the PID is known, even if the worker has already finished.
    if receiver.wait_for_attach().is_err() {
        return Err(match worker.status() {
            WorkerStatus::PostmasterDied => Error::NoPostmaster,
            _ => Error::CouldNotStart,
        });
    }
    let pid = fixed.worker_pid.load(Ordering::Acquire);
    let fixed = core::ptr::NonNull::from(fixed);

    guard.disarm();
    let segment = segment.pin_mapping();
    // SAFETY: reading the current user at launch.
    let owner = unsafe { pg_sys::GetUserId() };
    registry::insert(Entry {
        pid,
        owner,
        fixed,
        queue: receiver,
        _segment: segment,
        worker,
        _context: context,
    });
    Ok(pid)
}

fn write_fixed_state<'seg>(toc: &Toc<'seg>) -> &'seg FixedState {
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
            worker_pid: core::sync::atomic::AtomicI32::new(0),
            worker_done: core::sync::atomic::AtomicBool::new(false),
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

/// Number of this session's workers that still run (see [`registry::running`]).
#[cfg(any(test, feature = "pg_test"))]
pub fn running() -> usize {
    registry::running()
}

/// Stop tracking `pid`: the worker goes on and commits; its further output is discarded.
pub fn detach(pid: i32) -> Result<(), Error> {
    registry::check_access(pid)?;
    drop(registry::take(pid)?);
    Ok(())
}
