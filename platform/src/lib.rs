//! Shared platform layer.
