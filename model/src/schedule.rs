//! Beta schedules (linear, scaled-linear, cosine) with a diffusers-compatible configuration, and
//! the per-timestep coefficient tables the engine's fused steps gather from on the GPU
//! (docs/method.md §3 and §7; with every ρ ≡ 0 they are exactly DDPM's and DDIM's).
//!
//! Arithmetic follows diffusers: betas in f32 (linear / scaled-linear from an f32 linspace, the
//! cosine "squaredcos_cap_v2" from f64 then cast, clipped at 0.999), ᾱ as a running f32 product.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How betas grow with t (diffusers' `beta_schedule` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    /// β linear from `beta_start` to `beta_end`.
    Linear,
    /// √β linear (Stable Diffusion's).
    ScaledLinear,
    /// The cosine schedule of Nichol & Dhariwal, β clipped at 0.999.
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredCosCapV2,
}

/// What the network predicts (diffusers' `prediction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    /// The noise ε.
    Epsilon,
    /// The clean sample x₀.
    Sample,
}

/// A scheduler configuration; serialises to the same JSON keys as diffusers' scheduler config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// T, the number of training timesteps.
    pub num_train_timesteps: usize,
    /// First beta (linear and scaled-linear).
    pub beta_start: f64,
    /// Last beta (linear and scaled-linear).
    pub beta_end: f64,
    /// The beta schedule.
    pub beta_schedule: BetaSchedule,
    /// What the model predicts.
    pub prediction_type: PredictionType,
}

impl Default for ScheduleConfig {
    /// DDPM's: T = 1000, linear β from 1e-4 to 0.02, ε-prediction.
    fn default() -> Self {
        ScheduleConfig {
            num_train_timesteps: 1000,
            beta_start: 1e-4,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            prediction_type: PredictionType::Epsilon,
        }
    }
}

/// torch.linspace in f32 (computed in f64, rounded once).
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            if n == 1 {
                a
            } else {
                a + (b - a) * i as f64 / (n - 1) as f64
            }
        })
        .collect()
}

/// The tables of one schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The configuration it came from.
    pub config: ScheduleConfig,
    /// β_t, t = 0..T (f32 values, held as f64).
    pub betas: Vec<f64>,
    /// ᾱ_t = Π_{s≤t} (1 − β_s) (an f32 running product, held as f64).
    pub alphas_cumprod: Vec<f64>,
}

