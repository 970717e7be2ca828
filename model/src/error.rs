//! The model crate's one error type.

/// Every way a model call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An engine call failed.
    #[error(transparent)]
    Engine(#[from] mtdiff_engine::Error),
    /// A configuration value is out of range; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Data given to the model does not fit its task (shape, kind, missing modality).
    #[error("invalid input: {0}")]
    Input(String),
}

/// Result with the model's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
