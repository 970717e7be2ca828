//! Modalities and their encoders E_i into the diffusion space (docs/method.md §4): the main image is z_0 itself (identity); a masked image and a second image
//! are identity-encoded too; a class label is a fixed random class map; a representation vector
//! is a fixed random projection. Encoders are fixed, not learned, so the forward process cannot
//! collapse (docs/method.md §4.2); they are regenerated from the task's seed, so a checkpoint needs
//! only the seed.

use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::forward::Ramp;

/// What kind of data a modality holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ModalityKind {
    /// The main image x^(1): z_0 = x^(1) (identity encoder). Always modality 0.
    Image,
    /// A class label in `0..classes` (categorical head, cross-entropy).
    Label {
        /// Number of classes.
        classes: usize,
    },
    /// A representation vector of `dim` entries, about unit variance each (MLP head, MSE).
    Vector {
        /// Length of the vector.
        dim: usize,
    },
    /// The main image with hidden pixels set to 0, plus the visibility mask (identity encoder,
    /// x̂ image head, MSE).
    MaskedImage,
    /// A second image of the main image's shape (identity encoder, x̂ image head, MSE).
    SecondImage,
}

impl ModalityKind {
    /// True for the kinds that live in image space (decoded by extra U-Net output channels).
    pub fn is_image(self) -> bool {
        matches!(
            self,
            ModalityKind::Image | ModalityKind::MaskedImage | ModalityKind::SecondImage
        )
    }
}

/// One modality of a task: its kind, its aggregation ramp ρ_i, whether it has a decoder head and
/// the head's loss weight λ_i, and the encoder scale γ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModalitySpec {
    /// A short name (`image`, `label`, `masked`, `image2`, `repr`), used by the CLI's `--given`.
    pub name: String,
    /// What the modality holds.
    #[serde(flatten)]
    pub kind: ModalityKind,
    /// ρ_i(t): how its encoding is aggregated into z_t (`Ramp::OFF`: not at all).
    pub ramp: Ramp,
    /// Whether a decoder head predicts it from the backbone (needed to generate it jointly).
    pub head: bool,
    /// λ_i, the weight of its head's loss term (docs/method.md §6.2; default 1).
    pub loss_weight: f64,
    /// γ: the RMS of a label's class map or a vector's projection, relative to unit-RMS images
    /// (docs/method.md §4.2). Identity encoders ignore it.
    pub encoder_scale: f64,
}

impl ModalitySpec {
    /// A modality with the defaults of docs/method.md for its kind: ρ ramping over [0.1T, 0.5T], a head,
    /// λ = 1, γ = 0.5. The main image gets ρ ≡ 0 and no head.
    pub fn new(name: &str, kind: ModalityKind) -> ModalitySpec {
        let main = kind == ModalityKind::Image;
        ModalitySpec {
            name: name.to_string(),
            kind,
            ramp: if main { Ramp::OFF } else { Ramp::DEFAULT },
            head: !main,
            loss_weight: 1.0,
            encoder_scale: 0.5,
        }
    }

    /// Checks the sizes and that an aggregated modality has a head (joint sampling needs one).
    pub fn validate(&self) -> Result<()> {
        self.ramp.validate()?;
        let bad = |m: String| Err(Error::Config(format!("modality {}: {m}", self.name)));
        match self.kind {
            ModalityKind::Label { classes } if classes < 2 => {
                return bad(format!("a label needs ≥ 2 classes, got {classes}"))
            }
            ModalityKind::Vector { dim: 0 } => return bad("a vector needs dim ≥ 1".to_string()),
            _ => {}
        }
        if self.ramp.scale != 0.0 && !self.head {
            return bad("an aggregated modality (ramp scale ≠ 0) needs a head".to_string());
        }
        if !(self.loss_weight.is_finite() && self.loss_weight >= 0.0) {
            return bad(format!("loss_weight must be ≥ 0, got {}", self.loss_weight));
        }
        if !(self.encoder_scale.is_finite() && self.encoder_scale >= 0.0) {
            return bad(format!(
                "encoder_scale must be ≥ 0, got {}",
                self.encoder_scale
            ));
        }
        Ok(())
    }
}

/// The value of one modality for a batch of B samples.
#[derive(Clone)]
pub enum Observation {
    /// `[B, C, H, W]` in [−1, 1] (main or second image).
    Image(Tensor),
    /// u32 class indices `[B]`.
    Label(Tensor),
    /// `[B, dim]`.
    Vector(Tensor),
    /// The masked image `[B, C, H, W]` (0 where hidden) and its mask `[B, 1, H, W]` (1 visible).
    Masked {
        /// m ⊙ x, 0 on hidden pixels.
        image: Tensor,
        /// 1 where visible, 0 where hidden.
        mask: Tensor,
    },
}

