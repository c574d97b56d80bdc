//! Published code: read-execute memory owned by a shareable handle.

use std::sync::Arc;

use crate::batch::{Home, Reservation};
use crate::dual::DualRegion;
use crate::error::Error;
use crate::gdb_jit::Registration;
use crate::ledger::Ledger;
use crate::mapping::Executable;

/// Where one published function lies.
pub(crate) struct Function {
    pub(crate) home: Home,
    pub(crate) offset: usize,
    pub(crate) size: usize,
    pub(crate) instruction_len: usize,
}

/// A published function's bytes, seen from inside the crate.
pub(crate) struct FunctionBytes<'a> {
    bytes: &'a [u8],
    shared: bool,
}

impl<'a> FunctionBytes<'a> {
    pub(crate) fn address(&self) -> usize {
        self.bytes.as_ptr() as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the function lives in a dual-mapped region.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }
}

struct Published {
    /// The batch's object in GDB's JIT interface, if registered; withdrawn
    /// first when the code is freed.
    registration: Option<Registration>,
    ledger: Arc<Ledger>,
    batch: u64,
    /// Regions of the batch's own (mprotect strategy).
    mappings: Vec<Executable>,
    /// Dual-mapped regions the batch's functions lie in, shared with other
    /// batches; each stays mapped while any of them holds it.
    shared_regions: Vec<Arc<DualRegion>>,
    functions: Vec<Function>,
    code_bytes: usize,
    /// Values the code refers to by address; dropped after the mappings.
    _keep: Vec<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Published {
    /// The published bytes of `function`. Offsets were placed inside their
    /// region when reserved and the region was published whole, so the
    /// range is always in bounds.
    fn code_of(&self, function: &Function) -> &[u8] {
        let Function {
            home, offset, size, ..
        } = *function;
        match home {
            Home::Own(index) => &self.mappings[index].bytes()[offset..offset + size],
            // SAFETY: the range lies in the region (placed there by the
            // frontier) and is published: nothing writes it again, and the
            // `Arc` in `self` keeps the region mapped while the slice lives.
            Home::Shared(index) => unsafe { self.shared_regions[index].exec_slice(offset, size) },
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        // The debugger forgets the functions before their pages go.
        self.registration = None;
        self.ledger
            .code_released(self.functions.len(), self.code_bytes);
        // The mappings unmap themselves when the fields drop next.
    }
}

/// The code of one published batch: read-execute, never writable again.
///
/// Cloning is an `Arc` clone; the memory is unmapped when the last clone is
/// dropped, so whoever may still call into the code (a symbol table, a
/// module kept alive across a hot reload) holds a clone. Entry pointers are
/// valid exactly as long as some clone lives.
#[derive(Clone)]
pub struct PublishedCode {
    inner: Arc<Published>,
}

impl std::fmt::Debug for PublishedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedCode")
            .field("functions", &self.inner.functions.len())
            .field("code_bytes", &self.inner.code_bytes)
            .field("regions", &self.regions().collect::<Vec<_>>())
            .finish()
    }
}

impl PublishedCode {
    /// Takes ownership of a published batch and enters its code in the
    /// books.
    pub(crate) fn new(
        ledger: Arc<Ledger>,
        batch: u64,
        mappings: Vec<Executable>,
        shared_regions: Vec<Arc<DualRegion>>,
        functions: Vec<Function>,
        keep: Vec<Arc<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        let code_bytes = functions.iter().map(|function| function.size).sum();
        if !functions.is_empty() {
            ledger.code_published(functions.len(), code_bytes);
        }
        Self {
            inner: Arc::new(Published {
                registration: None,
                ledger,
                batch,
                mappings,
                shared_regions,
                functions,
                code_bytes,
                _keep: keep,
            }),
        }
    }

