//! Joint and conditional sampling (docs/method.md §7): DDPM ancestral steps (optionally respaced, as
//! ADM does) and DDIM steps (respaced, with η), for all modalities at once or with any subset
//! observed.
//!
//! Each step works on u_t = z_t − ĉ_t, where ĉ_t = Σ_i λ_i(t) Ê_i is the aggregate in the marginal
//! mean (Ê_i = E_i(x_i) when modality i is observed, E_i of its head's prediction otherwise; a
//! label's prediction is encoded as the softmax expectation). u_t is a plain DDPM sample of the
//! image, so the engine's fused DDPM/DDIM kernels apply unchanged (with x̂₀ clipping), and
//! z_{t'} = u_{t'} + ĉ_{t'}. For DDPM this is exactly docs/method.md §7.1's mean
//! (z_t − β_t/√(1−ᾱ_t) ε̂)/√α_t − Σ_i w_t^(i) Ê_i (tested); for DDIM it is §7.1's update.
//!
//! Observed main image: x̂₀ is pinned to it by replacing ε̂ with the noise it implies, so the
//! chain generates the other modalities given the image. Observed masked image: its encoding is
//! aggregated and the visible pixels are pasted over the result at the end.
//! Label and vector outputs are averaged over the steps with t < 0.1T (docs/method.md §7.4; at least
//! the last step); image heads are read at the last step.

use mtdiff_engine::ops::diffusion::{randn, reverse_step, StepKind};
use mtdiff_engine::{NoGradGuard, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::heads::HeadOutput;
use crate::modality::{ModalityKind, Observation};
use crate::mtdiff::{MtDiffusion, Prediction};

/// Which reverse process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Ancestral DDPM with the "fixed small" variance β̃ (respaced when steps < T).
    Ddpm,
    /// DDIM with η (0: deterministic).
    Ddim,
}

/// How to sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// DDPM or DDIM.
    pub kind: SamplerKind,
    /// Number of reverse steps (≤ T; diffusers' "leading" spacing).
    pub steps: usize,
    /// DDIM's η (ignored by DDPM).
    pub eta: f64,
    /// Seed of the initial noise and of every step's noise.
    pub seed: u64,
    /// Clamp x̂₀ to ±clip (images live in [−1, 1]); 0 disables it.
    pub clip: f32,
    /// Label and vector heads are averaged over the steps with t < this fraction of T.
    pub readout_fraction: f64,
    /// Classifier-free guidance scale s on the label embedding (MT-Diffusion-E with a given
    /// label): ε̂ = ε̂(no label) + s·(ε̂(label) − ε̂(no label)). 1 is plain conditional sampling;
    /// it has no effect without a label embedding or a given label.
    pub guidance: f64,
    /// (lo, hi): guidance acts only at timesteps t with lo·(T − 1) ≤ t ≤ hi·(T − 1); elsewhere
    /// the step is plain conditional (s = 1) and runs one forward pass instead of two. After
    /// Kynkäänniemi et al. 2024 ("Applying guidance in a limited interval"); (0, 1) guides every
    /// step.
    pub guidance_interval: (f64, f64),
}

impl Default for SamplerConfig {
    /// DDPM (respaced to 50 steps), seed 0, clip 1, read-out over the last 10 % of T. Ancestral
    /// sampling is the default because it forgives an imperfect ε̂ far better than deterministic
    /// DDIM (η = 0) does on small, briefly trained models; DDIM with η = 1 is the same chain.
    fn default() -> Self {
        SamplerConfig {
            kind: SamplerKind::Ddpm,
            steps: 50,
            eta: 0.0,
            seed: 0,
            clip: 1.0,
            readout_fraction: 0.1,
            guidance: 1.0,
            guidance_interval: (0.0, 1.0),
        }
    }
}

/// A generated (or, for observed modalities, given) value of one modality.
#[derive(Clone)]
pub enum Sampled {
    /// `[B, C, H, W]`.
    Image(Tensor),
    /// Class probabilities `[B, K]` (argmax for a hard label).
    Probs(Tensor),
    /// `[B, dim]`.
    Vector(Tensor),
}

