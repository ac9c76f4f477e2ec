//! Checkers over histories: linearizability (the search, and an incremental checker of one
//! object's history as a run goes), and the sequential models `dsim check-history` checks
//! recorded histories against.
pub mod incremental;
pub mod linearizability;
pub mod models;
