//! Running modules in process with the `wasmi` interpreter: the host side
//! of the contract (`doc/formats/wasm-abi.md`).
//!
//! A [`Runner`] creates what the module imports — a memory, a table whose
//! slots below `__table_base` stay null (so a null function pointer traps),
//! the two base globals — and the natives the collections library uses
//! (`malloc`, `realloc`, `free`, `memcpy`) over the module's own memory,
//! with a small allocator: bump allocation from `__memory_base`, sizes
//! kept on the host, `free` giving back the most recent block and
//! `realloc` growing it in place. Calls
//! take and return the interpreter's [`Value`]s; traps the IR defines come
//! back as [`Error::Trap`].
//!
//! Shared memories and tables are [`Definition`]s the runner makes before
//! it instantiates the module: each gets its descriptor and its whole
//! maximum, zeroed, from the heap, and satisfies the module's
//! `__memory.NAME`/`__table.NAME` import; [`Runner::read_memory`],
//! [`Runner::table_entry`] and their writing twins reach them from Rust.

use std::collections::HashMap;

use jit_ir::TrapKind;
use jit_ir::ir::{Signature, Type};
use jit_ir::value::Value;
use wasmi::{
    Caller, Engine, Global, Linker, Memory, MemoryType, Mutability, Nullable, Ref, RefType, Store,
    Table, TableType, TrapCode, Val,
};

use crate::abi::{self, IMPORT_MODULE, PAGE_SIZE, Space, TABLE_ENTRY_SIZE, descriptor, val_type};
use crate::{Error, ImportKind, Module};

/// Where a [`Runner`] places things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The value of `__table_base`, at least 1: slot 0 of the table is the
    /// null function pointer.
    pub table_base: u32,
    /// The value of `__memory_base`, where the heap starts; the bytes below
    /// it stay unused, so no allocation is at address 0.
    pub memory_base: u32,
    /// Pages (64 KiB) of memory at the start; the heap grows the memory
    /// as it needs.
    pub initial_pages: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            table_base: 1,
            memory_base: 1024,
            initial_pages: 1,
        }
    }
}

/// Alignment of every heap block: enough for any IR type.
const HEAP_ALIGN: u32 = 16;

/// A shared memory or table a [`Runner`] defines for its module
/// (`doc/formats/wasm-abi.md` §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// Memory or table.
    pub space: Space,
    /// The name the module imports it by.
    pub name: String,
    /// Its size at the start: pages of a memory, entries of a table.
    pub initial: u32,
    /// The most it may grow to, in the same unit; the runner reserves
    /// that much up front, so the base never moves.
    pub maximum: u32,
}

impl Definition {
    /// A memory of `initial` pages (64 KiB) growing to `maximum` pages.
    pub fn memory(name: &str, initial: u32, maximum: u32) -> Definition {
        Definition {
            space: Space::Memory,
            name: name.to_owned(),
            initial,
            maximum,
        }
    }

    /// A table of `initial` null entries growing to `maximum` entries.
    pub fn table(name: &str, initial: u32, maximum: u32) -> Definition {
        Definition {
            space: Space::Table,
            name: name.to_owned(),
            initial,
            maximum,
        }
    }

    /// The descriptor's length and maximum (bytes of a memory, entries of
    /// a table) and the bytes to reserve; `None` when they do not fit 32
    /// bits or the initial size is above the maximum.
    fn extent(&self) -> Option<(u32, u32, u32)> {
        let (per_size, per_length) = match self.space {
            Space::Memory => (PAGE_SIZE, 1),
            Space::Table => (1, TABLE_ENTRY_SIZE),
        };
        let maximum = self.maximum.checked_mul(per_size)?;
        let reserved = maximum.checked_mul(per_length)?;
        let length = self.initial.checked_mul(per_size)?;
        (self.initial <= self.maximum).then_some((length, maximum, reserved))
    }
}

/// The descriptor of a shared memory or table as the module sees it
/// (the layout of [`abi::descriptor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Where the descriptor is in the module's memory: the value of its
    /// `__memory.NAME` or `__table.NAME` global.
    pub address: u32,
    /// Address of byte 0 or entry 0.
    pub base: u32,
    /// Bytes of a memory, entries of a table.
    pub length: u32,
    /// The most the length may become, in the same unit.
    pub maximum: u32,
    /// Grows so far.
    pub version: u32,
}

