//! The cluster's idle warm workers: each one, while it waits for a job, has a place in the
//! registry's list ([`IdleWorker`]), so that a launch of any session can find a worker of its
//! own database and login role, and so that the server's cap on idle workers
//! (`pg_background.max_idle_workers`) holds for the whole cluster. The worker enters the list
//! as it becomes idle and leaves it when it is handed a job or exits; the hand-over itself
//! goes through the worker's control segment (`launcher::pool`), never under this lock.

use super::shmem;
pub use super::slot::IdleWorker;
use pgrx::pg_sys;

/// What became of a worker's offer to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    /// It has the place of this index.
    At(usize),
    /// The server has no registry: the worker waits only for its own session.
    NoRegistry,
    /// The cluster has `pg_background.max_idle_workers` idle workers already: it must exit.
    Refused,
}

/// Whether the process `pid` still runs.
fn running(pid: i32) -> bool {
    // SAFETY: BackendPidGetProc takes the process array's lock itself (nested in ours: nobody
    // takes ours while holding it) and returns a pointer into the array, or NULL.
    !unsafe { pg_sys::BackendPidGetProc(pid) }.is_null()
}

/// Enter `worker` into the list, unless the cluster has `cap` idle workers already. Places of
/// processes that are gone (ended without leaving the list: a crash restarts the whole server,
/// so only by a path that skipped the exit callback) are reused.
pub fn enter(worker: IdleWorker, cap: usize) -> Listed {
    let Some(mut registry) = shmem::exclusive() else {
        return Listed::NoRegistry;
    };
    let list = registry.idle_mut();
    // one pass: our own place (from an exit that skipped leaving it), the places taken, a free one
    let (mut taken, mut free) = (0, None);
    for (index, place) in list.iter_mut().enumerate() {
        if place.pid == worker.pid {
            *place = IdleWorker::default();
        }
        if place.pid != 0 {
            taken += 1;
        } else if free.is_none() {
            free = Some(index);
        }
    }
    if taken >= cap || free.is_none() {
        // count again without the places of processes that are gone
        for place in list.iter_mut() {
            if place.pid != 0 && !running(place.pid) {
                *place = IdleWorker::default();
            }
        }
        taken = list.iter().filter(|p| p.pid != 0).count();
        free = list.iter().position(|p| p.pid == 0);
    }
    match free {
        Some(index) if taken < cap => {
            list[index] = worker;
            Listed::At(index)
        }
        // (one place per worker process: only stale places can fill it)
        _ => Listed::Refused,
    }
}

/// Take the worker `pid` off the list (at `index`, if known).
pub fn leave(index: Option<usize>, pid: i32) {
    let Some(mut registry) = shmem::exclusive() else {
        return;
    };
    let list = registry.idle_mut();
    match index.and_then(|i| list.get_mut(i)).filter(|p| p.pid == pid) {
        Some(place) => *place = IdleWorker::default(),
        None => {
            for place in list.iter_mut().filter(|p| p.pid == pid) {
                *place = IdleWorker::default();
            }
        }
    }
}

/// The idle workers that `keep` chooses, in the order of their places.
pub fn listed(keep: impl Fn(&IdleWorker) -> bool) -> Vec<IdleWorker> {
    let Some(registry) = shmem::shared() else {
        return Vec::new();
    };
    registry
        .idle()
        .iter()
        .filter(|p| p.pid != 0 && keep(p))
        .copied()
        .collect()
}