impl Observation {
    /// Batch size.
    pub fn batch(&self) -> usize {
        match self {
            Observation::Image(t) | Observation::Label(t) | Observation::Vector(t) => t.dims()[0],
            Observation::Masked { image, .. } => image.dims()[0],
        }
    }
}

/// E_i: a modality's fixed map into the diffusion space `[C, H, W]`.
pub enum Encoder {
    /// E(x) = x (images).
    Identity,
    /// E(y) = M[y]: row y of fixed Gaussian class maps M `[classes, C·H·W]`, each row scaled to
    /// RMS γ (docs/method.md §4.2). A distribution p over classes encodes as p·M (its expectation).
    ClassMap(Tensor),
    /// E(r) = r·P with a fixed Gaussian projection P `[dim, C·H·W]` scaled so a unit-variance r
    /// gives RMS γ (docs/method.md §4.4).
    Projection(Tensor),
}

impl Encoder {
    /// The encoder of `spec` for samples of `shape` = [C, H, W], drawn from `seed`.
    pub fn new(device: &Device, spec: &ModalitySpec, shape: [usize; 3], seed: u64) -> Result<Self> {
        let n: usize = shape.iter().product();
        let gamma = spec.encoder_scale;
        let mut rng = CpuRng::new(seed);
        Ok(match spec.kind {
            ModalityKind::Label { classes } => {
                let mut m = Vec::with_capacity(classes * n);
                for _ in 0..classes {
                    let row: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                    let rms = (row.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
                    m.extend(row.iter().map(|v| (v / rms * gamma) as f32));
                }
                Encoder::ClassMap(Tensor::from_slice(device, &m, &[classes, n])?)
            }
            ModalityKind::Vector { dim } => {
                let s = gamma / (dim as f64).sqrt();
                let p = rng.vec_normal(dim * n, s);
                Encoder::Projection(Tensor::from_slice(device, &p, &[dim, n])?)
            }
            _ => Encoder::Identity,
        })
    }

    /// E(x) for an observed value, `[B, C, H, W]`.
    pub fn encode(&self, obs: &Observation, shape: [usize; 3]) -> Result<Tensor> {
        let image_dims = |b: usize| [b, shape[0], shape[1], shape[2]];
        let out = match (self, obs) {
            (Encoder::Identity, Observation::Image(x))
            | (Encoder::Identity, Observation::Masked { image: x, .. }) => x.clone(),
            (Encoder::ClassMap(m), Observation::Label(y)) => {
                m.gather_rows(y)?.reshape(&image_dims(y.dims()[0]))?
            }
            (Encoder::Projection(p), Observation::Vector(r)) => {
                r.matmul(p)?.reshape(&image_dims(r.dims()[0]))?
            }
            _ => {
                return Err(Error::Config(
                    "an observation does not match its modality's kind".to_string(),
                ))
            }
        };
        if out.dims() != image_dims(obs.batch()) {
            return Err(Error::Config(format!(
                "an encoded modality has shape {}, expected [B, {}, {}, {}]",
                out.shape(),
                shape[0],
                shape[1],
                shape[2]
            )));
        }
        Ok(out.detach())
    }

    /// E of a head's prediction: images as they are, class probabilities `[B, K]` through the
    /// class maps (the softmax expectation, docs/method.md §7.1), vectors through the projection.
    pub fn encode_prediction(&self, pred: &Tensor, shape: [usize; 3]) -> Result<Tensor> {
        let b = pred.dims()[0];
        Ok(match self {
            Encoder::Identity => pred.clone(),
            Encoder::ClassMap(m) | Encoder::Projection(m) => pred
                .matmul(m)?
                .reshape(&[b, shape[0], shape[1], shape[2]])?,
        })
    }
}

/// A random mask of `patch`×`patch` patches for `b` images of `h`×`w` (docs/method.md §8.2): each
/// patch is hidden with probability `ratio`. Returns `[b, 1, h, w]` values, 1 = visible.
pub fn random_patch_mask(
    rng: &mut CpuRng,
    b: usize,
    h: usize,
    w: usize,
    patch: usize,
    ratio: f64,
) -> Vec<f32> {
    let patch = patch.max(1);
    let (ph, pw) = (h.div_ceil(patch), w.div_ceil(patch));
    let mut out = vec![1.0f32; b * h * w];
    for i in 0..b {
        let hidden: Vec<bool> = (0..ph * pw).map(|_| rng.uniform() < ratio).collect();
        for y in 0..h {
            for x in 0..w {
                if hidden[(y / patch) * pw + x / patch] {
                    out[(i * h + y) * w + x] = 0.0;
                }
            }
        }
    }
    out
}