/// The host state: the memory the natives work on and the heap in it.
struct Host {
    memory: Option<Memory>,
    next: u32,
    sizes: HashMap<u32, u32>,
}

/// One instantiated module with its memory and table.
pub struct Runner {
    store: Store<Host>,
    instance: wasmi::Instance,
    memory: Memory,
    table: Table,
    exports: HashMap<String, Signature>,
    /// Function-pointer values handed out so far, by symbol.
    pointers: HashMap<String, u32>,
    /// The memories and tables defined: kind and descriptor address.
    shared: HashMap<String, (Space, u32)>,
    config: Config,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .field("exports", &self.exports.len())
            .finish()
    }
}

impl Runner {
    /// Instantiates `module` with the default [`Config`].
    ///
    /// # Errors
    ///
    /// As [`Runner::with_config`].
    pub fn new(module: &Module) -> Result<Runner, Error> {
        Runner::with_config(module, Config::default())
    }

    /// Instantiates `module`: creates its memory, table and globals, links
    /// the natives it imports and runs its element segment.
    ///
    /// # Errors
    ///
    /// [`Error::Unresolved`] for an import the runner does not provide (a
    /// foreign symbol, an unknown native, a shared memory or table),
    /// [`Error::Engine`] when the engine refuses the module or its
    /// imports.
    pub fn with_config(module: &Module, config: Config) -> Result<Runner, Error> {
        Runner::with_definitions(module, config, &[])
    }

    /// Instantiates `module` as [`with_config`](Runner::with_config) does,
    /// after defining the shared memories and tables of `definitions` in
    /// its memory: for each, a descriptor and the whole maximum, zeroed,
    /// provided to the module as `__memory.NAME` or `__table.NAME`.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for a name defined twice, an initial size
    /// above the maximum, or a maximum the 32-bit memory cannot hold;
    /// otherwise as [`with_config`](Runner::with_config).
    pub fn with_definitions(
        module: &Module,
        config: Config,
        definitions: &[Definition],
    ) -> Result<Runner, Error> {
        let engine = Engine::default();
        let compiled =
            wasmi::Module::new(&engine, module.bytes()).map_err(|e| engine_err("module", e))?;
        let mut store = Store::new(
            &engine,
            Host {
                memory: None,
                next: config.memory_base,
                sizes: HashMap::new(),
            },
        );
        let memory = Memory::new(&mut store, MemoryType::new(config.initial_pages, None))
            .map_err(|e| engine_err("memory", e))?;
        store.data_mut().memory = Some(memory);
        let slots = u32::try_from(module.table().len())
            .ok()
            .and_then(|n| n.checked_add(config.table_base.max(1)))
            .ok_or_else(|| Error::Arguments("the table does not fit 2^32 slots".into()))?;
        let table = Table::new(
            &mut store,
            TableType::new(RefType::Func, slots, None),
            Ref::Func(Nullable::Null),
        )
        .map_err(|e| engine_err("table", e))?;
        let mut linker = Linker::<Host>::new(&engine);
        let global = |store: &mut Store<Host>, v: u32| {
            Global::new(store, Val::I32(v as i32), Mutability::Const)
        };
        let memory_base = global(&mut store, config.memory_base);
        let table_base = global(&mut store, config.table_base.max(1));
        linker
            .define(IMPORT_MODULE, abi::MEMORY, memory)
            .and_then(|l| l.define(IMPORT_MODULE, abi::TABLE, table))
            .and_then(|l| l.define(IMPORT_MODULE, abi::MEMORY_BASE, memory_base))
            .and_then(|l| l.define(IMPORT_MODULE, abi::TABLE_BASE, table_base))
            .map_err(|e| engine_err("imports", e))?;
        let mut shared = HashMap::with_capacity(definitions.len());
        for d in definitions {
            if shared.contains_key(&d.name) {
                return Err(Error::Arguments(format!("`{}` is defined twice", d.name)));
            }
            let address = define(&mut store, d)?;
            let name = d.space.import_name(&d.name);
            let address_global = global(&mut store, address);
            linker
                .define(IMPORT_MODULE, &name, address_global)
                .map_err(|e| engine_err(&name, e))?;
            shared.insert(d.name.clone(), (d.space, address));
        }
        for import in module.shared() {
            if shared
                .get(&import.name)
                .is_none_or(|(space, _)| *space != import.space)
            {
                return Err(Error::Unresolved(import.space.import_name(&import.name)));
            }
        }
        for import in module.imports() {
            if import.kind != ImportKind::Native {
                return Err(Error::Unresolved(import.name.clone()));
            }
            natives(&mut linker, &import.name)?;
        }
        let instance = linker
            .instantiate_and_start(&mut store, &compiled)
            .map_err(|e| engine_err("instantiation", e))?;
        let table_base = config.table_base.max(1);
        Ok(Runner {
            store,
            instance,
            memory,
            table,
            pointers: (table_base..)
                .zip(module.table())
                .map(|(slot, name)| (name.clone(), slot))
                .collect(),
            exports: module
                .exports()
                .iter()
                .map(|e| (e.symbol.clone(), e.sig.clone()))
                .collect(),
            shared,
            config: Config {
                table_base,
                ..config
            },
        })
    }

