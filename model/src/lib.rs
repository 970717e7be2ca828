//! mtdiff-model: MT-Diffusion (Chen et al., ICLR 2024) on the mtdiff engine — schedules, the
//! multi-modal forward process, the shared backbone, modality heads, the multi-task loss and
//! joint/conditional samplers. Built in its own issue; for now it re-exports the engine it
//! stands on.

pub use mtdiff_engine as engine;