    /// Ties the batch's registration with GDB to this code, so it is
    /// withdrawn when the code is freed. Called by `publish` on the code
    /// it has just made, whose handle is not shared yet.
    pub(crate) fn set_registration(&mut self, registration: Registration) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.registration = Some(registration);
        }
    }

    /// Every function's bytes, in reservation order.
    pub(crate) fn functions(&self) -> impl Iterator<Item = FunctionBytes<'_>> {
        self.inner.functions.iter().map(|function| FunctionBytes {
            bytes: self.inner.code_of(function),
            shared: matches!(function.home, Home::Shared(_)),
        })
    }

    fn function(&self, reservation: &Reservation) -> Result<&Function, Error> {
        if reservation.batch() != self.inner.batch {
            return Err(reservation.foreign());
        }
        self.inner
            .functions
            .get(reservation.index())
            .ok_or_else(|| reservation.foreign())
    }

    /// The published bytes of a function (read-only: for disassembly or
    /// checks). Its address equals [`Reservation::address`].
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch.
    pub fn bytes(&self, reservation: &Reservation) -> Result<&[u8], Error> {
        let function = self.function(reservation)?;
        Ok(self.inner.code_of(function))
    }

    /// How many leading bytes of a function are instructions, as its
    /// batch recorded with [`CodeBatch::set_instruction_len`] (all of them
    /// otherwise); the rest is data such as a constant pool.
    ///
    /// [`CodeBatch::set_instruction_len`]: crate::CodeBatch::set_instruction_len
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch.
    pub fn instruction_len(&self, reservation: &Reservation) -> Result<usize, Error> {
        Ok(self.function(reservation)?.instruction_len)
    }

    /// Entry pointer of a function, valid while this handle (or a clone)
    /// lives. Calling it means transmuting it to the function type the code
    /// implements, which is the caller's `unsafe` contract.
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch.
    pub fn entry(&self, reservation: &Reservation) -> Result<*const u8, Error> {
        self.bytes(reservation).map(<[u8]>::as_ptr)
    }

    /// Number of functions published together.
    #[must_use]
    pub fn function_count(&self) -> usize {
        self.inner.functions.len()
    }

    /// Bytes of code (reservation sizes, without padding).
    #[must_use]
    pub fn code_bytes(&self) -> usize {
        self.inner.code_bytes
    }

    /// Read-execute address ranges this code lies in: whole pages, one
    /// range per region the batch used. Under
    /// [`Strategy::DualMapping`](crate::Strategy::DualMapping) and
    /// [`Strategy::FileWrite`](crate::Strategy::FileWrite) a range is a
    /// whole shared region, which other batches' code may share.
    pub fn regions(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let own = self
            .inner
            .mappings
            .iter()
            .map(|mapping| mapping.address()..mapping.address() + mapping.len());
        let shared = self
            .inner
            .shared_regions
            .iter()
            .map(|region| region.exec_address()..region.exec_address() + region.len());
        own.chain(shared)
    }

    /// Whether `address` lies in this code's read-execute pages.
    #[must_use]
    pub fn contains(&self, address: usize) -> bool {
        self.regions().any(|range| range.contains(&address))
    }

    /// The function of this batch whose bytes hold `address`, as the
    /// address range of its reservation; `None` for an address in padding,
    /// in another batch's code or outside. (Under dual mapping and file
    /// writes a region is shared, so [`contains`](Self::contains) alone cannot tell.)
    #[must_use]
    pub fn function_at(&self, address: usize) -> Option<std::ops::Range<usize>> {
        self.functions()
            .map(|function| function.address()..function.address() + function.len())
            .find(|range| range.contains(&address))
    }
}

/// One function published on its own by
/// [`ExecMemory::publish_function`](crate::ExecMemory::publish_function).
#[derive(Clone, Debug)]
pub struct PublishedFunction {
    code: PublishedCode,
    reservation: Reservation,
}

impl PublishedFunction {
    pub(crate) fn new(code: PublishedCode, reservation: Reservation) -> Self {
        Self { code, reservation }
    }

    /// Entry pointer, valid while this value (or a clone of it or of
    /// [`code`](Self::code)) lives.
    #[must_use]
    pub fn entry(&self) -> *const u8 {
        self.bytes().as_ptr()
    }

    /// The published bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        // Built from its own batch's reservation, so the index is valid.
        let inner = &self.code.inner;
        inner.code_of(&inner.functions[self.reservation.index()])
    }

    /// The function's reservation (its address and size).
    #[must_use]
    pub fn reservation(&self) -> Reservation {
        self.reservation
    }

    /// The owning handle, to share or keep alive.
    #[must_use]
    pub fn code(&self) -> &PublishedCode {
        &self.code
    }
}
