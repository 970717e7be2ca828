//! Elementwise ops: unary maps, scalar maps, broadcasting binary maps, masking.
//! Kernels: `shaders/elementwise.wgsl`; CPU reference: `cpu::unary`, `cpu::binary`.

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::layout::rank6_vec4s;
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_float, f16_bindings, grid, kernel, kernel_reading};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/elementwise.wgsl");
/// `shaders/elementwise.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "elementwise",
    file: "elementwise.wgsl",
    source: SRC,
    entries: &[
        entry("unary", &[read("ux"), write("uy")]),
        entry(
            "unary_backward",
            &[read("bx"), read("by"), read("bdy"), write("bdx")],
        ),
        entry("binary", &[read("ba"), read("bb"), write("bc")]),
        entry("binary_vec4", &[read("va"), read("vb"), write("vc")]),
        entry("fill", &[write("fy")]),
    ],
};
const MAX_RANK: usize = 6;

crate::kernel_params! {
    /// `unary` and `unary_backward`'s parameters (`shaders/elementwise.wgsl`).
    pub struct UnaryParams {
        /// Elements.
        n: u32,
        /// The op's scalar (e.g. pow's exponent).
        s: f32,
    }

    /// `fill`'s parameters.
    pub struct FillParams {
        /// Elements.
        n: u32,
        /// The value written.
        value: f32,
    }

    /// The binary kernels' parameters: shapes right-aligned to rank 6, four axes to a `vec4`.
    pub struct BinaryParams {
        /// Output elements (quads for `binary_vec4`).
        n: u32,
        /// 1: both operands have the output's shape.
        same_shape: u32,
        /// A repeated block operand's index is `(i / inner) % mid` (or one of its halves).
        inner: u32,
        /// See `inner`.
        mid: u32,
        /// The output's dims.
        dims: [[u32; 4]; 2],
        /// A's strides per output axis (0 where broadcast).
        a_strides: [[u32; 4]; 2],
        /// B's strides per output axis.
        b_strides: [[u32; 4]; 2],
    }
}

/// Unary maps; the discriminant is the kernel's `OP` constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// −x
    Neg = 0,
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// √x
    Sqrt,
    /// x²
    Square,
    /// max(x, 0)
    Relu,
    /// x·σ(x)
    Silu,
    /// x·Φ(x), the exact (erf) form
    Gelu,
    /// tanh x
    Tanh,
    /// σ(x)
    Sigmoid,
    /// x + s
    AddScalar,
    /// x·s
    MulScalar,
    /// xˢ (x > 0)
    PowScalar,
}

impl UnaryOp {
    /// Every unary op, for tests.
    pub const ALL: [UnaryOp; 13] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Square,
        UnaryOp::Relu,
        UnaryOp::Silu,
        UnaryOp::Gelu,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::AddScalar,
        UnaryOp::MulScalar,
        UnaryOp::PowScalar,
    ];
    /// Whether the backward kernel needs the forward output.
    fn needs_output(self) -> bool {
        matches!(
            self,
            UnaryOp::Exp | UnaryOp::Sqrt | UnaryOp::Tanh | UnaryOp::Sigmoid
        )
    }
}

/// Binary maps; the discriminant is the kernel's `OP` constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// a + b
    Add = 0,
    /// a − b
    Sub,
    /// a·b
    Mul,
    /// a / b
    Div,
    /// max(a, b)
    Max,
    /// min(a, b)
    Min,
    /// 1 where a = b, else 0 (no gradient)
    Eq,
    /// 1 where a > b, else 0 (no gradient)
    Gt,
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!("shapes broadcastable with {a:?}"),
                    format!("{b:?}"),
                ))
            }
        };
    }
    Ok(out)
}

/// When `shape` (right-aligned to `out`) is one contiguous run of `out`'s axes with 1s around
/// it, element i of `out` reads element (i / inner) % mid of it: returns the kernel's index kind
/// (1: both, 2: only the modulo when inner = 1, 3: only the division when nothing lies before
/// the run) with inner and mid. None for any other broadcast.
fn block_of(shape: &[usize], out: &[usize]) -> Option<(u32, usize, usize)> {
    let lead = out.len() - shape.len();
    let full: Vec<usize> = std::iter::repeat_n(1, lead)
        .chain(shape.iter().copied())
        .collect();
    let non1: Vec<usize> = (0..out.len()).filter(|&k| full[k] != 1).collect();
    let (lo, hi) = match (non1.first(), non1.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => return Some((2, 1, 1)), // a single element: index 0
    };
    if (lo..=hi).any(|k| full[k] != out[k]) {
        return None;
    }
    let inner: usize = out[hi + 1..].iter().product();
    let mid: usize = out[lo..=hi].iter().product();
    let before: usize = out[..lo].iter().product();
    let kind = if inner == 1 {
        2
    } else if before == 1 {
        3
    } else {
        1
    };
    Some((kind, inner, mid))
}

