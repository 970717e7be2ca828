//! The engine's one error type.

/// Every way an engine call can fail, each naming the problem and the way out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the request.
    #[error(
        "no GPU adapter found (tried: {tried}). On a machine without a GPU install Mesa's software \
         Vulkan driver: `apt-get install -y mesa-vulkan-drivers libvulkan1`; check WGPU_BACKEND \
         and WGPU_ADAPTER_NAME if they are set"
    )]
    NoAdapter {
        /// What was tried, e.g. the backends and the adapter-name filter.
        tried: String,
    },
    /// The adapter was found but refused to open a device.
    #[error("could not open a device on adapter `{adapter}`: {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// The driver's reason.
        reason: String,
    },
    /// Operand shapes do not fit the op.
    #[error("{op}: shape mismatch: expected {expected}, got {got}")]
    Shape {
        /// The op that checked.
        op: &'static str,
        /// What it needed.
        expected: String,
        /// What it was given.
        got: String,
    },
    /// An argument that is not a shape (axis, dtype, value) is out of range.
    #[error("{op}: {message}")]
    Invalid {
        /// The op that checked.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
    /// An allocation beyond the adapter's limits or one the driver refused.
    #[error(
        "out of GPU memory: could not allocate {bytes} bytes ({reason}); use a smaller batch or \
         model, or call Device::release_cached_buffers()"
    )]
    OutOfMemory {
        /// Size of the failed allocation.
        bytes: u64,
        /// Which limit or which driver error.
        reason: String,
    },
    /// The device was lost; recreate it and re-upload.
    #[error("GPU device lost: {0}; the device must be recreated and tensors re-uploaded")]
    DeviceLost(String),
    /// wgpu reported a validation error (a bug in a kernel or a caller misuse).
    #[error("wgpu validation error in {context}: {message}")]
    Validation {
        /// What the engine was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// Mapping a buffer for readback failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),

    /// A blocking call where the platform cannot block (the web): the async form to use.
    #[error("{call} waits for the GPU, which a web page cannot do: use {instead}")]
    Blocking {
        /// The blocking call.
        call: &'static str,
        /// Its async form.
        instead: &'static str,
    },
}

/// Result with the engine's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(
        op: &'static str,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Error::Shape {
            op,
            expected: expected.into(),
            got: got.into(),
        }
    }
    pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            message: message.into(),
        }
    }
}
