//! The in-memory model of the template IR.

mod function;
mod library;
mod types;

pub use function::{
    BinOp, Block, BlockCall, BlockId, Callee, CmpOp, Function, Inst, Literal, Op, Reg,
    TemplateName, Terminator, UnOp,
};
pub(crate) use library::ItemName;
pub use library::{Declaration, Item, Library, Linkage, MemoryDecl, StructDef, TableDecl};
pub(crate) use types::room_for;
pub use types::{
    Constraint, IntType, Signature, SignatureDisplay, StructType, Type, TypeDisplay, TypeParam,
};
