//! Relocation arithmetic of BRIEF §3, free of memory: what each type stores
//! and whether it fits.

use smf::RelocType;

/// The bytes a relocation writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patch {
    /// Nothing (type `none`).
    Nothing,
    /// A 64-bit little-endian value (`abs64`).
    U64(u64),
    /// A 32-bit little-endian displacement (`pc32`, `plt32`, `gotpcrel`).
    I32(i32),
}

impl Patch {
    /// Writes the patch into `field`, which holds at least its width
    /// (validation proved `offset + width` lies inside the section).
    pub(crate) fn write(self, field: &mut [u8]) -> bool {
        let bytes: &[u8] = match self {
            Self::Nothing => return true,
            Self::U64(v) => &v.to_le_bytes(),
            Self::I32(v) => &v.to_le_bytes(),
        };
        match field.get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

/// The value a relocation stores, or the out-of-range value as `Err`.
///
/// `target` is `S` for `abs64`, `pc32` and `plt32` (for `plt32`, the stub's
/// address when the call goes through one) and `G`, the address of the slot
/// holding `S`, for `gotpcrel`; `place` is `P`, the address of the field.
/// Arithmetic is done in 128 bits so nothing wraps before the range check.
pub(crate) fn compute(
    kind: RelocType,
    target: u64,
    addend: i64,
    place: u64,
) -> Result<Patch, i128> {
    let sum = i128::from(target) + i128::from(addend);
    match kind {
        RelocType::None => Ok(Patch::Nothing),
        RelocType::Abs64 => u64::try_from(sum).map(Patch::U64).map_err(|_| sum),
        RelocType::Pc32 | RelocType::Plt32 | RelocType::GotPcRel => {
            let value = sum - i128::from(place);
            i32::try_from(value).map(Patch::I32).map_err(|_| value)
        }
    }
}

/// Whether a `pc32`-style displacement from `place` with `addend` reaches
/// `target`.
pub(crate) fn reaches(target: u64, addend: i64, place: u64) -> bool {
    compute(RelocType::Pc32, target, addend, place).is_ok()
}

/// A stub that jumps to `target` from anywhere: `jmp [rip+0]` followed by
/// the absolute address.
pub(crate) fn stub(target: u64) -> [u8; crate::limits::STUB_SIZE] {
    let mut stub = [0u8; crate::limits::STUB_SIZE];
    stub[..6].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]);
    stub[6..].copy_from_slice(&target.to_le_bytes());
    stub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs64_stores_target_plus_addend() {
        assert_eq!(
            compute(RelocType::Abs64, 0x1000, 8, 0),
            Ok(Patch::U64(0x1008))
        );
        assert_eq!(
            compute(RelocType::Abs64, 0x1000, -0x1000, 0),
            Ok(Patch::U64(0))
        );
    }

    #[test]
    fn abs64_rejects_results_outside_u64() {
        assert_eq!(compute(RelocType::Abs64, 0x1000, -0x1001, 0), Err(-1));
        assert_eq!(
            compute(RelocType::Abs64, u64::MAX, 1, 0),
            Err(i128::from(u64::MAX) + 1)
        );
        assert_eq!(
            compute(RelocType::Abs64, u64::MAX, 0, 0),
            Ok(Patch::U64(u64::MAX))
        );
    }

    #[test]
    fn pc_relative_types_store_target_plus_addend_minus_place() {
        for kind in [RelocType::Pc32, RelocType::Plt32, RelocType::GotPcRel] {
            assert_eq!(compute(kind, 0x2000, -4, 0x1000), Ok(Patch::I32(0xFFC)));
            assert_eq!(compute(kind, 0x1000, -4, 0x2000), Ok(Patch::I32(-0x1004)));
        }
    }

    #[test]
    fn pc32_range_ends_exactly_at_i32_bounds() {
        let place = 1u64 << 40;
        let max = place + i32::MAX as u64;
        assert_eq!(
            compute(RelocType::Pc32, max, 0, place),
            Ok(Patch::I32(i32::MAX))
        );
        assert_eq!(
            compute(RelocType::Pc32, max + 1, 0, place),
            Err(i128::from(i32::MAX) + 1)
        );
        let min = place - (1u64 << 31);
        assert_eq!(
            compute(RelocType::Pc32, min, 0, place),
            Ok(Patch::I32(i32::MIN))
        );
        assert_eq!(
            compute(RelocType::Pc32, min - 1, 0, place),
            Err(i128::from(i32::MIN) - 1)
        );
        assert!(reaches(max, 0, place));
        assert!(!reaches(max, 1, place));
    }

    #[test]
    fn patch_writes_little_endian_and_refuses_short_fields() {
        let mut field = [0u8; 8];
        assert!(Patch::I32(-2).write(&mut field));
        assert_eq!(field, [0xFE, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
        assert!(Patch::U64(0x0102_0304_0506_0708).write(&mut field));
        assert_eq!(field, [8, 7, 6, 5, 4, 3, 2, 1]);
        assert!(!Patch::U64(1).write(&mut field[..7]));
        assert!(Patch::Nothing.write(&mut []));
    }

    #[test]
    fn stub_is_an_indirect_jump_through_its_own_tail() {
        let stub = stub(0x1122_3344_5566_7788);
        assert_eq!(&stub[..6], &[0xFF, 0x25, 0, 0, 0, 0]);
        assert_eq!(&stub[6..], &0x1122_3344_5566_7788u64.to_le_bytes());
    }
}
