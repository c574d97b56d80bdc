//! The reload gate: instantiations run side by side, a reload alone.
//!
//! A reload drops the instances made from (or reaching) the module it
//! replaces. An instantiation running meanwhile could pick the old module's
//! templates, or link to an instance about to be dropped, and cache the
//! result after the drop. So every resolution chain that may instantiate
//! enters the gate (at its first miss, or at once for a tier-up and a lazy
//! binding) and leaves it when it ends, and [`Loader::reload`] closes it:
//! it waits for the chains inside to end, keeps new ones out until it has
//! swapped the module, dropped the instances and made again those that
//! slots call, and opens it again. Resolutions the caches answer never
//! touch the gate.
//!
//! A thread inside the gate does not enter it again (an instantiator that
//! resolves through [`Loader::resolve`] instead of its context, the
//! reload's own instantiations), so nesting cannot deadlock; a reload from
//! inside an instantiation is refused instead of waiting for itself.
//!
//! [`Loader::reload`]: crate::Loader::reload
//! [`Loader::resolve`]: crate::Loader::resolve

use std::cell::RefCell;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
struct State {
    /// Chains inside.
    inside: usize,
    /// A reload has closed the gate, or waits for the chains inside.
    closed: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

thread_local! {
    /// The gates this thread is inside of, or has closed, by address.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Gate {
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Two counters, changed in single statements: never torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this thread is inside the gate or has closed it.
    pub(crate) fn held_here(&self) -> bool {
        let key = self.key();
        HELD.with(|held| held.borrow().contains(&key))
    }

    fn mark_held(&self, held: bool) {
        let key = self.key();
        HELD.with(|list| {
            let mut list = list.borrow_mut();
            if held {
                list.push(key);
            } else if let Some(at) = list.iter().rposition(|k| *k == key) {
                list.swap_remove(at);
            }
        });
    }

    /// Enters the gate, waiting while a reload has it closed; `false`
    /// (without entering) when this thread holds it already. A `true` is
    /// answered by one [`Gate::leave`] on the same thread.
    pub(crate) fn enter(&self) -> bool {
        if self.held_here() {
            return false;
        }
        let mut state = self.lock();
        while state.closed {
            state = self.wait(state);
        }
        state.inside += 1;
        drop(state);
        self.mark_held(true);
        true
    }

    /// Leaves the gate entered by [`Gate::enter`].
    pub(crate) fn leave(&self) {
        self.mark_held(false);
        let mut state = self.lock();
        state.inside = state.inside.saturating_sub(1);
        // Only a reload waits for the chains inside to leave; waking costs
        // a system call, so nobody is woken when none waits.
        if state.inside == 0 && state.closed {
            self.changed.notify_all();
        }
    }

    /// Closes the gate once the chains inside have left, and keeps it
    /// closed until the returned guard goes; `None` when this thread is
    /// inside (it would wait for itself).
    pub(crate) fn close(&self) -> Option<Closed<'_>> {
        if self.held_here() {
            return None;
        }
        let mut state = self.lock();
        while state.closed {
            state = self.wait(state);
        }
        state.closed = true;
        while state.inside > 0 {
            state = self.wait(state);
        }
        drop(state);
        self.mark_held(true);
        Some(Closed(self))
    }
}

/// The gate closed by [`Gate::close`]; opens it when dropped.
#[derive(Debug)]
pub(crate) struct Closed<'g>(&'g Gate);

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.mark_held(false);
        self.0.lock().closed = false;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_thread_inside_does_not_enter_again_and_cannot_close() {
        let gate = Gate::default();
        assert!(gate.enter());
        assert!(!gate.enter(), "nested: not entered twice");
        assert!(gate.close().is_none(), "would wait for itself");
        gate.leave();
        assert!(!gate.held_here());
        let closed = gate.close().expect("nobody inside");
        assert!(!gate.enter(), "the closing thread passes");
        drop(closed);
        assert!(gate.enter());
        gate.leave();
    }

    #[test]
    fn closing_waits_for_those_inside_and_keeps_newcomers_out() {
        let gate = Gate::default();
        let closed_while_inside = AtomicBool::new(false);
        let reload_done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            assert!(gate.enter());
            let closer = scope.spawn(|| {
                let closed = gate.close().expect("another thread");
                closed_while_inside.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                reload_done.store(true, Ordering::SeqCst);
                drop(closed);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !closed_while_inside.load(Ordering::SeqCst),
                "the reload waits for the chain inside"
            );
            gate.leave();
            // A newcomer waits until the reload is done.
            while !closed_while_inside.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            let newcomer = scope.spawn(|| {
                assert!(gate.enter());
                let after = reload_done.load(Ordering::SeqCst);
                gate.leave();
                after
            });
            closer.join().unwrap();
            assert!(newcomer.join().unwrap(), "entered only after the reload");
        });
    }
}
