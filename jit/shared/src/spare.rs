//! Working buffers a thread keeps from one compilation (or one miss) for
//! the next.
//!
//! Lowering a function may compile another: a callee the resolver
//! instantiates on demand is compiled, and its name demangled, while its
//! caller is being lowered. A single kept buffer would go to the caller
//! and the callee would allocate its own (and one of the two would be
//! freed at the end), so each kind of buffer is kept as a short stack: the
//! nested compilation takes the next one down.

use std::cell::Cell;
use std::thread::LocalKey;

/// The buffers of one kind a thread keeps, most recently returned last.
pub type Spares<T> = Cell<Vec<T>>;

/// How many buffers of a kind a thread keeps: deeper nesting is rare, and
/// its extra buffers are allocated and freed as before.
const DEPTH: usize = 4;

/// A kept buffer, or a new empty one when the thread has none left (or
/// is exiting and has dropped its buffers).
pub fn take<T: Default>(key: &'static LocalKey<Spares<T>>) -> T {
    key.try_with(|cell| {
        let mut stack = cell.take();
        let value = stack.pop();
        cell.set(stack);
        value
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// Keeps `value` for the next [`take`] of this thread; drops it when the
/// thread keeps enough already or is exiting.
pub fn give<T>(key: &'static LocalKey<Spares<T>>, value: T) {
    let _ = key.try_with(|cell| {
        let mut stack = cell.take();
        if stack.len() < DEPTH {
            stack.push(value);
        }
        cell.set(stack);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static KEPT: Spares<Vec<u8>> = const { Cell::new(Vec::new()) };
    }

    #[test]
    fn nested_takes_get_distinct_buffers_and_all_come_back() {
        let mut outer = take(&KEPT);
        outer.reserve(100);
        let mut inner = take(&KEPT);
        inner.reserve(50);
        let (outer_at, inner_at) = (outer.as_ptr(), inner.as_ptr());
        assert_ne!(outer_at, inner_at);
        give(&KEPT, inner);
        give(&KEPT, outer);
        // Last returned, first taken; both kept their storage.
        let again_outer = take(&KEPT);
        let again_inner = take(&KEPT);
        assert_eq!(again_outer.as_ptr(), outer_at);
        assert_eq!(again_inner.as_ptr(), inner_at);
        assert!(take(&KEPT).capacity() == 0, "a third take starts empty");
    }

    #[test]
    fn at_most_depth_buffers_are_kept() {
        for _ in 0..DEPTH + 3 {
            give(&KEPT, vec![1]);
        }
        let kept = (0..DEPTH + 3).filter(|_| !take(&KEPT).is_empty()).count();
        assert_eq!(kept, DEPTH);
    }
}
