//! Dynamic loss scaling, as PyTorch's `GradScaler`, decided on the GPU: the loss is multiplied
//! by a scale S before `backward` (so small f16 gradients do not underflow), and
//! [`AdamW::step_scaled`](crate::optim::AdamW::step_scaled) divides the gradients by S, skips
//! the whole update when any gradient overflowed (Inf or NaN), halves S then, and doubles it
//! after `growth_interval` clean steps. The test, the skip and the new scale are kernels
//! (`shaders/loss_scale.wgsl`), so a step still reads nothing back; the state (scale, clean
//! steps, skipped steps) is a small tensor to read when logging and to keep in checkpoints.
//! CPU reference: [`cpu_reference`].

use crate::error::{Error, Result};
use crate::ops::kernel;
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::tensor::Tensor;
use crate::Device;

pub(crate) const SRC: &str = include_str!("../../shaders/loss_scale.wgsl");
/// `shaders/loss_scale.wgsl`: each entry point and the storage bindings it uses.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "loss_scale",
    file: "loss_scale.wgsl",
    source: SRC,
    entries: &[
        entry(
            "scaled_clip",
            &[read("spart"), read("sstate"), write("sout")],
        ),
        entry("scaler_update", &[read("ustats"), write("ustate")]),
    ],
};

crate::kernel_params! {
    /// `scaled_clip`'s parameters (`shaders/loss_scale.wgsl`).
    pub struct ScaledClipParams {
        /// Partial sums of squares.
        slots: u32,
        /// Clip the unscaled gradient norm to this; ≤ 0: no clipping.
        max_norm: f32,
    }
}

crate::kernel_params! {
    /// `scaler_update`'s parameters (`shaders/loss_scale.wgsl`).
    pub struct ScalerParams {
        /// Clean steps before the scale grows.
        growth_interval: u32,
        /// Factor of a growth.
        growth: f32,
        /// Factor after an overflow.
        backoff: f32,
    }
}

/// The scaler's settings; the defaults are PyTorch's `GradScaler`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScalerConfig {
    /// The first scale (2¹⁶).
    pub init_scale: f32,
    /// The scale is multiplied by this after `growth_interval` clean steps (2).
    pub growth_factor: f32,
    /// and by this after a step whose gradients overflowed (0.5).
    pub backoff_factor: f32,
    /// Clean steps before a growth (2000).
    pub growth_interval: u32,
}

impl Default for LossScalerConfig {
    fn default() -> Self {
        LossScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

/// The scaler's state as read back: [`LossScaler::state`]'s four values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScaleState {
    /// The current scale.
    pub scale: f32,
    /// Clean steps since the scale last changed.
    pub clean_steps: u32,
    /// Steps skipped in all.
    pub skipped_steps: u32,
    /// Whether the last step was skipped.
    pub last_skipped: bool,
}

impl LossScaleState {
    /// From the four floats of [`LossScaler::state`].
    pub fn from_values(v: &[f32]) -> Result<LossScaleState> {
        match v {
            &[scale, clean, skipped, last] => Ok(LossScaleState {
                scale,
                clean_steps: clean as u32,
                skipped_steps: skipped as u32,
                last_skipped: last != 0.0,
            }),
            _ => Err(Error::invalid(
                "LossScaleState",
                format!("4 values (scale, clean, skipped, last), got {}", v.len()),
            )),
        }
    }

    /// The four floats, as the state tensor holds them.
    pub fn values(&self) -> [f32; 4] {
        [
            self.scale,
            self.clean_steps as f32,
            self.skipped_steps as f32,
            if self.last_skipped { 1.0 } else { 0.0 },
        ]
    }
}

/// Dynamic loss scaling with its state on the GPU (see the module docs).
pub struct LossScaler {
    /// The settings.
    pub config: LossScalerConfig,
    state: Tensor,
}

impl LossScaler {
    /// A scaler at `config.init_scale`.
    pub fn new(dev: &Device, config: LossScalerConfig) -> Result<LossScaler> {
        if !(config.init_scale.is_finite() && config.init_scale > 0.0)
            || config.growth_factor < 1.0
            || !(config.backoff_factor > 0.0 && config.backoff_factor < 1.0)
            || config.growth_interval == 0
        {
            return Err(Error::invalid(
                "LossScaler::new",
                format!(
                    "{config:?}: the scale must be finite and positive, the growth factor ≥ 1, \
                     the backoff factor in (0, 1) and the growth interval ≥ 1"
                ),
            ));
        }
        let state = LossScaleState {
            scale: config.init_scale,
            clean_steps: 0,
            skipped_steps: 0,
            last_skipped: false,
        };
        Ok(LossScaler {
            config,
            state: Tensor::from_slice(dev, &state.values(), &[4])?,
        })
    }

    /// The (one-element) loss times the current scale, differentiable in the loss: call
    /// `backward` on this.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        if loss.numel() != 1 {
            return Err(Error::shape(
                "LossScaler::scale",
                "a one-element loss",
                format!("{}", loss.shape()),
            ));
        }
        loss.mul(&self.state.narrow(0, 1)?.reshape(loss.dims())?)
    }

    /// The state tensor `[scale, clean steps, skipped steps, last skipped]` (read it back when
    /// logging or checkpointing, e.g. with [`LossScaleState::from_values`]).
    pub fn state(&self) -> &Tensor {
        &self.state
    }

    /// Puts a saved state back (resuming from a checkpoint).
    pub fn restore(&self, state: LossScaleState) -> Result<()> {
        self.state.write(&state.values())
    }

    /// `[factor, unscaled norm, skip]` from the partial sums of squares of the scaled
    /// gradients: factor = clip/S, or 0 and skip = 1 after an overflow.
    pub(crate) fn stats(&self, partial: &Tensor, max_norm: Option<f32>) -> Result<Tensor> {
        let dev = partial.device();
        let out = Tensor::uninit(dev, &[3], crate::tensor::DType::F32)?;
        let k = kernel(dev, &KERNELS, "scaled_clip", &[])?;
        dev.dispatch(
            &k,
            &ScaledClipParams {
                slots: partial.numel() as u32,
                max_norm: max_norm.unwrap_or(0.0),
            },
            &[partial.arg(), self.state.arg(), out.arg()],
            [1, 1, 1],
        )?;
        Ok(out)
    }

    /// The scale's update after a step with `stats` ([`Self::stats`]).
    pub(crate) fn update(&self, stats: &Tensor) -> Result<()> {
        let dev = stats.device();
        let k = kernel(dev, &KERNELS, "scaler_update", &[])?;
        let c = self.config;
        dev.dispatch(
            &k,
            &ScalerParams {
                growth_interval: c.growth_interval,
                growth: c.growth_factor,
                backoff: c.backoff_factor,
            },
            &[stats.arg(), self.state.arg()],
            [1, 1, 1],
        )
    }
}

/// The scaler's rule on the CPU: the state after a step whose gradients were `finite` or not.
pub fn cpu_reference(c: &LossScalerConfig, s: LossScaleState, finite: bool) -> LossScaleState {
    if !finite {
        return LossScaleState {
            scale: (s.scale * c.backoff_factor).max(1.0 / 16_777_216.0),
            clean_steps: 0,
            skipped_steps: s.skipped_steps + 1,
            last_skipped: true,
        };
    }
    let clean = s.clean_steps + 1;
    let grow = clean >= c.growth_interval;
    LossScaleState {
        scale: if grow {
            s.scale * c.growth_factor
        } else {
            s.scale
        },
        clean_steps: if grow { 0 } else { clean },
        skipped_steps: s.skipped_steps,
        last_skipped: false,
    }
}
