//! 2-D convolution (NCHW) as implicit GEMM with fused bias and optional SiLU, and its two
//! backward kernels (data gradient, weight gradient); the bias gradient is a channel sum.
//! 1×1 stride-1 convolutions without activation take the matmul path on GPUs.
//! Kernels: `shaders/conv2d_regblock.wgsl` (`conv_regblock`), `shaders/conv2d_subgroup.wgsl` (`conv_subgroup`); CPU reference: `cpu::conv2d`, `cpu::conv2d_backward`.

use std::sync::Arc;

use crate::device::{Binding, BufferArg, Device, KernelSource, Pipeline};
use crate::error::{Error, Result};
use crate::ops::conv_regblock::ConvRegBlockVariant;
use crate::ops::conv_subgroup::{ConvPass, ConvSubgroupVariant};
use crate::ops::elementwise::unary_backward_raw;
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::template::{f16_inputs_key, with_f16_inputs};
use crate::ops::{check_f32, check_float, kernel, UnaryOp};
use crate::tensor::{DType, Tensor};

/// The gradients' bindings: the two operands and the output.
pub(crate) const GRADIENT: &[Binding] = &[read("src"), read("wsrc"), write("dst")];
/// Rows × columns of output one workgroup covers: every kernel has 16×16 outputs per thread and
/// 4 × 16 threads.
const GROUP_TILE: (usize, usize) = (64, 256);

/// Activation fused into a convolution's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// None.
    Identity,
    /// x·σ(x).
    Silu,
}

/// What a forward kernel does after the reduction: add a bias or not, then the activation
/// (SiLU also stores the pre-activation for the backward). Each is a kernel variant of its own,
/// binding only the buffers it reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Epilogue {
    /// Adds the bias `[Co]`.
    pub bias: bool,
    /// The activation.
    pub act: Activation,
}

impl Epilogue {
    /// No bias, no activation (also the variant the gradient kernels come from).
    pub const PLAIN: Epilogue = Epilogue {
        bias: false,
        act: Activation::Identity,
    };

    /// Every epilogue.
    pub fn all() -> [Epilogue; 4] {
        let e = |bias, act| Epilogue { bias, act };
        [
            e(false, Activation::Identity),
            e(true, Activation::Identity),
            e(false, Activation::Silu),
            e(true, Activation::Silu),
        ]
    }

    /// Its part of a pipeline key, e.g. `bias1.silu0`.
    pub fn key(self) -> String {
        format!(
            "bias{}.silu{}",
            self.bias as u8,
            (self.act == Activation::Silu) as u8
        )
    }

    /// The forward's bindings with this epilogue: the input, the weights, the bias (with a
    /// bias), the output and the pre-activation (with SiLU), as every conv kernel file names them.
    pub(crate) fn forward_bindings(self) -> &'static [Binding] {
        const SRC: Binding = read("src");
        const W: Binding = read("wsrc");
        const BIAS: Binding = read("bias");
        const DST: Binding = write("dst");
        const PRE: Binding = write("pre");
        match (self.bias, self.act) {
            (false, Activation::Identity) => &[SRC, W, DST],
            (true, Activation::Identity) => &[SRC, W, BIAS, DST],
            (false, Activation::Silu) => &[SRC, W, DST, PRE],
            (true, Activation::Silu) => &[SRC, W, BIAS, DST, PRE],
        }
    }
}

/// The geometry of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

crate::kernel_params! {
    /// The conv kernels' parameters (`shaders/conv2d_regblock.wgsl`, `shaders/conv2d_subgroup.wgsl`):
    /// the geometry, the epilogue, and the subgroup kernels' block grid and weight-gradient
    /// chunks.
    pub struct ConvParams {
        /// Batch.
        n: u32,
        /// Input channels.
        ci: u32,
        /// Input height.
        h: u32,
        /// Input width.
        w: u32,
        /// Output channels.
        co: u32,
        /// Kernel height.
        kh: u32,
        /// Kernel width.
        kw: u32,
        /// Stride.
        stride: u32,
        /// Zero padding on each side.
        pad: u32,
        /// Output height.
        oh: u32,
        /// Output width.
        ow: u32,
        /// Subgroup kernels: the workgroup's 8 subgroups form an SM × (8/SM) grid of blocks.
        sm: u32,
        /// Subgroup weight gradient: output pixels per chunk.
        chunk: u32,
        /// Subgroup weight gradient: output pixels in all.
        pixels: u32,
        /// Subgroup weight gradient: subgroups sharing each block, one chunk each.
        ks: u32,
    }
}

