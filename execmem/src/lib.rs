//! Write-xor-execute executable memory: code is written while read-write and
//! published read-execute in one way only. Work on this crate has not started yet.
