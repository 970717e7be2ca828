//! Reductions over axes (sum, mean, max) and softmax / log-softmax over the last axis.
//! Kernels: `shaders/reduce.wgsl`; CPU reference: `cpu::reduce`, `cpu::softmax`.

use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_f32, check_float, f16_bindings, grid, kernel, kernel_reading};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/reduce.wgsl");
/// `shaders/reduce.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "reduce",
    file: "reduce.wgsl",
    source: SRC,
    entries: &[
        entry("reduce_axis", &[read("ax"), write("ay")]),
        entry("reduce_axis_vec4", &[read("qx"), write("qy")]),
        entry("reduce_row_vec4", &[read("qx"), write("qrow")]),
        entry("reduce_rows", &[read("ax"), write("ay")]),
        entry("reduce_outer_inner", &[read("ax"), write("ay")]),
        entry("reduce_outer_inner_vec4", &[read("qx"), write("qrow")]),
        entry(
            "reduce_outer_inner_thread_vec4",
            &[read("qx"), write("qrow")],
        ),
        entry("softmax", &[read("ax"), write("ay")]),
        entry("softmax_backward", &[read("sy"), read("sdy"), write("sdx")]),
        entry("softmax_thread", &[read("ax"), write("ay")]),
        entry(
            "softmax_backward_thread",
            &[read("sy"), read("sdy"), write("sdx")],
        ),
    ],
};

crate::kernel_params! {
    /// The reductions' parameters (`shaders/reduce.wgsl`): x viewed as `[outer, mid, inner]`.
    /// The axis kernels reduce `mid`; `reduce_rows` reduces `outer` rows of length `mid`;
    /// `reduce_outer_inner*` keep `mid`. Sums are multiplied by `scale`.
    pub struct ReduceParams {
        /// The leading run of axes.
        outer: u32,
        /// The middle axis.
        mid: u32,
        /// The trailing run of axes.
        inner: u32,
        /// Factor on sums (1/count for a mean).
        scale: f32,
    }

    /// The softmax kernels' parameters.
    pub struct SoftmaxParams {
        /// Rows.
        rows: u32,
        /// Row length.
        cols: u32,
    }
}

/// Rows up to this long are handled by one thread each (no workgroup barriers), longer ones by a
/// workgroup each.
pub(crate) const ROW_THREAD_MAX: usize = 256;