/// Strides of `shape` read as `out` (right-aligned to rank 6, 0 on broadcast axes).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> [u32; MAX_RANK] {
    let mut s = [0u32; MAX_RANK];
    let mut stride = 1usize;
    for i in (0..shape.len()).rev() {
        let k = MAX_RANK - (shape.len() - i);
        let _ = out;
        s[k] = if shape[i] == 1 { 0 } else { stride as u32 };
        stride *= shape[i];
    }
    s
}

pub(crate) fn fill(device: &Device, shape: &[usize], value: f32) -> Result<Tensor> {
    let out = Tensor::uninit(device, shape, DType::F32)?;
    let n = out.numel();
    let k = kernel(device, &KERNELS, "fill", &[])?;
    let params = FillParams { n: n as u32, value };
    device.dispatch(&k, &params, &[out.arg()], grid(n, 256))?;
    Ok(out)
}

fn unary_raw(x: &Tensor, op: UnaryOp, s: f32) -> Result<Tensor> {
    let dev = x.device();
    let out = Tensor::uninit(dev, x.dims(), DType::F32)?;
    let n = x.numel();
    let f16 = f16_bindings(&[("ux", x)]);
    let k = kernel_reading(dev, &KERNELS, "unary", &[("OP", op as u32 as f64)], &f16)?;
    dev.dispatch(
        &k,
        &UnaryParams { n: n as u32, s },
        &[x.arg(), out.arg()],
        grid(n, 256),
    )?;
    Ok(out)
}

pub(crate) fn unary_backward_raw(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    op: UnaryOp,
    s: f32,
) -> Result<Tensor> {
    let dev = x.device();
    let dx = Tensor::uninit(dev, x.dims(), DType::F32)?;
    let n = x.numel();
    let f16 = f16_bindings(&[("bx", x), ("by", y), ("bdy", dy)]);
    let consts = [("OP", op as u32 as f64)];
    let k = kernel_reading(dev, &KERNELS, "unary_backward", &consts, &f16)?;
    dev.dispatch(
        &k,
        &UnaryParams { n: n as u32, s },
        &[x.arg(), y.arg(), dy.arg(), dx.arg()],
        grid(n, 256),
    )?;
    Ok(dx)
}

fn binary_raw(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    let name = "binary";
    check_float(name, &[a, b])?;
    let dims = broadcast_shape(name, a.dims(), b.dims())?;
    if dims.len() > MAX_RANK {
        return Err(Error::invalid(
            name,
            format!("rank {} above the supported {MAX_RANK}", dims.len()),
        ));
    }
    let dev = a.device();
    let out = Tensor::uninit(dev, &dims, DType::F32)?;
    let n = out.numel();
    let same = a.dims() == b.dims();
    if same && n.is_multiple_of(4) {
        let f16 = f16_bindings(&[("va", a), ("vb", b)]);
        let consts = [("OP", op as u32 as f64)];
        let k = kernel_reading(dev, &KERNELS, "binary_vec4", &consts, &f16)?;
        let quads = n / 4;
        dev.dispatch(
            &k,
            &BinaryParams {
                n: quads as u32,
                ..Default::default()
            },
            &[a.arg(), b.arg(), out.arg()],
            grid(quads, 256),
        )?;
        return Ok(out);
    }
    let mut padded = [1u32; MAX_RANK];
    for (i, d) in dims.iter().enumerate() {
        padded[MAX_RANK - dims.len() + i] = *d as u32;
    }
    let mut params = BinaryParams {
        n: n as u32,
        same_shape: same as u32,
        dims: rank6_vec4s(padded),
        a_strides: rank6_vec4s(broadcast_strides(a.dims(), &dims)),
        b_strides: rank6_vec4s(broadcast_strides(b.dims(), &dims)),
        ..Default::default()
    };
    // One operand full, the other a repeated block: one or two divisions per element instead
    // of two per axis.
    let block = match (a.dims() == dims, b.dims() == dims, same) {
        (_, _, true) => None,
        (true, false, _) => block_of(b.dims(), &dims),
        (false, true, _) => {
            block_of(a.dims(), &dims).map(|(kind, inner, mid)| (kind + 3, inner, mid))
        }
        _ => None,
    };
    let bidx = match block {
        Some((kind, inner, mid)) => {
            params.inner = inner as u32;
            params.mid = mid as u32;
            kind
        }
        None => 0,
    };
    let k = kernel_reading(
        dev,
        &KERNELS,
        "binary",
        &[("OP", op as u32 as f64), ("BIDX", bidx as f64)],
        &f16_bindings(&[("ba", a), ("bb", b)]),
    )?;
    dev.dispatch(&k, &params, &[a.arg(), b.arg(), out.arg()], grid(n, 256))?;
    Ok(out)
}

impl Tensor {
    /// Applies a unary map (`s` is the scalar of the scalar ops, ignored by the others). The
    /// input may be f16 (read as f16, computed in f32; f32 output and gradient).
    pub fn unary(&self, op: UnaryOp, s: f32) -> Result<Tensor> {
        check_float("unary", &[self])?;
        let out = unary_raw(self, op, s)?;
        let x = self.detach();
        let y = if op.needs_output() {
            Some(out.detach())
        } else {
            None
        };
        Ok(out.record(
            "unary",
            &[self],
            Box::new(move |g, _| {
                let dx = unary_backward_raw(&x, y.as_ref().unwrap_or(&x), g, op, s)?;
                Ok(vec![Some(dx)])
            }),
        ))
    }

