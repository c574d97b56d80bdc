//! Byte searches for the readers, without run-time CPU detection.
//!
//! `memchr`'s top-level functions pick an AVX2 or an SSE2 routine by
//! asking the CPU the first time one runs. In a virtual machine every
//! CPUID instruction traps to the hypervisor, and that first question cost
//! a fresh process more than the rest of its first note parse. SSE2 is
//! part of x86-64, so its routines need no question; on other targets the
//! portable routines are used.

/// The first `needle` in `haystack`.
pub(crate) fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(finder) = memchr::arch::x86_64::sse2::memchr::One::new(needle) {
        return finder.find(haystack);
    }
    memchr::arch::all::memchr::One::new(needle).find(haystack)
}

/// The first of `a` or `b` in `haystack`.
pub(crate) fn find2(a: u8, b: u8, haystack: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(finder) = memchr::arch::x86_64::sse2::memchr::Two::new(a, b) {
        return finder.find(haystack);
    }
    memchr::arch::all::memchr::Two::new(a, b).find(haystack)
}

/// The first of `a`, `b` or `c` in `haystack`.
pub(crate) fn find3(a: u8, b: u8, c: u8, haystack: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(finder) = memchr::arch::x86_64::sse2::memchr::Three::new(a, b, c) {
        return finder.find(haystack);
    }
    memchr::arch::all::memchr::Three::new(a, b, c).find(haystack)
}

/// Every position of `needle` in `haystack`, in order.
pub(crate) fn find_all(needle: u8, haystack: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut from = 0usize;
    std::iter::from_fn(move || {
        let at = from.checked_add(find(needle, haystack.get(from..)?)?)?;
        from = at.checked_add(1)?;
        Some(at)
    })
}

/// The first occurrence of `needle` (not empty) in `haystack`: candidates
/// are found by its first byte.
pub(crate) fn find_str(needle: &[u8], haystack: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    find_all(first, haystack).find(|&at| haystack.get(at..).is_some_and(|h| h.starts_with(needle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_agree_with_a_plain_scan() {
        let text = b"ab#c\nd\\e\r\tf#\n## END_NOTE\n# END_NOTE\n".repeat(5);
        for needle in [b'#', b'\n', b'\\', b'x'] {
            let plain: Vec<usize> = (0..text.len()).filter(|&k| text[k] == needle).collect();
            assert_eq!(find_all(needle, &text).collect::<Vec<_>>(), plain);
            assert_eq!(find(needle, &text), plain.first().copied());
        }
        let first_of = |set: &[u8]| text.iter().position(|b| set.contains(b));
        assert_eq!(find2(b'\\', b'\r', &text), first_of(b"\\\r"));
        assert_eq!(find3(b'\r', b'\t', b'e', &text), first_of(b"\r\te"));
        let naive = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle);
        for needle in [&b"# END_NOTE"[..], b"END_NOTE\n# E", b"nowhere", b"\n"] {
            assert_eq!(find_str(needle, &text), naive(needle), "{needle:?}");
        }
        assert_eq!(find_str(b"# END_NOTE", &text), Some(14));
        assert_eq!(find(b'a', b""), None);
    }
}
