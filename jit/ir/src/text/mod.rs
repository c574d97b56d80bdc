//! The text form of the IR: a nom parser with line/column errors and a
//! printer whose output parses back to the same IR.

mod parse;
mod print;

pub use parse::{parse_library, parse_type, parse_type_args};
pub use print::{FunctionDisplay, literal_text, print_function, print_library};