impl Geometry {
    fn params(&self) -> ConvParams {
        let g = self;
        ConvParams {
            n: g.n as u32,
            ci: g.ci as u32,
            h: g.h as u32,
            w: g.w as u32,
            co: g.co as u32,
            kh: g.kh as u32,
            kw: g.kw as u32,
            stride: g.stride as u32,
            pad: g.pad as u32,
            oh: g.oh as u32,
            ow: g.ow as u32,
            ..Default::default()
        }
    }
}

/// The bindings a conv kernel reads as f16 (see [`with_f16_inputs`]): `src` when the input x
/// is f16 (`x16`; x is `src` in the forward and the weight gradient).
pub(crate) fn f16_x(x16: bool) -> &'static [&'static str] {
    if x16 {
        &["src"]
    } else {
        &[]
    }
}

/// The pipeline of a subgroup conv kernel (built once per variant and input dtype).
fn subgroup_pipeline(dev: &Device, v: ConvSubgroupVariant, x16: bool) -> Result<Arc<Pipeline>> {
    dev.pipeline(&f16_inputs_key(v.key(), f16_x(x16)), || KernelSource {
        label: v.label(),
        source: if x16 {
            with_f16_inputs(&v.source_reading_f16_x(), f16_x(true))
        } else {
            v.source()
        }
        .into(),
        entry: "main",
        constants: &[],
        bindings: v.bindings(),
    })
}

/// The pipeline of entry point `entry` of a register-blocked conv module (built once per
/// variant, input dtype and entry).
fn regblock_pipeline(
    dev: &Device,
    v: ConvRegBlockVariant,
    x16: bool,
    entry: &'static str,
) -> Result<Arc<Pipeline>> {
    let key = f16_inputs_key(v.key(), f16_x(x16));
    dev.pipeline(&format!("{key}.{entry}"), || KernelSource {
        label: "conv2d",
        source: with_f16_inputs(&v.source(), f16_x(x16)).into(),
        entry,
        constants: &[],
        bindings: v
            .entries()
            .iter()
            .find(|e| e.name == entry)
            .map_or(&[], |e| e.bindings),
    })
}

/// Records one pass over `rows` channels × `cols` pixels: the subgroup kernel where the device
/// runs those (forward and data gradient), else the 16×16-per-thread kernel of `conv2d_regblock.wgsl`.
/// `weight` is the (detached) weight tensor bound as `args[1]`; the subgroup kernels may bind a
/// transposed copy instead. `x16`: `args[0]` is an f16 input.
#[allow(clippy::too_many_arguments)]
fn run(
    dev: &Device,
    entry: &'static str,
    x16: bool,
    epilogue: Epilogue,
    params: &ConvParams,
    args: &[BufferArg<'_>],
    rows: usize,
    cols: usize,
    weight: Option<&Tensor>,
    pre_transposed: Option<&Tensor>,
    g: &Geometry,
) -> Result<()> {
    let pass = match entry {
        "conv2d_forward" => Some(ConvPass::Forward),
        "conv2d_backward_data" => Some(ConvPass::Data),
        _ => None,
    };
    if let (Some(pass), true) = (pass, dev.subgroup_kernels()) {
        let v = ConvSubgroupVariant::for_channels(pass, rows);
        // Weights transposed so that the lane's 4 channels are contiguous: forward
        // [Ci·KK, Co], data gradient [Co, KK, Ci] (a small copy next to the convolution).
        let transposed = match (v.vw, weight) {
            (true, Some(_)) if pre_transposed.is_some() => pre_transposed.cloned(),
            (true, Some(w)) => Some(match pass {
                ConvPass::Forward => w.reshape(&[g.co, g.ci * g.kh * g.kw])?.permute(&[1, 0])?,
                _ => w.reshape(&[g.co, g.ci, g.kh * g.kw])?.permute(&[0, 2, 1])?,
            }),
            _ => None,
        };
        // Row-blocked when a lane's 8 pixels share a row and the kernel is 3 taps wide, except
        // the 32-channel forward, which it did not speed up (docs/experiments.md, "Row-blocked
        // conv kernels").
        let row = match pass {
            ConvPass::Forward => g.ow,
            _ => g.w,
        };
        let v = ConvSubgroupVariant {
            epilogue,
            vw: transposed.is_some(),
            row3: g.stride == 1
                && g.kw == 3
                && row.is_multiple_of(8)
                && (v.tn == 16 || pass == ConvPass::Data),
            ..v
        };
        let mut args = args.to_vec();
        if let Some(t) = &transposed {
            args[1] = t.arg();
        }
        let pipe = subgroup_pipeline(dev, v, x16)?;
        let (sm, groups) = v.grid(cols, rows);
        let params = ConvParams { sm, ..*params };
        return dev.dispatch(&pipe, &params, &args, groups);
    }
    let k = regblock_pipeline(dev, ConvRegBlockVariant { epilogue }, x16, entry)?;
    let (tile_rows, tile_cols) = GROUP_TILE;
    let groups = [
        cols.div_ceil(tile_cols) as u32,
        rows.div_ceil(tile_rows) as u32,
        1,
    ];
    dev.dispatch(&k, params, args, groups)
}

pub(crate) const WEIGHTS_SRC: &str = include_str!("../../../shaders/conv2d_weights.wgsl");
/// `shaders/conv2d_weights.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const WEIGHT_KERNELS: StaticKernel = StaticKernel {
    label: "conv2d_weights",
    file: "conv2d_weights.wgsl",
    source: WEIGHTS_SRC,
    entries: &[entry(
        "conv2d_weight_layouts",
        &[read("w"), write("w_forward"), write("w_data")],
    )],
};