/// The result of sampling: the main image and one output per other modality.
pub struct Samples {
    /// x̂^(1) `[B, C, H, W]` (the given image when it was observed; visible pixels pasted back
    /// for an observed masked image).
    pub image: Tensor,
    /// `outputs[i]` for modality i ≥ 1: its generated value, None when it was observed or has no
    /// head. `outputs[0]` is None (see `image`).
    pub outputs: Vec<Option<Sampled>>,
}

/// Classifier-free guidance on the label embedding (MT-Diffusion-E with a given label; Ho &
/// Salimans 2022, our addition: the paper has none). The batch runs once with its labels and
/// once with "no label", stacked into one forward pass; ε̂ = ε̂_u + s·(ε̂_c − ε̂_u) and the heads
/// are the conditional half's.
pub struct Guidance {
    /// The labels, then B "no label" tokens: u32 `[2B]`.
    tokens: Tensor,
    /// The labels alone: u32 `[B]` (the steps outside the interval).
    labels: Tensor,
    /// s.
    scale: f32,
    /// Timesteps where guidance acts, inclusive.
    active: std::ops::RangeInclusive<usize>,
}

impl Guidance {
    /// Guidance for the given label tokens, or None when there is nothing to guide (no label
    /// embedding, no given label, or s = 1); `big_t` is the schedule's length T.
    pub fn new(
        model: &MtDiffusion,
        tokens: Option<&Tensor>,
        cfg: &SamplerConfig,
        big_t: usize,
    ) -> Result<Option<Guidance>> {
        let (Some(tokens), Some(none)) = (tokens, model.no_label_token()) else {
            return Ok(None);
        };
        if cfg.guidance == 1.0 {
            return Ok(None);
        }
        let (lo, hi) = cfg.guidance_interval;
        if !(0.0..=1.0).contains(&lo) || !(lo..=1.0).contains(&hi) {
            return Err(Error::Config(format!(
                "the guidance interval must satisfy 0 ≤ lo ≤ hi ≤ 1, got ({lo}, {hi})"
            )));
        }
        // The labels, then as many "no label" tokens, joined on the device (no read-back).
        let b = tokens.numel();
        let nones = Tensor::from_u32(model.device(), &vec![none; b], &[b])?;
        let last = big_t.saturating_sub(1) as f64;
        Ok(Some(Guidance {
            tokens: Tensor::cat(&[tokens, &nones], 0)?,
            labels: tokens.clone(),
            scale: cfg.guidance as f32,
            active: (lo * last).ceil() as usize..=(hi * last).floor() as usize,
        }))
    }

    /// The guided prediction for z_t at timestep `t` (every sample).
    pub fn predict(&self, model: &MtDiffusion, z: &Tensor, t: usize) -> Result<Prediction> {
        let b = z.dims()[0];
        if !self.active.contains(&t) {
            let tt = Tensor::from_u32(model.device(), &vec![t as u32; b], &[b])?;
            return model.predict_given(z, &tt, Some(&self.labels));
        }
        let tt = Tensor::from_u32(model.device(), &vec![t as u32; 2 * b], &[2 * b])?;
        let both = model.predict_given(&Tensor::cat(&[z, z], 0)?, &tt, Some(&self.tokens))?;
        let cond = both.eps.slice(0, 0, b)?;
        let uncond = both.eps.slice(0, b, b)?;
        let eps = uncond.add(&cond.sub(&uncond)?.mul_scalar(self.scale)?)?;
        let first_half = |x: Tensor| x.slice(0, 0, b);
        let heads = both
            .heads
            .into_iter()
            .map(|h| {
                h.map(|h| -> Result<HeadOutput> {
                    Ok(match h {
                        HeadOutput::Image(x) => HeadOutput::Image(first_half(x)?),
                        HeadOutput::Logits(x) => HeadOutput::Logits(first_half(x)?),
                        HeadOutput::Vector(x) => HeadOutput::Vector(first_half(x)?),
                    })
                })
                .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Prediction { eps, heads })
    }
}

/// Running sum of a head's read-out.
struct Readout {
    sum: Option<Tensor>,
    count: usize,
}

impl MtDiffusion {
    /// Generates `batch` samples; `given[i]` is modality i's observed value or None (all None:
    /// joint generation).
    pub fn sample(
        &self,
        given: &[Option<Observation>],
        batch: usize,
        cfg: &SamplerConfig,
    ) -> Result<Samples> {
        self.sample_from(given, batch, cfg, None)
    }

