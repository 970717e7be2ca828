//! The MT-Diffusion model: a task's modalities, their fixed encoders, the shared U-Net, the
//! decoder heads, the forward process used in training, and the multi-task loss
//! (docs/method.md §3–§6; samplers are in `sampler`).
//!
//! Training (docs/method.md §6.2): for per-sample t and ε,
//! z_t = √ᾱ_t (x_0 + Σ_i ρ_i(t) E_i(x_i)) + √(1 − ᾱ_t) ε  (the closed form of docs/method.md §3.3), and
//! L = ‖ε − ε̂(z_t, t)‖² + Σ_i λ_i ℓ_i(D_i(f_θ(z_t, t)), x_i)
//! with ℓ = cross-entropy for labels and MSE for images and vectors. Our choice (docs/method.md
//! §6.2): the (w_t^(i))²-weighted encoder term of the bound (§6.1) is left out.

use mtdiff_engine::ops::diffusion::q_sample;
use mtdiff_engine::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::backbone::{UNet, UNetConfig};
use crate::error::{Error, Result};
use crate::forward::Ramp;
use crate::heads::{pooled_features, HeadOutput, MlpHead};
use crate::modality::{Encoder, ModalityKind, Observation};
use crate::nn::ParamStore;
use crate::schedule::{Schedule, ScheduleConfig};
use crate::task::TaskConfig;

/// Everything that defines a model (saved with checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The noise schedule.
    pub schedule: ScheduleConfig,
    /// The modalities.
    pub task: TaskConfig,
    /// The shared backbone; its `in_channels` and `out_channels` are set from the task.
    pub unet: UNetConfig,
    /// Hidden width of the label and vector MLP heads (docs/method.md §5.2: 256).
    pub head_hidden: usize,
    /// Seed of the parameter initialisation.
    pub init_seed: u64,
    /// MT-Diffusion-E (docs/method.md §4.3, §8.1): an observed label also enters through the U-Net's
    /// conditioning (a class-embedding table added to the time embedding), besides its class
    /// map aggregated into z_t (-M). Our choice where the paper is silent: training feeds the
    /// label with some probability and "no label" otherwise (the trainer's `label_drop`), so one
    /// network serves joint sampling (no label: the label comes from the -M path and the head)
    /// and sampling given the label. Needs a label modality.
    #[serde(default)]
    pub label_embedding: bool,
    /// Min-SNR-γ weighting of the ε loss (Hang et al. 2023, diffusers' `snr_gamma`): sample i's
    /// ε-MSE is weighted by min(SNR_t, γ)/SNR_t with SNR_t = ᾱ_t/(1 − ᾱ_t), which lowers the weight
    /// of the nearly clean timesteps. 0: off (plain mean). Our addition.
    #[serde(default)]
    pub snr_gamma: f64,
}

impl ModelConfig {
    /// A model for `task` with a U-Net of `channels` per level, DDPM's schedule with `steps`
    /// training timesteps (β from 1e-4 to 0.02·1000/T, docs/method.md §6.2).
    pub fn new(task: TaskConfig, channels: &[usize], steps: usize) -> ModelConfig {
        let c = task.image_shape[0];
        ModelConfig {
            schedule: ScheduleConfig {
                num_train_timesteps: steps,
                beta_start: 1e-4,
                beta_end: (0.02 * 1000.0 / steps.max(1) as f64).min(0.999),
                ..ScheduleConfig::default()
            },
            unet: UNetConfig::small(c, task.output_channels(), channels),
            task,
            head_hidden: 256,
            init_seed: 0,
            label_embedding: false,
            snr_gamma: 0.0,
        }
    }
}

/// How a modality is decoded.
enum Head {
    /// Channels `[offset, offset + C)` of the U-Net output.
    ImageChannels(usize),
    /// An MLP on pooled features.
    Mlp(MlpHead),
}

/// What the network predicts at (z_t, t): ε̂ and every head's output.
pub struct Prediction {
    /// ε̂ `[B, C, H, W]`.
    pub eps: Tensor,
    /// One entry per modality: its head's output, None if it has no head.
    pub heads: Vec<Option<HeadOutput>>,
}

