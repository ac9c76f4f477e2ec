//! The protocols dsim simulates. Each module knows sim-core, never the CLI or files.
