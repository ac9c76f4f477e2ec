//! Physical clocks: what a node's own clock reads, as opposed to the simulator's virtual time.
//!
//! Real clocks are neither synchronized nor steady. Each node's clock has an *offset* (skew:
//! how far it is from true time at the start) and a *drift* (how fast it runs, in parts per
//! million: +100 ppm gains 100 µs per second of true time). A node reads its clock with
//! `ctx.local_time()`; the simulator's virtual time stays the one true time. Physical
//! timestamps from different nodes therefore cannot be trusted to order events: a message
//! can arrive, by the receiver's clock, before it was sent by the sender's. The `clocks`
//! protocol shows this, and shows Lamport clocks fixing it.

use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A reading of a node's physical clock, in microseconds. It can be negative (a clock set
/// behind true time reads below zero at the start of the run). A newtype, so that a local
/// reading is never mistaken for the true [`SimTime`].
///
/// ```
/// use sim_core::LocalTime;
/// assert_eq!(LocalTime::from_micros(-1_500).to_string(), "-1.500ms");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalTime(i64);

impl LocalTime {
    /// The reading this many microseconds from the clock's zero.
    pub const fn from_micros(micros: i64) -> LocalTime {
        LocalTime(micros)
    }

    /// The reading in microseconds.
    pub const fn as_micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let micros = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:03}ms", micros / 1_000, micros % 1_000)
    }
}

/// A node's physical clock: it reads `offset + t * (1 + drift_ppm / 10^6)` at true time `t`.
///
/// ```
/// use sim_core::{PhysicalClock, SimTime};
/// let clock = PhysicalClock { offset_micros: -2_000, drift_ppm: 1_000 };
/// // One second of true time: 2 ms behind at the start, 1 ms gained since.
/// assert_eq!(clock.read(SimTime::from_millis(1_000)).as_micros(), 999_000);
/// assert_eq!(PhysicalClock::PERFECT.read(SimTime::from_millis(5)).as_micros(), 5_000);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhysicalClock {
    /// Where the clock stands at true time zero, in microseconds (negative: behind).
    pub offset_micros: i64,
    /// How fast the clock runs relative to true time, in parts per million; above
    /// -1,000,000 so that the clock moves forwards.
    pub drift_ppm: i64,
}

impl PhysicalClock {
    /// A clock that always reads true time.
    pub const PERFECT: PhysicalClock = PhysicalClock { offset_micros: 0, drift_ppm: 0 };

    /// What the clock reads at true time `now`. Never decreases as `now` grows.
    pub fn read(self, now: SimTime) -> LocalTime {
        assert!(self.drift_ppm > -1_000_000, "a drift of {} ppm stops the clock", self.drift_ppm);
        // In 64 bits whenever nothing overflows (any realistic run), which gives the same
        // reading: 128-bit division is a slow library call, and the causal record reads a
        // clock at every event.
        let narrow = i64::try_from(now.as_micros()).ok().and_then(|t| {
            let drift = t.checked_mul(self.drift_ppm)? / 1_000_000;
            t.checked_add(drift)?.checked_add(self.offset_micros)
        });
        narrow.map_or_else(|| self.read_wide(now), LocalTime)
    }

    /// The reading in 128 bits, saturating at the ends of `LocalTime`. Even 128 bits
    /// overflow for the most extreme inputs (u64::MAX µs at a drift of i64::MAX ppm), so
    /// every step saturates: a clock at the end of its range stays there.
    fn read_wide(self, now: SimTime) -> LocalTime {
        let t = i128::from(now.as_micros());
        let drift = t.saturating_mul(i128::from(self.drift_ppm)) / 1_000_000;
        let reading = t.saturating_add(drift).saturating_add(i128::from(self.offset_micros));
        LocalTime(reading.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_clock_still_moves_forwards() {
        let clock = PhysicalClock { offset_micros: 0, drift_ppm: -999_999 };
        let a = clock.read(SimTime::from_millis(1_000));
        let b = clock.read(SimTime::from_millis(2_000));
        assert!(a < b);
    }

    #[test]
    fn the_64_bit_reading_is_the_128_bit_one() {
        use crate::rng::{SimRng, Stream};
        let mut rng = SimRng::new(7, Stream::Workload);
        for _ in 0..10_000 {
            // Times and offsets of every magnitude, up to the ends where 64 bits overflow.
            let now = SimTime::from_micros(rng.below(u64::MAX) >> rng.below(64));
            let drift_ppm = rng.between(0, 1_999_998) as i64 - 999_999;
            let offset_micros =
                (rng.below(u64::MAX) >> rng.below(64)) as i64 * if rng.chance(0.5) { 1 } else { -1 };
            let clock = PhysicalClock { offset_micros, drift_ppm };
            assert_eq!(clock.read(now), clock.read_wide(now), "{clock:?} at {now}");
        }
    }

    #[test]
    fn extreme_clocks_saturate_instead_of_overflowing() {
        let ends = [SimTime::ZERO, SimTime::from_micros(1), SimTime::from_micros(u64::MAX)];
        for drift_ppm in [-999_999, 0, 1, 1_000_000, i64::MAX] {
            for offset_micros in [i64::MIN, -1, 0, 1, i64::MAX] {
                let clock = PhysicalClock { offset_micros, drift_ppm };
                let readings: Vec<LocalTime> = ends.iter().map(|&t| clock.read(t)).collect();
                assert!(readings.windows(2).all(|w| w[0] <= w[1]), "{clock:?}: {readings:?}");
            }
        }
        let fast = PhysicalClock { offset_micros: i64::MAX, drift_ppm: i64::MAX };
        assert_eq!(fast.read(SimTime::MAX), LocalTime::from_micros(i64::MAX));
    }

    #[test]
    #[should_panic(expected = "stops the clock")]
    fn a_clock_that_runs_backwards_is_a_broken_assumption() {
        PhysicalClock { offset_micros: 0, drift_ppm: i64::MIN }.read(SimTime::from_millis(1));
    }
}
