//! Group norm with statistics, affine and optional SiLU in one dispatch (every U-Net block does
//! GroupNorm→SiLU); the backward is one dispatch for dx and the per-(n, c) sums on CPU
//! adapters, dedicated kernels for the input and for γ/β on GPUs.
//! Kernels: `shaders/norm.wgsl`; CPU reference: `cpu::group_norm`, `cpu::group_norm_backward`.

use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_f32, check_float, f16_bindings, grid, kernel, kernel_f16, kernel_reading};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/norm.wgsl");
/// `shaders/norm.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "norm",
    file: "norm.wgsl",
    source: SRC,
    entries: &[
        entry(
            "group_norm_forward",
            &[
                read("fx"),
                read("fgamma"),
                read("fbeta"),
                write("fstats"),
                write("fy"),
            ],
        ),
        entry(
            "group_norm_forward_thread",
            &[
                read("fx"),
                read("fgamma"),
                read("fbeta"),
                write("fstats"),
                write("fy"),
            ],
        ),
        entry(
            "group_norm_forward_vec4",
            &[
                read("qx"),
                read("fgamma"),
                read("fbeta"),
                write("fstats"),
                write("qy"),
            ],
        ),
        entry(
            "group_norm_backward_input",
            &[
                read("bx"),
                read("bdy"),
                read("bstats"),
                read("bgamma"),
                read("bbeta"),
                write("bout"),
            ],
        ),
        entry(
            "group_norm_backward_affine",
            &[
                read("bx"),
                read("bdy"),
                read("bstats"),
                read("bgamma"),
                read("bbeta"),
                write("bout"),
            ],
        ),
        entry(
            "group_norm_backward_nc_thread",
            &[
                read("bx"),
                read("bdy"),
                read("bstats"),
                read("bgamma"),
                read("bbeta"),
                write("bout"),
            ],
        ),
        entry(
            "group_norm_backward_row",
            &[
                read("bx"),
                read("bdy"),
                read("bstats"),
                read("bgamma"),
                read("bbeta"),
                write("bout"),
                write("bdx"),
            ],
        ),
        entry(
            "group_norm_backward_affine_reduce",
            &[read("bsums"), write("bdx")],
        ),
        entry(
            "group_norm_backward_nc_vec4",
            &[
                read("wx"),
                read("wdy"),
                read("wstats"),
                read("wgamma"),
                read("wbeta"),
                write("wnc"),
            ],
        ),
        entry(
            "group_norm_backward_row_vec4",
            &[
                read("wx"),
                read("wdy"),
                read("wstats"),
                read("wgamma"),
                read("wbeta"),
                write("wnc"),
                write("wout"),
            ],
        ),
    ],
};

crate::kernel_params! {
    /// `shaders/norm.wgsl`'s parameters, shared by its forward and backward kernels.
    pub struct NormParams {
        /// N·G rows, one per sample and group.
        rows: u32,
        /// L = (C/G)·S elements per row.
        len: u32,
        /// S, the spatial size.
        spatial: u32,
        /// C.
        channels: u32,
        /// 1: SiLU after the affine.
        silu: u32,
        /// Added to the variance.
        eps: f32,
        /// N.
        batch: u32,
        /// γ/β as 0 `[C]`, 1 `[N, C]` or 2 `[C, N]` (packed scale-shift).
        affine_layout: u32,
        /// Added to the stored γ: 1 for packed scale-shift (γ = 1 + s), else 0.
        gamma_offset: f32,
    }
}

/// The γ and β gradients, where wanted.
type Grads2 = (Option<Tensor>, Option<Tensor>);

/// How a group norm gets its affine.
#[derive(Clone, Copy)]
enum Affine<'a> {
    /// γ and β, both `[C]` or both `[N, C]`.
    Separate(&'a Tensor, &'a Tensor),
    /// `[2, C, N]`: γ = 1 + row 0, β = row 1 (channel-major).
    PackedScaleShift(&'a Tensor),
}

/// The input x's binding in `entry` of `shaders/norm.wgsl` when x is f16 (read as f16 pairs),
/// else none.
fn x_f16(x: &Tensor, entry: &str) -> Vec<&'static str> {
    let name = match (
        entry.starts_with("group_norm_forward"),
        entry.ends_with("_vec4"),
    ) {
        (true, true) => "qx",
        (true, false) => "fx",
        (false, true) => "wx",
        (false, false) => "bx",
    };
    f16_bindings(&[(name, x)])
}

impl Tensor {
    /// Group norm of an `[N, C, *]` tensor over `groups` groups of channels, then `γ·x̂ + β`,
    /// then SiLU when `silu`. `gamma` and `beta` are both `[C]` (per channel) or both `[N, C]`
    /// (per sample and channel: AdaGN's scale-shift conditioning in one pass). Differentiable
    /// in x, γ and β. x may be f16 (read as f16, computed in f32; f32 output and gradients).
    /// Under f16 [`crate::Autocast`] the output may be f16 (see `ops::precision`).
    pub fn group_norm(
        &self,
        groups: usize,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        self.group_norm_impl(groups, Affine::Separate(gamma, beta), eps, silu)
    }

