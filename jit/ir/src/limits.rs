//! Every bound the crate enforces on untrusted text, bytes and programs.
//! They are generous for real template libraries and small enough that a
//! hostile input cannot exhaust memory or time.

/// Items (templates, structs, declarations) in one library.
pub const MAX_ITEMS: usize = 65_536;
/// Bytes in one name (template, struct, field, symbol, parameter).
pub const MAX_NAME_LEN: usize = 256;
/// Blocks in one function.
pub const MAX_BLOCKS: usize = 65_536;
/// Instructions in one function.
pub const MAX_INSTS: usize = 1 << 20;
/// Virtual registers in one function.
pub const MAX_REGS: usize = 1 << 20;
/// Parameters of one block, arguments of one call, parameters of one signature.
pub const MAX_OPERANDS: usize = 256;
/// Type parameters of one template and type arguments of one use.
pub const MAX_TYPE_PARAMS: usize = 16;
/// Fields of one struct.
pub const MAX_FIELDS: usize = 1024;
/// Nesting depth of one type (`ptr<ptr<Pair<…>>>` counts one per level).
pub const MAX_TYPE_DEPTH: usize = 32;
/// Chain length of instantiations reached from one root, and of structs
/// nested by value while computing a layout.
pub const MAX_INSTANTIATION_DEPTH: usize = 24;
/// Bytes of one struct layout (keeps every offset far from overflow).
pub const MAX_STRUCT_SIZE: u64 = 1 << 32;
/// Frames on the interpreter's call stack.
pub const MAX_CALL_DEPTH: usize = 10_000;
/// Register slots (8 bytes each) of all live interpreter frames together:
/// 128 MiB, however the depth and the frame sizes combine.
pub const MAX_STACK_SLOTS: usize = 1 << 24;
/// Bytes of text the parser accepts.
pub const MAX_TEXT_LEN: usize = 16 << 20;
/// Bytes in a page of a shared memory (sizes and `mem_grow` count pages).
pub const MEMORY_PAGE_SIZE: u64 = 65_536;
/// Most pages of one shared memory (4 GiB), and the reservation of a
/// memory declared without a maximum.
pub const MAX_MEMORY_PAGES: u64 = 65_536;
/// Most entries of one shared table.
pub const MAX_TABLE_ENTRIES: u64 = 1 << 20;
/// Most memories and tables one library declares, together.
pub const MAX_SHARED_ITEMS: usize = 256;
