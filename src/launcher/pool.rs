//! The workers a session registered, and warm workers (`pg_background.worker_idle_timeout`).
//!
//! A worker whose job succeeded resets its session (as DISCARD ALL does, its settings aside: see
//! `worker::settings`) and waits, for the idle timeout its job was launched with, for the next
//! job of a session of the same database, login role, current user and security context. Its own
//! session finds it in this session's pool; any other session through the cluster's list of
//! idle workers (`registry::idle`), unless a job loaded a library into it (`worker::warm`). The
//! launch hands it the new job's segment through the worker's control segment ([`Control`])
//! instead of registering a new process; the job's current user and security context are
//! applied afresh from that segment, exactly as in a new worker, and so are its settings unless
//! the worker has exactly those already (`worker::settings`).
//!
//! A worker is offered a job only when this session tracks no job under its PID (the classic
//! API names jobs by PID), and never after it was asked to terminate.

use super::bgworker::{WorkerHandle, WorkerStatus};
use crate::error::Error;
use crate::registry::idle::IdleWorker;
use crate::shm::dsm::{DsmSegment, PinnedSegment, Segment};
use crate::shm::{Control, WarmState, LAYOUT_VERSION};
use core::cell::{Cell, RefCell};
use core::mem::ManuallyDrop;
use core::sync::atomic::Ordering;
use pgrx::pg_guard;
use pgrx::pg_sys;
use std::rc::Rc;

/// How long a launch waits for a worker that is finishing its previous job (it has replied and
/// resets its session) before it starts a new process instead.
const FINISHING_WAIT_MS: i64 = 100;

/// One registered worker process. Shared by the job it runs (its registry entry) and, for a
/// worker that may be kept warm, the session's pool.
pub struct Worker {
    handle: WorkerHandle,
    warm: Option<WarmLink>,
    pid: Cell<i32>,
    /// Terminate was asked for: the process will be signalled, so it must never get another
    /// job.
    terminated: Cell<bool>,
}

/// Database, login role, current user and security context of a job: a warm worker is handed
/// only jobs with the same as its last job, since what a job leaves in the process beyond the
/// session's reset must not reach a job that runs with other rights.
pub type Identity = (u32, u32, u32, i32);

/// How to reach a warm worker's control segment.
struct WarmLink {
    control: pg_sys::dsm_handle,
    nonce: u64,
}

thread_local! {
    /// Workers that may be kept warm, while they live. Not dropped at process exit (see the
    /// registry).
    static POOL: ManuallyDrop<RefCell<Vec<Rc<Worker>>>> =
        const { ManuallyDrop::new(RefCell::new(Vec::new())) };
}

impl Worker {
    /// Register a new worker process for the job in segment `job`. With `warm`, it gets a
    /// control segment, which the caller must keep mapped until the worker has attached to the
    /// job's queue (the worker maps the control segment first), and joins the pool.
    pub fn register(
        job: pg_sys::dsm_handle,
        warm: bool,
    ) -> Result<(Rc<Self>, Option<DsmSegment>), Error> {
        let (link, control) = if warm {
            let nonce = crate::server::strong_random_u64();
            let segment = DsmSegment::create(core::mem::size_of::<Control>());
            // SAFETY: the segment was created with room for a Control, is page-aligned, and is
            // ours alone until the worker is registered.
            unsafe {
                segment.address().cast::<Control>().write(Control {
                    nonce,
                    layout_version: LAYOUT_VERSION,
                    state: crate::shm::AtomicState::new(WarmState::Busy),
                    next_job: core::sync::atomic::AtomicU32::new(0),
                    worker_pid: core::sync::atomic::AtomicI32::new(0),
                    worker_proc: core::sync::atomic::AtomicUsize::new(0),
                    launcher_pid: core::sync::atomic::AtomicI32::new(pg_sys::MyProcPid),
                    launcher_proc: core::sync::atomic::AtomicUsize::new(pg_sys::MyProc as usize),
                    database_id: core::sync::atomic::AtomicU32::new(0),
                    login_role: core::sync::atomic::AtomicU32::new(0),
                    current_user: core::sync::atomic::AtomicU32::new(0),
                    sec_context: core::sync::atomic::AtomicI32::new(0),
                    shareable: core::sync::atomic::AtomicBool::new(false),
                })
            };
            let link = WarmLink {
                control: segment.handle(),
                nonce,
            };
            (Some(link), Some(segment))
        } else {
            (None, None)
        };
        let control_handle = link.as_ref().map(|l| l.control);
        let handle = match WorkerHandle::register(job, control_handle) {
            // Idle workers may hold the last slots: let them go, and try again while they exit.
            Err(Error::CouldNotRegister) if retire_idle() => {
                register_while_retired_exit(job, control_handle)?
            }
            other => other?,
        };
        let worker = Rc::new(Self {
            handle,
            warm: link,
            pid: Cell::new(0),
            terminated: Cell::new(false),
        });
        if warm {
            POOL.with(|pool| pool.borrow_mut().push(Rc::clone(&worker)));
            register_exit_callback();
        }
        Ok((worker, control))
    }

