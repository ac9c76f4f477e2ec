//! Seeded randomness: one seed, independent streams, one choice point for the network.
//!
//! Every random draw of a run comes from the run's seed through ChaCha8 (`rand_chacha`).
//! The seed is split into independent streams: one for the network, one for the workload,
//! one per node. A change in how one part draws (a node drawing one more number, a new
//! fault kind) then does not reshuffle the others.
//!
//! All of the network's nondeterministic choices (delay, drop, duplicate, slow) go through
//! [`Decider`]. It is the single place a recorded decision log or an exhaustive explorer
//! would stand in for the random stream. Each decision always consumes the same number of
//! draws whatever its probability, so lowering a fault rate to zero (as shrinking does)
//! leaves every other decision of the run where it was.

use crate::time::{NodeId, SimDuration};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;

/// The independent random streams of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The network's decisions (through [`Decider`]).
    Network,
    /// The workload: what clients ask and when.
    Workload,
    /// A stream for a tool outside the run (dsim's swarm testing draws which faults a
    /// fuzzed run enables from `Tool(u64::MAX - 1)`). Its number is used as given: pick one
    /// far from 0, 1, the nodes' `2 + i` and the clocks' `u64::MAX`.
    Tool(u64),
    /// One node's own draws (`ctx` randomness).
    Node(NodeId),
    /// Drawing the nodes' physical clock offsets and drifts.
    Clocks,
}

impl Stream {
    /// The ChaCha stream number: network 0, workload 1, node `i` is `2 + i`; physical clocks
    /// take the last stream, far above any node; a tool's stream is its own number.
    pub fn number(self) -> u64 {
        match self {
            Stream::Network => 0,
            Stream::Workload => 1,
            Stream::Tool(number) => number,
            Stream::Node(id) => 2 + u64::from(id.0),
            Stream::Clocks => u64::MAX,
        }
    }
}

/// A deterministic random number generator for one stream of one run.
///
/// ```
/// use sim_core::{SimRng, Stream};
/// let mut a = SimRng::new(7, Stream::Workload);
/// let mut b = SimRng::new(7, Stream::Workload);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The generator for `stream` of the run with this seed.
    pub fn new(seed: u64, stream: Stream) -> SimRng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream.number());
        SimRng(rng)
    }

    /// How many words have been drawn: two generators of one stream at the same position
    /// draw the same from here on (explore's state hash reads it).
    pub fn position(&self) -> u128 {
        self.0.get_word_pos()
    }

    /// The next raw 64-bit draw.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (by widening multiply; `n` must be positive).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no valid answer");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `min..=max`.
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        assert!(min <= max, "between({min}, {max})");
        match (max - min).checked_add(1) {
            Some(span) => min + self.below(span),
            None => self.next_u64(),
        }
    }

    /// A float uniform in `[0, 1)`, from the top 53 bits of one draw.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (one draw, whatever `p` is).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Picks an index of a non-empty slice.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// A latency distribution for one message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "kebab-case")]
pub enum Latency {
    /// Always this delay.
    Constant(SimDuration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// The shortest delay.
        min: SimDuration,
        /// The longest delay.
        max: SimDuration,
    },
    /// Exponential with the given mean, clamped to `[min, max]`.
    Exponential {
        /// The mean delay before clamping.
        mean: SimDuration,
        /// The shortest delay.
        min: SimDuration,
        /// The longest delay.
        max: SimDuration,
    },
}

impl Latency {
    /// Uniform between `min` and `max` milliseconds, both included.
    ///
    /// ```
    /// use sim_core::{Latency, SimDuration};
    /// let latency = Latency::uniform_ms(1, 10);
    /// let (min, max) = (SimDuration::from_millis(1), SimDuration::from_millis(10));
    /// assert_eq!(latency, Latency::Uniform { min, max });
    /// ```
    pub fn uniform_ms(min: u64, max: u64) -> Latency {
        Latency::Uniform { min: SimDuration::from_millis(min), max: SimDuration::from_millis(max) }
    }

    #[inline]
    fn sample(&self, draw: u64) -> SimDuration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => {
                let span = max.as_micros() - min.as_micros() + 1;
                let offset = ((u128::from(draw) * u128::from(span)) >> 64) as u64;
                SimDuration::from_micros(min.as_micros() + offset)
            }
            Latency::Exponential { mean, min, max } => {
                let unit = (draw >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                let micros = -(1.0 - unit).ln() * mean.as_micros() as f64;
                let micros = (micros.round() as u64).clamp(min.as_micros(), max.as_micros());
                SimDuration::from_micros(micros)
            }
        }
    }
}

/// The network's choice point: every random decision about a message is made here.
#[derive(Clone, Debug)]
pub struct Decider {
    rng: SimRng,
}

impl Decider {
    /// The network's decider for the run with this seed (its [`Stream::Network`] stream).
    pub fn new(seed: u64) -> Decider {
        Decider { rng: SimRng::new(seed, Stream::Network) }
    }

    /// Whether to drop a message.
    #[inline]
    pub fn drop(&mut self, probability: f64) -> bool {
        self.rng.chance(probability)
    }

    /// Whether to deliver a message twice.
    #[inline]
    pub fn duplicate(&mut self, probability: f64) -> bool {
        self.rng.chance(probability)
    }

    /// A message's latency.
    #[inline]
    pub fn latency(&mut self, latency: &Latency) -> SimDuration {
        latency.sample(self.rng.next_u64())
    }

    /// Whether a message is slowed, and by how much if so (always two draws).
    pub fn slow(&mut self, probability: f64, latency: &Latency) -> Option<SimDuration> {
        let slowed = self.rng.chance(probability);
        let delay = latency.sample(self.rng.next_u64());
        slowed.then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let mut net = SimRng::new(1, Stream::Network);
        let mut node = SimRng::new(1, Stream::Node(NodeId(0)));
        assert_ne!(net.next_u64(), node.next_u64());
        let mut again = SimRng::new(1, Stream::Network);
        let _ = again.next_u64();
        assert_eq!(net.next_u64(), again.next_u64());
    }

    #[test]
    fn uniform_latency_stays_in_bounds_and_reaches_both_ends() {
        let latency = Latency::Uniform { min: SimDuration::from_micros(5), max: SimDuration::from_micros(7) };
        let mut decider = Decider::new(3);
        let mut seen = [false; 3];
        for _ in 0..1_000 {
            let d = decider.latency(&latency).as_micros();
            assert!((5..=7).contains(&d));
            seen[(d - 5) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn exponential_latency_is_clamped() {
        let latency = Latency::Exponential {
            mean: SimDuration::from_millis(5),
            min: SimDuration::from_millis(1),
            max: SimDuration::from_millis(8),
        };
        let mut decider = Decider::new(9);
        for _ in 0..1_000 {
            let d = decider.latency(&latency);
            assert!(d >= SimDuration::from_millis(1) && d <= SimDuration::from_millis(8));
        }
    }

    #[test]
    fn chance_extremes() {
        let mut rng = SimRng::new(0, Stream::Workload);
        assert!((0..100).all(|_| !rng.chance(0.0)));
        assert!((0..100).all(|_| rng.chance(1.0)));
    }
}