/// The terms of the multi-task loss, each a scalar tensor on the GPU.
pub struct LossTerms {
    /// ε-MSE + Σ λ_i ℓ_i (differentiable).
    pub total: Tensor,
    /// ‖ε − ε̂‖² (mean).
    pub eps: Tensor,
    /// (modality name, ℓ_i before its weight) for each modality with a head.
    pub heads: Vec<(String, Tensor)>,
}

/// The labels of one training batch as the label embedding (MT-Diffusion-E) sees them.
#[derive(Clone, Debug)]
pub struct LabelInput {
    /// Each sample's class.
    pub labels: Vec<u32>,
    /// Whether the embedding is shown the sample's class (else "no label").
    pub shown: Vec<bool>,
    /// What the summed cross-entropy of the unshown labels is divided by; `None`: their number in
    /// this batch. A data-parallel replica holding the share f of the global batch passes the
    /// global batch's unshown count × f, so that f × its loss sums over replicas to the global
    /// batch's mean.
    pub denominator: Option<f32>,
}

/// A trainable MT-Diffusion model on a device.
pub struct MtDiffusion {
    config: ModelConfig,
    schedule: Schedule,
    params: ParamStore,
    unet: UNet,
    heads: Vec<Option<Head>>,
    encoders: Vec<Encoder>,
    q_table: Tensor,
    /// ρ_i(t) for every schedule index, `[T, 1]`, for aggregated modalities.
    rho_tables: Vec<Option<Tensor>>,
    /// Min-SNR-γ weights of the ε loss for every schedule index, `[T, 1]` (None: unweighted).
    eps_weights: Option<Tensor>,
    /// The network reads f16 (see [`MtDiffusion::set_f16`]).
    f16: bool,
}