    /// Group norm with AdaGN's scale-shift conditioning packed in one channel-major tensor
    /// `scale_shift` `[2, C, N]` (as a projection `W·embᵀ` gives it, so the rows of several
    /// blocks' projections computed in one matmul are views): γ = 1 + scale_shift[0],
    /// β = scale_shift[1], per sample and channel, then SiLU when `silu`. The same kernels as
    /// [`Tensor::group_norm`] with no copy of γ or β: the gradient of `scale_shift` is the
    /// backward's per-(n, c) sums as they lie. Differentiable in x and `scale_shift`.
    pub fn group_norm_scale_shift(
        &self,
        groups: usize,
        scale_shift: &Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        let op = "group_norm_scale_shift";
        check_float(op, &[self, scale_shift])?;
        check_f32(op, &[scale_shift])?;
        let d = self.dims();
        if d.len() < 2 || scale_shift.dims() != [2, d[1], d[0]] {
            return Err(Error::shape(
                op,
                format!(
                    "x [N, C, ..] and scale_shift [2, C, N] for x {}",
                    self.shape()
                ),
                format!("{}", scale_shift.shape()),
            ));
        }
        self.group_norm_impl(groups, Affine::PackedScaleShift(scale_shift), eps, silu)
    }

    fn group_norm_impl(
        &self,
        groups: usize,
        affine: Affine<'_>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        let op = "group_norm";
        let packed = match affine {
            Affine::PackedScaleShift(t) => Some(t),
            Affine::Separate(..) => None,
        };
        // γ and β of a packed scale-shift: the two rows of it, views where the offset can be
        // bound.
        let (gamma, beta) = match affine {
            Affine::Separate(g, b) => (g.clone(), b.clone()),
            Affine::PackedScaleShift(t) => {
                let (c, n) = (t.dims()[1], t.dims()[2]);
                let rows = t.reshape(&[2 * c, n])?;
                (rows.narrow(0, c)?, rows.narrow(c, c)?)
            }
        };
        let (gamma, beta) = (&gamma, &beta);
        check_float(op, &[self, gamma, beta])?;
        check_f32(op, &[gamma, beta])?;
        let d = self.dims();
        if d.len() < 2 || groups == 0 || !d[1].is_multiple_of(groups) {
            return Err(Error::shape(
                op,
                format!("[N, C, ..] with C divisible by {groups} groups"),
                format!("{}", self.shape()),
            ));
        }
        let (n, c) = (d[0], d[1]);
        let per_sample = packed.is_some() || (gamma.dims() == [n, c] && beta.dims() == [n, c]);
        if !per_sample && (gamma.dims() != [c] || beta.dims() != [c]) {
            return Err(Error::shape(
                op,
                format!("γ and β both of [{c}] or both of [{n}, {c}]"),
                format!("{} and {}", gamma.shape(), beta.shape()),
            ));
        }
        let s: usize = d[2..].iter().product();
        let rows = n * groups;
        let l = (c / groups) * s;
        let params = NormParams {
            rows: rows as u32,
            len: l as u32,
            spatial: s as u32,
            channels: c as u32,
            silu: silu as u32,
            eps,
            batch: n as u32,
            affine_layout: match (packed.is_some(), per_sample) {
                (true, _) => 2,
                (false, true) => 1,
                (false, false) => 0,
            },
            gamma_offset: if packed.is_some() { 1.0 } else { 0.0 },
        };
        let dev = self.device();
        let cpu = dev.kernel_profile() == crate::KernelProfile::Cpu;
        // With S divisible by 4 every quad of elements shares its row and γ/β: the *_vec4
        // kernels take a quad per thread (one vec4 access instead of four lane accesses).
        let quads = s.is_multiple_of(4);
        let stats = Tensor::uninit(dev, &[rows, 2], DType::F32)?;
        // Statistics and output in one dispatch. Rows are few and long: a workgroup each on a
        // GPU; a thread each on a CPU adapter, where workgroup barriers cost more than they save.
        let (entry, wgs) = match (cpu, quads) {
            (true, true) => ("group_norm_forward_vec4", grid(rows, 64)),
            (true, false) => ("group_norm_forward_thread", grid(rows, 64)),
            (false, _) => ("group_norm_forward", grid(rows, 1)),
        };
        // Under f16 autocast the quad kernel writes its output in f16, rounded as `to_f16`
        // would: the convolution it feeds reads it without a cast (the others write f32).
        let f16_out: &[&'static str] =
            if entry == "group_norm_forward_vec4" && crate::ops::precision::autocast_f16() {
                &["qy"]
            } else {
                &[]
            };
        let dtype = if f16_out.is_empty() {
            DType::F32
        } else {
            DType::F16
        };
        let out = Tensor::uninit(dev, d, dtype)?;
        let k = kernel_f16(dev, &KERNELS, entry, &[], (&x_f16(self, entry), f16_out))?;
        dev.dispatch(
            &k,
            &params,
            &[self.arg(), gamma.arg(), beta.arg(), stats.arg(), out.arg()],
            wgs,
        )?;
        let (x, gm, bt) = (self.detach(), gamma.detach(), beta.detach());
        let inputs: Vec<&Tensor> = match packed {
            Some(t) => vec![self, t],
            None => vec![self, gamma, beta],
        };
        let is_packed = packed.is_some();
        Ok(out.record(
            op,
            &inputs,
            Box::new(move |g, needs| {
                // Packed: needs = [x, scale_shift]; as three inputs, γ and β share the second.
                let needs = if is_packed {
                    [needs[0], needs[1], needs[1]]
                } else {
                    [needs[0], needs[1], needs[2]]
                };
                let dev = g.device();
                let inputs = [x.arg(), g.arg(), stats.arg(), gm.arg(), bt.arg()];
                // Runs a backward kernel on the inputs plus `extra` (the outputs).
                let run = |entry: &'static str, extra: &[&Tensor], wgs: [u32; 3]| -> Result<()> {
                    let k = kernel_reading(dev, &KERNELS, entry, &[], &x_f16(&x, entry))?;
                    let mut args = inputs.to_vec();
                    args.extend(extra.iter().map(|t| t.arg()));
                    dev.dispatch(&k, &params, &args, wgs)
                };
                // Per-(n, c) sums [Σ dz·x̂ (N·C), Σ dz (N·C)]: the γ/β gradient of per-sample
                // affines, and on CPU adapters also the source of the per-channel γ/β gradient.
                let nc_sums = || -> Result<Tensor> {
                    let nc = Tensor::uninit(dev, &[2 * n * c], DType::F32)?;
                    let entry = if quads {
                        "group_norm_backward_nc_vec4"
                    } else {
                        "group_norm_backward_nc_thread"
                    };
                    run(entry, &[&nc], grid(n * c, 64))?;
                    Ok(nc)
                };
                // (dγ, dβ) from the two halves of `both` (2·len values), shaped `dims`: views
                // where the offset can be bound, else buffer copies (no dispatch either way).
                let halves = |both: &Tensor, len: usize, dims: &[usize]| -> Result<Grads2> {
                    Ok((
                        Some(both.narrow(0, len)?.reshape(dims)?),
                        Some(both.narrow(len, len)?.reshape(dims)?),
                    ))
                };
                // CPU adapters: one thread per row does its whole backward in one dispatch, the
                // per-(n, c) sums of dz·x̂ and dz and dx (without dx, one thread per (n, c) the
                // sums); dγ, dβ of per-channel affines are then a sum over n. GPUs: one workgroup
                // per row / per channel with tree reductions.
                let (nc, dx) = if cpu && needs[0] {
                    let nc = Tensor::uninit(dev, &[2 * n * c], DType::F32)?;
                    let dx = Tensor::uninit(dev, x.dims(), DType::F32)?;
                    let entry = if quads {
                        "group_norm_backward_row_vec4"
                    } else {
                        "group_norm_backward_row"
                    };
                    run(entry, &[&nc, &dx], grid(rows, 64))?;
                    (Some(nc), Some(dx))
                } else if cpu {
                    (Some(nc_sums()?), None)
                } else if needs[0] {
                    let dx = Tensor::uninit(dev, x.dims(), DType::F32)?;
                    run("group_norm_backward_input", &[&dx], grid(rows, 1))?;
                    (None, Some(dx))
                } else {
                    (None, None)
                };
                if is_packed {
                    // [Σ dz·x̂, Σ dz], each channel-major [C, N], is d scale_shift [2, C, N]
                    // (d(1 + s) = ds).
                    let ds = if needs[1] {
                        Some(match &nc {
                            Some(nc) => nc.reshape(&[2, c, n])?,
                            None => nc_sums()?.reshape(&[2, c, n])?,
                        })
                    } else {
                        None
                    };
                    return Ok(vec![dx, ds]);
                }
                let (dg, db) = if !(needs[1] || needs[2]) {
                    (None, None)
                } else if per_sample {
                    // The per-(n, c) sums are the whole gradient.
                    match &nc {
                        Some(nc) => halves(nc, n * c, &[n, c])?,
                        None => halves(&nc_sums()?, n * c, &[n, c])?,
                    }
                } else {
                    let both = Tensor::uninit(dev, &[2 * c], DType::F32)?;
                    match &nc {
                        Some(nc) => {
                            // Reads only the sums: none of the inputs is bound.
                            let k =
                                kernel(dev, &KERNELS, "group_norm_backward_affine_reduce", &[])?;
                            let wgs = [c.div_ceil(64) as u32, 1, 1];
                            dev.dispatch(&k, &params, &[nc.arg(), both.arg()], wgs)?
                        }
                        None => run("group_norm_backward_affine", &[&both], [c as u32, 1, 1])?,
                    }
                    halves(&both, c, &[c])?
                };
                Ok(vec![dx, dg, db])
            }),
        ))
    }
}
