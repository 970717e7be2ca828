//! Casts between f32 and f16 tensors (f16 stored two to a 32-bit word, see [`DType::F16`]).
//! Kernels: `shaders/precision.wgsl`; CPU reference: `cpu::precision`.
//!
//! The casts are not differentiable yet: casting a tensor that needs a gradient, with grad mode
//! on, is an error rather than a silently cut graph.

use crate::autodiff;
use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{grid, kernel};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/precision.wgsl");
/// `shaders/precision.wgsl`: each entry point and the storage bindings it uses.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "precision",
    file: "precision.wgsl",
    source: SRC,
    entries: &[
        entry("to_f16", &[read("fx"), write("fh")]),
        entry("to_f32", &[read("hx"), write("hy")]),
    ],
};

crate::kernel_params! {
    /// The casts' parameters (`shaders/precision.wgsl`).
    pub struct CastParams {
        /// Elements (a word holds two).
        n: u32,
    }
}

fn not_differentiable(op: &'static str, x: &Tensor) -> Result<()> {
    if x.requires_grad() && autodiff::grad_enabled() {
        return Err(Error::invalid(
            op,
            "the f16 casts are not differentiable yet: detach the tensor or cast under no_grad",
        ));
    }
    Ok(())
}

fn cast(
    x: &Tensor,
    from: DType,
    to: DType,
    entry: &'static str,
    op: &'static str,
) -> Result<Tensor> {
    x.expect_dtype(op, from)?;
    not_differentiable(op, x)?;
    let dev = x.device();
    let out = Tensor::uninit(dev, x.dims(), to)?;
    let n = x.numel();
    let words = n.div_ceil(2);
    let k = kernel(dev, &KERNELS, entry, &[])?;
    dev.dispatch(
        &k,
        &CastParams { n: n as u32 },
        &[x.arg(), out.arg()],
        grid(words, 256),
    )?;
    Ok(out)
}

impl Tensor {
    /// This f32 tensor in f16, rounded to nearest (ties to even where the adapter rounds so;
    /// always one of the two nearest f16 values); |x| ≥ 65520 becomes ±inf.
    pub fn to_f16(&self) -> Result<Tensor> {
        cast(self, DType::F32, DType::F16, "to_f16", "to_f16")
    }

    /// This f16 tensor in f32 (exact).
    pub fn to_f32(&self) -> Result<Tensor> {
        cast(self, DType::F16, DType::F32, "to_f32", "to_f32")
    }
}
