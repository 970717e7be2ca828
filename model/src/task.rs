//! The paper's four settings as presets (docs/method.md §8), plus the plain
//! single-task DDPM baseline: each is a list of modalities with encoders, heads, ρ ramps and loss
//! weights over the main image's diffusion space.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::forward::Ramp;
use crate::modality::{ModalityKind, ModalitySpec};

/// The built-in task settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskPreset {
    /// S1: image + class label (fixed class maps, γ = 0.5, ρ over [0.1T, 0.5T], MLP label head).
    ImageLabel,
    /// S2: image + masked image (identity encoder, ρ over [0, 0.3T], x̂ head); restoration.
    MaskedImage,
    /// S3: image transition, a bridge x1 → x2 → noise (ρ_1 = −ρ, ρ_2 = +ρ over [0.05T, 0.4T]),
    /// x̂ heads for both images.
    Transition,
    /// S4: image + representation vector (fixed projection, γ = 0.5, ρ over [0.1T, 0.5T],
    /// MLP regression head).
    ImageRepresentation,
    /// Plain single-task DDPM: the image alone (ρ ≡ 0, no heads); the baseline.
    Ddpm,
}

impl TaskPreset {
    /// Every preset.
    pub const ALL: [TaskPreset; 5] = [
        TaskPreset::ImageLabel,
        TaskPreset::MaskedImage,
        TaskPreset::Transition,
        TaskPreset::ImageRepresentation,
        TaskPreset::Ddpm,
    ];

    /// The CLI name (`image-label`, `masked-image`, `transition`, `image-representation`, `ddpm`).
    pub fn name(self) -> &'static str {
        match self {
            TaskPreset::ImageLabel => "image-label",
            TaskPreset::MaskedImage => "masked-image",
            TaskPreset::Transition => "transition",
            TaskPreset::ImageRepresentation => "image-representation",
            TaskPreset::Ddpm => "ddpm",
        }
    }

    /// Parses a CLI name; the error lists the valid ones.
    pub fn parse(name: &str) -> Result<TaskPreset> {
        TaskPreset::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = TaskPreset::ALL.iter().map(|p| p.name()).collect();
                Error::Config(format!(
                    "unknown task {name:?}; choose one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The task for images of `image_shape` = [C, H, W] with `classes` label classes and
    /// representation vectors of `vector_dim` entries.
    pub fn task(self, image_shape: [usize; 3], classes: usize, vector_dim: usize) -> TaskConfig {
        let image = ModalitySpec::new("image", ModalityKind::Image);
        let ramp = |start, end, scale| Ramp { start, end, scale };
        let modalities = match self {
            TaskPreset::ImageLabel => vec![
                image,
                ModalitySpec::new("label", ModalityKind::Label { classes }),
            ],
            TaskPreset::MaskedImage => vec![
                image,
                ModalitySpec {
                    ramp: ramp(0.0, 0.3, 1.0),
                    ..ModalitySpec::new("masked", ModalityKind::MaskedImage)
                },
            ],
            TaskPreset::Transition => vec![
                ModalitySpec {
                    ramp: ramp(0.05, 0.4, -1.0),
                    head: true,
                    ..image
                },
                ModalitySpec {
                    ramp: ramp(0.05, 0.4, 1.0),
                    ..ModalitySpec::new("image2", ModalityKind::SecondImage)
                },
            ],
            TaskPreset::ImageRepresentation => vec![
                image,
                ModalitySpec::new("repr", ModalityKind::Vector { dim: vector_dim }),
            ],
            TaskPreset::Ddpm => vec![image],
        };
        TaskConfig {
            preset: Some(self),
            image_shape,
            modalities,
            encoder_seed: 0x5EED,
        }
    }
}

/// A task: the main image's shape (the diffusion space) and its modalities, modality 0 being
/// the main image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// The preset it came from, if any.
    pub preset: Option<TaskPreset>,
    /// [C, H, W] of the main image and of z_t.
    pub image_shape: [usize; 3],
    /// The modalities; `modalities[0]` is the main image.
    pub modalities: Vec<ModalitySpec>,
    /// Seed of the fixed encoders (class maps, projections).
    pub encoder_seed: u64,
}

impl TaskConfig {
    /// Checks the modality list: modality 0 is the only main image, names are unique, each spec
    /// is valid.
    pub fn validate(&self) -> Result<()> {
        if self.image_shape.contains(&0) {
            return Err(Error::Config(format!(
                "image shape {:?} has a zero size",
                self.image_shape
            )));
        }
        match self.modalities.first() {
            Some(m) if m.kind == ModalityKind::Image => {}
            _ => {
                return Err(Error::Config(
                    "a task's first modality must be the main image".to_string(),
                ))
            }
        }
        for (i, m) in self.modalities.iter().enumerate() {
            m.validate()?;
            if i > 0 && m.kind == ModalityKind::Image {
                return Err(Error::Config(format!(
                    "modality {}: only the first modality is the main image (use second_image)",
                    m.name
                )));
            }
            if self.modalities[..i].iter().any(|o| o.name == m.name) {
                return Err(Error::Config(format!(
                    "modality name {} used twice",
                    m.name
                )));
            }
        }
        Ok(())
    }

    /// The index of the modality called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.modalities
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.modalities.iter().map(|m| m.name.as_str()).collect();
                Error::Config(format!(
                    "this task has no modality {name:?}; it has {}",
                    names.join(", ")
                ))
            })
    }

    /// Channels of the U-Net output: ε plus one image per image modality with a head.
    pub fn output_channels(&self) -> usize {
        let heads = self
            .modalities
            .iter()
            .filter(|m| m.head && m.kind.is_image())
            .count();
        self.image_shape[0] * (1 + heads)
    }
}
