//! Annotation backends.
