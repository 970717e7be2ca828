//! Umbrella package for the workspace-level integration tests and benchmarks.
