//! mtdiff-model: MT-Diffusion (Chen et al., ICLR 2024) on the mtdiff engine — schedules, the
//! multi-modal forward process, the shared backbone, modality heads, the multi-task loss and
//! joint/conditional samplers. So far: the schedules (`schedule`).

pub mod backbone;
pub mod error;
pub mod forward;
pub mod nn;
pub mod schedule;

pub use backbone::{UNet, UNetConfig};
pub use error::{Error, Result};
pub use forward::Ramp;
pub use mtdiff_engine as engine;
pub use schedule::{BetaSchedule, PredictionType, Schedule, ScheduleConfig};
