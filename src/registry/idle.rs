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
    for place in list.iter_mut() {
        if place.pid == worker.pid {
            *place = IdleWorker::default();
        }
    }
    let taken = list.iter().filter(|p| p.pid != 0).count();
    if taken >= cap {
        // count again without the places of processes that are gone
        for place in list.iter_mut() {
            if place.pid != 0 && !running(place.pid) {
                *place = IdleWorker::default();
            }
        }
        if list.iter().filter(|p| p.pid != 0).count() >= cap {
            return Listed::Refused;
        }
    }
    match list.iter().position(|p| p.pid == 0) {
        Some(index) => {
            list[index] = worker;
            Listed::At(index)
        }
        // (one place per worker process: only stale places can fill it)
        None => Listed::Refused,
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