impl MtDiffusion {
    /// Builds the model: validates the configuration, creates the parameters (from
    /// `config.init_seed`) and the fixed encoders (from the task's seed).
    pub fn new(device: &Device, config: &ModelConfig) -> Result<MtDiffusion> {
        let mut config = config.clone();
        let task = &config.task;
        task.validate()?;
        let schedule = Schedule::new(config.schedule.clone())?;
        let shape = task.image_shape;
        let levels = config.unet.channels.len().max(1);
        let f = 1usize << (levels - 1);
        if !shape[1].is_multiple_of(f) || !shape[2].is_multiple_of(f) {
            return Err(Error::Config(format!(
                "image {}×{} does not halve {} times; use fewer U-Net levels or pad the images",
                shape[1],
                shape[2],
                levels - 1
            )));
        }
        if config.head_hidden == 0 {
            return Err(Error::Config("head_hidden must be ≥ 1".to_string()));
        }
        if !(config.snr_gamma.is_finite() && config.snr_gamma >= 0.0) {
            return Err(Error::Config(format!(
                "snr_gamma must be ≥ 0 (0: off), got {}",
                config.snr_gamma
            )));
        }
        config.unet.in_channels = shape[0];
        config.unet.out_channels = task.output_channels();
        config.unet.class_tokens = 0;
        if config.label_embedding {
            let classes = task.modalities.iter().find_map(|m| match m.kind {
                ModalityKind::Label { classes } => Some(classes),
                _ => None,
            });
            let Some(classes) = classes else {
                return Err(Error::Config(
                    "label_embedding needs a task with a label modality".to_string(),
                ));
            };
            config.unet.class_tokens = classes + 1;
        }
        // The parameters are packed in one arena (one optimizer dispatch for all of them) when
        // it fits one storage binding; its size is that of a first, unpacked build with the same
        // seed. Larger models keep one buffer per parameter (one dispatch per tensor).
        let mut probe = ParamStore::new(device, config.init_seed);
        let networks = Self::networks(&mut probe, &config)?;
        let capacity = probe.packed_len();
        let limits = &device.info().limits;
        let fits = (capacity as u64 * 4)
            <= limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size);
        let (params, (unet, heads)) = if fits {
            drop((probe, networks));
            let mut packed = ParamStore::packed(device, config.init_seed, capacity)?;
            let networks = Self::networks(&mut packed, &config)?;
            (packed, networks)
        } else {
            (probe, networks)
        };
        let encoders = task
            .modalities
            .iter()
            .enumerate()
            .map(|(i, m)| Encoder::new(device, m, shape, task.encoder_seed + i as u64))
            .collect::<Result<Vec<_>>>()?;
        let q_table = Tensor::from_slice(device, &schedule.q_sample_table(), &[schedule.len(), 2])?;
        let rho_tables = task
            .modalities
            .iter()
            .map(|m| -> Result<Option<Tensor>> {
                if m.ramp.scale == 0.0 {
                    return Ok(None);
                }
                let rho: Vec<f32> = (0..schedule.len())
                    .map(|t| m.ramp.rho(t as isize, schedule.len()) as f32)
                    .collect();
                Ok(Some(Tensor::from_slice(device, &rho, &[rho.len(), 1])?))
            })
            .collect::<Result<Vec<_>>>()?;
        let eps_weights = match config.snr_gamma {
            0.0 => None,
            gamma => {
                let w: Vec<f32> = (0..schedule.len())
                    .map(|t| min_snr_weight(schedule.alpha_bar(t as isize), gamma) as f32)
                    .collect();
                Some(Tensor::from_slice(device, &w, &[w.len(), 1])?)
            }
        };
        Ok(MtDiffusion {
            config,
            schedule,
            params,
            unet,
            heads,
            encoders,
            q_table,
            rho_tables,
            eps_weights,
            f16: false,
        })
    }

    /// Runs the network with f16 inputs to its convolutions and matmuls (summed in f32; the
    /// engine's [`mtdiff_engine::Autocast`]), or in f32 (the default). For inference
    /// (`mtdiff sample --precision f16`); training scopes its own autocast to the step.
    pub fn set_f16(&mut self, on: bool) {
        self.f16 = on;
    }

    /// The configuration (with the U-Net's channel counts filled in).
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The trainable networks of a validated `config`, their parameters created in `params`:
    /// the shared U-Net and one head per modality (None where it has none or the U-Net's
    /// output channels are its head).
    fn networks(
        params: &mut ParamStore,
        config: &ModelConfig,
    ) -> Result<(UNet, Vec<Option<Head>>)> {
        let task = &config.task;
        let channels = task.image_shape[0];
        let levels = config.unet.channels.len().max(1);
        let unet = UNet::new(params, &config.unet)?;
        let features = config.unet.channels[0] + config.unet.channels[levels - 1];
        let mut heads = Vec::new();
        let mut next_channel = channels;
        for m in &task.modalities {
            let head = match (m.head, m.kind) {
                (false, _) => None,
                (true, k) if k.is_image() => {
                    next_channel += channels;
                    Some(Head::ImageChannels(next_channel - channels))
                }
                (true, ModalityKind::Label { classes: out })
                | (true, ModalityKind::Vector { dim: out }) => Some(Head::Mlp(MlpHead::new(
                    params,
                    &format!("head_{}", m.name),
                    features,
                    config.head_hidden,
                    out,
                )?)),
                (true, _) => None,
            };
            heads.push(head);
        }
        Ok((unet, heads))
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        &self.config.task
    }

    /// The schedule's tables.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The trainable parameters (U-Net and heads), named.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        self.params.device()
    }

    /// Modality `i`'s encoder.
    pub fn encoder(&self, i: usize) -> &Encoder {
        &self.encoders[i]
    }

    /// [B, C, H, W] for a batch of B.
    pub fn sample_dims(&self, b: usize) -> [usize; 4] {
        let s = self.config.task.image_shape;
        [b, s[0], s[1], s[2]]
    }

    /// Checks that `obs` fits modality `i` for a batch of `b`; the message names the modality.
    pub fn check_observation(&self, i: usize, obs: &Observation, b: usize) -> Result<()> {
        let m = &self.config.task.modalities[i];
        let img = self.sample_dims(b);
        let mask = [b, 1, img[2], img[3]];
        let ok = match (m.kind, obs) {
            (ModalityKind::Image | ModalityKind::SecondImage, Observation::Image(x)) => {
                x.dims() == img
            }
            (ModalityKind::Label { .. }, Observation::Label(y)) => {
                y.dims() == [b] && y.dtype() == mtdiff_engine::DType::U32
            }
            (ModalityKind::Vector { dim }, Observation::Vector(r)) => r.dims() == [b, dim],
            (ModalityKind::MaskedImage, Observation::Masked { image, mask: mk }) => {
                image.dims() == img && mk.dims() == mask
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let want = match m.kind {
            ModalityKind::Image | ModalityKind::SecondImage => format!("an image {img:?}"),
            ModalityKind::Label { classes } => format!("u32 labels [{b}] in 0..{classes}"),
            ModalityKind::Vector { dim } => format!("vectors [{b}, {dim}]"),
            ModalityKind::MaskedImage => format!("a masked image {img:?} and a mask {mask:?}"),
        };
        Err(Error::Input(format!(
            "modality {} needs {want}; got something else",
            m.name
        )))
    }

    /// Σ_i ρ_i(t_b) E_i(x_i) over the observed, aggregated modalities, with per-sample `t` (u32
    /// `[B]`); None when nothing is aggregated.
    pub fn aggregate(&self, obs: &[Option<Observation>], t: &Tensor) -> Result<Option<Tensor>> {
        let b = t.dims()[0];
        let mut acc: Option<Tensor> = None;
        for (i, o) in obs.iter().enumerate() {
            let (Some(o), Some(rho)) = (o, &self.rho_tables[i]) else {
                continue;
            };
            let e = self.encoders[i].encode(o, self.config.task.image_shape)?;
            let scaled = e.mul(&rho.gather_rows(t)?.reshape(&[b, 1, 1, 1])?)?;
            acc = Some(match acc {
                Some(a) => a.add(&scaled)?,
                None => scaled,
            });
        }
        Ok(acc)
    }

    /// z_t = √ᾱ_t (x_0 + Σ_i ρ_i(t) E_i(x_i)) + √(1 − ᾱ_t) ε for per-sample `t` (docs/method.md §3.3's
    /// closed form); `obs[0]` must hold the image x_0. Modalities that are None are left out.
    pub fn noisy(&self, obs: &[Option<Observation>], t: &Tensor, noise: &Tensor) -> Result<Tensor> {
        let Some(Observation::Image(x0)) = obs.first().and_then(|o| o.as_ref()) else {
            return Err(Error::Input(
                "the forward process needs the main image (modality 0)".to_string(),
            ));
        };
        let start = match self.aggregate(obs, t)? {
            Some(a) => x0.add(&a)?,
            None => x0.clone(),
        };
        Ok(q_sample(&start, noise, t, &self.q_table, None)?)
    }

    /// The network at (z_t, t): ε̂ and every head's output (with a label embedding: no label).
    pub fn predict(&self, z_t: &Tensor, t: &Tensor) -> Result<Prediction> {
        self.predict_given(z_t, t, None)
    }

    /// Which modality feeds the label embedding (MT-Diffusion-E), if the model has one.
    pub fn embedded_label(&self) -> Option<usize> {
        if !self.config.label_embedding {
            return None;
        }
        let is_label =
            |m: &crate::modality::ModalitySpec| matches!(m.kind, ModalityKind::Label { .. });
        self.config.task.modalities.iter().position(is_label)
    }

    /// The "no label" token of the label embedding (its number of classes).
    pub fn no_label_token(&self) -> Option<u32> {
        (self.config.unet.class_tokens > 0).then(|| (self.config.unet.class_tokens - 1) as u32)
    }

    /// [`MtDiffusion::predict`] with the label embedding's tokens (u32 `[B]`: a class, or
    /// [`MtDiffusion::no_label_token`]); None: no label for every sample.
    pub fn predict_given(
        &self,
        z_t: &Tensor,
        t: &Tensor,
        label_tokens: Option<&Tensor>,
    ) -> Result<Prediction> {
        let _precision = self.f16.then(mtdiff_engine::Autocast::f16);
        let out = self.unet.forward_class(z_t, t, label_tokens)?;
        let c = self.config.task.image_shape[0];
        let eps = out.out.slice(1, 0, c)?;
        let mut pooled: Option<Tensor> = None;
        let mut heads = Vec::new();
        for (head, m) in self.heads.iter().zip(&self.config.task.modalities) {
            heads.push(match head {
                None => None,
                Some(Head::ImageChannels(off)) => {
                    Some(HeadOutput::Image(out.out.slice(1, *off, c)?))
                }
                Some(Head::Mlp(mlp)) => {
                    if pooled.is_none() {
                        pooled = Some(pooled_features(&out.bottleneck, &out.last)?);
                    }
                    let y = mlp.forward(pooled.as_ref().expect("pooled just set"))?;
                    Some(match m.kind {
                        ModalityKind::Label { .. } => HeadOutput::Logits(y),
                        _ => HeadOutput::Vector(y),
                    })
                }
            });
        }
        Ok(Prediction { eps, heads })
    }

    /// The multi-task loss for a fully observed batch `obs` (one entry per modality), per-sample
    /// timesteps `t` (u32 `[B]`) and noise ε (`[B, C, H, W]`); a label embedding sees no label.
    pub fn loss(&self, obs: &[Observation], t: &Tensor, noise: &Tensor) -> Result<LossTerms> {
        self.loss_given(obs, t, noise, None)
    }

    /// [`MtDiffusion::loss`] with labels shown to the label embedding. Our choice where the
    /// paper is silent: the label head's cross-entropy counts only the samples whose label was
    /// not shown (a head that reads the label back from its own input learns nothing), averaged
    /// over those; with none, the term is 0.
    pub fn loss_given(
        &self,
        obs: &[Observation],
        t: &Tensor,
        noise: &Tensor,
        labels: Option<&LabelInput>,
    ) -> Result<LossTerms> {
        let task = &self.config.task;
        if obs.len() != task.modalities.len() {
            return Err(Error::Input(format!(
                "the task has {} modalities, the batch {}",
                task.modalities.len(),
                obs.len()
            )));
        }
        let b = obs[0].batch();
        for (i, o) in obs.iter().enumerate() {
            self.check_observation(i, o, b)?;
        }
        if noise.dims() != self.sample_dims(b) || t.dims() != [b] {
            return Err(Error::Input(format!(
                "noise {} and timesteps {} do not fit a batch of {b}",
                noise.shape(),
                t.shape()
            )));
        }
        let embedded = match (labels, self.embedded_label(), self.no_label_token()) {
            (Some(l), Some(i), Some(none)) => {
                if l.labels.len() != b || l.shown.len() != b {
                    return Err(Error::Input(format!(
                        "label input for {} samples, batch of {b}",
                        l.labels.len()
                    )));
                }
                let tokens: Vec<u32> = l
                    .labels
                    .iter()
                    .zip(&l.shown)
                    .map(|(&y, &shown)| if shown { y } else { none })
                    .collect();
                Some((i, Tensor::from_u32(self.device(), &tokens, &[b])?, l))
            }
            (Some(_), _, _) => {
                return Err(Error::Config(
                    "labels given to a model without a label embedding".to_string(),
                ))
            }
            (None, _, _) => None,
        };
        let given: Vec<Option<Observation>> = obs.iter().cloned().map(Some).collect();
        let z_t = self.noisy(&given, t, noise)?;
        let pred = self.predict_given(&z_t, t, embedded.as_ref().map(|(_, tok, _)| tok))?;
        let eps = match &self.eps_weights {
            None => pred.eps.mse(noise)?,
            Some(w) => {
                let per_sample = pred.eps.sub(noise)?.square()?.mean(&[1, 2, 3], false)?;
                let weight = w.gather_rows(t)?.reshape(&[b])?;
                per_sample.mul(&weight)?.mean(&[0], false)?
            }
        };
        let mut total = eps.clone();
        let mut heads = Vec::new();
        for (k, ((m, o), h)) in task.modalities.iter().zip(obs).zip(&pred.heads).enumerate() {
            let Some(h) = h else { continue };
            let l = match (h, o, &embedded) {
                (HeadOutput::Logits(z), Observation::Label(_), Some((i, _, l))) if *i == k => {
                    cross_entropy_unshown(z, l)?
                }
                (HeadOutput::Logits(z), Observation::Label(y), _) => z.cross_entropy(y)?,
                (HeadOutput::Image(x), Observation::Image(y), _)
                | (HeadOutput::Image(x), Observation::Masked { image: y, .. }, _)
                | (HeadOutput::Vector(x), Observation::Vector(y), _) => x.mse(y)?,
                _ => return Err(Error::Input(format!("modality {}: wrong kind", m.name))),
            };
            if m.loss_weight > 0.0 {
                total = total.add(&l.mul_scalar(m.loss_weight as f32)?)?;
            }
            heads.push((m.name.clone(), l));
        }
        Ok(LossTerms { total, eps, heads })
    }

    /// The heads' predictions for observed images at one timestep `t` (docs/method.md §9:
    /// classification through the diffusion model): z_t is built from the image and the other
    /// observed modalities with noise ε, then the network reads it.
    pub fn infer(
        &self,
        obs: &[Option<Observation>],
        t: usize,
        noise: &Tensor,
    ) -> Result<Prediction> {
        let b = noise.dims()[0];
        if t >= self.schedule.len() {
            return Err(Error::Input(format!(
                "timestep {t} is beyond the schedule's {}",
                self.schedule.len()
            )));
        }
        for (i, o) in obs.iter().enumerate() {
            if let Some(o) = o {
                self.check_observation(i, o, b)?;
            }
        }
        let t = Tensor::from_u32(self.device(), &vec![t as u32; b], &[b])?;
        let z_t = self.noisy(obs, &t, noise)?;
        self.predict(&z_t, &t)
    }

    /// λ_i(t) = √ᾱ_t ρ_i(t) at a schedule index (negative: before the chain, 0).
    pub fn marginal_scale(&self, i: usize, t: isize) -> f64 {
        let ramp: &Ramp = &self.config.task.modalities[i].ramp;
        self.schedule.alpha_bar(t).sqrt() * ramp.rho(t, self.schedule.len())
    }

    /// Whether modality `i` is aggregated into z_t (ρ_i ≢ 0).
    pub fn is_aggregated(&self, i: usize) -> bool {
        self.rho_tables[i].is_some()
    }
}

/// The Min-SNR-γ weight of the ε loss at ᾱ: min(SNR, γ)/SNR with SNR = ᾱ/(1 − ᾱ).
pub fn min_snr_weight(alpha_bar: f64, gamma: f64) -> f64 {
    let snr = alpha_bar / (1.0 - alpha_bar).max(1e-12);
    snr.min(gamma) / snr
}

/// Mean cross-entropy of `logits` `[B, K]` over the samples whose label was not shown to the
/// label embedding (0 when every label was shown).
fn cross_entropy_unshown(logits: &Tensor, l: &LabelInput) -> Result<Tensor> {
    let (b, k) = (logits.dims()[0], logits.dims()[1]);
    let dev = logits.device();
    let rows: Vec<u32> = l
        .labels
        .iter()
        .enumerate()
        .map(|(s, &y)| (s * k) as u32 + y.min(k as u32 - 1))
        .collect();
    let weights: Vec<f32> = l.shown.iter().map(|&s| if s { 0.0 } else { 1.0 }).collect();
    let count = l
        .denominator
        .unwrap_or_else(|| weights.iter().sum::<f32>().max(1.0));
    let picked = logits
        .log_softmax()?
        .reshape(&[b * k, 1])?
        .gather_rows(&Tensor::from_u32(dev, &rows, &[b])?)?;
    Ok(picked
        .mul(&Tensor::from_slice(dev, &weights, &[b, 1])?)?
        .sum_all()?
        .mul_scalar(-1.0 / count)?)
}
