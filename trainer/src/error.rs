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
    #[error("{path}: {source}{}", disk_full_hint(source))]
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
    /// The GPU device was lost in the middle of a run (driver reset, GPU gone).
    #[error(
        "the GPU device was lost ({reason}); {state}. Check the GPU and its driver (e.g. dmesg), \
         then {then}"
    )]
    DeviceLost {
        /// What the driver said.
        reason: String,
        /// What is safe on disk: the last good checkpoint, or that there is none.
        state: String,
        /// The way on, e.g. "continue with --resume".
        then: String,
    },
    /// The run, or the samples asked for, do not fit the device's memory.
    #[error("{message}. {advice}")]
    OutOfMemory {
        /// The engine's report.
        message: String,
        /// What to lower.
        advice: String,
    },
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

/// A device loss told as such ([`Error::DeviceLost`], with `on_disk` saying what is safe on disk
/// and the way on); other errors as they are.
pub fn explain_device_loss(e: Error, on_disk: impl FnOnce() -> (String, String)) -> Error {
    match e {
        Error::Engine(mtdiff_engine::Error::DeviceLost(reason))
        | Error::Model(mtdiff_model::Error::Engine(mtdiff_engine::Error::DeviceLost(reason))) => {
            let (state, then) = on_disk();
            Error::DeviceLost {
                reason,
                state,
                then,
            }
        }
        e => e,
    }
}

/// An out-of-memory error told with the way out (`advice`: the flags to lower); other errors as
/// they are.
pub fn explain_out_of_memory(e: Error, advice: impl FnOnce() -> String) -> Error {
    match e {
        Error::Engine(e @ mtdiff_engine::Error::OutOfMemory { .. })
        | Error::Model(mtdiff_model::Error::Engine(e @ mtdiff_engine::Error::OutOfMemory { .. })) => {
            Error::OutOfMemory {
                message: e.to_string(),
                advice: advice(),
            }
        }
        e => e,
    }
}

/// True when an I/O error says the disk is full, a quota or a file-size limit was hit.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::FileTooLarge
            | std::io::ErrorKind::QuotaExceeded
    )
}

fn disk_full_hint(e: &std::io::Error) -> &'static str {
    if is_disk_full(e) {
        " (the disk is full or a file-size limit, ulimit -f, was hit: free space, then continue \
         with --resume; checkpoints are written whole or not at all)"
    } else {
        ""
    }
}

/// Result with the trainer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
