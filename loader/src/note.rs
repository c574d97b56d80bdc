//! A loaded module's `note.sdn`, readable while instantiations record into
//! it.
//!
//! Readers hold a read guard; an instantiation finishing meanwhile (on any
//! thread, including the reader's own) must not wait for it, or a reader
//! that resolves a name while holding the guard would deadlock. So a
//! record that cannot take the note at once is queued and applied by the
//! next reader or writer that can.

use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, TryLockError};

use sdn::note::Note;

/// The note and the records waiting to be applied to it.
#[derive(Debug)]
pub(crate) struct ModuleNote {
    note: RwLock<Note>,
    pending: Mutex<Vec<(String, String)>>,
}

/// Moves `name` from `possible` to `instantiations` if it is listed there.
/// A name already recorded (or also in `instantiations`) leaves the note as
/// it is, which is what it should say.
fn apply(note: &mut Note, name: &str, to_obj: &str) {
    if note.possible(name).is_some() {
        let _ = note.record_jit_compiled(name, to_obj);
    }
}

impl ModuleNote {
    pub(crate) fn new(note: Note) -> Self {
        Self {
            note: RwLock::new(note),
            pending: Mutex::new(Vec::new()),
        }
    }

    fn take_pending(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records `name` as compiled at run time, now or, when the note is
    /// being read, as soon as it is free.
    pub(crate) fn record(&self, name: &str, to_obj: &str) {
        match self.note.try_write() {
            Ok(mut note) => {
                for (queued, obj) in self.take_pending() {
                    apply(&mut note, &queued, &obj);
                }
                apply(&mut note, name, to_obj);
            }
            Err(TryLockError::Poisoned(poisoned)) => {
                apply(&mut poisoned.into_inner(), name, to_obj);
            }
            Err(TryLockError::WouldBlock) => self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((name.to_owned(), to_obj.to_owned())),
        }
    }

    /// The note, with every record that could be applied applied.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Note> {
        let pending = self.take_pending();
        if !pending.is_empty() {
            match self.note.try_write() {
                Ok(mut note) => {
                    for (name, obj) in &pending {
                        apply(&mut note, name, obj);
                    }
                }
                // Still being read: the records wait for the next chance.
                Err(_) => self
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(pending),
            }
        }
        self.note.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdn::note::{Possible, Status, TypeArgs};

    fn note() -> ModuleNote {
        let row = |id, name: &str| Possible {
            id,
            template: "t".to_owned(),
            type_args: TypeArgs(vec!["i32".to_owned()]),
            mangled_name: name.to_owned(),
            required_by: "m".to_owned(),
            can_defer: true,
        };
        ModuleNote::new(Note {
            possible: vec![row(1, "a"), row(2, "b")],
            ..Note::default()
        })
    }

    #[test]
    fn a_record_made_while_the_note_is_read_waits_and_is_applied_later() {
        let note = note();
        let guard = note.read();
        note.record("a", "jit");
        assert_eq!(
            guard.possible.len(),
            2,
            "the reader's view does not change under it"
        );
        drop(guard);
        let now = note.read();
        assert_eq!(now.possible.len(), 1);
        assert_eq!(now.instantiations[0].mangled_name, "a");
        assert_eq!(now.instantiations[0].status, Status::JitCompiled);
    }

    #[test]
    fn unlisted_and_repeated_records_change_nothing() {
        let note = note();
        note.record("b", "jit");
        note.record("b", "again");
        note.record("zzz", "jit");
        let now = note.read();
        assert_eq!(now.instantiations.len(), 1);
        assert_eq!(now.instantiations[0].to_obj, "jit");
        assert_eq!(now.possible.len(), 1);
    }
}