crate::kernel_params! {
    /// `shaders/conv2d_weights.wgsl`'s parameters.
    pub struct ConvWeightsParams {
        /// Output channels.
        co: u32,
        /// Input channels.
        ci: u32,
        /// KH·KW.
        kk: u32,
    }
}

/// Both transposed weight layouts of the subgroup kernels in one dispatch: the forward's
/// `[Ci·KH·KW, Co]` and the data gradient's `[Co, KH·KW, Ci]` (`shaders/conv2d_weights.wgsl`).
fn weight_layouts(dev: &Device, w: &Tensor, g: &Geometry) -> Result<(Tensor, Tensor)> {
    let kk = g.kh * g.kw;
    let forward = Tensor::uninit(dev, &[g.ci * kk, g.co], DType::F32)?;
    let data = Tensor::uninit(dev, &[g.co, kk, g.ci], DType::F32)?;
    let k = kernel(dev, &WEIGHT_KERNELS, "conv2d_weight_layouts", &[])?;
    let params = ConvWeightsParams {
        co: g.co as u32,
        ci: g.ci as u32,
        kk: kk as u32,
    };
    dev.dispatch(
        &k,
        &params,
        &[w.arg(), forward.arg(), data.arg()],
        crate::ops::grid(w.numel(), 256),
    )?;
    Ok((forward, data))
}

/// Workgroups the subgroup weight gradient aims for: enough to keep every core of a CPU
/// adapter busy when the output (Co × Ci·KH·KW) alone gives only a few.
const WEIGHT_GRAD_GROUPS: usize = 32;
/// Fewest output pixels one workgroup of the weight gradient sums.
const WEIGHT_GRAD_MIN_CHUNK: usize = 64;

/// dW `[Co, Ci·KH·KW]` with the subgroup kernel: the output pixels are split into chunks, one per
/// workgroup z, whose partial sums are then added up (skipped when there is one chunk). `x` may
/// be f16.
fn weight_grad_subgroup(
    dev: &Device,
    params: &ConvParams,
    x: &Tensor,
    dz: &Tensor,
    g: &Geometry,
) -> Result<Tensor> {
    let (cols, pixels) = (g.ci * g.kh * g.kw, g.n * g.oh * g.ow);
    let v = ConvSubgroupVariant::for_channels(ConvPass::Weight, g.co);
    let (sm, ks, [gx, gy, _]) = v.weight_grid(cols, g.co);
    let ks = ks as usize;
    // Chunks: KS per workgroup, enough workgroups for every core, none under the minimum.
    let want = WEIGHT_GRAD_GROUPS.div_ceil((gx * gy) as usize) * ks;
    let chunks = want.clamp(1, (pixels / WEIGHT_GRAD_MIN_CHUNK).max(1));
    let chunk = pixels.div_ceil(chunks);
    // Workgroups along z; a chunk past the last pixel sums nothing and writes zeros.
    let splits = pixels.div_ceil(chunk).div_ceil(ks);
    let part = Tensor::uninit(dev, &[splits * ks, g.co * cols], DType::F32)?;
    let pipe = subgroup_pipeline(dev, v, x.dtype() == DType::F16)?;
    let p = ConvParams {
        sm,
        chunk: chunk as u32,
        pixels: pixels as u32,
        ks: ks as u32,
        ..*params
    };
    let args = [x.arg(), dz.arg(), part.arg()];
    dev.dispatch(&pipe, &p, &args, [gx, gy, splits as u32])?;
    if splits * ks == 1 {
        part.reshape(&[g.co, cols])
    } else {
        part.sum(&[0], false)
    }
}

