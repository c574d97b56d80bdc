//! A cheap clock for the instantiation time counter.
//!
//! Every miss times its instantiator; on a load that binds a thousand
//! instantiated imports that is two thousand readings. `Instant::now`
//! costs about 30 ns a reading in a virtual machine (the system's clock
//! through the vDSO), a twentieth of a tiered miss; the processor's
//! time-stamp counter costs a third of that. Intervals are summed in
//! ticks and converted to nanoseconds when the counter is read, at the
//! rate the counter ran since the clock was made, measured against
//! `Instant` then. The counter of every x86-64 processor of the last
//! fifteen years runs at a constant rate (Linux lists `constant_tsc`), so
//! the conversion is exact to the two readings' precision; on one that
//! does not, the statistic is off by the change of rate, nothing else.

use std::time::Instant;

/// The time-stamp counter now.
pub(crate) fn now() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; every x86-64 processor has
    // the instruction and it has no preconditions.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Converts tick counts to nanoseconds.
#[derive(Debug)]
pub(crate) struct TickClock {
    ticks: u64,
    start: Instant,
}

impl TickClock {
    pub(crate) fn new() -> Self {
        Self {
            ticks: now(),
            start: Instant::now(),
        }
    }

    /// `ticks` in nanoseconds, at the rate the counter ran since `new`.
    pub(crate) fn nanos(&self, ticks: u64) -> u64 {
        let elapsed = self.start.elapsed().as_nanos();
        let counted = u128::from(now().saturating_sub(self.ticks));
        if counted == 0 {
            return 0;
        }
        u64::try_from(u128::from(ticks) * elapsed / counted).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_the_time_that_passed() {
        let clock = TickClock::new();
        let (ticks, started) = (now(), Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (spent, elapsed) = (now() - ticks, started.elapsed());
        let nanos = clock.nanos(spent);
        let real = u64::try_from(elapsed.as_nanos()).unwrap();
        // The readings are taken a few instructions apart: within a tenth.
        assert!(
            nanos.abs_diff(real) < real / 10,
            "{nanos} ns from ticks, {real} ns measured"
        );
        assert_eq!(clock.nanos(0), 0);
    }
}
