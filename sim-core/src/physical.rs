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
    pub const fn from_micros(micros: i64) -> LocalTime {
        LocalTime(micros)
    }

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
        let t = i128::from(now.as_micros());
        let drifted = t + t * i128::from(self.drift_ppm) / 1_000_000;
        let reading = drifted + i128::from(self.offset_micros);
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
}