    pub fn handle(&self) -> &WorkerHandle {
        &self.handle
    }

    pub fn status(&self) -> WorkerStatus {
        self.handle.status()
    }

    /// The PID, once the worker has attached to its first job.
    pub fn set_pid(&self, pid: i32) {
        self.pid.set(pid);
    }

    /// Ask the postmaster to stop the worker; it will never get another job.
    pub fn terminate(&self) {
        self.terminated.set(true);
        self.handle.terminate();
    }

    fn alive(&self) -> bool {
        !self.terminated.get()
            && matches!(
                self.status(),
                WorkerStatus::Running(_) | WorkerStatus::NotYetStarted
            )
    }

    /// Map this worker's control segment and run `f` on it; `None` when the worker is gone
    /// (or never was warm).
    fn with_control<R>(&self, f: impl FnOnce(&Control) -> R) -> Option<R> {
        let link = self.warm.as_ref()?;
        // The worker maps its control segment while it lives; once it is gone the handle may
        // name another segment, or none.
        let segment = DsmSegment::attach_untracked(link.control)?;
        let control = control_in(&segment, link.nonce, self.pid.get())?;
        Some(f(control))
    }

    /// Tell an idle worker to exit now rather than at its idle timeout. Without `any`, only one
    /// that no session but this one may use (other sessions may use it, or it last ran a job of
    /// another session's, which alone may use it now). True if it was idle.
    fn retire(&self, any: bool) -> bool {
        self.with_control(|control| {
            (any || (!control.shareable.load(Ordering::Acquire) && last_launched_by_us(control)))
                && retire(control)
        })
        .unwrap_or(false)
    }

    /// Hand the job in segment `job` to this worker if it is idle and has our `identity`
    /// (waiting a little for one that is finishing).
    fn offer(&self, job: pg_sys::dsm_handle, identity: Identity) -> Offer {
        self.with_control(|control| offer(control, job, identity))
            .unwrap_or(Offer::Gone)
    }

    /// The worker of another session's in `listed`, now running the job in segment `job` if
    /// it was idle and has our `identity`.
    fn adopt(listed: &IdleWorker, job: pg_sys::dsm_handle, identity: Identity) -> Option<Self> {
        let adopted = Self {
            handle: WorkerHandle::adopted(listed.pid, 0),
            warm: Some(WarmLink {
                control: listed.control,
                nonce: listed.nonce,
            }),
            pid: Cell::new(listed.pid),
            terminated: Cell::new(false),
        };
        let (offered, proc_) = adopted.with_control(|control| {
            (
                offer(control, job, identity),
                control.worker_proc.load(Ordering::Acquire),
            )
        })?;
        match offered {
            Offer::Taken => Some(Self {
                handle: WorkerHandle::adopted(listed.pid, proc_),
                ..adopted
            }),
            Offer::Busy | Offer::Gone => None,
        }
    }
}

/// Whether this session launched the last job of the worker behind `control`.
fn last_launched_by_us(control: &Control) -> bool {
    // SAFETY: reading our own PID and PGPROC.
    let (pid, proc_) = unsafe { (pg_sys::MyProcPid, pg_sys::MyProc as usize) };
    control.launcher_pid.load(Ordering::Acquire) == pid
        && control.launcher_proc.load(Ordering::Acquire) == proc_
}

/// Move an idle worker to GONE and wake it. True if it was idle.
fn retire(control: &Control) -> bool {
    let retired = control
        .state
        .advance(WarmState::Idle, WarmState::Gone)
        .is_ok();
    if retired {
        wake(control);
    }
    retired
}

