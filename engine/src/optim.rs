//! Optimizers that update parameters in place from [`Gradients`]. These are composed of engine
//! ops (a handful of dispatches per parameter tensor); the fused one-kernel AdamW comes with the
//! diffusion kernels.

use std::collections::HashMap;

use crate::autodiff::{Gradients, NoGradGuard};
use crate::error::Result;
use crate::tensor::{Tensor, TensorId};

/// Stochastic gradient descent with optional momentum.
#[derive(Debug)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0 disables it).
    pub momentum: f32,
    velocity: HashMap<TensorId, Tensor>,
}

impl Sgd {
    /// SGD with learning rate `lr` and `momentum`.
    pub fn new(lr: f32, momentum: f32) -> Sgd {
        Sgd {
            lr,
            momentum,
            velocity: HashMap::new(),
        }
    }

    /// Applies one update to every parameter that has a gradient.
    pub fn step(&mut self, params: &[Tensor], grads: &Gradients) -> Result<()> {
        let _ng = NoGradGuard::new();
        for p in params {
            let Some(g) = grads.get(p) else { continue };
            let dir = if self.momentum != 0.0 {
                let v = match self.velocity.get(&p.id()) {
                    Some(v) => v.mul_scalar(self.momentum)?.add(g)?,
                    None => g.clone(),
                };
                self.velocity.insert(p.id(), v.clone());
                v
            } else {
                g.clone()
            };
            p.assign(&p.sub(&dir.mul_scalar(self.lr)?)?)?;
        }
        Ok(())
    }
}

/// Adam with decoupled weight decay (AdamW when `weight_decay` > 0).
#[derive(Debug)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    step: u32,
    moments: HashMap<TensorId, (Tensor, Tensor)>,
}

impl Adam {
    /// Adam with the usual betas (0.9, 0.999) and eps 1e-8.
    pub fn new(lr: f32) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            step: 0,
            moments: HashMap::new(),
        }
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// Applies one update to every parameter that has a gradient.
    pub fn step(&mut self, params: &[Tensor], grads: &Gradients) -> Result<()> {
        let _ng = NoGradGuard::new();
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        for p in params {
            let Some(g) = grads.get(p) else { continue };
            let (m, v) = match self.moments.get(&p.id()) {
                Some((m, v)) => (
                    m.mul_scalar(self.beta1)?
                        .add(&g.mul_scalar(1.0 - self.beta1)?)?,
                    v.mul_scalar(self.beta2)?
                        .add(&g.square()?.mul_scalar(1.0 - self.beta2)?)?,
                ),
                None => (
                    g.mul_scalar(1.0 - self.beta1)?,
                    g.square()?.mul_scalar(1.0 - self.beta2)?,
                ),
            };
            let denom = v.mul_scalar(1.0 / bc2)?.sqrt()?.add_scalar(self.eps)?;
            let update = m.div(&denom)?.mul_scalar(self.lr / bc1)?;
            let decayed = if self.weight_decay > 0.0 {
                p.mul_scalar(1.0 - self.lr * self.weight_decay)?
            } else {
                p.clone()
            };
            p.assign(&decayed.sub(&update)?)?;
            self.moments.insert(p.id(), (m, v));
        }
        Ok(())
    }
}
