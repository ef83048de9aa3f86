//! The workspace configuration.
