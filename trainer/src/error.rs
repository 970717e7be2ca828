//! The trainer's one error type: every failure names the problem and, where there is one, the
//! way out.

use std::path::PathBuf;

/// Every way a trainer command can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An engine call failed (no adapter, out of memory, a shape error).
    #[error(transparent)]
    Engine(#[from] mtdiff_engine::Error),
    /// The model rejected a configuration or an input.
    #[error(transparent)]
    Model(#[from] mtdiff_model::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A dataset is missing, malformed or empty.
    #[error("dataset: {0}")]
    Data(String),
    /// A checkpoint is missing, corrupt or from another configuration.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A flag or configuration value is invalid.
    #[error("{0}")]
    Usage(String),
    /// Training diverged.
    #[error("{0}")]
    Diverged(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the trainer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
