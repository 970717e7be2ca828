//! Noise-schedule ops: Gaussian noise from a counter-based generator, the forward-process sample
//! and the fused DDPM / DDIM steps with per-sample timesteps gathered from schedule tables on the
//! GPU, and the sinusoidal timestep embedding. The engine knows the arithmetic, not the method:
//! the tables and the aggregate term (`Aggregate`) are built by the model.
//! Kernels: `shaders/diffusion.wgsl`; CPU reference: `cpu::{philox, normal_at, q_sample, ...}`.

use crate::device::{Binding, Device};
use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_f32, grid, kernel};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/diffusion.wgsl");
/// `shaders/diffusion.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "diffusion",
    file: "diffusion.wgsl",
    source: SRC,
    entries: &[
        entry("randn", &[write("ny")]),
        entry("q_sample", &[SX, SE, ST, STABLE, SOUT]),
        entry("q_sample_agg", &[SX, SE, ST, STABLE, SSCALE, SAGG, SOUT]),
        entry("ddpm_step", &[SX, SE, ST, STABLE, SOUT, SX0]),
        entry(
            "ddpm_step_agg",
            &[SX, SE, ST, STABLE, SSCALE, SAGG, SOUT, SX0],
        ),
        entry("ddim_step", &[SX, SE, ST, STABLE, SOUT, SX0]),
        entry(
            "ddim_step_agg",
            &[SX, SE, ST, STABLE, SSCALE, SAGG, SOUT, SX0],
        ),
        entry(
            "scale_by_table",
            &[read("gg"), read("gt"), read("gtable"), write("gout")],
        ),
        entry("timestep_embedding", &[read("et"), write("eout")]),
    ],
};
// The schedule steps' bindings: x (x_0 or x_t), ε, t, the table, the aggregate's scale and
// tensor (the `_agg` entry points only), the output and x̂_0 (the sampler steps only).
const SX: Binding = read("sx");
const SE: Binding = read("se");
const ST: Binding = read("st");
const STABLE: Binding = read("stable");
const SSCALE: Binding = read("sscale");
const SAGG: Binding = read("sagg");
const SOUT: Binding = write("sout");
const SX0: Binding = write("sx0");

crate::kernel_params! {
    /// `randn`'s parameters (`shaders/diffusion.wgsl`): the seed and stream as 32-bit halves.
    pub struct RandnParams {
        /// Elements.
        n: u32,
        /// The seed's low half.
        seed_lo: u32,
        /// The seed's high half.
        seed_hi: u32,
        /// The stream's low half.
        stream_lo: u32,
        /// The stream's high half.
        stream_hi: u32,
        /// Index in the stream of the first element.
        first: u32,
    }

    /// The schedule step kernels' parameters (`q_sample`, `ddpm_step`, `ddim_step`).
    pub struct StepParams {
        /// Elements.
        n: u32,
        /// Elements per sample.
        per_sample: u32,
        /// Coefficients per table row.
        cols: u32,
        /// Scales per sample (1, or 2 for DDIM's t and t').
        scols: u32,
        /// Clip x̂₀ to ±clip when > 0.
        clip: f32,
        /// The noise seed's low half.
        seed_lo: u32,
        /// Its high half.
        seed_hi: u32,
        /// The noise stream's low half.
        stream_lo: u32,
        /// Its high half.
        stream_hi: u32,
    }

    /// `scale_by_table`'s parameters: `out[i] = table[t[i / per_sample]·cols + col]·g[i]`.
    pub struct ScaleByTableParams {
        /// Elements.
        n: u32,
        /// Elements per sample.
        per_sample: u32,
        /// Coefficients per table row.
        cols: u32,
        /// The coefficient used.
        col: u32,
    }

    /// `timestep_embedding`'s parameters.
    pub struct EmbeddingParams {
        /// Timesteps.
        batch: u32,
        /// Embedding width.
        dim: u32,
        /// The longest period.
        max_period: f32,
        /// The frequency denominator's shift (`half − shift`).
        shift: f32,
        /// 1: cos half first.
        flip: u32,
    }
}

/// A per-sample scale times a tensor of the sample's shape, added inside a schedule step
/// (MT-Diffusion's aggregated modality encodings, docs/method.md §3 and §7).
#[derive(Clone, Copy)]
pub struct Aggregate<'a> {
    /// `[B]` (or `[B, 2]` for DDIM: the scales at t and at the previous step).
    pub scale: &'a Tensor,
    /// Same shape as the sample.
    pub agg: &'a Tensor,
}

/// A tensor of standard normal samples, a pure function of (seed, stream, element index):
/// reproducible, and nothing is uploaded.
pub fn randn(device: &Device, shape: &[usize], seed: u64, stream: u64) -> Result<Tensor> {
    randn_from(device, shape, seed, stream, 0)
}