/// The entry point and workgroup grid for a row-wise kernel over `rows` rows of length `len`.
pub(crate) fn row_kernel(
    base: &'static str,
    thread_variant: &'static str,
    rows: usize,
    len: usize,
) -> (&'static str, [u32; 3]) {
    if len <= ROW_THREAD_MAX {
        (thread_variant, grid(rows, 64))
    } else {
        (base, grid(rows, 1))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Sum = 0,
    Max = 1,
}

/// Sorted, deduplicated, in-range axes.
fn normalize_axes(op: &'static str, rank: usize, axes: &[usize]) -> Result<Vec<usize>> {
    let mut a = axes.to_vec();
    a.sort_unstable();
    a.dedup();
    if let Some(&bad) = a.iter().find(|&&x| x >= rank) {
        return Err(Error::invalid(
            op,
            format!("axis {bad} out of range for rank {rank}"),
        ));
    }
    Ok(a)
}

/// Reduces `x` over one contiguous run of axes `lo..=hi`, keeping them as size-1 axes.
fn reduce_run(x: &Tensor, lo: usize, hi: usize, how: Reduce, scale: f32) -> Result<Tensor> {
    let d = x.dims();
    let outer: usize = d[..lo].iter().product();
    let r: usize = d[lo..=hi].iter().product();
    let inner: usize = d[hi + 1..].iter().product();
    let mut out_dims = d.to_vec();
    for v in &mut out_dims[lo..=hi] {
        *v = 1;
    }
    let dev = x.device();
    let out = Tensor::uninit(dev, &out_dims, DType::F32)?;
    let consts = [("OP", how as u32 as f64)];
    // A workgroup per row pays for barriers; worth it only for long rows.
    if inner == 1 && r > ROW_THREAD_MAX {
        let k = kernel_reading(
            dev,
            &KERNELS,
            "reduce_rows",
            &consts,
            &f16_bindings(&[("ax", x)]),
        )?;
        dev.dispatch(
            &k,
            &ReduceParams {
                outer: outer as u32,
                mid: r as u32,
                inner: 0,
                scale,
            },
            &[x.arg(), out.arg()],
            grid(outer, 1),
        )?;
    } else if inner.is_multiple_of(4) || (inner == 1 && r.is_multiple_of(4)) {
        // Four elements per load: a quad of outputs, or a quad of one row.
        let (entry, threads) = if inner == 1 {
            ("reduce_row_vec4", outer)
        } else {
            ("reduce_axis_vec4", outer * inner / 4)
        };
        let k = kernel_reading(dev, &KERNELS, entry, &consts, &f16_bindings(&[("qx", x)]))?;
        let params = ReduceParams {
            outer: outer as u32,
            mid: r as u32,
            inner: inner as u32,
            scale,
        };
        dev.dispatch(&k, &params, &[x.arg(), out.arg()], grid(threads, 256))?;
    } else {
        let k = kernel_reading(
            dev,
            &KERNELS,
            "reduce_axis",
            &consts,
            &f16_bindings(&[("ax", x)]),
        )?;
        let params = ReduceParams {
            outer: outer as u32,
            mid: r as u32,
            inner: inner as u32,
            scale,
        };
        dev.dispatch(&k, &params, &[x.arg(), out.arg()], grid(outer * inner, 256))?;
    }
    Ok(out)
}

/// Reduces the leading axes `..lo` and the trailing axes `hi + 1..` together in one dispatch
/// (one workgroup per kept middle element), keeping them as size-1 axes.
fn reduce_outer_inner(x: &Tensor, lo: usize, hi: usize, how: Reduce, scale: f32) -> Result<Tensor> {
    let d = x.dims();
    let outer: usize = d[..lo].iter().product();
    let mid: usize = d[lo..=hi].iter().product();
    let inner: usize = d[hi + 1..].iter().product();
    let out_dims: Vec<usize> = d
        .iter()
        .enumerate()
        .map(|(i, &v)| if (lo..=hi).contains(&i) { v } else { 1 })
        .collect();
    let dev = x.device();
    let out = Tensor::uninit(dev, &out_dims, DType::F32)?;
    let cpu = dev.kernel_profile() == crate::KernelProfile::Cpu;
    let (entry, groups) = match (inner.is_multiple_of(4), cpu) {
        (true, true) => ("reduce_outer_inner_thread_vec4", grid(mid, 64)),
        (true, false) => ("reduce_outer_inner_vec4", grid(mid, 1)),
        (false, _) => ("reduce_outer_inner", grid(mid, 1)),
    };
    let consts = [("OP", how as u32 as f64)];
    let input = if inner.is_multiple_of(4) { "qx" } else { "ax" };
    let k = kernel_reading(dev, &KERNELS, entry, &consts, &f16_bindings(&[(input, x)]))?;
    let params = ReduceParams {
        outer: outer as u32,
        mid: mid as u32,
        inner: inner as u32,
        scale,
    };
    dev.dispatch(&k, &params, &[x.arg(), out.arg()], groups)?;
    Ok(out)
}

/// Reduces over `axes` (sorted), keeping them as size-1 axes; a mean scales each run's sum.
/// Axes that are a leading and a trailing run around kept ones take one dispatch; otherwise
/// each run of consecutive axes takes one.
fn reduce_keep(x: &Tensor, axes: &[usize], how: Reduce, mean: bool) -> Result<Tensor> {
    let rank = x.rank();
    // Leading run 0..lo and trailing run hi+1..rank, both non-empty, nothing else.
    let lead = axes
        .iter()
        .enumerate()
        .take_while(|&(i, &a)| i == a)
        .count();
    let trail = axes.len() - lead;
    if lead > 0
        && trail > 0
        && axes[lead..]
            .iter()
            .enumerate()
            .all(|(i, &a)| a == rank - trail + i)
    {
        let (lo, hi) = (lead, rank - trail - 1);
        let count: usize = axes.iter().map(|&a| x.dims()[a]).product();
        let scale = if mean { 1.0 / count as f32 } else { 1.0 };
        return reduce_outer_inner(x, lo, hi, how, scale);
    }
    let mut cur = match (axes.is_empty(), x.dtype()) {
        // Nothing to reduce: an f16 input still gives an f32 result.
        (true, DType::F16) => x.to_f32()?,
        _ => x.clone(),
    };
    let mut i = axes.len();
    // Runs of consecutive axes, last run first so earlier indices stay valid.
    while i > 0 {
        let hi = axes[i - 1];
        let mut lo = hi;
        while i > 1 && axes[i - 2] + 1 == lo {
            i -= 1;
            lo = axes[i - 1];
        }
        i -= 1;
        let r: usize = cur.dims()[lo..=hi].iter().product();
        let scale = if mean { 1.0 / r as f32 } else { 1.0 };
        cur = reduce_run(&cur, lo, hi, how, scale)?;
    }
    Ok(cur)
}

fn drop_axes(dims: &[usize], axes: &[usize]) -> Vec<usize> {
    dims.iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, d)| *d)
        .collect()
}

