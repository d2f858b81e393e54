//! One bell for every parked socket, at the cost of a waker each.
//!
//! A parked socket must look, now and then, whether its ping is due or the server stops. A
//! timer or a [`tokio::sync::Notify`] wait per socket would cost ~70 B inside each parked
//! socket's task; here a socket holds a slot number and the count of rings it has seen (16 B),
//! and the bell keeps one waker per waiting socket in a [`Slab`].

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// Rung by the server; each [`BellWait`] sees every ring after it was made (several rings
/// between two looks count as one).
#[derive(Debug, Default)]
pub(crate) struct Bell {
    inner: Mutex<Rings>,
}

#[derive(Debug, Default)]
struct Rings {
    /// Rings so far.
    count: u64,
    /// The wakers of the waits not yet woken by a ring; `None` once woken.
    waiting: Slab<Option<Waker>>,
}

/// One socket's place at the [`Bell`]. It holds no reference to the bell (the socket reaches
/// it through the server), so it must be given back with [`Bell::leave`], once.
#[derive(Debug)]
pub(crate) struct BellWait {
    slot: usize,
    seen: u64,
}

impl Bell {
    fn lock(&self) -> MutexGuard<'_, Rings> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A wait that sees the rings from now on.
    pub(crate) fn join(&self) -> BellWait {
        let mut rings = self.lock();
        BellWait {
            slot: rings.waiting.insert(None),
            seen: rings.count,
        }
    }

    /// Gives a wait's place back. Only once: the place may be another wait's afterwards.
    pub(crate) fn leave(&self, wait: &BellWait) {
        self.lock().waiting.try_remove(wait.slot);
    }

    /// Rings: wakes every waiting socket.
    pub(crate) fn ring(&self) {
        let woken: Vec<Waker> = {
            let mut rings = self.lock();
            rings.count += 1;
            rings
                .waiting
                .iter_mut()
                .filter_map(|(_, waker)| waker.take())
                .collect()
        };
        for waker in woken {
            waker.wake();
        }
    }

    /// `Ready` once the bell rang since `wait` was made or last saw a ring; otherwise the
    /// task is woken at the next ring.
    pub(crate) fn poll_rung(&self, wait: &mut BellWait, cx: &mut Context<'_>) -> Poll<()> {
        let mut rings = self.lock();
        if rings.count != wait.seen {
            wait.seen = rings.count;
            return Poll::Ready(());
        }
        if let Some(slot) = rings.waiting.get_mut(wait.slot) {
            match slot {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }

    /// How many waits hold a place (for tests).
    #[cfg(test)]
    fn places(&self) -> usize {
        self.lock().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_ring_wakes_each_waiting_socket_once_and_is_seen_once() {
        let bell = Bell::default();
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut wait_a = bell.join();
        let mut wait_b = bell.join();
        assert!(
            bell.poll_rung(&mut wait_a, &mut Context::from_waker(&wa))
                .is_pending()
        );
        assert!(
            bell.poll_rung(&mut wait_b, &mut Context::from_waker(&wb))
                .is_pending()
        );
        bell.ring();
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (1, 1)
        );
        // Two rings before the next look count as one; a second ring does not wake a socket
        // that has not waited again.
        bell.ring();
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert!(
            bell.poll_rung(&mut wait_a, &mut Context::from_waker(&wa))
                .is_ready()
        );
        assert!(
            bell.poll_rung(&mut wait_a, &mut Context::from_waker(&wa))
                .is_pending()
        );
        assert!(
            bell.poll_rung(&mut wait_b, &mut Context::from_waker(&wb))
                .is_ready()
        );
        bell.leave(&wait_a);
        bell.ring();
        assert_eq!(
            a.0.load(Ordering::SeqCst),
            1,
            "a wait that left is not woken"
        );
        assert_eq!(b.0.load(Ordering::SeqCst), 1, "b had not waited again");
        assert!(
            bell.poll_rung(&mut wait_b, &mut Context::from_waker(&wb))
                .is_ready()
        );
        bell.leave(&wait_b);
        assert_eq!(bell.places(), 0);
    }

    #[test]
    fn a_wait_made_after_a_ring_does_not_see_it() {
        let bell = Bell::default();
        bell.ring();
        let mut wait = bell.join();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        assert!(
            bell.poll_rung(&mut wait, &mut Context::from_waker(&waker))
                .is_pending()
        );
        bell.ring();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(
            bell.poll_rung(&mut wait, &mut Context::from_waker(&waker))
                .is_ready()
        );
        bell.leave(&wait);
    }
}
