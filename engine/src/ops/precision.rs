//! Casts between f32 and f16 tensors (f16 stored two to a 32-bit word, see [`DType::F16`]).
//! Kernels: `shaders/precision.wgsl`; CPU reference: `cpu::precision`.
//!
//! Both casts are differentiable, as rounding treated as the identity (the straight-through
//! gradient, as in mixed-precision training): the gradient of `to_f16` is the incoming f16
//! gradient cast to f32, and that of `to_f32` the incoming gradient rounded to f16. An f16
//! tensor whose gradient arrives from two consumers cannot sum them yet (f16 addition is not
//! built): `backward` then fails naming the dtype.

use crate::error::Result;
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

/// Casts `x` (of dtype `from`) to `to` with the kernel entry point `op` (also the op's name).
fn cast(x: &Tensor, from: DType, to: DType, op: &'static str) -> Result<Tensor> {
    x.expect_dtype(op, from)?;
    let dev = x.device();
    let out = Tensor::uninit(dev, x.dims(), to)?;
    let n = x.numel();
    let words = n.div_ceil(2);
    let k = kernel(dev, &KERNELS, op, &[])?;
    dev.dispatch(
        &k,
        &CastParams { n: n as u32 },
        &[x.arg(), out.arg()],
        grid(words, 256),
    )?;
    Ok(out.record(
        op,
        &[x],
        Box::new(move |g, _| {
            Ok(vec![Some(match to {
                DType::F16 => g.to_f32()?,
                _ => g.to_f16()?,
            })])
        }),
    ))
}

impl Tensor {
    /// This f32 tensor in f16, rounded to nearest (ties to even where the adapter rounds so;
    /// always one of the two nearest f16 values); |x| ≥ 65520 becomes ±inf.
    pub fn to_f16(&self) -> Result<Tensor> {
        cast(self, DType::F32, DType::F16, "to_f16")
    }

    /// This f16 tensor in f32 (exact).
    pub fn to_f32(&self) -> Result<Tensor> {
        cast(self, DType::F16, DType::F32, "to_f32")
    }
}
