//! The loader: SMF cache, module loading, symbol resolution and the JIT-on-miss
//! instantiator service. Work on this crate has not started yet.
