//! The SMF v1.1 container: a validated zero-copy reader and a byte-exact writer.
#![forbid(unsafe_code)]
