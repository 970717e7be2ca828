//! Optimizers that update parameters in place from [`Gradients`]: the fused [`AdamW`] (global
//! gradient-norm clipping in one reduction and one scale), an [`Ema`] of parameters, and SGD /
//! Adam composed of engine ops (a reference and a fallback). AdamW and the EMA take one dispatch
//! per parameter tensor, or one in all when the parameters are packed in a
//! [`crate::ParamArena`] (multi-tensor: the gradients are copied into one flat buffer beside the
//! flat moments). Kernels: `shaders/optim.wgsl`; CPU reference: `cpu::adamw_step`.

use std::collections::HashMap;

use crate::arena::{packed, Packed};
use crate::autodiff::{Gradients, NoGradGuard};
use crate::error::{Error, Result};
use crate::loss_scale::LossScaler;
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{grid, kernel};
use crate::tensor::{DType, Tensor, TensorId};
use crate::Device;

pub(crate) const SRC: &str = include_str!("../../shaders/optim.wgsl");
/// `shaders/optim.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "optim",
    file: "optim.wgsl",
    source: SRC,
    entries: &[
        entry(
            "adamw",
            &[
                write("ap"),
                read("ag"),
                write("am"),
                write("av"),
                read("agscale"),
            ],
        ),
        entry(
            "adamw_scaled",
            &[
                write("ap"),
                read("ag"),
                write("am"),
                write("av"),
                read("agscale"),
            ],
        ),
        entry("ema", &[write("ee"), read("ep")]),
        entry("sum_squares", &[read("sg"), write("spartial")]),
        entry("clip_scale", &[read("cpartial"), write("cout")]),
    ],
};

crate::kernel_params! {
    /// `adamw`'s parameters (`shaders/optim.wgsl`).
    pub struct AdamwParams {
        /// Elements.
        n: u32,
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to √v̂.
        eps: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
        /// 1 − β₁ᵗ.
        bias_correction1: f32,
        /// 1 − β₂ᵗ.
        bias_correction2: f32,
    }

    /// `ema`'s parameters.
    pub struct EmaParams {
        /// Elements.
        n: u32,
        /// Decay per update.
        decay: f32,
    }

    /// `sum_squares`'s parameters: one tensor's chunks into `partial[slot..]`.
    pub struct SumSquaresParams {
        /// The tensor's elements.
        n: u32,
        /// Elements per workgroup.
        chunk: u32,
        /// Where its partial sums start.
        slot: u32,
    }

    /// `clip_scale`'s parameters.
    pub struct ClipParams {
        /// Partial sums to add.
        slots: u32,
        /// The largest gradient norm kept.
        max_norm: f32,
    }
}

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

/// Hyper-parameters of [`AdamW`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
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
    /// Clip the global gradient norm to this value (None: no clipping).
    pub max_grad_norm: Option<f32>,
}

impl Default for AdamWConfig {
    /// PyTorch's AdamW defaults (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01).
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: None,
        }
    }
}

/// Fused AdamW: one kernel reads the gradient (times the clipping factor, computed on the GPU),
/// updates both moments and the parameter in place — per parameter tensor, or over all of them
/// at once when they are packed.
pub struct AdamW {
    /// Hyper-parameters (the learning rate may be changed between steps).
    pub config: AdamWConfig,
    step: u32,
    /// Per parameter (m, v); views of `flat`'s moments once the packed path has run.
    moments: HashMap<TensorId, (Tensor, Tensor)>,
    /// The packed path's state: the layout, and flat moments and gradient buffers of its length.
    flat: Option<FlatState>,
    /// `[1, NaN]`: the clip factor and norm when not clipping (uploaded once).
    no_clip: Option<Tensor>,
}

/// The flat buffers of packed parameters.
struct FlatState {
    layout: Packed,
    m: Tensor,
    v: Tensor,
    /// The gradients, copied in each step; its padding stays zero.
    g: Tensor,
}

