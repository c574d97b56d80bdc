//! The table of every loaded module's exports: a flat open-addressing hash
//! table, rebuilt whole when a module comes or goes and published as an
//! immutable snapshot, so a lookup takes no lock and allocates nothing.
//!
//! Precedence when several modules export one name: a `Global` definition
//! wins over a `Weak` one; among definitions of equal binding the module
//! loaded first wins (a reloaded module keeps its place in load order).

use std::sync::Arc;

use smf::Binding;

use crate::resolution::ModuleId;

/// One exported definition.
#[derive(Debug, Clone)]
pub struct Export {
    /// The symbol's name.
    pub name: Arc<str>,
    /// Its address in memory.
    pub address: usize,
    /// `Global` or `Weak`.
    pub binding: Binding,
    /// The module that defines it.
    pub module: ModuleId,
}

#[derive(Debug, Clone)]
struct Slot<T> {
    /// The name's hash with the low bit set; 0 marks an empty slot.
    hash: u64,
    export: Option<(Export, T)>,
}

/// A snapshot of the winning definition of every exported name, each with
/// an owner payload (the loader keeps the defining module there).
#[derive(Debug, Clone)]
pub(crate) struct ExportTable<T> {
    slots: Box<[Slot<T>]>,
}

/// The hash the table is keyed by, with the low bit set so that no name
/// hashes to the empty marker.
#[inline]
fn name_hash(name: &str) -> u64 {
    jit::hash::name_hash(name.as_bytes()) | 1
}

fn rank(binding: Binding) -> u8 {
    match binding {
        Binding::Global => 2,
        Binding::Weak => 1,
        Binding::Local => 0,
    }
}

impl<T: Clone> ExportTable<T> {
    /// An empty table.
    pub(crate) fn empty() -> Self {
        Self {
            slots: Box::new([]),
        }
    }

    /// Builds the table from definitions given in load order.
    pub(crate) fn build<'a>(exports: impl IntoIterator<Item = (&'a Export, T)>) -> Self {
        let exports: Vec<(&Export, T)> = exports.into_iter().collect();
        let capacity = (exports.len().max(4) * 2).next_power_of_two();
        let mut table = Self {
            slots: vec![
                Slot {
                    hash: 0,
                    export: None
                };
                capacity
            ]
            .into_boxed_slice(),
        };
        let mask = capacity - 1;
        for (export, owner) in exports {
            let hash = name_hash(&export.name);
            let mut i = hash as usize & mask;
            loop {
                let slot = &mut table.slots[i];
                match &slot.export {
                    None => {
                        *slot = Slot {
                            hash,
                            export: Some((export.clone(), owner)),
                        };
                        break;
                    }
                    Some((held, _)) if slot.hash == hash && held.name == export.name => {
                        // Strictly stronger binding replaces; equal keeps the
                        // earlier module.
                        if rank(export.binding) > rank(held.binding) {
                            slot.export = Some((export.clone(), owner));
                        }
                        break;
                    }
                    Some(_) => i = (i + 1) & mask,
                }
            }
        }
        table
    }

    /// The winning definition of `name`.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<&(Export, T)> {
        let mask = self.slots.len().checked_sub(1)?;
        let hash = name_hash(name);
        let mut i = hash as usize & mask;
        loop {
            // `i` is masked to the power-of-two length, so it is in bounds.
            let slot = self.slots.get(i)?;
            if slot.hash == 0 {
                return None;
            }
            if slot.hash == hash
                && let Some(entry) = &slot.export
                && *entry.0.name == *name
            {
                return Some(entry);
            }
            i = (i + 1) & mask;
        }
    }

    /// Number of entries whose owner satisfies `keep`.
    pub(crate) fn count(&self, keep: impl Fn(&T) -> bool) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.export.as_ref().is_some_and(|(_, owner)| keep(owner)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(name: &str, address: usize, binding: Binding, module: ModuleId) -> Export {
        Export {
            name: name.into(),
            address,
            binding,
            module,
        }
    }

    fn table(exports: &[Export]) -> ExportTable<()> {
        ExportTable::build(exports.iter().map(|e| (e, ())))
    }

    #[test]
    fn global_beats_weak_whatever_the_order() {
        let table = table(&[
            export("f", 1, Binding::Weak, 1),
            export("f", 2, Binding::Global, 2),
            export("g", 3, Binding::Global, 1),
            export("g", 4, Binding::Weak, 2),
        ]);
        assert_eq!(table.get("f").map(|e| e.0.address), Some(2));
        assert_eq!(table.get("g").map(|e| e.0.address), Some(3));
        assert_eq!(table.count(|_| true), 2);
    }

    #[test]
    fn first_loaded_wins_among_equals() {
        let table = table(&[
            export("f", 1, Binding::Global, 1),
            export("f", 2, Binding::Global, 2),
            export("w", 3, Binding::Weak, 1),
            export("w", 4, Binding::Weak, 2),
        ]);
        assert_eq!(table.get("f").map(|e| e.0.module), Some(1));
        assert_eq!(table.get("w").map(|e| e.0.address), Some(3));
    }

    #[test]
    fn finds_every_name_of_a_large_table_and_nothing_else() {
        let exports: Vec<Export> = (0..5000)
            .map(|i| export(&format!("sym{i}"), i + 1, Binding::Global, 1))
            .collect();
        let table = table(&exports);
        assert_eq!(table.count(|_| true), 5000);
        for i in 0..5000 {
            assert_eq!(
                table.get(&format!("sym{i}")).map(|e| e.0.address),
                Some(i + 1)
            );
        }
        assert!(table.get("sym5000").is_none());
        assert!(table.get("").is_none());
    }

    #[test]
    fn empty_table_finds_nothing() {
        assert!(ExportTable::<()>::empty().get("f").is_none());
        assert!(table(&[]).get("f").is_none());
    }
}