    /// Like [`MtDiffusion::sample`], but when `start` = (z, t₀) is given the chain starts from
    /// z at timestep t₀ instead of pure noise at T, running only the steps with t ≤ t₀
    /// (SDEdit-style noise-and-denoise; build z with [`MtDiffusion::noisy`]).
    pub fn sample_from(
        &self,
        given: &[Option<Observation>],
        batch: usize,
        cfg: &SamplerConfig,
        start: Option<(&Tensor, usize)>,
    ) -> Result<Samples> {
        let _ng = NoGradGuard::new();
        let task = self.task();
        let n = task.modalities.len();
        if given.len() != n {
            return Err(Error::Input(format!(
                "the task has {n} modalities; {} given entries",
                given.len()
            )));
        }
        for (i, g) in given.iter().enumerate() {
            if let Some(o) = g {
                self.check_observation(i, o, batch)?;
            }
        }
        let s = self.schedule();
        let big_t = s.len();
        if cfg.steps == 0 || cfg.steps > big_t {
            return Err(Error::Config(format!(
                "sampling steps must be in 1..={big_t}, got {}",
                cfg.steps
            )));
        }
        if !(cfg.eta >= 0.0 && cfg.eta.is_finite()) {
            return Err(Error::Config(format!("eta must be ≥ 0, got {}", cfg.eta)));
        }
        if !(cfg.guidance >= 0.0 && cfg.guidance.is_finite()) {
            return Err(Error::Config(format!(
                "guidance must be ≥ 0, got {}",
                cfg.guidance
            )));
        }
        let dev = self.device();
        let dims = self.sample_dims(batch);
        let shape = task.image_shape;
        let (kind, table) = match cfg.kind {
            SamplerKind::Ddpm => (StepKind::Ddpm, s.respaced_ddpm_table(cfg.steps)),
            SamplerKind::Ddim => (StepKind::Ddim, s.ddim_table(cfg.steps, cfg.eta)),
        };
        let cols = table.len() / big_t;
        let table = Tensor::from_slice(dev, &table, &[big_t, cols])?;
        let observed_enc: Vec<Option<Tensor>> = given
            .iter()
            .enumerate()
            .map(|(i, g)| match g {
                Some(o) if self.is_aggregated(i) => Ok(Some(self.encoder(i).encode(o, shape)?)),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        let given_image = match &given[0] {
            Some(Observation::Image(x)) => Some(x),
            _ => None,
        };
        // MT-Diffusion-E: a given label also conditions the network through its embedding.
        let label_tokens = match self.embedded_label().map(|i| &given[i]) {
            Some(Some(Observation::Label(y))) => Some(y.clone()),
            _ => None,
        };
        let guidance = Guidance::new(self, label_tokens.as_ref(), cfg, big_t)?;
        let mut timesteps = s.leading_timesteps(cfg.steps);
        if let Some((z0, t0)) = start {
            if z0.dims() != dims {
                return Err(Error::Input(format!(
                    "the starting sample is {}, expected {dims:?}",
                    z0.shape()
                )));
            }
            timesteps.retain(|&t| t <= t0);
        }
        let readout_limit = cfg.readout_fraction * big_t as f64;
        let mut readouts: Vec<Readout> = (0..n)
            .map(|_| Readout {
                sum: None,
                count: 0,
            })
            .collect();
        let mut last_images: Vec<Option<Tensor>> = vec![None; n];
        let mut z = match start {
            Some((z0, _)) => z0.clone(),
            None => randn(dev, &dims, cfg.seed, 0)?,
        };
        for (k, &t) in timesteps.iter().enumerate() {
            let prev = s.previous_timestep(t, cfg.steps);
            let last = k + 1 == timesteps.len();
            let tt = Tensor::from_u32(dev, &vec![t as u32; batch], &[batch])?;
            let pred = match &guidance {
                Some(g) => g.predict(self, &z, t)?,
                None => self.predict_given(&z, &tt, label_tokens.as_ref())?,
            };
            let (mut c_t, mut c_prev): (Option<Tensor>, Option<Tensor>) = (None, None);
            for (i, (enc, head)) in observed_enc.iter().zip(&pred.heads).enumerate() {
                if !self.is_aggregated(i) {
                    continue;
                }
                let e = match (enc, head) {
                    (Some(e), _) => e.clone(),
                    (None, Some(HeadOutput::Logits(z))) => {
                        self.encoder(i).encode_prediction(&z.softmax()?, shape)?
                    }
                    (None, Some(h)) => self.encoder(i).encode_prediction(h.tensor(), shape)?,
                    (None, None) => {
                        return Err(Error::Config(format!(
                            "modality {} is aggregated but has no head",
                            task.modalities[i].name
                        )))
                    }
                };
                let add = |acc: Option<Tensor>, scale: f64| -> Result<Option<Tensor>> {
                    if scale == 0.0 {
                        return Ok(acc);
                    }
                    let term = e.mul_scalar(scale as f32)?;
                    Ok(Some(match acc {
                        Some(a) => a.add(&term)?,
                        None => term,
                    }))
                };
                c_t = add(c_t, self.marginal_scale(i, t as isize))?;
                c_prev = add(c_prev, self.marginal_scale(i, prev))?;
            }
            let u = match &c_t {
                Some(c) => z.sub(c)?,
                None => z.clone(),
            };
            let eps = match given_image {
                // The noise that makes x̂₀ equal the given image: (u − √ᾱ x)/√(1 − ᾱ).
                Some(x) => {
                    let ab = s.alpha_bar(t as isize);
                    u.sub(&x.mul_scalar(ab.sqrt() as f32)?)?
                        .mul_scalar((1.0 / (1.0 - ab).sqrt()) as f32)?
                }
                None => pred.eps.clone(),
            };
            let (u_prev, _x0) = reverse_step(
                kind,
                &u,
                &eps,
                &tt,
                &table,
                None,
                cfg.clip,
                cfg.seed,
                k as u64 + 1,
            )?;
            z = match &c_prev {
                Some(c) => u_prev.add(c)?,
                None => u_prev,
            };
            for (i, h) in pred.heads.iter().enumerate() {
                match h {
                    Some(HeadOutput::Image(x)) if last => last_images[i] = Some(x.clone()),
                    Some(HeadOutput::Logits(_)) | Some(HeadOutput::Vector(_))
                        if last || (t as f64) < readout_limit =>
                    {
                        let v = match h {
                            Some(HeadOutput::Logits(z)) => z.softmax()?,
                            Some(other) => other.tensor().clone(),
                            None => unreachable!("matched Some above"),
                        };
                        let r = &mut readouts[i];
                        r.sum = Some(match r.sum.take() {
                            Some(a) => a.add(&v)?,
                            None => v,
                        });
                        r.count += 1;
                    }
                    _ => {}
                }
            }
        }
        let mut image = match given_image {
            Some(x) => x.clone(),
            None => z,
        };
        if let Some(Some(Observation::Masked { image: xm, mask })) = given
            .iter()
            .find(|g| matches!(g, Some(Observation::Masked { .. })))
        {
            // x·m + z·(1 − m) with a 0/1 mask: exact on both sides (no rounding of the
            // visible pixels, unlike z + (x − z)·m).
            let hidden = mask.neg()?.add_scalar(1.0)?;
            image = xm.mul(mask)?.add(&image.mul(&hidden)?)?;
        }
        let mut outputs = Vec::with_capacity(n);
        for i in 0..n {
            if i == 0 || given[i].is_some() {
                outputs.push(None);
                continue;
            }
            let r = &mut readouts[i];
            outputs.push(match (last_images[i].take(), r.sum.take()) {
                (Some(x), _) => Some(Sampled::Image(x)),
                (None, Some(sum)) => {
                    let mean = sum.mul_scalar(1.0 / r.count as f32)?;
                    Some(match task.modalities[i].kind {
                        ModalityKind::Label { .. } => Sampled::Probs(mean),
                        _ => Sampled::Vector(mean),
                    })
                }
                (None, None) => None,
            });
        }
        Ok(Samples { image, outputs })
    }
}
