//! Decoder heads p_θ(x^(i) | z_t) on the shared backbone (docs/method.md §5.2): image
//! modalities are extra output channels of the U-Net's last convolution (x̂, x0-prediction); labels
//! and vectors are an MLP on globally pooled backbone features (the bottleneck and the last decoder
//! map, concatenated).

use mtdiff_engine::Tensor;

use crate::error::Result;
use crate::nn::{Linear, ParamStore};

/// `MLP(GAP(bottleneck) ⊕ GAP(last))`: Linear → SiLU → Linear, for label logits or a vector.
pub struct MlpHead {
    fc1: Linear,
    fc2: Linear,
}

impl MlpHead {
    /// Parameters `name.fc1` [hidden, features] and `name.fc2` [out, hidden].
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        features: usize,
        hidden: usize,
        out: usize,
    ) -> Result<MlpHead> {
        Ok(MlpHead {
            fc1: Linear::new(ps, &format!("{name}.fc1"), features, hidden)?,
            fc2: Linear::new(ps, &format!("{name}.fc2"), hidden, out)?,
        })
    }

    /// `pooled`: `[B, features]` → `[B, out]`.
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(pooled)?.silu()?)
    }
}

/// The pooled features the MLP heads read: `[B, C_bottleneck + C_last]`.
pub fn pooled_features(bottleneck: &Tensor, last: &Tensor) -> Result<Tensor> {
    let a = bottleneck.mean(&[2, 3], false)?;
    let b = last.mean(&[2, 3], false)?;
    Ok(Tensor::cat(&[&a, &b], 1)?)
}

/// What one head predicted for a batch.
#[derive(Clone)]
pub enum HeadOutput {
    /// x̂ `[B, C, H, W]` of an image modality.
    Image(Tensor),
    /// Class logits `[B, K]`.
    Logits(Tensor),
    /// r̂ `[B, dim]`.
    Vector(Tensor),
}

impl HeadOutput {
    /// The tensor inside.
    pub fn tensor(&self) -> &Tensor {
        match self {
            HeadOutput::Image(t) | HeadOutput::Logits(t) | HeadOutput::Vector(t) => t,
        }
    }
}