    /// The configuration in effect (`table_base` at least 1).
    pub fn config(&self) -> Config {
        self.config
    }

    /// Calls the export `symbol` with `args`.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for an unknown symbol or arguments that do not
    /// fit its signature, [`Error::Trap`] for a trap the IR defines
    /// (division by zero, `trap N`, a null function pointer), and
    /// [`Error::Engine`] for any other trap (an access outside the memory,
    /// a function pointer of the wrong signature).
    pub fn call(&mut self, symbol: &str, args: &[Value]) -> Result<Option<Value>, Error> {
        let sig = self
            .exports
            .get(symbol)
            .ok_or_else(|| Error::Arguments(format!("no export `{symbol}`")))?;
        if sig.params.len() != args.len() || !args.iter().zip(&sig.params).all(|(a, t)| a.fits(t)) {
            return Err(Error::Arguments(format!(
                "{symbol} takes {}, given {args:?}",
                Type::Fn(Box::new(sig.clone()))
            )));
        }
        let ret = sig.ret.clone();
        let inputs: Vec<Val> = args
            .iter()
            .zip(&sig.params)
            .map(|(a, t)| to_val(t, *a))
            .collect();
        let mut outputs: Vec<Val> = ret
            .iter()
            .map(|t| Val::default_for_ty(wasmi_type(t)))
            .collect();
        let func = self
            .instance
            .get_func(&self.store, symbol)
            .ok_or_else(|| Error::Arguments(format!("no export `{symbol}`")))?;
        if let Err(e) = func.call(&mut self.store, &inputs, &mut outputs) {
            return Err(self.trap(e));
        }
        Ok(ret.zip(outputs.first()).map(|(t, v)| from_val(&t, v)))
    }

    /// The IR trap an engine error stands for, if any.
    fn trap(&self, e: wasmi::Error) -> Error {
        let kind = match e.as_trap_code() {
            Some(TrapCode::IntegerDivisionByZero) => TrapKind::DivideByZero,
            Some(TrapCode::IndirectCallToNull) => TrapKind::NullPointer,
            Some(TrapCode::UnreachableCodeReached) => {
                let global = |name| match self
                    .instance
                    .get_global(&self.store, name)
                    .map(|g| g.get(&self.store))
                {
                    Some(Val::I32(v)) => Some(v),
                    _ => None,
                };
                let kind = global(abi::TRAP_KIND)
                    .zip(global(abi::TRAP_CODE))
                    .and_then(|(kind, code)| abi::unreachable_trap(kind, code));
                match kind {
                    Some(kind) => kind,
                    None => return engine_err("call", e),
                }
            }
            _ => return engine_err("call", e),
        };
        Error::Trap(kind)
    }

    /// A function-pointer value for the export `symbol`: its slot when
    /// the module took its address, otherwise a slot the table grows by
    /// (as a host's `addFunction` does), the same one on every request.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for an unknown export, [`Error::Engine`] when
    /// the table cannot grow.
    pub fn function_pointer(&mut self, symbol: &str) -> Result<u32, Error> {
        if let Some(&slot) = self.pointers.get(symbol) {
            return Ok(slot);
        }
        let func = self
            .instance
            .get_func(&self.store, symbol)
            .ok_or_else(|| Error::Arguments(format!("no export `{symbol}`")))?;
        let slot = self
            .table
            .grow(&mut self.store, 1, Ref::Func(Nullable::Val(func)))
            .map_err(|e| engine_err("table", e))?;
        let slot = u32::try_from(slot)
            .map_err(|_| Error::Arguments("the table does not fit 2^32 slots".into()))?;
        self.pointers.insert(symbol.to_owned(), slot);
        Ok(slot)
    }

