//! Background work as named jobs the clock drives. Building the state starts nothing: each
//! subsystem offers its periodic work as a [`Job`] (a name, an interval, `run_once(now)`), the
//! state lists them ([`crate::state::AppState::jobs`]), and `serve`/`demo` hand the list to one
//! [`Scheduler`] on the main runtime. Tests call [`Jobs::run_once`] instead of waiting.
//!
//! The scheduler decides what is due by the [`Clock`]: each job runs once at start, then every
//! `every` of clock time after its previous run began (a late run is not caught up, like
//! `MissedTickBehavior::Delay`). With the system clock it sleeps on tokio timers until the next
//! job is due; with a `ManualClock` nothing is due until the test moves the clock, and
//! [`Scheduler::step`] runs what is due now.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;

/// The future a job's run returns.
pub type RunFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

type RunFn = dyn Fn(u64) -> RunFuture + Send + Sync;

/// One periodic piece of background work.
#[derive(Clone)]
pub struct Job {
    name: &'static str,
    every: Duration,
    run: Arc<RunFn>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("every", &self.every)
            .finish()
    }
}

impl Job {
    /// A job named `name` (e.g. `pool.rescan`) that runs `run(now_ms)` every `every`.
    pub fn new<F, Fut>(name: &'static str, every: Duration, run: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name,
            every: every.max(Duration::from_millis(1)),
            run: Arc::new(move |now| Box::pin(run(now)) as RunFuture),
        }
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How often it runs.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Runs the job once, as if the clock read `now_ms`. Failures are logged by the job.
    pub async fn run_once(&self, now_ms: u64) {
        (self.run)(now_ms).await;
    }
}

/// The jobs a state needs run, in start order.
#[derive(Clone, Debug, Default)]
pub struct Jobs(Vec<Job>);

impl Jobs {
    /// A list of jobs.
    pub fn new(jobs: Vec<Job>) -> Self {
        Self(jobs)
    }

    /// Every job.
    pub fn all(&self) -> &[Job] {
        &self.0
    }

    /// The job named `name`.
    pub fn get(&self, name: &str) -> Option<&Job> {
        self.0.iter().find(|j| j.name == name)
    }

    /// The jobs' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|j| j.name).collect()
    }

    /// Runs job `name` once at `now_ms`; false when there is no such job.
    pub async fn run_once(&self, name: &str, now_ms: u64) -> bool {
        match self.get(name) {
            Some(job) => {
                job.run_once(now_ms).await;
                true
            }
            None => false,
        }
    }
}

/// Runs jobs when the clock says they are due.
pub struct Scheduler {
    clock: SharedClock,
    slots: Vec<Slot>,
}

struct Slot {
    job: Job,
    /// Clock time (ms) the job is next due; 0 = at once.
    due: u64,
}

impl Scheduler {
    /// A scheduler for `jobs` on `clock`; every job is due at once.
    pub fn new(jobs: Jobs, clock: SharedClock) -> Self {
        let slots = jobs.0.into_iter().map(|job| Slot { job, due: 0 }).collect();
        Self { clock, slots }
    }

    /// Runs, one after another, every job due at `now_ms`; returns the names of those that ran.
    pub async fn step(&mut self, now_ms: u64) -> Vec<&'static str> {
        let mut ran = Vec::new();
        for slot in &mut self.slots {
            if slot.due <= now_ms {
                slot.job.run_once(now_ms).await;
                slot.due = now_ms.saturating_add(millis(slot.job.every));
                ran.push(slot.job.name);
            }
        }
        ran
    }

    /// Starts the jobs on the current runtime, each in its own task so a slow one (a provider
    /// that does not answer a refresh) never delays another. They stop when the handle drops.
    pub fn start(self) -> SchedulerHandle {
        let tasks = self
            .slots
            .into_iter()
            .map(|slot| tokio::spawn(drive(slot.job, self.clock.clone())))
            .collect();
        SchedulerHandle { tasks }
    }
}

/// One job's loop: run, then sleep until the clock says it is due again.
async fn drive(job: Job, clock: SharedClock) {
    let every = millis(job.every);
    loop {
        let started = clock.now_millis();
        job.run_once(started).await;
        let due = started.saturating_add(every);
        loop {
            let now = clock.now_millis();
            if now >= due {
                break;
            }
            // Re-read the clock at least once per interval: a clock set back cannot stall a job.
            let wait = (due - now).min(every);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The running scheduler; dropping it stops every job.
#[derive(Debug)]
pub struct SchedulerHandle {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::UNIX_EPOCH;

    fn counting(name: &'static str, every: Duration, runs: &Arc<AtomicU64>) -> Job {
        let runs = runs.clone();
        Job::new(name, every, move |_| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        })
    }

    #[tokio::test]
    async fn a_step_runs_what_the_clock_says_is_due() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1000));
        let (fast, slow) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let jobs = Jobs::new(vec![
            counting("fast", Duration::from_secs(1), &fast),
            counting("slow", Duration::from_secs(600), &slow),
        ]);
        assert_eq!(jobs.names(), ["fast", "slow"]);
        let mut s = Scheduler::new(jobs, Arc::new(clock.clone()));
        assert_eq!(s.step(clock.now_millis()).await, ["fast", "slow"]);
        assert!(s.step(clock.now_millis()).await.is_empty(), "nothing due");
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.step(clock.now_millis()).await, ["fast"]);
        clock.advance(Duration::from_secs(600));
        assert_eq!(s.step(clock.now_millis()).await, ["fast", "slow"]);
        assert_eq!(
            (fast.load(Ordering::SeqCst), slow.load(Ordering::SeqCst)),
            (3, 2)
        );
    }

    #[tokio::test]
    async fn run_once_by_name() {
        let runs = Arc::new(AtomicU64::new(0));
        let jobs = Jobs::new(vec![counting("a", Duration::from_secs(1), &runs)]);
        assert!(jobs.run_once("a", 0).await);
        assert!(!jobs.run_once("b", 0).await);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    async fn next(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<u64>,
    ) -> Result<Option<u64>, tokio::time::error::Elapsed> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
    }

    #[tokio::test]
    async fn started_jobs_run_at_once_then_when_the_clock_says() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1000));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let job = Job::new("a", Duration::from_millis(10), move |now| {
            let _ = tx.send(now);
            async {}
        });
        let handle = Scheduler::new(Jobs::new(vec![job]), Arc::new(clock.clone())).start();
        assert_eq!(
            next(&mut rx).await,
            Ok(Some(1_000_000)),
            "at once, at clock time"
        );
        clock.advance(Duration::from_millis(10));
        assert_eq!(next(&mut rx).await, Ok(Some(1_000_010)), "due by the clock");
        drop(handle);
        assert_eq!(next(&mut rx).await, Ok(None), "stopped: the job is gone");
    }
}
