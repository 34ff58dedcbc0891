//! Admission of a launch: the session's cap (`pg_background.max_workers`), the cluster's caps
//! through the registry (`pg_background.max_jobs`, `max_jobs_per_role`), and the server's free
//! worker slots; failing at once or waiting, as `pg_background.on_capacity` says.

use crate::error::Error;
use crate::guc;
use pgrx::pg_sys;

/// A launch's slot in the cluster-wide registry, freed again unless the launch succeeds.
pub struct JobSlot(Option<(usize, u64)>);

impl JobSlot {
    /// The slot (index, job id), if the job was filed.
    pub fn filed(&self) -> Option<(usize, u64)> {
        self.0
    }

    pub fn is_filed(&self) -> bool {
        self.0.is_some()
    }

    /// The launch succeeded: the slot is the worker's now.
    pub fn keep(mut self) {
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
pub struct Admission {
    wait: bool,
    timeout_ms: i32,
    start: pg_sys::TimestampTz,
    /// Time spent asleep, waiting for capacity (µs), and whether it slept at all.
    slept_us: core::cell::Cell<Option<i64>>,
}

/// How often a waiting launch looks again.
const ADMISSION_POLL_MS: i64 = 10;

impl Admission {
    pub fn new() -> Self {
        Self {
            wait: guc::ON_CAPACITY.get() == guc::OnCapacity::Wait,
            timeout_ms: guc::CAPACITY_WAIT_TIMEOUT.get(),
            start: crate::server::now(),
            slept_us: core::cell::Cell::new(None),
        }
    }

    /// Sleep with `sleep`, counting the time.
    fn sleep(&self, sleep: impl FnOnce()) {
        let before = crate::server::now();
        sleep();
        let slept = crate::server::now() - before;
        self.slept_us
            .set(Some(self.slept_us.get().unwrap_or(0) + slept.max(0)));
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
    pub fn wait_or(&self, error: Error) -> Result<(), Error> {
        let ms = self.may_wait(error, ADMISSION_POLL_MS)?;
        self.sleep(|| {
            crate::server::sleep_on_latch(ms, crate::server::WaitEvent::Capacity);
        });
        Ok(())
    }

    /// File the job in the cluster-wide registry and wait there for its turn when the caps
    /// on running jobs are reached (or fail, in error mode). With a cap set, the registry must
    /// be there; without one, a job the registry cannot take runs unregistered.
    pub fn file(
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
            Filed::Full if caps.any() => Err(Error::RegistryFull(crate::registry::slot_count())),
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
                Ok(ms) => self.sleep(|| crate::registry::sleep_for_turn(ms, event)),
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
    pub fn wait_for_worker_slot(
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

/// A launch that had to wait for capacity (whether it started in the end or not) is counted
/// for the cluster, with the time it slept.
impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(us) = self.slept_us.get() {
            crate::registry::add(|c| &c.capacity_waits, 1);
            crate::registry::add(|c| &c.capacity_wait_ms, (us / 1000).unsigned_abs());
        }
    }
}

/// Longest sleep of a launch waiting for its turn in the registry between two looks.
const TURN_POLL_MS: i64 = 1000;
