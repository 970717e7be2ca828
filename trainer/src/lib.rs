//! The `mtdiff` trainer as a library: datasets, training loop, checkpoints, sampling,
//! evaluation and reports. The binary (`main.rs`) is a thin clap front end over it.

pub mod data;
pub mod distributed;
pub mod driver;
pub mod error;
pub mod faults;
pub mod fsutil;
pub mod fuzzing;
pub mod report;
pub mod repro;

pub use error::{Error, Result};
pub mod checkpoint;
pub mod classifier;
pub mod cli;
pub mod config;
pub mod eval;
pub mod export;
pub mod sample;
pub mod state;
pub mod train;
