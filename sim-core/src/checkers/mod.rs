//! Checkers over histories: linearizability.
pub mod linearizability;
