//! dsim
