//! The multi-modal forward process of MT-Diffusion (docs/method.md §3.3): each secondary
//! modality's encoding E_i(x_i) is aggregated into the diffusion space with one-step weights
//! w_t^(i) = √ᾱ_{t−1} (ρ_i(t) − ρ_i(t−1)), which makes the marginal exactly
//! q(z_t | z_0, X) = N(√ᾱ_t (z_0 + Σ_i ρ_i(t) E_i(x_i)), (1 − ᾱ_t) I).
//!
//! Time indexing: the schedule's index t = 0..T−1 is the paper's time t + 1 (diffusers' convention;
//! ᾱ at paper time 0 is 1). ρ is evaluated at paper time, so `rho(-1)` = ρ(0) = 0.
//! The one-step transition and the closed form are both the engine's `q_sample` kernel with
//! different tables and aggregate scales (`one_step_*` and `marginal_*` below).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// A linear ramp ρ(t) = clip((t − t_a)/(t_b − t_a), 0, 1) in paper time, with t_a and t_b given as
/// fractions of T (docs/method.md §3.3: 0.1 and 0.5 by default). `Ramp::OFF` is ρ ≡ 0 (no aggregation).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ramp {
    /// Where ρ leaves 0, as a fraction of T.
    pub start: f64,
    /// Where ρ reaches 1, as a fraction of T.
    pub end: f64,
    /// Sign and size of the ramp's top (1 for an aggregated modality, −1 for the image transition
    /// bridge of docs/method.md §8.3, 0 for none).
    pub scale: f64,
}

impl Ramp {
    /// ρ ≡ 0: the modality is not aggregated (plain DDPM for it).
    pub const OFF: Ramp = Ramp {
        start: 0.1,
        end: 0.5,
        scale: 0.0,
    };
    /// The default for secondary modalities (docs/method.md §3.3): 0 until 0.1T, 1 from 0.5T.
    pub const DEFAULT: Ramp = Ramp {
        start: 0.1,
        end: 0.5,
        scale: 1.0,
    };

    /// Checks 0 ≤ start < end ≤ 1.
    pub fn validate(&self) -> Result<()> {
        if !(0.0 <= self.start && self.start < self.end && self.end <= 1.0) {
            return Err(Error::Config(format!(
                "ramp needs 0 ≤ start < end ≤ 1, got {} and {}",
                self.start, self.end
            )));
        }
        Ok(())
    }

    /// ρ at schedule index `t` (paper time t + 1); ρ(−1) = 0.
    pub fn rho(&self, t: isize, steps: usize) -> f64 {
        let paper_t = (t + 1) as f64;
        let (a, b) = (self.start * steps as f64, self.end * steps as f64);
        self.scale * ((paper_t - a) / (b - a)).clamp(0.0, 1.0)
    }
}

/// w_t = √ᾱ_{t−1} (ρ(t) − ρ(t−1)): the one-step aggregation weight at schedule index `t`.
pub fn step_weight(schedule: &Schedule, ramp: &Ramp, t: usize) -> f64 {
    let ti = t as isize;
    schedule.alpha_bar(ti - 1).sqrt()
        * (ramp.rho(ti, schedule.len()) - ramp.rho(ti - 1, schedule.len()))
}

/// λ_t = √ᾱ_t ρ(t): the closed-form scale of E(x) in the marginal mean at schedule index `t`.
pub fn marginal_scale(schedule: &Schedule, ramp: &Ramp, t: usize) -> f64 {
    schedule.alphas_cumprod[t].sqrt() * ramp.rho(t as isize, schedule.len())
}

/// α_t = ᾱ_t / ᾱ_{t−1}: the per-step factor consistent with the ᾱ table (1 − β_t up to rounding).
pub fn alpha(schedule: &Schedule, t: usize) -> f64 {
    schedule.alphas_cumprod[t] / schedule.alpha_bar(t as isize - 1)
}

/// Rows `(√α_t, √(1 − α_t))` of the one-step transition q(z_t | z_{t−1}), `[T, 2]` (the
/// `q_sample` layout; its aggregate scale is `one_step_scale`).
pub fn one_step_table(schedule: &Schedule) -> Vec<f32> {
    (0..schedule.len())
        .flat_map(|t| {
            let a = alpha(schedule, t);
            [a.sqrt() as f32, (1.0 - a).sqrt() as f32]
        })
        .collect()
}

/// √α_t · w_t: the aggregate scale of the one-step transition
/// z_t = √α_t (z_{t−1} + w_t E) + √(1 − α_t) ε.
pub fn one_step_scale(schedule: &Schedule, ramp: &Ramp, t: usize) -> f64 {
    alpha(schedule, t).sqrt() * step_weight(schedule, ramp, t)
}
