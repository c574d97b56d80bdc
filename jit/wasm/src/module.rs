//! A set of instances to one module: the index spaces (types, imports,
//! functions, table slots, descriptor globals), then the sections in the
//! order the binary format requires.

use std::collections::HashMap;

use jit_ir::instantiate::Instance;
use jit_ir::ir::{Callee, Op, Signature};
use wasm_encoder::{
    CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind, ExportSection,
    FunctionSection, GlobalSection, GlobalType, ImportSection, MemoryType, RefType, TableType,
    TypeSection, ValType,
};

use crate::abi::{
    self, GLOBAL_FIRST_DESCRIPTOR, GLOBAL_TABLE_BASE, IMPORT_MODULE, Space, val_type,
};
use crate::{Error, lower};

/// Where an import comes from in the IR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// A native function the module imports (`native malloc`).
    Native,
    /// A concrete symbol outside the set (`@name`): another module's
    /// export or an instantiation compiled elsewhere.
    Symbol,
}

/// A function the module imports from `env`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// The import's field name: the native's name or the mangled symbol.
    pub name: String,
    /// Its signature, as the calls see it.
    pub sig: Signature,
    /// Native or foreign symbol.
    pub kind: ImportKind,
}

/// A shared memory or table the module imports the descriptor of, as the
/// immutable `i32` global `env.__memory.NAME` or `env.__table.NAME`
/// ([`Space::import_name`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedImport {
    /// Memory or table.
    pub space: Space,
    /// Its IR name.
    pub name: String,
}

/// A function the module exports: one per instance of the set.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// The mangled symbol, which is the export's name.
    pub symbol: String,
    /// Its signature.
    pub sig: Signature,
}

/// A validated WebAssembly module and what a host needs to link and call
/// it (see `doc/formats/wasm-abi.md`).
#[derive(Clone, Debug)]
pub struct Module {
    bytes: Vec<u8>,
    imports: Vec<Import>,
    shared: Vec<SharedImport>,
    exports: Vec<Export>,
    table: Vec<String>,
}

impl Module {
    /// The module's binary encoding.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The binary encoding, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The functions it imports from `env`, beside the memory, the table
    /// and the two globals every module imports.
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }

    /// The shared memories and tables whose descriptors it imports, in
    /// import order (the order of first use).
    pub fn shared(&self) -> &[SharedImport] {
        &self.shared
    }

    /// The instances it exports, in the order given.
    pub fn exports(&self) -> &[Export] {
        &self.exports
    }

    /// The export (or import) named `symbol`'s signature.
    pub fn signature(&self, symbol: &str) -> Option<&Signature> {
        self.exports
            .iter()
            .find(|e| e.symbol == symbol)
            .map(|e| &e.sig)
            .or_else(|| {
                self.imports
                    .iter()
                    .find(|i| i.name == symbol)
                    .map(|i| &i.sig)
            })
    }

    /// The functions whose address is taken, by table slot: the one at
    /// position `k` is at `__table_base + k`.
    pub fn table(&self) -> &[String] {
        &self.table
    }
}

/// A function type in WebAssembly terms.
type FuncType = (Vec<ValType>, Vec<ValType>);

fn func_type(sig: &Signature) -> FuncType {
    (
        sig.params.iter().map(val_type).collect(),
        sig.ret.iter().map(val_type).collect(),
    )
}

/// The module's index spaces, fixed before any body is lowered.
pub(crate) struct Plan<'a> {
    types: Vec<FuncType>,
    type_indices: HashMap<FuncType, u32>,
    imports: Vec<Import>,
    import_indices: HashMap<&'a str, u32>,
    /// Function index of each instance's symbol.
    members: HashMap<&'a str, u32>,
    /// Function index at each table slot.
    table: Vec<u32>,
    slots: HashMap<u32, u32>,
    shared: Vec<SharedImport>,
    /// Global index of each descriptor.
    descriptors: HashMap<(Space, &'a str), u32>,
    /// Global index of `__trap_code`, after the imported globals;
    /// `__trap_kind` follows it.
    trap_code: u32,
}

