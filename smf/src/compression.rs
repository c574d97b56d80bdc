//! The zstd codec of compressed sections: what the writer stores and what
//! the reader gives back.
//!
//! A compressed section's bytes in the file are zstd frames (the writer
//! writes one, recording the content size and a content checksum); its
//! `virtual_size` records the exact length they decompress to. The reader
//! decompresses into a buffer of exactly that length, allocated once, so a
//! stream that would produce more is cut off at the bound rather than
//! followed (`doc/formats/smf.md`, *Compressed sections*).

use std::ops::RangeInclusive;

use zstd::bulk::{Compressor, Decompressor};
use zstd::zstd_safe::CParameter;

/// The zstd levels a writer may ask for (`compression_level` in the header).
pub const ZSTD_LEVELS: RangeInclusive<u8> = 1..=22;

/// The level `smf-build --compress zstd` and [`crate::ModuleBuilder::compress`]
/// use when none is given: zstd's own default, fast enough for a section of
/// any size, and within a few per cent of level 19 on the fixture modules.
pub const ZSTD_DEFAULT_LEVEL: u8 = 3;

/// Why a compressed section's bytes could not become its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The frames declare more bytes than `virtual_size` records.
    Larger {
        /// The total the frames declare.
        declared: u64,
    },
    /// The frames hold fewer bytes than `virtual_size` records.
    Smaller {
        /// The bytes they decompressed to.
        produced: usize,
    },
    /// The bytes are not zstd frames, are damaged, or (when the frames do
    /// not declare their size) decompress to more than fits.
    Corrupt {
        /// zstd's description.
        reason: String,
    },
}

/// Decompresses `stream`, which must hold exactly `size` bytes once
/// decompressed. Nothing larger than `size` is ever allocated.
pub(crate) fn decompress(stream: &[u8], size: usize) -> Result<Vec<u8>, Failure> {
    // The exact total when every frame records its content size: a stream
    // that declares more is refused before anything is allocated.
    if let Some(declared) = Decompressor::upper_bound(stream)
        && declared > size
    {
        return Err(Failure::Larger {
            declared: declared as u64,
        });
    }
    let corrupt = |e: std::io::Error| Failure::Corrupt {
        reason: e.to_string(),
    };
    let mut contents = Vec::with_capacity(size);
    with_decompressor(|decompressor| decompressor.decompress_to_buffer(stream, &mut contents))
        .map_err(corrupt)?;
    if contents.len() != size {
        return Err(Failure::Smaller {
            produced: contents.len(),
        });
    }
    Ok(contents)
}

thread_local! {
    /// This thread's decompression context, made on first use and kept:
    /// making one (`ZSTD_createDCtx`, which sets up its tables) cost more
    /// than decompressing a typical section, and a module with a
    /// compressed note and template code needed two per validation. Each
    /// decompression starts from a reset context, so a failed one leaves
    /// nothing behind for the next.
    static DECOMPRESSOR: std::cell::RefCell<Option<Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's decompression context (a fresh one if the
/// kept one is in use further up this thread's stack, which the codec
/// never is, or cannot be made).
fn with_decompressor<T>(
    f: impl FnOnce(&mut Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut kept) => {
            let decompressor = match kept.as_mut() {
                Some(decompressor) => decompressor,
                None => kept.insert(Decompressor::new()?),
            };
            f(decompressor)
        }
        Err(_) => f(&mut Decompressor::new()?),
    })
}

/// Compresses `contents` into one zstd frame at `level`, recording the
/// content size and a checksum of the contents.
///
/// # Errors
/// zstd's own failure (it fails only when it cannot allocate its context).
pub(crate) fn compress(contents: &[u8], level: u8) -> std::io::Result<Vec<u8>> {
    let mut compressor = Compressor::new(i32::from(level))?;
    compressor.set_parameter(CParameter::ChecksumFlag(true))?;
    compressor.compress(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"sum$f64 sum$f32 sum$i64 sum$i32 sum$u8 sum$u16 sum$u32 sum$u64\n";

    #[test]
    fn round_trips_at_every_level() {
        for level in ZSTD_LEVELS {
            let stream = compress(TEXT, level).unwrap();
            assert_eq!(decompress(&stream, TEXT.len()).unwrap(), TEXT, "{level}");
        }
    }

    #[test]
    fn a_stream_declaring_more_than_the_size_is_refused_before_decoding() {
        let stream = compress(TEXT, 3).unwrap();
        assert_eq!(
            decompress(&stream, TEXT.len() - 1),
            Err(Failure::Larger {
                declared: TEXT.len() as u64
            })
        );
    }

    #[test]
    fn a_stream_holding_less_than_the_size_is_refused() {
        let stream = compress(TEXT, 3).unwrap();
        assert_eq!(
            decompress(&stream, TEXT.len() + 1),
            Err(Failure::Smaller {
                produced: TEXT.len()
            })
        );
    }

    #[test]
    fn the_kept_context_decompresses_correctly_after_a_failure() {
        let stream = compress(TEXT, 3).unwrap();
        let mut damaged = stream.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x55;
        for _ in 0..3 {
            assert!(decompress(&damaged, TEXT.len()).is_err());
            assert_eq!(decompress(&stream, TEXT.len()).unwrap(), TEXT);
        }
        // And on another thread, with a context of its own.
        let on_thread = std::thread::spawn(move || decompress(&stream, TEXT.len()).unwrap());
        assert_eq!(on_thread.join().unwrap(), TEXT);
    }

    #[test]
    fn damaged_and_foreign_bytes_are_corrupt() {
        let mut stream = compress(TEXT, 3).unwrap();
        let last = stream.len() - 1;
        stream[last] ^= 0xFF; // the checksum
        assert!(matches!(
            decompress(&stream, TEXT.len()),
            Err(Failure::Corrupt { .. })
        ));
        assert!(matches!(
            decompress(TEXT, TEXT.len()),
            Err(Failure::Corrupt { .. })
        ));
        assert!(matches!(
            decompress(&[], 1),
            Err(Failure::Corrupt { .. }) | Err(Failure::Smaller { produced: 0 })
        ));
    }
}