impl AdamW {
    /// An optimizer with no state yet (moments are created as zeros on first use).
    pub fn new(config: AdamWConfig) -> AdamW {
        AdamW {
            config,
            step: 0,
            moments: HashMap::new(),
            flat: None,
            no_clip: None,
        }
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// The (m, v) moments of a parameter, if it has been updated (for checkpoints).
    pub fn moments(&self, param: &Tensor) -> Option<(&Tensor, &Tensor)> {
        self.moments.get(&param.id()).map(|(m, v)| (m, v))
    }

    /// Restores the step count and a parameter's moments (from a checkpoint).
    pub fn restore(&mut self, step: u32, param: &Tensor, m: Tensor, v: Tensor) -> Result<()> {
        if m.dims() != param.dims() || v.dims() != param.dims() {
            return Err(Error::shape(
                "AdamW::restore",
                format!("{}", param.shape()),
                format!("{} and {}", m.shape(), v.shape()),
            ));
        }
        self.step = step;
        match self.moments.get(&param.id()) {
            // Already a view of the packed moments: restore in place.
            Some((pm, pv)) if self.flat.is_some() => {
                pm.assign(&m)?;
                pv.assign(&v)?;
            }
            _ => {
                self.moments.insert(param.id(), (m, v));
            }
        }
        Ok(())
    }

    /// One update of every parameter with a gradient. Returns a 2-element GPU tensor
    /// `[clip factor, global gradient norm]` (read it back only when logging), or None when no
    /// parameter had a gradient.
    pub fn step(&mut self, params: &[Tensor], grads: &Gradients) -> Result<Option<Tensor>> {
        self.step_with(params, grads, None)
    }

    /// [`AdamW::step`] for the gradients of a loss multiplied by `scaler`'s scale
    /// ([`LossScaler::scale`]): they are divided by it (and clipped by their unscaled norm);
    /// when any overflowed the update is skipped on the GPU (parameters and moments unchanged)
    /// and the scale backs off, else it grows on schedule. Returns `[factor, unscaled norm,
    /// skipped]`. The bias correction counts every call, skipped or not (the host cannot know
    /// without a read-back; after the first steps 1 − βᵗ hardly moves).
    pub fn step_scaled(
        &mut self,
        params: &[Tensor],
        grads: &Gradients,
        scaler: &LossScaler,
    ) -> Result<Option<Tensor>> {
        self.step_with(params, grads, Some(scaler))
    }

    fn step_with(
        &mut self,
        params: &[Tensor],
        grads: &Gradients,
        scaler: Option<&LossScaler>,
    ) -> Result<Option<Tensor>> {
        let _ng = NoGradGuard::new();
        let with_grad: Vec<(&Tensor, &Tensor)> = params
            .iter()
            .filter_map(|p| grads.get(p).map(|g| (p, g)))
            .collect();
        let Some((first, _)) = with_grad.first() else {
            return Ok(None);
        };
        let dev = first.device().clone();
        for (p, g) in &with_grad {
            if p.dims() != g.dims() || p.dtype() != DType::F32 {
                return Err(Error::shape(
                    "AdamW::step",
                    format!("gradient of {}", p.shape()),
                    format!("{}", g.shape()),
                ));
            }
        }
        // Packed parameters, every one with a gradient: the multi-tensor path.
        let layout = (with_grad.len() == params.len())
            .then(|| packed(&with_grad.iter().map(|(p, _)| *p).collect::<Vec<_>>()))
            .flatten();
        let flat_grad = match layout {
            Some(layout) => Some(self.gather_gradients(layout, &with_grad)?),
            None => None,
        };
        let all: Vec<&Tensor> = match &flat_grad {
            Some(g) => vec![g],
            None => with_grad.iter().map(|(_, g)| *g).collect(),
        };
        let stats = self.stats(&dev, &all, scaler)?;
        self.step += 1;
        if let (Some(g), Some(f)) = (&flat_grad, &self.flat) {
            // Padding is zero in p, g, m and v, and the update keeps it zero.
            self.update(&f.layout.flat, g, &f.m, &f.v, &stats, scaler.is_some())?;
        } else {
            self.update_each(&dev, &with_grad, &stats, scaler.is_some())?;
        }
        if let Some(sc) = scaler {
            sc.update(&stats)?;
        }
        Ok(Some(stats))
    }

    /// The per-tensor path of [`AdamW::step`]: each parameter's update with its own moments
    /// (made as zeros on first use).
    fn update_each(
        &mut self,
        dev: &Device,
        with_grad: &[(&Tensor, &Tensor)],
        stats: &Tensor,
        scaled: bool,
    ) -> Result<()> {
        for &(p, g) in with_grad {
            if let std::collections::hash_map::Entry::Vacant(e) = self.moments.entry(p.id()) {
                e.insert((Tensor::zeros(dev, p.dims())?, Tensor::zeros(dev, p.dims())?));
            }
            let (m, v) = &self.moments[&p.id()];
            self.update(p, g, m, v, stats, scaled)?;
        }
        Ok(())
    }

    /// The first half of [`AdamW::step`] for data parallelism: copies every gradient into the
    /// flat gradient buffer of the packed parameters and returns that buffer, which the caller
    /// may overwrite in place (e.g. with the sum over replicas) before
    /// [`AdamW::step_gathered`]. An error unless `params` are packed and all have a gradient.
    pub fn gather(&mut self, params: &[Tensor], grads: &Gradients) -> Result<Tensor> {
        let _ng = NoGradGuard::new();
        let mut with_grad = Vec::with_capacity(params.len());
        for p in params {
            let g = grads
                .get(p)
                .ok_or_else(|| Error::invalid("AdamW::gather", "a parameter has no gradient"))?;
            if p.dims() != g.dims() || p.dtype() != DType::F32 {
                return Err(Error::shape(
                    "AdamW::gather",
                    format!("gradient of {}", p.shape()),
                    format!("{}", g.shape()),
                ));
            }
            with_grad.push((p, g));
        }
        let refs: Vec<&Tensor> = params.iter().collect();
        let layout = packed(&refs).ok_or_else(|| {
            Error::invalid(
                "AdamW::gather",
                "the parameters are not packed in one arena (ParamArena)",
            )
        })?;
        self.gather_gradients(layout, &with_grad)
    }

    /// The second half of [`AdamW::step`]: clips and applies the flat gradient of the last
    /// [`AdamW::gather`] (as it is now in the buffer). Returns `[clip factor, gradient norm]`.
    pub fn step_gathered(&mut self) -> Result<Tensor> {
        self.step_gathered_with(None)
    }

    /// [`AdamW::step_gathered`] for gradients of scaled losses, as [`AdamW::step_scaled`]
    /// (every replica keeps its own scaler; the same summed gradient moves them alike).
    pub fn step_gathered_scaled(&mut self, scaler: &LossScaler) -> Result<Tensor> {
        self.step_gathered_with(Some(scaler))
    }

    fn step_gathered_with(&mut self, scaler: Option<&LossScaler>) -> Result<Tensor> {
        let _ng = NoGradGuard::new();
        let f = self
            .flat
            .as_ref()
            .ok_or_else(|| Error::invalid("AdamW::step_gathered", "gather came first"))?;
        let (flat, g, m, v) = (f.layout.flat.clone(), f.g.clone(), f.m.clone(), f.v.clone());
        let dev = flat.device().clone();
        let stats = self.stats(&dev, &[&g], scaler)?;
        self.step += 1;
        self.update(&flat, &g, &m, &v, &stats, scaler.is_some())?;
        if let Some(sc) = scaler {
            sc.update(&stats)?;
        }
        Ok(stats)
    }

    /// `[clip factor, norm]` of `grads` together, or `[1, NaN]` when not clipping; with a loss
    /// scaler `[factor, unscaled norm, skip]` ([`LossScaler`]).
    fn stats(
        &mut self,
        dev: &Device,
        grads: &[&Tensor],
        scaler: Option<&LossScaler>,
    ) -> Result<Tensor> {
        if let Some(sc) = scaler {
            return sc.stats(&sum_squares(grads)?, self.config.max_grad_norm);
        }
        match self.config.max_grad_norm {
            Some(max_norm) => clip_factor(grads, max_norm),
            None => match &self.no_clip {
                Some(t) => Ok(t.clone()),
                None => Ok(self
                    .no_clip
                    .insert(Tensor::from_slice(dev, &[1.0, f32::NAN], &[2])?)
                    .clone()),
            },
        }
    }

    /// One fused AdamW update of `p` (moments `m`, `v`) with gradient `g` times the factor in
    /// `stats`, at the current step's bias corrections; `scaled`: skipped when `stats` says so.
    fn update(
        &self,
        p: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        stats: &Tensor,
        scaled: bool,
    ) -> Result<()> {
        let c = self.config;
        let dev = p.device();
        let entry = if scaled { "adamw_scaled" } else { "adamw" };
        let k = kernel(dev, &KERNELS, entry, &[])?;
        let n = p.numel();
        let params = AdamwParams {
            n: n as u32,
            lr: c.lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            bias_correction1: 1.0 - c.beta1.powi(self.step as i32),
            bias_correction2: 1.0 - c.beta2.powi(self.step as i32),
        };
        dev.dispatch(
            &k,
            &params,
            &[p.arg(), g.arg(), m.arg(), v.arg(), stats.arg()],
            grid(n, 256),
        )
    }

    /// The packed path's flat gradient for this step: (re)builds the flat state when `layout` is
    /// new (the moments so far, e.g. restored from a checkpoint, are copied in and become views
    /// of the flat moments), then copies each gradient into its place.
    fn gather_gradients(
        &mut self,
        layout: Packed,
        with_grad: &[(&Tensor, &Tensor)],
    ) -> Result<Tensor> {
        let params: Vec<&Tensor> = with_grad.iter().map(|(p, _)| *p).collect();
        if !self
            .flat
            .as_ref()
            .is_some_and(|f| f.layout.same_layout(&layout))
        {
            let dev = layout.flat.device().clone();
            let len = layout.flat.numel();
            let (m, v, g) = (
                Tensor::zeros(&dev, &[len])?,
                Tensor::zeros(&dev, &[len])?,
                Tensor::zeros(&dev, &[len])?,
            );
            let (ms, vs) = (layout.views_in(&m, &params), layout.views_in(&v, &params));
            for ((p, fm), fv) in params.iter().zip(ms).zip(vs) {
                if let Some((old_m, old_v)) = self.moments.get(&p.id()) {
                    fm.assign(old_m)?;
                    fv.assign(old_v)?;
                }
                self.moments.insert(p.id(), (fm, fv));
            }
            self.flat = Some(FlatState { layout, m, v, g });
        }
        let f = self.flat.as_ref().expect("the flat state was just made");
        for (dst, (_, g)) in f.layout.views_in(&f.g, &params).iter().zip(with_grad) {
            dst.assign(g)?;
        }
        Ok(f.g.clone())
    }
}

/// Elements per workgroup of the sum of squares of one large (flat) gradient.
const SUM_SQUARES_CHUNK: usize = 4096;

/// `[min(1, max_norm / ‖g‖), ‖g‖]` over all `grads` together, on the GPU: sums of squares into
/// slots (one workgroup per tensor, or, for a single large tensor such as the flat gradient of
/// packed parameters, one workgroup per chunk of it), then one dispatch for the factor.
pub fn clip_factor(grads: &[&Tensor], max_norm: f32) -> Result<Tensor> {
    let partial = sum_squares(grads)?;
    let dev = partial.device().clone();
    let out = Tensor::uninit(&dev, &[2], DType::F32)?;
    let cs = kernel(&dev, &KERNELS, "clip_scale", &[])?;
    dev.dispatch(
        &cs,
        &ClipParams {
            slots: partial.numel() as u32,
            max_norm,
        },
        &[partial.arg(), out.arg()],
        [1, 1, 1],
    )?;
    Ok(out)
}

/// Partial sums of squares of `grads` together, one slot per workgroup (one per tensor, or
/// for a single large tensor up to 256 chunks of it).
fn sum_squares(grads: &[&Tensor]) -> Result<Tensor> {
    let dev = grads
        .first()
        .ok_or_else(|| Error::invalid("clip_factor", "no gradients"))?
        .device()
        .clone();
    let ss = kernel(&dev, &KERNELS, "sum_squares", &[])?;
    // (tensor, workgroups): a lone tensor is split in up to 256 chunks.
    let split: Vec<(&Tensor, usize)> = match grads {
        [g] => vec![(*g, g.numel().div_ceil(SUM_SQUARES_CHUNK).clamp(1, 256))],
        _ => grads.iter().map(|g| (*g, 1)).collect(),
    };
    let slots: usize = split.iter().map(|s| s.1).sum();
    let partial = Tensor::uninit(&dev, &[slots], DType::F32)?;
    let mut slot = 0;
    for (g, groups) in split {
        let chunk = g.numel().div_ceil(groups);
        dev.dispatch(
            &ss,
            &SumSquaresParams {
                n: g.numel() as u32,
                chunk: chunk as u32,
                slot: slot as u32,
            },
            &[g.arg(), partial.arg()],
            [groups as u32, 1, 1],
        )?;
        slot += groups;
    }
    Ok(partial)
}

/// Exponential moving average of parameters (the weights usually sampled from).
pub struct Ema {
    /// Decay per update, e.g. 0.999.
    pub decay: f32,
    shadows: Vec<Tensor>,
    /// For packed parameters: their layout and the flat average the shadows are views of.
    flat: Option<(Packed, Tensor)>,
}

impl Ema {
    /// Starts the average at the current parameter values (a copy; one flat copy when the
    /// parameters are packed).
    pub fn new(params: &[Tensor], decay: f32) -> Result<Ema> {
        let refs: Vec<&Tensor> = params.iter().collect();
        if let Some(layout) = packed(&refs) {
            let flat = Tensor::zeros(layout.flat.device(), layout.flat.dims())?;
            flat.assign(&layout.flat)?;
            let shadows = layout.views_in(&flat, &refs);
            return Ok(Ema {
                decay,
                shadows,
                flat: Some((layout, flat)),
            });
        }
        let shadows = params
            .iter()
            .map(|p| {
                let s = Tensor::zeros(p.device(), p.dims())?;
                s.assign(p)?;
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Ema {
            decay,
            shadows,
            flat: None,
        })
    }

    /// The averaged tensors, in the order of the parameters given to `new`.
    pub fn shadows(&self) -> &[Tensor] {
        &self.shadows
    }

    /// `e = decay·e + (1 − decay)·p` for every parameter (one dispatch each, or one in all for
    /// the packed parameters the average was made from).
    pub fn update(&mut self, params: &[Tensor]) -> Result<()> {
        if params.len() != self.shadows.len() {
            return Err(Error::invalid(
                "Ema::update",
                format!(
                    "{} parameters for {} averages",
                    params.len(),
                    self.shadows.len()
                ),
            ));
        }
        let Some(first) = params.first() else {
            return Ok(());
        };
        let dev = first.device().clone();
        let k = kernel(&dev, &KERNELS, "ema", &[])?;
        let refs: Vec<&Tensor> = params.iter().collect();
        if let (Some((layout, flat)), Some(now)) = (&self.flat, packed(&refs)) {
            if layout.same_layout(&now) {
                let n = flat.numel();
                return dev.dispatch(
                    &k,
                    &EmaParams {
                        n: n as u32,
                        decay: self.decay,
                    },
                    &[flat.arg(), now.flat.arg()],
                    grid(n, 256),
                );
            }
        }
        for (e, p) in self.shadows.iter().zip(params) {
            if e.dims() != p.dims() {
                return Err(Error::shape(
                    "Ema::update",
                    format!("{}", e.shape()),
                    format!("{}", p.shape()),
                ));
            }
            dev.dispatch(
                &k,
                &EmaParams {
                    n: p.numel() as u32,
                    decay: self.decay,
                },
                &[e.arg(), p.arg()],
                grid(p.numel(), 256),
            )?;
        }
        Ok(())
    }
}
