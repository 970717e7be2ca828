//! mtdiff-model: MT-Diffusion (Chen et al., ICLR 2024) on the mtdiff engine — schedules, the
//! multi-modal forward process, the shared backbone, modality heads, the multi-task loss and
//! joint/conditional samplers. See the README's Architecture section for which file holds which
//! part of the method.

pub mod backbone;
pub mod error;
pub mod forward;
pub mod heads;
pub mod modality;
pub mod mtdiff;
pub mod nn;
pub mod sampler;
pub mod schedule;
pub mod task;
pub mod timesteps;

pub use backbone::{UNet, UNetConfig};
pub use error::{Error, Result};
pub use forward::Ramp;
pub use heads::HeadOutput;
pub use modality::{Encoder, ModalityKind, ModalitySpec, Observation};
pub use mtdiff::{min_snr_weight, LabelInput, LossTerms, ModelConfig, MtDiffusion, Prediction};
pub use mtdiff_engine as engine;
pub use sampler::{Guidance, Sampled, SamplerConfig, SamplerKind, Samples};
pub use schedule::{BetaSchedule, PredictionType, Schedule, ScheduleConfig};
pub use task::{TaskConfig, TaskPreset};
pub use timesteps::{TimestepSampler, TimestepSampling};