/// Elements `first..first + numel(shape)` of the normal stream of (seed, stream): the rows of
/// a larger [`randn`] tensor that start at element `first` (how a data-parallel replica draws
/// its share of the global batch's noise).
pub fn randn_from(
    device: &Device,
    shape: &[usize],
    seed: u64,
    stream: u64,
    first: usize,
) -> Result<Tensor> {
    let out = Tensor::uninit(device, shape, DType::F32)?;
    let n = out.numel();
    let first = u32::try_from(first)
        .ok()
        .filter(|f| f.checked_add(n as u32).is_some())
        .ok_or_else(|| Error::invalid("randn_from", "the stream is indexed by u32"))?;
    let k = kernel(device, &KERNELS, "randn", &[])?;
    let params = RandnParams {
        n: n as u32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        stream_lo: stream as u32,
        stream_hi: (stream >> 32) as u32,
        first,
    };
    device.dispatch(&k, &params, &[out.arg()], grid(n, 256))?;
    Ok(out)
}

/// The shape of a step's inputs: its op name, table columns and aggregate-scale columns.
#[derive(Clone, Copy)]
struct StepLayout {
    op: &'static str,
    cols: usize,
    scols: usize,
}

/// Checks the shared shapes of a step: sample `[B, ..]` (and `others` alike), timesteps `[B]`
/// (u32), table `[T, cols]`, aggregate scale `[B]` or `[B, scols]`. Returns B.
fn check_step(
    l: StepLayout,
    x: &Tensor,
    others: &[&Tensor],
    t: &Tensor,
    table: &Tensor,
    agg: Option<&Aggregate<'_>>,
) -> Result<usize> {
    let op = l.op;
    check_f32(op, &[x, table])?;
    t.expect_dtype(op, DType::U32)?;
    let b = *x
        .dims()
        .first()
        .ok_or_else(|| Error::shape(op, "a batch [B, ..]", "a scalar"))?;
    for o in others {
        check_f32(op, &[x, o])?;
        if o.dims() != x.dims() {
            return Err(Error::shape(
                op,
                format!("{}", x.shape()),
                format!("{}", o.shape()),
            ));
        }
    }
    if t.dims() != [b] {
        return Err(Error::shape(
            op,
            format!("timesteps [{b}]"),
            format!("{}", t.shape()),
        ));
    }
    if table.rank() != 2 || table.dims()[1] != l.cols {
        return Err(Error::shape(
            op,
            format!("a schedule table [T, {}]", l.cols),
            format!("{}", table.shape()),
        ));
    }
    if let Some(a) = agg {
        check_f32(op, &[x, a.scale, a.agg])?;
        let want: Vec<usize> = if l.scols == 1 {
            vec![b]
        } else {
            vec![b, l.scols]
        };
        if a.scale.dims() != want || a.agg.dims() != x.dims() {
            return Err(Error::shape(
                op,
                format!("aggregate scale {want:?} and tensor {}", x.shape()),
                format!("{} and {}", a.scale.shape(), a.agg.shape()),
            ));
        }
    }
    Ok(b)
}

/// The step kernels' parameters.
fn step_params(
    l: StepLayout,
    x: &Tensor,
    b: usize,
    clip: f32,
    (seed, stream): (u64, u64),
) -> StepParams {
    let n = x.numel();
    StepParams {
        n: n as u32,
        per_sample: (n / b.max(1)) as u32,
        cols: l.cols as u32,
        scols: l.scols as u32,
        clip,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        stream_lo: stream as u32,
        stream_hi: (stream >> 32) as u32,
    }
}

/// `x_t = √ᾱ[t]·x_0 + √(1−ᾱ[t])·ε (+ scale·agg)` with per-sample `t`; `table` rows are
/// `(√ᾱ_t, √(1−ᾱ_t))`. Differentiable with respect to `x0`, `eps` and the aggregate tensor.
pub fn q_sample(
    x0: &Tensor,
    eps: &Tensor,
    t: &Tensor,
    table: &Tensor,
    agg: Option<Aggregate<'_>>,
) -> Result<Tensor> {
    let op = "q_sample";
    let layout = StepLayout {
        op,
        cols: 2,
        scols: 1,
    };
    let b = check_step(layout, x0, &[eps], t, table, agg.as_ref())?;
    let dev = x0.device();
    let out = Tensor::uninit(dev, x0.dims(), DType::F32)?;
    let entry = if agg.is_some() {
        "q_sample_agg"
    } else {
        "q_sample"
    };
    let k = kernel(dev, &KERNELS, entry, &[])?;
    let params = step_params(layout, x0, b, 0.0, (0, 0));
    let mut args = vec![x0.arg(), eps.arg(), t.arg(), table.arg()];
    if let Some(a) = &agg {
        args.extend([a.scale.arg(), a.agg.arg()]);
    }
    args.push(out.arg());
    dev.dispatch(&k, &params, &args, grid(out.numel(), 256))?;
    let mut inputs = vec![x0, eps];
    inputs.extend(agg.map(|a| a.agg));
    let (t, table) = (t.clone(), table.detach());
    let scale = agg.map(|a| a.scale.detach());
    let per_sample = x0.numel() / b.max(1);
    Ok(out.record(
        op,
        &inputs,
        Box::new(move |g, needs| {
            let by_col = |col: u32| -> Result<Tensor> {
                let dev = g.device();
                let o = Tensor::uninit(dev, g.dims(), DType::F32)?;
                let k = kernel(dev, &KERNELS, "scale_by_table", &[])?;
                let params = ScaleByTableParams {
                    n: g.numel() as u32,
                    per_sample: per_sample as u32,
                    cols: 2,
                    col,
                };
                dev.dispatch(
                    &k,
                    &params,
                    &[g.arg(), t.arg(), table.arg(), o.arg()],
                    grid(g.numel(), 256),
                )?;
                Ok(o)
            };
            let mut grads = vec![
                if needs[0] { Some(by_col(0)?) } else { None },
                if needs[1] { Some(by_col(1)?) } else { None },
            ];
            if let Some(s) = &scale {
                let mut sd = vec![1; g.rank()];
                sd[0] = g.dims()[0];
                grads.push(if needs[2] {
                    Some(g.mul(&s.reshape(&sd)?)?)
                } else {
                    None
                });
            }
            Ok(grads)
        }),
    ))
}

