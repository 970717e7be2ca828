//! A training run's configuration: every field has a working default, a TOML file
//! (`--config run.toml`) may set any of them, and command-line flags override both.

use std::path::{Path, PathBuf};

use mtdiff_model::{
    BetaSchedule, ModalityKind, ModalitySpec, ModelConfig, Ramp, TaskConfig, TaskPreset,
    TimestepSampling,
};
use serde::{Deserialize, Serialize};

use crate::data::{DataSource, Dataset, Representation};
use crate::error::{Error, Result};

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name; the run lives in `<out_dir>/<name>/`.
    pub name: String,
    /// Parent folder of runs.
    pub out_dir: PathBuf,
    /// Task preset: image-label, masked-image, transition, image-representation, ddpm.
    pub task: String,
    /// Data: glyphs, glyphs:SIZE, mnist:DIR, folder:DIR, shards:PATH.
    pub data: String,
    /// Side images of a folder or shard dataset are resized to.
    pub image_size: usize,
    /// Channels of a folder or shard dataset (1 or 3).
    pub channels: usize,
    /// Threads decoding batches ahead of the step (0: one per logical CPU); never changes the
    /// data a step sees.
    pub data_workers: usize,
    /// Distinct unreadable or corrupt images a run skips (each with a warning) before it stops.
    pub max_bad_images: usize,
    /// Devices training data-parallel: each takes its share of every batch (`batch` stays the
    /// global batch), and the summed gradient updates identical replicas.
    pub devices: usize,
    /// The adapter of each device, by its number in `mtdiff info`'s list (empty: every device
    /// on the best adapter, number 0).
    pub adapters: Vec<usize>,
    /// U-Net channels per level.
    pub unet_channels: Vec<usize>,
    /// Residual blocks per U-Net level.
    pub res_blocks: usize,
    /// U-Net levels (0 = full resolution) whose residual blocks are each followed by
    /// self-attention; the bottleneck always has one.
    pub attn_levels: Vec<usize>,
    /// Residual blocks take the time and class embedding as a scale and shift of their second
    /// group norm (ADM's AdaGN) instead of adding it.
    pub scale_shift: bool,
    /// Training timesteps T.
    pub timesteps: usize,
    /// Noise schedule: `linear` (DDPM's β range, scaled to T) or `cosine` (Nichol & Dhariwal).
    pub beta_schedule: String,
    /// How training draws timesteps: `uniform` (DDPM) or `log-snr:MEAN,STD` (ln SNR normal; see
    /// `mtdiff_model::timesteps`).
    pub timestep_sampling: String,
    /// Optimizer steps.
    pub steps: u64,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate (AdamW).
    pub lr: f32,
    /// Linear warm-up steps.
    pub warmup: u64,
    /// Learning-rate schedule after the warm-up: `cosine` (to 0 at the last step) or `constant`.
    pub lr_schedule: String,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Clip the global gradient norm to this (0: off).
    pub grad_clip: f32,
    /// EMA decay of the weights used for sampling (0: sample from the raw weights).
    pub ema: f32,
    /// Read the loss back and log it every this many steps.
    pub log_every: u64,
    /// Write a checkpoint every this many steps (a multiple of log_every).
    pub ckpt_every: u64,
    /// Keep the last this many checkpoints.
    pub keep: usize,
    /// Write a sample grid every this many steps (0: only at the end).
    pub sample_every: u64,
    /// Sampling steps (DDPM, respaced) for the sample grids and the final evaluation.
    pub sample_steps: usize,
    /// Seed of initialisation, batches, timesteps and noise.
    pub seed: u64,
    /// Range of the masked-image task's per-sample mask ratio.
    pub mask_ratio: (f64, f64),
    /// MT-Diffusion-E (image-label task): the label also conditions the U-Net through a
    /// class embedding, besides its class map in z_t (see `ModelConfig::label_embedding`).
    pub label_embedding: bool,
    /// Tasks without a label modality: the dataset's label conditions the U-Net through the
    /// class embedding only (a label modality that is not aggregated into z_t and has no head),
    /// with label drop and guidance as for `label_embedding`. Masked-image with it is the
    /// paper's MT-Diffusion-X; ddpm with it is a class-conditional DDPM.
    pub class_conditional: bool,
    /// With the label embedding: the probability that a training sample sees "no label", which
    /// teaches the joint (unconditional) sampler.
    pub label_drop: f64,
    /// Loss weight λ of the label head's cross-entropy (docs/method.md §6.2; our default 0.1
    /// instead of 1, see `Default`). Image and vector heads keep λ = 1.
    pub label_weight: f64,
    /// γ of the label's fixed class map E_label (its RMS relative to unit-RMS images;
    /// docs/method.md §4.2: our default 0.1, see `Default`); 0 leaves the label out of z_t.
    pub label_map_scale: f64,
    /// Classifier-free guidance scale of label-conditional sampling with the label embedding
    /// (training grids and the final eval; 1 = none). `sample` and `eval` default to it.
    pub guidance: f64,
    /// (lo, hi): guidance acts only at timesteps in [lo·T, hi·T] (fractions of the schedule;
    /// (0, 1) guides every step). `sample` and `eval` default to it.
    pub guidance_interval: (f64, f64),
    /// Min-SNR-γ weighting of the ε loss (0: off); see `ModelConfig::snr_gamma`.
    pub snr_gamma: f64,
    /// Dynamic loss scaling (`mtdiff_engine::loss_scale`, PyTorch GradScaler's rule): a step
    /// whose gradients overflow is skipped on the GPU and the scale backs off. The groundwork of
    /// f16 mixed precision; in f32 it skips steps with Inf/NaN gradients instead of taking them.
    pub loss_scale: bool,
    /// Arithmetic of the training steps: `f32`, or `f16-mixed` (f32 master weights, optimizer
    /// and loss; the convolutions and matmuls read f16 activations and weights and sum in f32,
    /// as PyTorch's autocast: `mtdiff_engine::Autocast`). Sample grids and the eval are f32.
    pub precision: String,
    /// Run `eval` on the final checkpoint.
    pub eval: bool,
    /// Generated samples per metric in the final evaluation.
    pub eval_samples: usize,
    /// Training steps of the evaluation classifier.
    pub eval_classifier_steps: usize,
}