    /// −x
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg, 0.0)
    }
    /// eˣ
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp, 0.0)
    }
    /// ln x
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log, 0.0)
    }
    /// √x
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt, 0.0)
    }
    /// x²
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square, 0.0)
    }
    /// max(x, 0)
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu, 0.0)
    }
    /// x·σ(x)
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu, 0.0)
    }
    /// GELU, erf form
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu, 0.0)
    }
    /// tanh x
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh, 0.0)
    }
    /// σ(x)
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid, 0.0)
    }
    /// x + s
    pub fn add_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar, s)
    }
    /// x·s
    pub fn mul_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar, s)
    }
    /// xˢ for positive x
    pub fn pow_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::PowScalar, s)
    }

    /// Applies a broadcasting binary map. Either operand may be f16 (read as f16, computed in
    /// f32; f32 output and gradients).
    pub fn binary(&self, other: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let out = binary_raw(self, other, op)?;
        if matches!(op, BinaryOp::Eq | BinaryOp::Gt) {
            return Ok(out);
        }
        let (a, b) = (self.detach(), other.detach());
        let y = out.detach();
        Ok(out.record(
            "binary",
            &[self, other],
            Box::new(move |g, needs| {
                let (ga, gb) = match op {
                    BinaryOp::Add => (Some(g.clone()), Some(g.clone())),
                    BinaryOp::Sub => (
                        Some(g.clone()),
                        if needs[1] { Some(g.neg()?) } else { None },
                    ),
                    BinaryOp::Mul => (
                        if needs[0] { Some(g.mul(&b)?) } else { None },
                        if needs[1] { Some(g.mul(&a)?) } else { None },
                    ),
                    BinaryOp::Div => (
                        if needs[0] { Some(g.div(&b)?) } else { None },
                        if needs[1] {
                            Some(g.mul(&y)?.div(&b)?.neg()?)
                        } else {
                            None
                        },
                    ),
                    BinaryOp::Max | BinaryOp::Min => {
                        // Ties go to `a`; the mask picks where `a` won.
                        let a_wins = if op == BinaryOp::Max {
                            b.binary(&a, BinaryOp::Gt)?
                        } else {
                            a.binary(&b, BinaryOp::Gt)?
                        };
                        let a_mask = a_wins.neg()?.add_scalar(1.0)?;
                        (Some(g.mul(&a_mask)?), Some(g.mul(&a_wins)?))
                    }
                    BinaryOp::Eq | BinaryOp::Gt => unreachable!("comparisons record no backward"),
                };
                Ok(vec![
                    ga.map(|t| t.sum_to_shape(a.dims())).transpose()?,
                    gb.map(|t| t.sum_to_shape(b.dims())).transpose()?,
                ])
            }),
        ))
    }

    /// a + b (broadcasting)
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Add)
    }
    /// a − b (broadcasting)
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Sub)
    }
    /// a·b (broadcasting)
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Mul)
    }
    /// a / b (broadcasting)
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Div)
    }
    /// max(a, b) (broadcasting)
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Max)
    }
    /// min(a, b) (broadcasting)
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Min)
    }

    /// `mask·self + (1 − mask)·other` for a 0/1 mask (broadcasting): keeps `self` where the mask
    /// is 1. Written with differentiable ops, so gradients flow to both branches; note that an
    /// infinite value in the branch not taken still gives NaN (0·∞), unlike a true select.
    pub fn where_mask(&self, mask: &Tensor, other: &Tensor) -> Result<Tensor> {
        other.add(&self.sub(other)?.mul(mask)?)
    }

    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.dims() == shape {
            return Ok(self.clone());
        }
        let r = self.rank();
        if shape.len() > r {
            return Err(Error::shape(
                "sum_to_shape",
                format!("rank ≤ {r}"),
                format!("{shape:?}"),
            ));
        }
        let lead = r - shape.len();
        let axes: Vec<usize> = (0..r)
            .filter(|&i| i < lead || (shape[i - lead] == 1 && self.dims()[i] != 1))
            .collect();
        let summed = if axes.is_empty() {
            self.clone()
        } else {
            self.sum(&axes, true)?
        };
        summed.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::block_of;

    #[test]
    fn block_operands_are_recognised() {
        // (shape, output) → (kind, inner, mid)
        assert_eq!(block_of(&[3, 1, 1], &[2, 3, 4, 5]), Some((1, 20, 3)));
        assert_eq!(block_of(&[5], &[33, 5]), Some((2, 1, 5)));
        assert_eq!(block_of(&[129, 1], &[129, 3]), Some((3, 3, 129)));
        assert_eq!(block_of(&[1], &[2, 3, 65]), Some((2, 1, 1)));
        assert_eq!(block_of(&[2, 1, 4], &[2, 3, 4]), None);
        assert_eq!(block_of(&[1, 4, 1, 6, 1], &[2, 4, 3, 6, 5]), None);
    }
}