impl Schedule {
    /// Builds the tables; rejects configurations that give no valid schedule.
    pub fn new(config: ScheduleConfig) -> Result<Schedule> {
        let t = config.num_train_timesteps;
        if t < 2 {
            return Err(Error::Config(format!(
                "num_train_timesteps must be ≥ 2, got {t}"
            )));
        }
        let linear_family = matches!(
            config.beta_schedule,
            BetaSchedule::Linear | BetaSchedule::ScaledLinear
        );
        if linear_family
            && !(0.0 < config.beta_start
                && config.beta_start <= config.beta_end
                && config.beta_end < 1.0)
        {
            return Err(Error::Config(format!(
                "need 0 < beta_start ≤ beta_end < 1, got {} and {}",
                config.beta_start, config.beta_end
            )));
        }
        let f32r = |v: f64| v as f32 as f64;
        let betas: Vec<f64> = match config.beta_schedule {
            BetaSchedule::Linear => linspace(config.beta_start, config.beta_end, t)
                .into_iter()
                .map(f32r)
                .collect(),
            BetaSchedule::ScaledLinear => {
                // diffusers: linspace(√start, √end) in f32, then squared in f32.
                linspace(config.beta_start.sqrt(), config.beta_end.sqrt(), t)
                    .into_iter()
                    .map(|v| {
                        let v = v as f32;
                        (v * v) as f64
                    })
                    .collect()
            }
            BetaSchedule::SquaredCosCapV2 => {
                // diffusers' betas_for_alpha_bar (cosine): in f64, then cast to f32. Floating-point
                // division throughout: an integer division here is what made a Rust port's betas
                // all zero.
                let alpha_bar = |x: f64| {
                    ((x + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..t)
                    .map(|i| {
                        let (t1, t2) = (i as f64 / t as f64, (i + 1) as f64 / t as f64);
                        f32r((1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999))
                    })
                    .collect()
            }
        };
        let mut acc = 1.0f32;
        let alphas_cumprod = betas
            .iter()
            .map(|&b| {
                acc *= 1.0 - b as f32;
                acc as f64
            })
            .collect();
        Ok(Schedule {
            config,
            betas,
            alphas_cumprod,
        })
    }

    /// T.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Always false (a schedule has T ≥ 2 steps).
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// ᾱ at t, with ᾱ_{−1} = 1 (diffusers' `set_alpha_to_one`).
    pub fn alpha_bar(&self, t: isize) -> f64 {
        if t < 0 {
            1.0
        } else {
            self.alphas_cumprod[t as usize]
        }
    }

    /// Rows `(√ᾱ_t, √(1−ᾱ_t))` for every t: the `q_sample` table, `[T, 2]` row-major.
    pub fn q_sample_table(&self) -> Vec<f32> {
        self.alphas_cumprod
            .iter()
            .flat_map(|&a| [a.sqrt() as f32, (1.0 - a).sqrt() as f32])
            .collect()
    }

    /// The DDPM posterior from t to `prev` (t − 1, or the previous respaced step) in diffusers'
    /// f32 arithmetic: `(c_x0, c_xt, β̃)` with the mean c_x0·x̂₀ + c_xt·x_t and the "fixed small"
    /// variance β̃ (β here is 1 − ᾱ_t/ᾱ_prev, as diffusers computes it).
    fn ddpm_posterior(&self, t: usize, prev: isize) -> (f32, f32, f32) {
        let ab = self.alphas_cumprod[t] as f32;
        let ab_prev = self.alpha_bar(prev) as f32;
        let (bp, bp_prev) = (1.0 - ab, 1.0 - ab_prev);
        let alpha = ab / ab_prev;
        let beta = 1.0 - alpha;
        let c_x0 = ab_prev.sqrt() * beta / bp;
        let c_xt = alpha.sqrt() * bp_prev / bp;
        (c_x0, c_xt, (bp_prev / bp * beta).max(1e-20))
    }

    /// Rows `(√ᾱ_t, √(1−ᾱ_t), c_x0, c_xt, σ_t)` for the DDPM ancestral step, `[T, 5]`:
    /// the posterior mean c_x0·x̂₀ + c_xt·x_t and σ_t = √β̃_t ("fixed small"; 0 at t = 0).
    pub fn ddpm_table(&self) -> Vec<f32> {
        self.respaced_ddpm_table(self.len())
    }

    /// The DDPM table for `steps` respaced "leading" steps (ADM's respacing: the chain over the
    /// kept timesteps, β'_t = 1 − ᾱ_t/ᾱ_t'); rows of other timesteps are unused. `steps = T`
    /// gives [`Schedule::ddpm_table`].
    pub fn respaced_ddpm_table(&self, steps: usize) -> Vec<f32> {
        let ratio = (self.len() / steps.clamp(1, self.len())) as isize;
        (0..self.len())
            .flat_map(|t| {
                let ab = self.alphas_cumprod[t] as f32;
                let prev = t as isize - ratio;
                let (c_x0, c_xt, var) = self.ddpm_posterior(t, prev);
                let sigma = if prev < 0 { 0.0 } else { var.sqrt() };
                [ab.sqrt(), (1.0 - ab).sqrt(), c_x0, c_xt, sigma]
            })
            .collect()
    }

    /// The "fixed small" posterior variance β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
    pub fn posterior_variance(&self, t: usize) -> f64 {
        self.ddpm_posterior(t, t as isize - 1).2 as f64
    }

    /// The previous timestep of t when sampling with `steps` "leading" steps (negative: t is the
    /// last step).
    pub fn previous_timestep(&self, t: usize, steps: usize) -> isize {
        t as isize - (self.len() / steps.clamp(1, self.len())) as isize
    }

    /// diffusers' "leading" inference timesteps for `steps` sampling steps (descending).
    pub fn leading_timesteps(&self, steps: usize) -> Vec<usize> {
        let steps = steps.clamp(1, self.len());
        let ratio = self.len() / steps;
        (0..steps).rev().map(|i| i * ratio).collect()
    }

    /// Rows `(ᾱ_t, ᾱ_t', σ)` for DDIM with `steps` "leading" steps and `eta`, `[T, 3]`: only the
    /// rows of the inference timesteps are meaningful; t' = t − T/steps (ᾱ = 1 below 0).
    pub fn ddim_table(&self, steps: usize, eta: f64) -> Vec<f32> {
        let ratio = (self.len() / steps.clamp(1, self.len())) as isize;
        (0..self.len())
            .flat_map(|t| {
                let (ab, ab_prev) = (self.alphas_cumprod[t], self.alpha_bar(t as isize - ratio));
                let var = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev);
                [ab, ab_prev, eta * var.max(0.0).sqrt()].map(|v| v as f32)
            })
            .collect()
    }
}