/// Set the latch of the worker behind `control`.
fn wake(control: &Control) {
    let proc_ = control.worker_proc.load(Ordering::Acquire) as *mut pg_sys::PGPROC;
    // SAFETY: the worker stored its PGPROC, which lies in the main shared memory, before it
    // first became idle; setting the latch of a process that just exited is harmless.
    unsafe { pg_sys::SetLatch(&mut (*proc_).procLatch) };
}

/// What became of an offer of a job to a warm worker.
enum Offer {
    /// The worker runs the job now.
    Taken,
    /// It runs another job (one that was detached), or is still finishing one: ask again later.
    Busy,
    /// It has exited or is exiting.
    Gone,
}

/// See [`Worker::offer`].
fn offer(control: &Control, job: pg_sys::dsm_handle, identity: Identity) -> Offer {
    let start = crate::server::now();
    loop {
        match control.state.get() {
            WarmState::Idle => {
                if control
                    .state
                    .advance(WarmState::Idle, WarmState::Claimed)
                    .is_err()
                {
                    // it timed out, or another session claimed it, just now: look again
                    continue;
                }
                // Claimed, it can neither time out nor be handed another job: its identity,
                // written before it became idle, stays as it is; and so does whether only its
                // last launcher may use it (another session may have run a job in a worker of
                // ours since).
                let mine =
                    last_launched_by_us(control) || control.shareable.load(Ordering::Acquire);
                if control.identity() != identity || !mine {
                    // (the worker may have exited meanwhile, which only it moves to GONE)
                    let _ = control.state.advance(WarmState::Claimed, WarmState::Idle);
                    return Offer::Busy;
                }
                // SAFETY: reading our own PID and PGPROC.
                let (pid, proc_) = unsafe { (pg_sys::MyProcPid, pg_sys::MyProc as usize) };
                control.launcher_pid.store(pid, Ordering::Release);
                control.launcher_proc.store(proc_, Ordering::Release);
                control.next_job.store(job, Ordering::Release);
                if control
                    .state
                    .advance(WarmState::Claimed, WarmState::Assigned)
                    .is_err()
                {
                    // it exited while claimed
                    return Offer::Gone;
                }
                wake(control);
                return Offer::Taken;
            }
            WarmState::Finishing => {
                if crate::server::ms_since(start) >= FINISHING_WAIT_MS {
                    return Offer::Busy;
                }
                // The worker sets our latch when it is idle.
                crate::server::sleep_on_latch(1, crate::server::WaitEvent::HandOver);
            }
            WarmState::Gone => return Offer::Gone,
            // running a job (one that was detached, or another session's), or being handed one
            _ => return Offer::Busy,
        }
    }
}

/// Forget the workers that are gone or were asked to terminate.
pub fn prune() {
    POOL.with(|pool| pool.borrow_mut().retain(|w| w.alive()));
}

/// Make idle workers exit: all of this session's, else one of the cluster's. They hold worker
/// slots that a launch needs. True if any did.
fn retire_idle() -> bool {
    let retired = POOL.with(|pool| pool.borrow_mut().extract_if(.., |w| w.retire(true)).count());
    if retired > 0 {
        return true;
    }
    // one of another session's is enough for this launch
    crate::registry::idle::listed(|_| true)
        .iter()
        .any(|listed| {
            DsmSegment::attach_untracked(listed.control).is_some_and(|segment| {
                control_in(&segment, listed.nonce, listed.pid).is_some_and(retire)
            })
        })
}

/// Register a worker for `job` while the idle workers just retired exit and the postmaster
/// frees their slots (it sets our latch when a worker we registered exits; others' we poll).
fn register_while_retired_exit(
    job: pg_sys::dsm_handle,
    control: Option<pg_sys::dsm_handle>,
) -> Result<WorkerHandle, Error> {
    let start = crate::server::now();
    loop {
        match WorkerHandle::register(job, control) {
            Err(Error::CouldNotRegister) if crate::server::ms_since(start) < RETIRE_WAIT_MS => {
                crate::server::sleep_on_latch(10, crate::server::WaitEvent::HandOver);
            }
            other => return other,
        }
    }
}

/// How long a launch that found no free worker slot waits for the idle workers it retired.
const RETIRE_WAIT_MS: i64 = 1000;