impl<'a> Plan<'a> {
    fn new(instances: &[&'a Instance]) -> Result<Plan<'a>, Error> {
        let mut plan = Plan {
            types: Vec::new(),
            type_indices: HashMap::new(),
            imports: Vec::new(),
            import_indices: HashMap::new(),
            members: HashMap::new(),
            table: Vec::new(),
            slots: HashMap::new(),
            shared: Vec::new(),
            descriptors: HashMap::new(),
            trap_code: 0,
        };
        let mut positions = HashMap::with_capacity(instances.len());
        for (k, inst) in instances.iter().enumerate() {
            if positions.insert(inst.symbol.as_str(), k).is_some()
                || [abi::TRAP_CODE, abi::TRAP_KIND].contains(&inst.symbol.as_str())
            {
                return Err(Error::DuplicateSymbol(inst.symbol.clone()));
            }
            plan.intern(&inst.function.sig)?;
        }
        // Imports first: they take the low function indices.
        for inst in instances {
            for op in ops(inst) {
                if let Some((space, name)) = Space::of(op) {
                    plan.descriptor_import(space, name)?;
                }
                let (callee, sig) = match op {
                    Op::Call { callee, sig, .. } | Op::FuncAddr { callee, sig } => (callee, sig),
                    Op::CallIndirect { sig, .. } | Op::CallTable { sig, .. } => {
                        plan.intern(sig)?;
                        continue;
                    }
                    _ => continue,
                };
                plan.intern(sig)?;
                let (name, kind) = match callee {
                    Callee::Symbol(s) if positions.contains_key(s.as_str()) => continue,
                    Callee::Symbol(s) => (s, ImportKind::Symbol),
                    Callee::Import(s) => (s, ImportKind::Native),
                    Callee::Template { name, .. } => {
                        return Err(Error::unsupported(
                            &inst.symbol,
                            format!("the callee `{name}` is a template, not an instance"),
                        ));
                    }
                };
                plan.import(name, sig, kind)?;
            }
        }
        plan.trap_code = count(plan.shared.len())
            .ok()
            .and_then(|n| n.checked_add(GLOBAL_FIRST_DESCRIPTOR))
            .filter(|k| k.checked_add(1).is_some())
            .ok_or_else(|| Error::unsupported("", "too many shared memories and tables"))?;
        let first = count(plan.imports.len())?;
        for (symbol, k) in positions {
            plan.members.insert(symbol, first + count(k)?);
        }
        for inst in instances {
            for op in ops(inst) {
                if let Op::FuncAddr { callee, .. } = op
                    && let Some(index) = plan.function_index(callee)
                    && !plan.slots.contains_key(&index)
                {
                    plan.slots.insert(index, count(plan.table.len())?);
                    plan.table.push(index);
                }
            }
        }
        Ok(plan)
    }

    fn intern(&mut self, sig: &Signature) -> Result<u32, Error> {
        let ty = func_type(sig);
        if let Some(&k) = self.type_indices.get(&ty) {
            return Ok(k);
        }
        let k = count(self.types.len())?;
        self.types.push(ty.clone());
        self.type_indices.insert(ty, k);
        Ok(k)
    }

    fn import(&mut self, name: &'a str, sig: &Signature, kind: ImportKind) -> Result<(), Error> {
        if [Space::Memory, Space::Table]
            .iter()
            .any(|s| name.starts_with(s.prefix()))
        {
            return Err(Error::unsupported(
                name,
                "the import name is reserved for the descriptors of shared memories and tables",
            ));
        }
        if let Some(&k) = self.import_indices.get(name) {
            let first = &self.imports[k as usize].sig;
            if first != sig {
                return Err(Error::ImportSignature {
                    name: name.to_owned(),
                    first: jit_ir::ir::Type::Fn(Box::new(first.clone())).to_string(),
                    second: jit_ir::ir::Type::Fn(Box::new(sig.clone())).to_string(),
                });
            }
            return Ok(());
        }
        self.import_indices.insert(name, count(self.imports.len())?);
        self.imports.push(Import {
            name: name.to_owned(),
            sig: sig.clone(),
            kind,
        });
        Ok(())
    }

    /// The function index calls to `callee` use.
    pub(crate) fn function_index(&self, callee: &Callee) -> Option<u32> {
        match callee {
            Callee::Symbol(s) => self
                .members
                .get(s.as_str())
                .or_else(|| self.import_indices.get(s.as_str()))
                .copied(),
            Callee::Import(s) => self.import_indices.get(s.as_str()).copied(),
            Callee::Template { .. } => None,
        }
    }

    /// The type index of a signature the plan has seen.
    pub(crate) fn type_index(&self, sig: &Signature) -> Option<u32> {
        self.type_indices.get(&func_type(sig)).copied()
    }

    /// The table slot of an address-taken function.
    pub(crate) fn table_slot(&self, function: u32) -> Option<u32> {
        self.slots.get(&function).copied()
    }

    fn descriptor_import(&mut self, space: Space, name: &'a str) -> Result<(), Error> {
        if !self.descriptors.contains_key(&(space, name)) {
            let index = count(self.shared.len())?
                .checked_add(GLOBAL_FIRST_DESCRIPTOR)
                .ok_or_else(|| Error::unsupported(name, "too many shared memories and tables"))?;
            self.descriptors.insert((space, name), index);
            self.shared.push(SharedImport {
                space,
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// The global index holding the address of the descriptor of the
    /// memory or table `name`.
    pub(crate) fn descriptor(&self, space: Space, name: &str) -> Option<u32> {
        self.descriptors.get(&(space, name)).copied()
    }

    /// Global index of the exported `__trap_code`, the first of the
    /// module's own globals.
    pub(crate) fn trap_code(&self) -> u32 {
        self.trap_code
    }

    /// Global index of the exported `__trap_kind`.
    pub(crate) fn trap_kind(&self) -> u32 {
        self.trap_code() + 1
    }
}

fn count(n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::unsupported("", "more than 2^32 items in one index space"))
}

fn ops<'i>(inst: &'i Instance) -> impl Iterator<Item = &'i Op> + 'i {
    inst.function
        .blocks
        .iter()
        .flat_map(|b| b.insts.iter().map(|i| &i.op))
}

/// Compiles `instances` into one module and validates it.
pub(crate) fn compile(instances: &[&Instance]) -> Result<Module, Error> {
    let plan = Plan::new(instances)?;
    let mut types = TypeSection::new();
    for (params, results) in &plan.types {
        types
            .ty()
            .function(params.iter().copied(), results.iter().copied());
    }
    let imports = import_section(&plan)?;
    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut exports = ExportSection::new();
    for inst in instances {
        let type_index = plan
            .type_index(&inst.function.sig)
            .ok_or_else(|| Error::unsupported(&inst.symbol, "signature without a type"))?;
        functions.function(type_index);
        code.function(&lower::function(inst, &plan)?);
        let index = plan.members[inst.symbol.as_str()];
        exports.export(&inst.symbol, ExportKind::Func, index);
    }
    let mut globals = GlobalSection::new();
    for (name, index) in [
        (abi::TRAP_CODE, plan.trap_code()),
        (abi::TRAP_KIND, plan.trap_kind()),
    ] {
        globals.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i32_const(0),
        );
        exports.export(name, ExportKind::Global, index);
    }
    let mut module = wasm_encoder::Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&globals)
        .section(&exports);
    if !plan.table.is_empty() {
        let mut elements = ElementSection::new();
        elements.active(
            None,
            &ConstExpr::global_get(GLOBAL_TABLE_BASE),
            Elements::Functions(plan.table.as_slice().into()),
        );
        module.section(&elements);
    }
    module.section(&code);
    let bytes = module.finish();
    crate::validate(&bytes)?;
    let names = |k: &u32| -> String {
        let k = *k as usize;
        match plan.imports.get(k) {
            Some(i) => i.name.clone(),
            None => instances[k - plan.imports.len()].symbol.clone(),
        }
    };
    Ok(Module {
        table: plan.table.iter().map(names).collect(),
        exports: instances
            .iter()
            .map(|i| Export {
                symbol: i.symbol.clone(),
                sig: i.function.sig.clone(),
            })
            .collect(),
        imports: plan.imports,
        shared: plan.shared,
        bytes,
    })
}

/// The memory, the table, the two base globals, the descriptor globals,
/// then the functions.
fn import_section(plan: &Plan<'_>) -> Result<ImportSection, Error> {
    let mut imports = ImportSection::new();
    imports.import(
        IMPORT_MODULE,
        abi::MEMORY,
        MemoryType {
            minimum: 0,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        },
    );
    imports.import(
        IMPORT_MODULE,
        abi::TABLE,
        TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: plan.table.len() as u64,
            maximum: None,
            shared: false,
        },
    );
    let descriptors = plan.shared.iter().map(|s| s.space.import_name(&s.name));
    for name in [abi::MEMORY_BASE.to_owned(), abi::TABLE_BASE.to_owned()]
        .into_iter()
        .chain(descriptors)
    {
        imports.import(
            IMPORT_MODULE,
            &name,
            GlobalType {
                val_type: ValType::I32,
                mutable: false,
                shared: false,
            },
        );
    }
    for import in &plan.imports {
        let ty = plan
            .type_index(&import.sig)
            .ok_or_else(|| Error::unsupported(&import.name, "signature without a type"))?;
        imports.import(IMPORT_MODULE, &import.name, EntityType::Function(ty));
    }
    Ok(imports)
}
