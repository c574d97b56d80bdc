//! The crate's single error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reserving, writing or publishing code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused to map read-write memory.
    #[error("could not map {len} bytes of read-write memory: {source}")]
    Map {
        /// Bytes requested.
        len: usize,
        /// What the kernel reported.
        source: io::Error,
    },
    /// The operating system refused to make staged code read-execute. On
    /// Linux this is what SELinux without the `execmem` permission and PaX
    /// MPROTECT report (`EACCES` / `EPERM`).
    #[error(
        "could not make {len} bytes at {address:#x} read-execute \
         (a hardened kernel, e.g. SELinux without execmem or PaX MPROTECT, refuses this): {source}"
    )]
    Protect {
        /// First byte of the range.
        address: usize,
        /// Length of the range.
        len: usize,
        /// What the kernel reported.
        source: io::Error,
    },
    /// The kernel refused a read-execute view of a code file (dual mapping):
    /// SELinux denying execute on memory files, PaX, or
    /// `vm.memfd_noexec = 2`.
    #[error(
        "could not map a {len}-byte read-execute view of the code file \
         (a hardened kernel refuses executable memory files): {source}"
    )]
    ExecutableView {
        /// Bytes requested.
        len: usize,
        /// What the kernel reported.
        source: io::Error,
    },
    /// The kernel refused to write staged code into the code file (file
    /// writes).
    #[error("could not write {len} bytes of code at {address:#x} into the code file: {source}")]
    WriteCode {
        /// First byte of the range, where it runs.
        address: usize,
        /// Length of the range.
        len: usize,
        /// What the kernel reported.
        source: io::Error,
    },
    /// A reservation length was zero or above [`crate::limits::MAX_RESERVATION_LEN`].
    #[error("a reservation of {len} bytes is not possible: it must be between 1 and {max} bytes")]
    InvalidLength {
        /// Length asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An alignment was not a power of two or above [`crate::limits::MAX_ALIGNMENT`].
    #[error("alignment {align} is not a power of two between 1 and {max}")]
    InvalidAlignment {
        /// Alignment asked for.
        align: usize,
        /// The limit.
        max: usize,
    },
    /// A write or view reached outside its reservation.
    #[error(
        "writing {len} bytes at offset {offset} overruns the {reserved}-byte reservation at {address:#x}"
    )]
    OutOfBounds {
        /// Entry address of the reservation.
        address: usize,
        /// Offset of the write inside the reservation.
        offset: usize,
        /// Bytes written.
        len: usize,
        /// Size of the reservation.
        reserved: usize,
    },
    /// A reservation was used with a batch or published code it does not
    /// belong to.
    #[error("the reservation at {address:#x} (function {index}) belongs to another batch")]
    ForeignReservation {
        /// Entry address of the reservation.
        address: usize,
        /// Its index in its own batch.
        index: usize,
    },
    /// A function name exceeded [`crate::limits::MAX_NAME_LEN`].
    #[error("a function name of {len} bytes exceeds the limit of {max} bytes")]
    NameTooLong {
        /// Length of the name.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration value was outside its bounds.
    #[error("the region size {size} is not between one page ({page}) and {max} bytes")]
    InvalidRegionSize {
        /// Size asked for.
        size: usize,
        /// The page size.
        page: usize,
        /// The limit.
        max: usize,
    },
    /// The configured pool of spare pages is too large.
    #[error("a pool of {pages} spare pages was asked for, at most {max} are allowed")]
    InvalidPoolSize {
        /// Pages asked for.
        pages: usize,
        /// The limit, [`limits::MAX_POOL_PAGES`](crate::limits::MAX_POOL_PAGES).
        max: usize,
    },
    /// The perf map could not be opened.
    #[error("could not open the perf map {}: {source}", path.display())]
    PerfMap {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: io::Error,
    },
    /// The jitdump file could not be created, mapped or written.
    #[error("could not write the jitdump file {}: {source}", path.display())]
    Jitdump {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: io::Error,
    },
}