impl Tensor {
    /// Convolution of an NCHW input with `weight` `[Co, Ci, KH, KW]`, optional `bias` `[Co]`,
    /// `stride` and zero `padding` on every side, then the fused `act`. Differentiable in the
    /// input, the weight and the bias. The input may be f16 (read as f16, summed in f32, an f32
    /// output and an f32 gradient); the weight and bias are f32.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
        act: Activation,
    ) -> Result<Tensor> {
        let op = "conv2d";
        check_float(op, &[self, weight])?;
        if weight.dtype() != DType::F32 {
            return Err(Error::invalid(
                op,
                "the weight is read in f32 (the master copy); only the input may be f16",
            ));
        }
        if crate::ops::precision::autocast_f16() && self.dtype() == DType::F32 {
            return self.to_f16()?.conv2d(weight, bias, stride, padding, act);
        }
        let x16 = self.dtype() == DType::F16;
        let (&[n, ci, h, w], &[co, wci, kh, kw]) = (self.dims(), weight.dims()) else {
            return Err(Error::shape(
                op,
                "input [N, C, H, W] and weight [Co, Ci, KH, KW]",
                format!("{} and {}", self.shape(), weight.shape()),
            ));
        };
        if wci != ci {
            return Err(Error::shape(
                op,
                format!("weight with {ci} input channels"),
                format!("{}", weight.shape()),
            ));
        }
        if stride == 0 || h + 2 * padding < kh || w + 2 * padding < kw {
            return Err(Error::invalid(op, format!("kernel {kh}×{kw} with stride {stride}, padding {padding} does not fit a {h}×{w} input")));
        }
        if let Some(b) = bias {
            check_f32(op, &[b, weight])?;
            if b.dims() != [co] {
                return Err(Error::shape(
                    op,
                    format!("bias [{co}]"),
                    format!("{}", b.shape()),
                ));
            }
        }
        let (oh, ow) = (
            (h + 2 * padding - kh) / stride + 1,
            (w + 2 * padding - kw) / stride + 1,
        );
        // On CPU adapters the conv kernels beat this batched matmul on the U-Net's 1×1 convs
        // (its M is Co, often too small for the matmul's blocks; docs/experiments.md, "Kernel
        // choices recorded in the code before").
        let pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0;
        if pointwise
            && act == Activation::Identity
            && self.device().kernel_profile() == crate::KernelProfile::Gpu
        {
            // 1×1: W [Co, Ci] · X [N, Ci, HW] is a matmul with a shared left operand.
            let y = weight
                .reshape(&[co, ci])?
                .matmul(&self.reshape(&[n, ci, h * w])?)?;
            let y = match bias {
                Some(b) => y.add(&b.reshape(&[co, 1])?)?,
                None => y,
            };
            return y.reshape(&[n, co, h, w]);
        }
        let g = Geometry {
            n,
            ci,
            h,
            w,
            co,
            kh,
            kw,
            stride,
            pad: padding,
            oh,
            ow,
        };
        let silu = act == Activation::Silu;
        let dev = self.device();
        let out = Tensor::uninit(dev, &[n, co, oh, ow], DType::F32)?;
        // The pre-activation is kept only when SiLU is fused (the backward needs it).
        let pre = if silu {
            Some(Tensor::uninit(dev, out.dims(), DType::F32)?)
        } else {
            None
        };
        let params = g.params();
        let epilogue = Epilogue {
            bias: bias.is_some(),
            act,
        };
        // Subgroup kernels with transposed weights in both passes and an input that will want
        // its gradient: both layouts now, in one dispatch; the backward keeps the second.
        let layouts = if dev.subgroup_kernels()
            && co.is_multiple_of(4)
            && ci.is_multiple_of(4)
            && self.requires_grad()
            && crate::autodiff::grad_enabled()
        {
            Some(weight_layouts(dev, weight, &g)?)
        } else {
            None
        };
        let (w_forward, w_data) = match layouts {
            Some((f, d)) => (Some(f), Some(d)),
            None => (None, None),
        };
        // Bound as the epilogue's bindings say: no bias, no pre-activation where there is none.
        let mut args = vec![self.arg(), weight.arg()];
        args.extend(bias.map(Tensor::arg));
        args.push(out.arg());
        args.extend(pre.as_ref().map(Tensor::arg));
        run(
            dev,
            "conv2d_forward",
            x16,
            epilogue,
            &params,
            &args,
            co,
            n * oh * ow,
            Some(&weight.detach()),
            w_forward.as_ref(),
            &g,
        )?;
        let (x, wt) = (self.detach(), weight.detach());
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let has_bias = bias.is_some();
        Ok(out.record(
            op,
            &inputs,
            Box::new(move |gy, needs| {
                let dev = gy.device();
                let dz = match &pre {
                    Some(z) => unary_backward_raw(z, z, gy, UnaryOp::Silu, 0.0)?,
                    None => gy.clone(),
                };
                let dx = if needs[0] {
                    let dx = Tensor::uninit(dev, x.dims(), DType::F32)?;
                    run(
                        dev,
                        "conv2d_backward_data",
                        false,
                        Epilogue::PLAIN,
                        &params,
                        &[dz.arg(), wt.arg(), dx.arg()],
                        g.ci,
                        g.n * g.h * g.w,
                        Some(&wt),
                        w_data.as_ref(),
                        &g,
                    )?;
                    // An f16 input's gradient stays f32 (see `ops::precision`).
                    Some(dx)
                } else {
                    None
                };
                let dw = if !needs[1] {
                    None
                } else if dev.subgroup_kernels() {
                    Some(weight_grad_subgroup(dev, &params, &x, &dz, &g)?.reshape(wt.dims())?)
                } else {
                    let dw = Tensor::uninit(dev, wt.dims(), DType::F32)?;
                    run(
                        dev,
                        "conv2d_backward_weight",
                        x16,
                        Epilogue::PLAIN,
                        &params,
                        &[x.arg(), dz.arg(), dw.arg()],
                        g.co,
                        g.ci * g.kh * g.kw,
                        None,
                        None,
                        &g,
                    )?;
                    Some(dw)
                };
                let mut grads = vec![dx, dw];
                if has_bias {
                    grads.push(if needs[2] {
                        // The batch and the pixels in one dispatch: no permuted copy of dz.
                        Some(dz.reshape(&[g.n, g.co, g.oh * g.ow])?.sum(&[0, 2], false)?)
                    } else {
                        None
                    });
                }
                Ok(grads)
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cpu, DeviceOptions};

    /// `shaders/conv2d_weights.wgsl` against the CPU reference's permutes, on shapes that are not
    /// multiples of the 256-thread workgroup or of 4.
    #[test]
    fn both_weight_layouts_match_the_reference_permutes() {
        let dev = Device::new(DeviceOptions::default()).expect("an adapter");
        for (co, ci, kh, kw) in [
            (5usize, 3usize, 3usize, 3usize),
            (7, 13, 1, 1),
            (33, 9, 3, 2),
        ] {
            let kk = kh * kw;
            let vals: Vec<f32> = (0..co * ci * kk).map(|i| i as f32 * 0.5 - 3.0).collect();
            let w = Tensor::from_slice(&dev, &vals, &[co, ci, kh, kw]).unwrap();
            let g = Geometry {
                n: 1,
                ci,
                h: kh,
                w: kw,
                co,
                kh,
                kw,
                stride: 1,
                pad: 0,
                oh: 1,
                ow: 1,
            };
            let (forward, data) = weight_layouts(&dev, &w, &g).unwrap();
            let v64: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
            let want_forward = cpu::permute(&v64, &[co, ci * kk], &[1, 0]);
            let want_data = cpu::permute(&v64, &[co, ci, kk], &[0, 2, 1]);
            let as64 = |t: &Tensor| -> Vec<f64> {
                t.to_vec().unwrap().iter().map(|&v| v as f64).collect()
            };
            assert_eq!(
                as64(&forward),
                want_forward,
                "forward layout {co}×{ci}×{kk}"
            );
            assert_eq!(
                as64(&data),
                want_data,
                "data-gradient layout {co}×{ci}×{kk}"
            );
        }
    }
}
