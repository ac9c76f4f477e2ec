//! Virtual time and node identity.
//!
//! Virtual time is counted in whole microseconds from the start of a run. `SimTime` is a
//! point, `SimDuration` a span; they are newtypes so that a Lamport stamp or a count can
//! never be passed where a time belongs. Nothing here converts from the wall clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in virtual time, in microseconds since the start of the run.
///
/// ```
/// use sim_core::{SimDuration, SimTime};
/// let t = SimTime::ZERO + SimDuration::from_millis(3);
/// assert_eq!(t.as_micros(), 3_000);
/// assert_eq!(t.to_string(), "3.000ms");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(u64);

/// A span of virtual time, in microseconds.
///
/// ```
/// use sim_core::SimDuration;
/// assert_eq!(SimDuration::from_millis(2).as_micros(), 2_000);
/// assert_eq!(SimDuration::from_millis_f64(0.5).as_micros(), 500);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimDuration(u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The latest representable time; sums saturate at it.
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// The time this many microseconds after the start.
    pub const fn from_micros(micros: u64) -> SimTime {
        SimTime(micros)
    }

    /// The time this many milliseconds after the start (saturating).
    pub const fn from_millis(millis: u64) -> SimTime {
        SimTime(millis.saturating_mul(1_000))
    }

    /// Microseconds since the start.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Milliseconds since the start, fractional, for display.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// A span of this many microseconds.
    pub const fn from_micros(micros: u64) -> SimDuration {
        SimDuration(micros)
    }

    /// A span of this many milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> SimDuration {
        SimDuration(millis.saturating_mul(1_000))
    }

    /// Milliseconds, possibly fractional, rounded to the nearest microsecond.
    /// Negative or non-finite inputs give zero; callers validate user input first.
    pub fn from_millis_f64(millis: f64) -> SimDuration {
        if millis.is_finite() && millis > 0.0 {
            SimDuration((millis * 1_000.0).round() as u64)
        } else {
            SimDuration(0)
        }
    }

    /// The span in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The span in milliseconds, fractional, for display.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(rhs.0))
    }
}

impl Sub for SimTime {
    type Output = SimDuration;
    /// Panics if `rhs` is later than `self`: time never runs backwards.
    fn sub(self, rhs: SimTime) -> SimDuration {
        assert!(rhs.0 <= self.0, "time ran backwards: {rhs} > {self}");
        SimDuration(self.0 - rhs.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1_000, self.0 % 1_000)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1_000, self.0 % 1_000)
    }
}

/// The identity of a simulated node: its index in the simulation, from 0. Shown (also by
/// `{:?}`, so that traces of messages stay readable) as `n3`.
///
/// ```
/// use sim_core::NodeId;
/// assert_eq!(NodeId(3).to_string(), "n3");
/// assert_eq!(format!("{:?}", NodeId(3)), "n3");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The id as an index into per-node tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic_saturates_and_displays() {
        let t = SimTime::from_millis(1) + SimDuration::from_micros(234);
        assert_eq!(t.to_string(), "1.234ms");
        assert_eq!(SimTime::MAX + SimDuration::from_millis(1), SimTime::MAX);
        assert_eq!(t - SimTime::from_millis(1), SimDuration::from_micros(234));
        assert_eq!(SimDuration::from_millis_f64(-3.0), SimDuration::ZERO);
    }

    #[test]
    #[should_panic(expected = "time ran backwards")]
    fn subtracting_a_later_time_panics() {
        let _ = SimTime::ZERO - SimTime::from_millis(1);
    }
}
