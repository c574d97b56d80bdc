//! The template IR (text, binary, verifier, instantiation, interpreter) and the
//! x86-64 backend. Work on this crate has not started yet.