    /// Allocates `size` bytes on the module's heap (as its `malloc` does)
    /// and returns their address.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] when the memory cannot grow that far.
    pub fn alloc(&mut self, size: u32) -> Result<u32, Error> {
        match allocate(&mut self.store, size) {
            0 => Err(Error::Arguments(format!("cannot allocate {size} bytes"))),
            p => Ok(p),
        }
    }

    /// Gives back a block [`alloc`](Runner::alloc) or the module's
    /// `malloc` made, as the module's `free` does (0 and unknown addresses
    /// are ignored).
    pub fn free(&mut self, address: u32) {
        release(self.store.data_mut(), address);
    }

    /// The module's memory.
    pub fn memory(&self) -> &[u8] {
        self.memory.data(&self.store)
    }

    /// The module's memory, writable.
    pub fn memory_mut(&mut self) -> &mut [u8] {
        self.memory.data_mut(&mut self.store)
    }

    /// `len` bytes of memory at `address`.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] when the range is outside the memory.
    pub fn read(&self, address: u32, len: usize) -> Result<&[u8], Error> {
        let start = address as usize;
        start
            .checked_add(len)
            .and_then(|end| self.memory().get(start..end))
            .ok_or_else(|| outside(address, len))
    }

    /// Copies `bytes` into memory at `address`.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] when the range is outside the memory.
    pub fn write(&mut self, address: u32, bytes: &[u8]) -> Result<(), Error> {
        let start = address as usize;
        let len = bytes.len();
        start
            .checked_add(len)
            .and_then(|end| self.memory_mut().get_mut(start..end))
            .ok_or_else(|| outside(address, len))?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// The descriptor of the shared memory or table `name`, as it is now.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] when the runner defines nothing of that name.
    pub fn descriptor(&self, name: &str) -> Result<Descriptor, Error> {
        let &(_, address) = self
            .shared
            .get(name)
            .ok_or_else(|| Error::Arguments(format!("no shared memory or table `{name}`")))?;
        let bytes = self.read(address, descriptor::SIZE as usize)?;
        let field = |offset: u32| {
            let at = offset as usize;
            bytes
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_le_bytes)
        };
        Ok(Descriptor {
            address,
            base: field(descriptor::BASE),
            length: field(descriptor::LENGTH),
            maximum: field(descriptor::MAXIMUM),
            version: field(descriptor::VERSION),
        })
    }

    /// The address of units `start..start + count` of the memory or table
    /// `name` and their size in bytes, when they lie below its length.
    fn shared_range(
        &self,
        space: Space,
        name: &str,
        start: u64,
        count: u64,
    ) -> Result<(u32, usize), Error> {
        let d = self.descriptor(name)?;
        if self.shared.get(name).map(|(s, _)| *s) != Some(space) {
            return Err(Error::Arguments(format!("`{name}` is not a {space}")));
        }
        let (unit, length) = match space {
            Space::Memory => (1, u64::from(d.length)),
            Space::Table => (u64::from(TABLE_ENTRY_SIZE), u64::from(d.length)),
        };
        start
            .checked_add(count)
            .filter(|&end| end <= length)
            .and_then(|_| {
                let offset = u32::try_from(start.checked_mul(unit)?).ok()?;
                let len = usize::try_from(count.checked_mul(unit)?).ok()?;
                Some((d.base.checked_add(offset)?, len))
            })
            .ok_or_else(|| {
                Error::Arguments(format!(
                    "{count} units at {start} are past the length {length} of `{name}`"
                ))
            })
    }

    /// `len` bytes at byte `offset` of the shared memory `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for an unknown memory or a range past its
    /// length.
    pub fn read_memory(&self, name: &str, offset: u64, len: usize) -> Result<&[u8], Error> {
        let (address, len) = self.shared_range(Space::Memory, name, offset, len as u64)?;
        self.read(address, len)
    }

    /// Copies `bytes` to byte `offset` of the shared memory `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for an unknown memory or a range past its
    /// length (nothing is written then).
    pub fn write_memory(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let (address, _) = self.shared_range(Space::Memory, name, offset, bytes.len() as u64)?;
        self.write(address, bytes)
    }