impl Default for TrainConfig {
    /// The main job: image+label on the built-in 16×16 glyphs, a small U-Net, a few minutes on
    /// a CPU adapter. Each default that is our choice (batch 64, λ_label 0.1, the label
    /// embedding with label drop 0.3 and guidance 4.5 on t ≥ 0.25T, Min-SNR-5, lr 4e-3, AdaGN
    /// blocks, 600 steps, the linear β schedule, log-SNR timesteps, label map γ 0.1) was
    /// measured on this job: docs/experiments.md has each experiment with its command and N,
    /// docs/method.md the reasons.
    fn default() -> Self {
        TrainConfig {
            name: "default".to_string(),
            out_dir: PathBuf::from("runs"),
            task: "image-label".to_string(),
            data: "glyphs".to_string(),
            image_size: 32,
            channels: 3,
            data_workers: 0,
            max_bad_images: crate::data::pipeline::DEFAULT_MAX_BAD_IMAGES,
            devices: 1,
            adapters: Vec::new(),
            unet_channels: vec![16, 32, 32],
            res_blocks: 1,
            attn_levels: Vec::new(),
            scale_shift: true,
            timesteps: 400,
            beta_schedule: "linear".to_string(),
            timestep_sampling: "log-snr:-1,2.5".to_string(),
            steps: 600,
            batch: 64,
            lr: 4e-3,
            warmup: 50,
            lr_schedule: "cosine".to_string(),
            weight_decay: 0.0,
            grad_clip: 1.0,
            ema: 0.995,
            log_every: 25,
            ckpt_every: 100,
            keep: 3,
            sample_every: 0,
            sample_steps: 25,
            seed: 0,
            mask_ratio: (0.1, 0.9),
            label_embedding: true,
            class_conditional: false,
            label_drop: 0.3,
            label_weight: 0.1,
            label_map_scale: 0.1,
            guidance: 4.5,
            guidance_interval: (0.25, 1.0),
            snr_gamma: 5.0,
            loss_scale: false,
            precision: "f32".to_string(),
            eval: true,
            eval_samples: 100,
            eval_classifier_steps: crate::classifier::TRAIN_STEPS,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_toml(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses a run config's TOML text (`path` names it in errors); unknown keys are errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<TrainConfig> {
        toml::from_str(text).map_err(|e| {
            Error::Usage(format!(
                "{}: {e}(see README for the keys of a run.toml)",
                path.display()
            ))
        })
    }

    /// The adapter number of device `k` (see [`TrainConfig::adapters`]).
    pub fn adapter_of(&self, k: usize) -> Option<usize> {
        self.adapters.get(k).copied()
    }

    /// The autocast of a training step's forward: f16 under `--precision f16-mixed`, none in f32.
    pub fn autocast(&self) -> Option<mtdiff_engine::Autocast> {
        (self.precision == "f16-mixed").then(mtdiff_engine::Autocast::f16)
    }

    /// Checks ranges and that intervals fit together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Usage(m));
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return bad(format!(
                "--name {:?} must be a plain folder name",
                self.name
            ));
        }
        let preset = TaskPreset::parse(&self.task)?;
        if self.class_conditional && preset == TaskPreset::ImageLabel {
            return bad(
                "--class-conditional is for tasks without a label; image-label conditions on \
                 its label with --label-embedding true"
                    .to_string(),
            );
        }
        if self.steps == 0 || self.batch == 0 {
            return bad("--steps and --batch must be ≥ 1".to_string());
        }
        if self.devices == 0 || self.devices > self.batch {
            return bad(format!(
                "--devices {} must be between 1 and --batch ({}): each device takes a share of \
                 every batch",
                self.devices, self.batch
            ));
        }
        if !self.adapters.is_empty() && self.adapters.len() != self.devices {
            return bad(format!(
                "--adapters names {} adapters for --devices {}: give one adapter number per \
                 device (the numbers `mtdiff info` lists), or leave --adapters out",
                self.adapters.len(),
                self.devices
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be > 0, got {}", self.lr));
        }
        if self.lr_schedule != "cosine" && self.lr_schedule != "constant" {
            return bad(format!(
                "--lr-schedule {:?}: use cosine or constant",
                self.lr_schedule
            ));
        }
        TimestepSampling::parse(&self.timestep_sampling)
            .map_err(|e| Error::Usage(format!("--timestep-sampling: {e}")))?;
        if !matches!(self.precision.as_str(), "f32" | "f16-mixed") {
            return bad(format!(
                "--precision {:?}: use f32 or f16-mixed",
                self.precision
            ));
        }
        if self.beta_schedule != "linear" && self.beta_schedule != "cosine" {
            return bad(format!(
                "--beta-schedule {:?}: use linear or cosine",
                self.beta_schedule
            ));
        }
        let below_bottleneck = self.unet_channels.len().saturating_sub(1);
        if let Some(lv) = self.attn_levels.iter().find(|&&lv| lv >= below_bottleneck) {
            return bad(format!(
                "--attn-levels {lv}: with {} U-Net levels only 0..{} can take attention (the \
                 bottleneck always has it)",
                self.unet_channels.len(),
                below_bottleneck.saturating_sub(1)
            ));
        }
        if !(0.0..1.0).contains(&self.ema) {
            return bad(format!("--ema must be in [0, 1), got {}", self.ema));
        }
        if self.log_every == 0
            || self.ckpt_every == 0
            || !self.ckpt_every.is_multiple_of(self.log_every)
        {
            return bad(format!(
                "--ckpt-every ({}) must be a positive multiple of --log-every ({}): a checkpoint \
                 is written only after the losses before it were checked",
                self.ckpt_every, self.log_every
            ));
        }
        if self.keep == 0 {
            return bad("--keep must be ≥ 1".to_string());
        }
        if self.timesteps < 2 || self.sample_steps == 0 || self.sample_steps > self.timesteps {
            return bad(format!(
                "need --timesteps ≥ 2 and 1 ≤ --sample-steps ≤ timesteps; got {} and {}",
                self.timesteps, self.sample_steps
            ));
        }
        if !(0.0..=1.0).contains(&self.label_drop) {
            return bad(format!(
                "--label-drop must be in [0, 1], got {}",
                self.label_drop
            ));
        }
        if !(self.label_weight.is_finite() && self.label_weight >= 0.0) {
            return bad(format!(
                "--label-weight must be ≥ 0, got {}",
                self.label_weight
            ));
        }
        if !(self.label_map_scale.is_finite() && self.label_map_scale >= 0.0) {
            return bad(format!(
                "--label-map-scale must be ≥ 0, got {}",
                self.label_map_scale
            ));
        }
        if !(self.snr_gamma.is_finite() && self.snr_gamma >= 0.0) {
            return bad(format!(
                "--snr-gamma must be ≥ 0 (0: off), got {}",
                self.snr_gamma
            ));
        }
        if !(self.guidance.is_finite() && self.guidance >= 0.0) {
            return bad(format!("--guidance must be ≥ 0, got {}", self.guidance));
        }
        if let Err(msg) = check_interval(self.guidance_interval) {
            return bad(format!("--guidance-interval: {msg}"));
        }
        if let Err(msg) = check_interval(self.mask_ratio) {
            return bad(format!("mask_ratio: {msg}"));
        }
        Ok(())
    }

    /// The data source.
    pub fn source(&self) -> Result<DataSource> {
        DataSource::parse(&self.data, self.image_size, self.channels)
    }

    /// The model this run trains, for data of `data`'s shape.
    pub fn model_config(&self, data: &dyn Dataset, repr: &Representation) -> Result<ModelConfig> {
        let preset = TaskPreset::parse(&self.task)?;
        let mut task: TaskConfig = preset.task(data.image_shape(), data.classes(), repr.dim());
        for m in task.modalities.iter_mut() {
            if matches!(m.kind, ModalityKind::Label { .. }) {
                m.loss_weight = self.label_weight;
                m.encoder_scale = self.label_map_scale;
            }
        }
        if self.class_conditional {
            // A condition, not a modality of the model's output: never in z_t, no head.
            task.modalities.push(ModalitySpec {
                ramp: Ramp::OFF,
                head: false,
                loss_weight: 0.0,
                encoder_scale: 0.0,
                ..ModalitySpec::new(
                    "class",
                    ModalityKind::Label {
                        classes: data.classes(),
                    },
                )
            });
        }
        let mut cfg = ModelConfig::new(task, &self.unet_channels, self.timesteps);
        cfg.unet.res_blocks = self.res_blocks;
        cfg.unet.scale_shift = self.scale_shift;
        cfg.unet.attn_levels = self.attn_levels.clone();
        if self.beta_schedule == "cosine" {
            cfg.schedule.beta_schedule = BetaSchedule::SquaredCosCapV2;
        }
        cfg.init_seed = self.seed;
        cfg.label_embedding =
            (self.label_embedding && preset == TaskPreset::ImageLabel) || self.class_conditional;
        cfg.snr_gamma = self.snr_gamma;
        Ok(cfg)
    }

    /// The learning rate of step `step` (0-based): linear warm-up, then the schedule.
    pub fn lr_at(&self, step: u64) -> f32 {
        let warm = ((step + 1) as f32 / self.warmup.max(1) as f32).min(1.0);
        let decay = if self.lr_schedule == "cosine" && step >= self.warmup {
            let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
            let p = ((step - self.warmup) as f64 / span).min(1.0);
            (0.5 * (1.0 + (std::f64::consts::PI * p).cos())) as f32
        } else {
            1.0
        };
        self.lr * warm * decay.max(0.02)
    }

    /// The EMA decay at step `step`: `min(ema, (1 + step)/(10 + step))`, so the average forgets
    /// the random initialisation quickly (as diffusers' EMA warm-up does).
    pub fn ema_at(&self, step: u64) -> f32 {
        self.ema.min((1.0 + step as f32) / (10.0 + step as f32))
    }

    /// `<out_dir>/<name>`.
    pub fn run_dir(&self) -> PathBuf {
        self.out_dir.join(&self.name)
    }
}

/// Checks a (lo, hi) pair of fractions: 0 ≤ lo ≤ hi ≤ 1.
pub fn check_interval((lo, hi): (f64, f64)) -> std::result::Result<(f64, f64), String> {
    if 0.0 <= lo && lo <= hi && hi <= 1.0 {
        Ok((lo, hi))
    } else {
        Err(format!("needs fractions 0 ≤ lo ≤ hi ≤ 1, got ({lo}, {hi})"))
    }
}

/// Parses `LO,HI` (two fractions of T, 0 ≤ LO ≤ HI ≤ 1), as `--guidance-interval` takes it.
pub fn parse_interval(text: &str) -> std::result::Result<(f64, f64), String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [lo, hi] = parts[..] else {
        return Err(format!("expected LO,HI such as 0.25,1, got '{text}'"));
    };
    let num = |v: &str| {
        v.parse::<f64>()
            .map_err(|_| format!("'{v}' is not a number (expected LO,HI such as 0.25,1)"))
    };
    check_interval((num(lo)?, num(hi)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_conditional_adds_a_label_that_is_only_a_condition() {
        let data = crate::data::glyphs::Glyphs::new(1, 20, 16);
        let repr = Representation::fit(&data).unwrap();
        for task in ["masked-image", "ddpm"] {
            let c = TrainConfig {
                task: task.to_string(),
                class_conditional: true,
                ..TrainConfig::default()
            };
            c.validate().unwrap();
            let m = c.model_config(&data, &repr).unwrap();
            assert!(m.label_embedding, "{task}");
            let last = m.task.modalities.last().unwrap();
            assert_eq!(last.kind, ModalityKind::Label { classes: 10 });
            assert!(!last.head && last.ramp.scale == 0.0 && last.loss_weight == 0.0);
            // Without the flag the task has no label and no embedding.
            let plain = TrainConfig {
                class_conditional: false,
                ..c
            };
            let m = plain.model_config(&data, &repr).unwrap();
            assert!(!m.label_embedding);
            assert!(m.task.modalities.iter().all(|x| x.name != "class"));
        }
        let e = TrainConfig {
            class_conditional: true,
            ..TrainConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--label-embedding"), "{e}");
    }

    #[test]
    fn the_label_map_scale_reaches_the_label_encoder() {
        let data = crate::data::glyphs::Glyphs::new(1, 20, 16);
        let repr = Representation::fit(&data).unwrap();
        for scale in [0.2, 0.0, 0.5] {
            let c = TrainConfig {
                label_map_scale: scale,
                ..TrainConfig::default()
            };
            let m = c.model_config(&data, &repr).unwrap();
            let label = m
                .task
                .modalities
                .iter()
                .find(|m| matches!(m.kind, ModalityKind::Label { .. }))
                .unwrap();
            assert_eq!(label.encoder_scale, scale);
        }
    }

    #[test]
    fn learning_rate_warms_up_then_follows_a_cosine() {
        let c = TrainConfig {
            steps: 110,
            warmup: 10,
            lr: 1.0,
            ..TrainConfig::default()
        };
        assert!((c.lr_at(0) - 0.1).abs() < 1e-6);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-6);
        assert!(
            (c.lr_at(60) - 0.5).abs() < 1e-6,
            "half way: {}",
            c.lr_at(60)
        );
        assert!(c.lr_at(109) < 0.03 && c.lr_at(109) > 0.0);
        let flat = TrainConfig {
            lr_schedule: "constant".into(),
            ..c.clone()
        };
        assert_eq!(flat.lr_at(100), 1.0);
        assert!(c.ema_at(0) < 0.2 && c.ema_at(100_000) == c.ema);
        assert!(TrainConfig {
            lr_schedule: "linear".into(),
            ..c
        }
        .validate()
        .is_err());
    }

    #[test]
    fn guidance_intervals_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_interval("0.25,1"), Ok((0.25, 1.0)));
        assert_eq!(parse_interval(" 0 , 0.5 "), Ok((0.0, 0.5)));
        for bad in ["0.6,0.4", "-0.1,1", "0,1.5", "0.5", "a,1", "0,1,1", "NaN,1"] {
            let msg = parse_interval(bad).expect_err(bad);
            assert!(
                msg.contains("LO,HI") || msg.contains("lo ≤ hi"),
                "{bad}: {msg}"
            );
        }
        let cfg = TrainConfig {
            guidance_interval: (0.9, 0.1),
            ..TrainConfig::default()
        };
        let msg = cfg.validate().expect_err("a reversed interval").to_string();
        assert!(msg.contains("--guidance-interval"), "{msg}");
        let cfg = TrainConfig {
            mask_ratio: (0.5, 1.5),
            ..TrainConfig::default()
        };
        let msg = cfg
            .validate()
            .expect_err("a mask ratio above 1")
            .to_string();
        assert!(
            msg.contains("mask_ratio") && msg.contains("lo ≤ hi"),
            "{msg}"
        );
    }
}