/// The control segment mapped as `segment`, if it is still that of the worker `pid` with
/// `nonce` (it stays mapped as long as `segment`).
fn control_in(segment: &PinnedSegment, nonce: u64, pid: i32) -> Option<&Control> {
    // SAFETY: plain call on an attached segment.
    let len = unsafe { pg_sys::dsm_segment_map_length(segment.as_ptr()) };
    if len < core::mem::size_of::<Control>() {
        return None;
    }
    // SAFETY: the mapping has room for a Control and is page-aligned; every field that
    // changes after creation is atomic.
    let control = unsafe { &*segment.address().cast::<Control>() };
    (control.nonce == nonce
        && control.layout_version == LAYOUT_VERSION
        && control.worker_pid.load(Ordering::Acquire) == pid)
        .then_some(control)
}

/// At the session's exit, its idle workers that only it may use exit at once instead of at
/// their idle timeout; the others wait for the next job of another session.
fn register_exit_callback() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    crate::server::before_exit_once(&REGISTERED, retire_at_exit);
}

/// Only on a clean exit: after a FATAL error this backend may be in no state to map segments;
/// its idle workers then notice within a second that it is gone (`worker::warm`).
#[pg_guard]
unsafe extern "C-unwind" fn retire_at_exit(code: core::ffi::c_int, _arg: pg_sys::Datum) {
    if code != 0 {
        return;
    }
    POOL.with(|pool| {
        for worker in pool.borrow().iter() {
            worker.retire(false);
        }
    });
}

/// A warm worker that now runs the job in segment `job`, if one is idle, last ran a job with
/// `identity`, and `tracked(pid)` says no job of this session is filed under its PID: one of
/// this session's, else one of another session's that it left in the cluster's list.
pub fn claim(
    job: pg_sys::dsm_handle,
    tracked: impl Fn(i32) -> bool,
    identity: Identity,
) -> Option<Rc<Worker>> {
    let own = POOL.with(|pool| {
        pool.borrow_mut().retain(|w| w.alive());
        let candidates: Vec<Rc<Worker>> = pool
            .borrow()
            .iter()
            .filter(|w| w.pid.get() != 0 && !tracked(w.pid.get()))
            .cloned()
            .collect();
        for worker in candidates {
            match worker.offer(job, identity) {
                Offer::Taken => return Some(worker),
                Offer::Gone => pool.borrow_mut().retain(|w| !Rc::ptr_eq(w, &worker)),
                Offer::Busy => {}
            }
        }
        None
    });
    own.or_else(|| adopt(job, tracked, identity))
}

/// An idle worker of another session's with our `identity` that now runs the job in segment
/// `job`; it joins this session's pool.
fn adopt(
    job: pg_sys::dsm_handle,
    tracked: impl Fn(i32) -> bool,
    identity: Identity,
) -> Option<Rc<Worker>> {
    let ours = |pid: i32| POOL.with(|pool| pool.borrow().iter().any(|w| w.pid.get() == pid));
    let (database_id, login_role, current_user, sec_context) = identity;
    let candidates = crate::registry::idle::listed(|p| {
        !p.own_session_only
            && (p.database_id, p.login_role, p.current_user, p.sec_context)
                == (database_id, login_role, current_user, sec_context)
    });
    let worker = candidates
        .iter()
        .filter(|p| !tracked(p.pid) && !ours(p.pid))
        .find_map(|p| Worker::adopt(p, job, identity))?;
    let worker = Rc::new(worker);
    POOL.with(|pool| pool.borrow_mut().push(Rc::clone(&worker)));
    register_exit_callback();
    Some(worker)
}

/// Forget every warm worker (they time out on their own): a worker that is about to wait for
/// its own launcher's next job must not hand jobs of its previous one to workers it launched.
pub fn forget_all() {
    POOL.with(|pool| pool.borrow_mut().clear());
}

/// Terminates the worker when dropped, unless disarmed: armed from registration (or hand-over)
/// until the job is filed in the registry, so that an ERROR or a cancel in between (e.g. Ctrl-C
/// while waiting for the worker to attach) does not leave a job running that nobody tracks.
pub struct TerminateOnDrop<'a> {
    worker: &'a Worker,
    armed: bool,
}

impl<'a> TerminateOnDrop<'a> {
    pub fn arm(worker: &'a Worker) -> Self {
        Self {
            worker,
            armed: true,
        }
    }

    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TerminateOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.worker.terminate();
        }
    }
}
