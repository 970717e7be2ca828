//! Casts between f32 and f16 tensors (f16 stored two to a 32-bit word, see [`DType::F16`]).
//! Kernels: `shaders/precision.wgsl`; CPU reference: `cpu::precision`.
//!
//! Both casts are differentiable, as rounding treated as the identity (the straight-through
//! gradient, as in mixed-precision training): the gradient of `to_f32` is the incoming gradient
//! rounded to f16. The gradient reaching an f16 tensor may be f16 or f32: the ops that read f16
//! inputs (`conv2d`, `matmul`) give f32 gradients, never rounded, and `to_f16`'s backward passes
//! an f32 gradient through as it is (an f16 one it widens). Gradients of an f16 tensor from two
//! consumers are summed when both are f32; two f16 ones cannot be yet (f16 addition is not
//! built), and `backward` then fails naming the dtype.
//!
//! [`Autocast`] is mixed precision's switch, as PyTorch's `autocast`: while it is on, `conv2d`
//! reads its f32 input as f16 and `matmul` (and `linear`) both operands, each cast by one
//! dispatch that the graph records, so the gradients flow back through the casts; and group
//! norm's quad kernel (a CPU adapter's, S divisible by 4) writes its output in f16 (rounded as
//! `to_f16` rounds), so the convolution it feeds needs no cast. Everything else stays f32.
//! `Tensor::backward` turns it off while it runs.

use std::cell::Cell;

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

thread_local! {
    static AUTOCAST_F16: Cell<bool> = const { Cell::new(false) };
}

/// Whether ops on this thread cast their inputs to f16 now (see [`Autocast`]).
pub fn autocast_f16() -> bool {
    AUTOCAST_F16.with(Cell::get)
}

/// While alive, sets whether `conv2d` and `matmul` on this thread read their f32 inputs as f16
/// (f32 sums, f32 outputs); dropping it restores the setting before.
pub struct Autocast {
    before: bool,
}

impl Autocast {
    /// Turns f16 autocasting on (mixed precision) until the guard is dropped.
    pub fn f16() -> Autocast {
        Self::set(true)
    }

    /// Turns it off until the guard is dropped.
    pub fn off() -> Autocast {
        Self::set(false)
    }

    fn set(on: bool) -> Autocast {
        Autocast {
            before: AUTOCAST_F16.with(|a| a.replace(on)),
        }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        AUTOCAST_F16.with(|a| a.set(self.before));
    }
}

/// `t` in f16 under [`Autocast`] when it is f32 (else `t` itself).
pub(crate) fn autocast(t: &Tensor) -> Result<Tensor> {
    if autocast_f16() && t.dtype() == DType::F32 {
        t.to_f16()
    } else {
        Ok(t.clone())
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
        grid(words.div_ceil(2), 256), // two words per invocation
    )?;
    Ok(out.record(
        op,
        &[x],
        Box::new(move |g, _| {
            Ok(vec![Some(match (to, g.dtype()) {
                (DType::F16, DType::F16) => g.to_f32()?,
                (DType::F16, _) => g.clone(),
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
