//! Checkers over histories: linearizability (the search), and the sequential models
//! `dsim check-history` checks recorded histories against.
pub mod linearizability;
pub mod models;