/// Which fused reverse step to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// DDPM ancestral; table rows `(√ᾱ_t, √(1−ᾱ_t), c_x0, c_xt, σ_t)`; aggregate scale `[B]`
    /// subtracted from the mean.
    Ddpm,
    /// DDIM from t to the respaced t'; table rows `(ᾱ_t, ᾱ_t', σ)`; aggregate scales `[B, 2]`
    /// (at t and at t').
    Ddim,
}

/// One fused reverse step for a batch with per-sample timesteps: returns `(x_prev, x̂_0)`.
/// `clip > 0` clamps x̂_0 to ±clip. The noise z is drawn on the GPU from `(seed, stream)`.
/// Not differentiable (sampling).
#[allow(clippy::too_many_arguments)]
pub fn reverse_step(
    kind: StepKind,
    x_t: &Tensor,
    eps: &Tensor,
    t: &Tensor,
    table: &Tensor,
    agg: Option<Aggregate<'_>>,
    clip: f32,
    seed: u64,
    stream: u64,
) -> Result<(Tensor, Tensor)> {
    let layout = match kind {
        StepKind::Ddpm => StepLayout {
            op: "ddpm_step",
            cols: 5,
            scols: 1,
        },
        StepKind::Ddim => StepLayout {
            op: "ddim_step",
            cols: 3,
            scols: 2,
        },
    };
    let b = check_step(layout, x_t, &[eps], t, table, agg.as_ref())?;
    let dev = x_t.device();
    let out = Tensor::uninit(dev, x_t.dims(), DType::F32)?;
    let x0 = Tensor::uninit(dev, x_t.dims(), DType::F32)?;
    let entry = match (kind, agg.is_some()) {
        (StepKind::Ddpm, false) => "ddpm_step",
        (StepKind::Ddpm, true) => "ddpm_step_agg",
        (StepKind::Ddim, false) => "ddim_step",
        (StepKind::Ddim, true) => "ddim_step_agg",
    };
    let k = kernel(dev, &KERNELS, entry, &[])?;
    let params = step_params(layout, x_t, b, clip, (seed, stream));
    let mut args = vec![x_t.arg(), eps.arg(), t.arg(), table.arg()];
    if let Some(a) = &agg {
        args.extend([a.scale.arg(), a.agg.arg()]);
    }
    args.extend([out.arg(), x0.arg()]);
    dev.dispatch(&k, &params, &args, grid(out.numel(), 256))?;
    Ok((out, x0))
}

/// Sinusoidal embedding of u32 timesteps `[B]` → `[B, dim]`: frequencies
/// `exp(−ln(max_period)·j/(dim/2 − shift))`, sin half then cos half (`flip` swaps them).
/// `shift = 0` is the reference U-Net's; diffusers' default is `shift = 1`.
pub fn timestep_embedding(
    t: &Tensor,
    dim: usize,
    max_period: f32,
    shift: f32,
    flip: bool,
) -> Result<Tensor> {
    let op = "timestep_embedding";
    t.expect_dtype(op, DType::U32)?;
    if t.rank() != 1 || dim < 2 {
        return Err(Error::shape(
            op,
            "timesteps [B] and dim ≥ 2",
            format!("{} and {dim}", t.shape()),
        ));
    }
    let dev = t.device();
    let b = t.dims()[0];
    let out = Tensor::uninit(dev, &[b, dim], DType::F32)?;
    let k = kernel(dev, &KERNELS, "timestep_embedding", &[])?;
    let params = EmbeddingParams {
        batch: b as u32,
        dim: dim as u32,
        max_period,
        shift,
        flip: flip as u32,
    };
    dev.dispatch(&k, &params, &[t.arg(), out.arg()], grid(b * dim, 256))?;
    Ok(out)
}