    /// Entry `index` of the shared table `name`: a function-pointer value
    /// (a slot of the module's table), 0 for null.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for an unknown table or an index past its
    /// length.
    pub fn table_entry(&self, name: &str, index: u64) -> Result<u32, Error> {
        let (address, len) = self.shared_range(Space::Table, name, index, 1)?;
        let bytes = self.read(address, len)?;
        <[u8; 4]>::try_from(bytes)
            .map(u32::from_le_bytes)
            .map_err(|_| outside(address, len))
    }

    /// Sets entry `index` of the shared table `name` to `value`, a
    /// function-pointer value ([`function_pointer`](Runner::function_pointer))
    /// or 0 for null.
    ///
    /// # Errors
    ///
    /// [`Error::Arguments`] for an unknown table or an index past its
    /// length (nothing is written then).
    pub fn set_table_entry(&mut self, name: &str, index: u64, value: u32) -> Result<(), Error> {
        let (address, _) = self.shared_range(Space::Table, name, index, 1)?;
        self.write(address, &value.to_le_bytes())
    }
}

/// Places the descriptor of `d` and its zeroed reservation on the heap
/// and returns the descriptor's address. The blocks are not the module's:
/// its `free` cannot give them back.
fn define(store: &mut Store<Host>, d: &Definition) -> Result<u32, Error> {
    let (length, maximum, reserved) = d.extent().ok_or_else(|| {
        Error::Arguments(format!(
            "`{}`: {} growing to {} does not fit the memory",
            d.name, d.initial, d.maximum
        ))
    })?;
    let mut reserve = |size: u32| match allocate(store, size) {
        0 => Err(Error::Arguments(format!(
            "`{}`: cannot reserve {size} bytes",
            d.name
        ))),
        p => {
            store.data_mut().sizes.remove(&p);
            Ok(p)
        }
    };
    let address = reserve(descriptor::SIZE)?;
    let base = reserve(reserved)?;
    let memory = store.data().memory.ok_or_else(|| outside(base, 0))?;
    let data = memory.data_mut(&mut *store);
    let region = (base as usize)..(base as usize + reserved as usize);
    data.get_mut(region)
        .ok_or_else(|| outside(base, reserved as usize))?
        .fill(0);
    let mut fields = [0u8; descriptor::SIZE as usize];
    for (offset, value) in [
        (descriptor::BASE, base),
        (descriptor::LENGTH, length),
        (descriptor::MAXIMUM, maximum),
        (descriptor::VERSION, 0),
    ] {
        let at = offset as usize;
        fields[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }
    let at = address as usize;
    data.get_mut(at..at + fields.len())
        .ok_or_else(|| outside(address, fields.len()))?
        .copy_from_slice(&fields);
    Ok(address)
}

#[cold]
fn outside(address: u32, len: usize) -> Error {
    Error::Arguments(format!(
        "{len} bytes at {address:#x} are outside the memory"
    ))
}

#[cold]
fn engine_err(what: &str, source: impl Into<wasmi::Error>) -> Error {
    Error::Engine {
        what: what.to_owned(),
        source: Box::new(source.into()),
    }
}

fn wasmi_type(ty: &Type) -> wasmi::ValType {
    match val_type(ty) {
        wasm_encoder::ValType::I64 => wasmi::ValType::I64,
        wasm_encoder::ValType::F32 => wasmi::ValType::F32,
        wasm_encoder::ValType::F64 => wasmi::ValType::F64,
        _ => wasmi::ValType::I32,
    }
}

/// A value in its WebAssembly representation: the low 32 bits of the
/// canonical slot for `i32` types.
fn to_val(ty: &Type, v: Value) -> Val {
    let bits = v.to_bits();
    match wasmi_type(ty) {
        wasmi::ValType::I64 => Val::I64(bits as i64),
        wasmi::ValType::F32 => Val::F32(wasmi::F32::from_bits(bits as u32)),
        wasmi::ValType::F64 => Val::F64(wasmi::F64::from_bits(bits)),
        _ => Val::I32(bits as u32 as i32),
    }
}

/// The value of type `ty` a WebAssembly result stands for: pointers are
/// zero-extended offsets, narrow integers keep their low bits.
fn from_val(ty: &Type, v: &Val) -> Value {
    let bits = match v {
        Val::I32(x) => u64::from(*x as u32),
        Val::I64(x) => *x as u64,
        Val::F32(x) => u64::from(x.to_bits()),
        Val::F64(x) => x.to_bits(),
        _ => 0,
    };
    Value::from_bits(ty, bits)
}

/// Defines the native `name` in the linker.
fn natives(linker: &mut Linker<Host>, name: &str) -> Result<(), Error> {
    let defined = match name {
        "malloc" => linker.func_wrap(IMPORT_MODULE, name, |mut c: Caller<'_, Host>, n: i64| {
            u32::try_from(n).map_or(0, |n| allocate(&mut c, n)) as i32
        }),
        "realloc" => linker.func_wrap(
            IMPORT_MODULE,
            name,
            |mut c: Caller<'_, Host>, p: i32, n: i64| -> i32 {
                u32::try_from(n).map_or(0, |n| reallocate(&mut c, p as u32, n)) as i32
            },
        ),
        "free" => linker.func_wrap(IMPORT_MODULE, name, |mut c: Caller<'_, Host>, p: i32| {
            release(c.data_mut(), p as u32);
        }),
        "memcpy" => linker.func_wrap(
            IMPORT_MODULE,
            name,
            |mut c: Caller<'_, Host>, dst: i32, src: i32, n: i64| -> Result<i32, wasmi::Error> {
                copy(&mut c, dst as u32, src as u32, n)?;
                Ok(dst)
            },
        ),
        _ => return Err(Error::Unresolved(name.to_owned())),
    };
    defined.map(|_| ()).map_err(|e| engine_err(name, e))
}

