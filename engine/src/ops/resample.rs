//! Resampling of NCHW tensors: nearest ×2 upsample and 2×2 average pool, each with its backward
//! kernel. Kernels: `shaders/resample.wgsl`; CPU reference: `cpu::upsample2x`, `cpu::avgpool2x2`.

use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_f32, grid, kernel};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/resample.wgsl");
/// `shaders/resample.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "resample",
    file: "resample.wgsl",
    source: SRC,
    entries: &[
        entry("upsample2x", &[read("x"), write("y")]),
        entry("upsample2x_backward", &[read("x"), write("y")]),
        entry("avgpool2x2", &[read("x"), write("y")]),
        entry("avgpool2x2_backward", &[read("x"), write("y")]),
    ],
};

fn nchw(op: &'static str, x: &Tensor) -> Result<(usize, usize, usize)> {
    check_f32(op, &[x])?;
    match x.dims() {
        &[n, c, h, w] => Ok((n * c, h, w)),
        _ => Err(Error::shape(op, "an NCHW tensor", format!("{}", x.shape()))),
    }
}

crate::kernel_params! {
    /// `shaders/resample.wgsl`'s parameters: the input side's planes (N·C) and size.
    pub struct ResampleParams {
        /// N·C.
        planes: u32,
        /// The input's height.
        height: u32,
        /// The input's width.
        width: u32,
    }
}

/// Runs `entry` over `threads` threads on the input side's (planes, H, W) into a new tensor of
/// `dims`.
fn run(
    x: &Tensor,
    entry: &'static str,
    dims: &[usize],
    (planes, h, w): (usize, usize, usize),
    threads: usize,
) -> Result<Tensor> {
    let dev = x.device();
    let out = Tensor::uninit(dev, dims, DType::F32)?;
    let k = kernel(dev, &KERNELS, entry, &[])?;
    dev.dispatch(
        &k,
        &ResampleParams {
            planes: planes as u32,
            height: h as u32,
            width: w as u32,
        },
        &[x.arg(), out.arg()],
        grid(threads, 256),
    )?;
    Ok(out)
}

impl Tensor {
    /// Nearest-neighbour ×2 upsampling of an NCHW tensor. Differentiable.
    pub fn upsample2x(&self) -> Result<Tensor> {
        let (planes, h, w) = nchw("upsample2x", self)?;
        let d = self.dims().to_vec();
        let out = run(
            self,
            "upsample2x",
            &[d[0], d[1], 2 * h, 2 * w],
            (planes, h, w),
            planes * 4 * h * w,
        )?;
        Ok(out.record(
            "upsample2x",
            &[self],
            Box::new(move |g, _| {
                Ok(vec![Some(run(
                    g,
                    "upsample2x_backward",
                    &d,
                    (planes, h, w),
                    planes * h * w,
                )?)])
            }),
        ))
    }

    /// 2×2 average pooling of an NCHW tensor (an odd last row or column is dropped). Differentiable.
    pub fn avgpool2x2(&self) -> Result<Tensor> {
        let (planes, h, w) = nchw("avgpool2x2", self)?;
        let d = self.dims().to_vec();
        let (ho, wo) = (h / 2, w / 2);
        let out = run(
            self,
            "avgpool2x2",
            &[d[0], d[1], ho, wo],
            (planes, h, w),
            planes * ho * wo,
        )?;
        Ok(out.record(
            "avgpool2x2",
            &[self],
            Box::new(move |g, _| {
                Ok(vec![Some(run(
                    g,
                    "avgpool2x2_backward",
                    &d,
                    (planes, h, w),
                    planes * h * w,
                )?)])
            }),
        ))
    }
}
