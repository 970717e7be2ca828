//! Group norm with fused statistics, affine and optional SiLU (every U-Net block does
//! GroupNorm→SiLU), with dedicated backward kernels for the input and for γ/β.
//! Kernels: `shaders/norm.wgsl`; CPU reference: `cpu::group_norm`, `cpu::group_norm_backward`.

use crate::device::Access;
use crate::error::{Error, Result};
use crate::ops::{check_f32, grid, kernel};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../../shaders/norm.wgsl");
const R: Access = Access::Read;
const W: Access = Access::ReadWrite;

impl Tensor {
    /// Group norm of an `[N, C, *]` tensor over `groups` groups of channels, then `γ·x̂ + β`,
    /// then SiLU when `silu`. `gamma` and `beta` are both `[C]` (per channel) or both `[N, C]`
    /// (per sample and channel: AdaGN's scale-shift conditioning in one pass). Differentiable
    /// in x, γ and β.
    pub fn group_norm(
        &self,
        groups: usize,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        let op = "group_norm";
        check_f32(op, &[self, gamma, beta])?;
        let d = self.dims();
        if d.len() < 2 || groups == 0 || !d[1].is_multiple_of(groups) {
            return Err(Error::shape(
                op,
                format!("[N, C, ..] with C divisible by {groups} groups"),
                format!("{}", self.shape()),
            ));
        }
        let (n, c) = (d[0], d[1]);
        let per_sample = gamma.dims() == [n, c] && beta.dims() == [n, c];
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
        let params = [
            rows as u32,
            l as u32,
            s as u32,
            c as u32,
            silu as u32,
            eps.to_bits(),
            n as u32,
            per_sample as u32,
        ];
        let dev = self.device();
        let stats = Tensor::uninit(dev, &[rows, 2], DType::F32)?;
        // Rows are few and long: a workgroup each on a GPU; a thread each on a CPU adapter,
        // where workgroup barriers cost more than they save.
        let (entry, groups) = if dev.kernel_profile() == crate::KernelProfile::Cpu {
            ("group_norm_stats_thread", grid(rows, 64))
        } else {
            ("group_norm_stats", grid(rows, 1))
        };
        let k = kernel(dev, "norm", SRC, entry, &[], &[R, W])?;
        dev.dispatch(&k, &params, &[self.arg(), stats.arg()], groups)?;
        let out = Tensor::uninit(dev, d, DType::F32)?;
        let k = kernel(dev, "norm", SRC, "group_norm_apply", &[], &[R, R, R, R, W])?;
        dev.dispatch(
            &k,
            &params,
            &[self.arg(), stats.arg(), gamma.arg(), beta.arg(), out.arg()],
            grid(rows * l, 256),
        )?;
        let (x, gm, bt) = (self.detach(), gamma.detach(), beta.detach());
        Ok(out.record(
            op,
            &[self, gamma, beta],
            Box::new(move |g, needs| {
                let dev = g.device();
                // CPU adapters: per-row and per-(n, c) sums one thread each, then elementwise;
                // GPUs: one workgroup per row / per channel with tree reductions.
                let cpu = dev.kernel_profile() == crate::KernelProfile::Cpu;
                let inputs = [x.arg(), g.arg(), stats.arg(), gm.arg(), bt.arg()];
                let dx = if needs[0] {
                    let dx = Tensor::uninit(dev, x.dims(), DType::F32)?;
                    if cpu {
                        let sums = Tensor::uninit(dev, &[rows, 2], DType::F32)?;
                        let k = kernel(
                            dev,
                            "norm",
                            SRC,
                            "group_norm_backward_rowsums_thread",
                            &[],
                            &[R, R, R, R, R, W],
                        )?;
                        let mut args = inputs.to_vec();
                        args.push(sums.arg());
                        dev.dispatch(&k, &params, &args, grid(rows, 64))?;
                        let k = kernel(
                            dev,
                            "norm",
                            SRC,
                            "group_norm_backward_input_apply",
                            &[],
                            &[R, R, R, R, R, R, W],
                        )?;
                        let mut args = inputs.to_vec();
                        args.extend([sums.arg(), dx.arg()]);
                        dev.dispatch(&k, &params, &args, grid(rows * l, 256))?;
                    } else {
                        let k = kernel(
                            dev,
                            "norm",
                            SRC,
                            "group_norm_backward_input",
                            &[],
                            &[R, R, R, R, R, W],
                        )?;
                        let mut args = inputs.to_vec();
                        args.push(dx.arg());
                        dev.dispatch(&k, &params, &args, grid(rows, 1))?;
                    }
                    Some(dx)
                } else {
                    None
                };
                let (dg, db) = if (needs[1] || needs[2]) && per_sample {
                    // The per-(n, c) sums are the whole gradient: [dγ (N·C), dβ (N·C)].
                    let both = Tensor::uninit(dev, &[2 * n * c], DType::F32)?;
                    let k = kernel(
                        dev,
                        "norm",
                        SRC,
                        "group_norm_backward_nc_thread",
                        &[],
                        &[R, R, R, R, R, W],
                    )?;
                    let mut args = inputs.to_vec();
                    args.push(both.arg());
                    dev.dispatch(&k, &params, &args, grid(n * c, 64))?;
                    (
                        Some(both.slice(0, 0, n * c)?.reshape(&[n, c])?),
                        Some(both.slice(0, n * c, n * c)?.reshape(&[n, c])?),
                    )
                } else if needs[1] || needs[2] {
                    let both = Tensor::uninit(dev, &[2 * c], DType::F32)?;
                    if cpu {
                        let nc = Tensor::uninit(dev, &[2 * n * c], DType::F32)?;
                        let k = kernel(
                            dev,
                            "norm",
                            SRC,
                            "group_norm_backward_nc_thread",
                            &[],
                            &[R, R, R, R, R, W],
                        )?;
                        let mut args = inputs.to_vec();
                        args.push(nc.arg());
                        dev.dispatch(&k, &params, &args, grid(n * c, 64))?;
                        let k = kernel(
                            dev,
                            "norm",
                            SRC,
                            "group_norm_backward_affine_reduce",
                            &[],
                            &[R, R, R, R, R, R, W],
                        )?;
                        let mut args = inputs.to_vec();
                        args.extend([nc.arg(), both.arg()]);
                        dev.dispatch(&k, &params, &args, [c.div_ceil(64) as u32, 1, 1])?;
                    } else {
                        let k = kernel(
                            dev,
                            "norm",
                            SRC,
                            "group_norm_backward_affine",
                            &[],
                            &[R, R, R, R, R, W],
                        )?;
                        let mut args = inputs.to_vec();
                        args.push(both.arg());
                        dev.dispatch(&k, &params, &args, [c as u32, 1, 1])?;
                    }
                    (Some(both.slice(0, 0, c)?), Some(both.slice(0, c, c)?))
                } else {
                    (None, None)
                };
                Ok(vec![dx, dg, db])
            }),
        ))
    }
}