/// The host state and memory of a store or a caller.
trait HostContext: wasmi::AsContextMut<Data = Host> {}
impl<C: wasmi::AsContextMut<Data = Host>> HostContext for C {}

/// Bump allocation; 0 when the memory cannot grow that far.
fn allocate(cx: &mut impl HostContext, size: u32) -> u32 {
    let Some(memory) = cx.as_context().data().memory else {
        return 0;
    };
    let start = cx.as_context().data().next.next_multiple_of(HEAP_ALIGN);
    let Some(end) = start.checked_add(size.max(1)) else {
        return 0;
    };
    let have = memory.size(cx.as_context()) * 65536;
    if u64::from(end) > have {
        let pages = (u64::from(end) - have).div_ceil(65536);
        if memory.grow(cx.as_context_mut(), pages).is_err() {
            return 0;
        }
    }
    let mut store = cx.as_context_mut();
    let host = store.data_mut();
    host.next = end;
    host.sizes.insert(start, size);
    start
}

fn reallocate(cx: &mut impl HostContext, p: u32, size: u32) -> u32 {
    if p == 0 {
        return allocate(cx, size);
    }
    let old = cx.as_context().data().sizes.get(&p).copied().unwrap_or(0);
    // The most recent block grows (or shrinks) in place, so a vector
    // growing by doubling leaves no trail of dead blocks behind it.
    if p.checked_add(old.max(1)) == Some(cx.as_context().data().next) {
        release(cx.as_context_mut().data_mut(), p);
        let q = allocate(cx, size);
        if q == 0 {
            // The memory could not grow: the old block stays as it was.
            let mut store = cx.as_context_mut();
            let host = store.data_mut();
            host.next = p + old.max(1);
            host.sizes.insert(p, old);
        }
        return q;
    }
    let q = allocate(cx, size);
    if q != 0 {
        if copy(cx, q, p, i64::from(old.min(size))).is_err() {
            return 0;
        }
        release(cx.as_context_mut().data_mut(), p);
    }
    q
}

/// Forgets a block; the most recent one gives its bytes back.
fn release(host: &mut Host, p: u32) {
    if let Some(size) = host.sizes.remove(&p)
        && p.checked_add(size.max(1)) == Some(host.next)
    {
        host.next = p;
    }
}

fn copy(cx: &mut impl HostContext, dst: u32, src: u32, n: i64) -> Result<(), wasmi::Error> {
    let memory = cx.as_context().data().memory;
    let fault = || wasmi::Error::from(TrapCode::MemoryOutOfBounds);
    let (Some(memory), Ok(n)) = (memory, usize::try_from(n)) else {
        return Err(fault());
    };
    let data = memory.data_mut(cx.as_context_mut());
    let (src, dst) = (src as usize, dst as usize);
    if src.checked_add(n).is_none_or(|e| e > data.len())
        || dst.checked_add(n).is_none_or(|e| e > data.len())
    {
        return Err(fault());
    }
    data.copy_within(src..src + n, dst);
    Ok(())
}
