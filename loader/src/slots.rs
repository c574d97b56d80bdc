//! Symbol slots: stable pointer-sized cells holding a name's current
//! address, for code that must call a name whose address may change or is
//! not known yet (hot reload, recursive instantiations, lazy binding).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::resolution::Address;

/// A stable cell holding the address a name resolves to now, or 0 while
/// nothing defines it: the winning export of the loaded modules, else its
/// cached instantiation. Reload, unload and the end of an instantiation
/// store the new address atomically; generated code calls through
/// [`SymbolSlot::as_ptr`].
#[derive(Debug, Clone)]
pub struct SymbolSlot(Arc<AtomicUsize>);

impl SymbolSlot {
    /// The current address, if the name resolves now.
    #[must_use]
    pub fn get(&self) -> Option<Address> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            address => Some(Address::new(address)),
        }
    }

    /// Where the slot lives: a pointer-sized, pointer-aligned cell that
    /// stays at this address for as long as any clone of this slot or its
    /// loader lives.
    #[must_use]
    pub fn as_ptr(&self) -> *const usize {
        self.0.as_ptr().cast_const()
    }

    fn store(&self, address: usize) {
        self.0.store(address, Ordering::Release);
    }
}

/// Every slot handed out, by name.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    by_name: Mutex<HashMap<Arc<str>, SymbolSlot>>,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, SymbolSlot>> {
        // Each entry is complete once inserted; a panic cannot tear one.
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `name`, made with `current()` as its content if new.
    pub(crate) fn get_or_create(&self, name: &str, current: impl FnOnce() -> usize) -> SymbolSlot {
        let mut slots = self.lock();
        if let Some(slot) = slots.get(name) {
            return slot.clone();
        }
        let slot = SymbolSlot(Arc::new(AtomicUsize::new(current())));
        slots.insert(Arc::from(name), slot.clone());
        slot
    }

    /// Whether a slot was handed out for `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// Stores `address` in the slot of `name`, if one was handed out.
    pub(crate) fn set(&self, name: &str, address: usize) {
        if let Some(slot) = self.lock().get(name) {
            slot.store(address);
        }
    }

    /// Stores in every slot what `resolve` says its name resolves to now.
    pub(crate) fn refresh(&self, resolve: impl Fn(&str) -> usize) {
        for (name, slot) in self.lock().iter() {
            slot.store(resolve(name));
        }
    }
}
