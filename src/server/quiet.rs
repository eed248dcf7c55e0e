//! [`Quiet`]: a future polled only when it asked to be. A `select!` polls every branch each
//! time any branch wakes the task, so a branch that rarely finishes — the connection's
//! watchdog timer, the shutdown signal — costs a poll on every request of a keep-alive
//! connection (a timer check, a lock on the signal's state). Wrapped, it is polled on the first
//! poll and then only after its own waker fired.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// `inner`, polled only when woken (see the module).
pub(super) struct Quiet<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// The waker `inner` is polled with: wakes the task through `signal`.
    waker: Waker,
}

/// Whether `inner` asked to be polled, and the task to wake when it does.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Quiet<F> {
    pub(super) fn new(inner: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            inner: Box::pin(inner),
            waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use std::pin::pin;

    use super::*;

    /// Pending until `ready`; counts its polls and keeps the last waker.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: Mutex<Option<Waker>>,
    }

    fn probe_future(p: &Arc<Probe>) -> impl Future<Output = ()> + use<> {
        let p = p.clone();
        std::future::poll_fn(move |cx| {
            p.polls.fetch_add(1, Ordering::SeqCst);
            *p.waker.lock().unwrap() = Some(cx.waker().clone());
            match p.ready.load(Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
    }

    /// A task waker that counts its wakes.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_inner_future_is_polled_first_and_then_only_when_it_woke() {
        let probe = Arc::new(Probe::default());
        let task = Arc::new(Task::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut quiet = pin!(Quiet::new(probe_future(&probe)));
        assert!(quiet.as_mut().poll(&mut cx).is_pending());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1, "the first poll");
        // Another branch woke the task: the inner future is not polled.
        for _ in 0..5 {
            assert!(quiet.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1);
        // Its own waker fires: the task is woken, and the next poll reaches it.
        let inner = probe.waker.lock().unwrap().take().unwrap();
        probe.ready.store(true, Ordering::SeqCst);
        inner.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(quiet.as_mut().poll(&mut cx).is_ready());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_wake_during_the_inner_poll_is_not_lost() {
        let task = Arc::new(Task::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        // Wakes itself while being polled, twice, then finishes.
        let inner = std::future::poll_fn(move |cx| {
            if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(7)
        });
        let mut quiet = pin!(Quiet::new(inner));
        assert!(quiet.as_mut().poll(&mut cx).is_pending());
        assert!(quiet.as_mut().poll(&mut cx).is_pending());
        assert_eq!(quiet.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        assert_eq!(task.0.load(Ordering::SeqCst), 2);
    }
}