impl Tensor {
    fn reduce(
        &self,
        op: &'static str,
        axes: &[usize],
        keepdim: bool,
        how: Reduce,
        mean: bool,
    ) -> Result<Tensor> {
        check_float(op, &[self])?;
        let axes = normalize_axes(op, self.rank(), axes)?;
        let kept = reduce_keep(self, &axes, how, mean)?;
        let keep_dims = kept.dims().to_vec();
        let out = if keepdim {
            kept.clone()
        } else {
            kept.reshape(&drop_axes(self.dims(), &axes))?
        };
        let out = out.detach();
        let x = self.detach();
        let y = kept.detach();
        let count: usize = axes.iter().map(|&a| self.dims()[a]).product();
        Ok(out.record(
            op,
            &[self],
            Box::new(move |g, _| {
                let g = g.reshape(&keep_dims)?;
                let dx = match how {
                    Reduce::Sum if mean => {
                        g.mul_scalar(1.0 / count as f32)?.broadcast_to(x.dims())?
                    }
                    Reduce::Sum => g.broadcast_to(x.dims())?,
                    Reduce::Max => {
                        // Ties share the gradient equally.
                        let mask = x.binary(&y, crate::ops::BinaryOp::Eq)?;
                        let n = mask.sum(&axes, true)?;
                        mask.mul(&g.div(&n)?)?
                    }
                };
                Ok(vec![Some(dx)])
            }),
        ))
    }

    /// Sum over `axes` (of an f32 or f16 tensor; f16 is read as f16 and summed in f32, as are
    /// the mean and the max).
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce("sum", axes, keepdim, Reduce::Sum, false)
    }
    /// Mean over `axes`.
    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce("mean", axes, keepdim, Reduce::Sum, true)
    }
    /// Maximum over `axes` (the gradient is shared among tied maxima).
    pub fn max(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce("max", axes, keepdim, Reduce::Max, false)
    }
    /// Sum of all elements, as a scalar.
    pub fn sum_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.sum(&axes, false)
    }
    /// Mean of all elements, as a scalar.
    pub fn mean_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.mean(&axes, false)
    }

    fn softmax_impl(&self, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        check_f32(op, &[self])?;
        let c = *self
            .dims()
            .last()
            .ok_or_else(|| Error::invalid(op, "needs at least one axis"))?;
        let rows = self.numel() / c.max(1);
        let dev = self.device();
        let out = Tensor::uninit(dev, self.dims(), DType::F32)?;
        let consts = [("OP", log as u32 as f64)];
        let (entry, groups) = row_kernel("softmax", "softmax_thread", rows, c);
        let k = kernel(dev, &KERNELS, entry, &consts)?;
        dev.dispatch(
            &k,
            &SoftmaxParams {
                rows: rows as u32,
                cols: c as u32,
            },
            &[self.arg(), out.arg()],
            groups,
        )?;
        let y = out.detach();
        Ok(out.record(
            op,
            &[self],
            Box::new(move |g, _| {
                let dev = g.device();
                let dx = Tensor::uninit(dev, g.dims(), DType::F32)?;
                let (entry, groups) =
                    row_kernel("softmax_backward", "softmax_backward_thread", rows, c);
                let k = kernel(dev, &KERNELS, entry, &[("OP", log as u32 as f64)])?;
                dev.dispatch(
                    &k,
                    &SoftmaxParams {
                        rows: rows as u32,
                        cols: c as u32,
                    },
                    &[y.arg(), g.arg(), dx.arg()],
                    groups,
                )?;
                Ok(vec![Some(dx)])
            }),
        ))
    }

    /// Softmax over the last axis.
    pub fn softmax(&self) -> Result<Tensor> {
        self.softmax_impl(false)
    }
    /// Log-softmax over the last axis.
    pub fn log_softmax(&self) -> Result<Tensor> {
        self.softmax_impl(true)
    }
}
