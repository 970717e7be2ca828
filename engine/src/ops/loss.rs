//! Fused losses: softmax cross-entropy with integer labels, mean squared error.
//! Kernels: `shaders/loss.wgsl` (+ `reduce_rows` for the mean); CPU reference in `cpu`.

use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_f32, grid, kernel};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/loss.wgsl");
/// `shaders/loss.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "loss",
    file: "loss.wgsl",
    source: SRC,
    entries: &[
        entry(
            "cross_entropy",
            &[read("cx"), read("clabel"), write("closs"), write("clse")],
        ),
        entry(
            "cross_entropy_backward",
            &[
                read("bx"),
                read("blabel"),
                read("blse"),
                read("bg"),
                write("bdx"),
            ],
        ),
        entry("mse_partial", &[read("ma"), read("mb"), write("mpartial")]),
        entry(
            "mse_backward",
            &[read("ga"), read("gb"), read("gg"), write("gda")],
        ),
        entry(
            "cross_entropy_thread",
            &[read("cx"), read("clabel"), write("closs"), write("clse")],
        ),
    ],
};

crate::kernel_params! {
    /// The cross-entropy kernels' parameters (`shaders/loss.wgsl`).
    pub struct CrossEntropyParams {
        /// Rows of logits.
        rows: u32,
        /// Classes per row.
        classes: u32,
    }

    /// The MSE kernels' parameters.
    pub struct MseParams {
        /// Elements.
        n: u32,
        /// `mse_partial`'s grid stride (workgroups × 256); unused by `mse_backward`.
        threads: u32,
    }
}

/// Mean of the `n` values of `x` times `scale`, as a scalar (one workgroup).
fn scaled_sum(x: &Tensor, n: usize, scale: f32) -> Result<Tensor> {
    let dev = x.device();
    let out = Tensor::uninit(dev, &[], DType::F32)?;
    let (entry, _) = crate::ops::reduce::row_kernel("reduce_rows", "reduce_axis", 1, n);
    let k = kernel(dev, &crate::ops::reduce::KERNELS, entry, &[("OP", 0.0)])?;
    dev.dispatch(
        &k,
        &crate::ops::reduce::ReduceParams {
            outer: 1,
            mid: n as u32,
            inner: 1,
            scale,
        },
        &[x.arg(), out.arg()],
        [1, 1, 1],
    )?;
    Ok(out)
}

impl Tensor {
    /// Mean softmax cross-entropy of `[rows, classes]` logits against u32 `labels` `[rows]`.
    /// A label ≥ classes makes the loss NaN (labels are data: validate them when loading).
    pub fn cross_entropy(&self, labels: &Tensor) -> Result<Tensor> {
        let op = "cross_entropy";
        check_f32(op, &[self])?;
        labels.expect_dtype(op, DType::U32)?;
        if self.rank() != 2 || labels.dims() != [self.dims()[0]] {
            return Err(Error::shape(
                op,
                "logits [rows, classes] and labels [rows]",
                format!("{} and {}", self.shape(), labels.shape()),
            ));
        }
        let (rows, c) = (self.dims()[0], self.dims()[1]);
        let dev = self.device();
        let per_row = Tensor::uninit(dev, &[rows], DType::F32)?;
        let lse = Tensor::uninit(dev, &[rows], DType::F32)?;
        let (entry, groups) =
            crate::ops::reduce::row_kernel("cross_entropy", "cross_entropy_thread", rows, c);
        let k = kernel(dev, &KERNELS, entry, &[])?;
        let params = CrossEntropyParams {
            rows: rows as u32,
            classes: c as u32,
        };
        dev.dispatch(
            &k,
            &params,
            &[self.arg(), labels.arg(), per_row.arg(), lse.arg()],
            groups,
        )?;
        let out = scaled_sum(&per_row, rows, 1.0 / rows as f32)?;
        let (x, labels) = (self.detach(), labels.clone());
        Ok(out.record(
            op,
            &[self],
            Box::new(move |g, _| {
                let dev = g.device();
                let dx = Tensor::uninit(dev, x.dims(), DType::F32)?;
                let k = kernel(dev, &KERNELS, "cross_entropy_backward", &[])?;
                dev.dispatch(
                    &k,
                    &params,
                    &[x.arg(), labels.arg(), lse.arg(), g.arg(), dx.arg()],
                    grid(rows * c, 256),
                )?;
                Ok(vec![Some(dx)])
            }),
        ))
    }

    /// Mean squared error between two tensors of the same shape, as a scalar.
    pub fn mse(&self, target: &Tensor) -> Result<Tensor> {
        let op = "mse";
        check_f32(op, &[self, target])?;
        if self.dims() != target.dims() {
            return Err(Error::shape(
                op,
                format!("{}", self.shape()),
                format!("{}", target.shape()),
            ));
        }
        let n = self.numel();
        let dev = self.device();
        // A bounded number of workgroups, each summing a grid-strided share.
        let groups = n.div_ceil(256 * 16).clamp(1, 1024);
        let partial = Tensor::uninit(dev, &[groups], DType::F32)?;
        let k = kernel(dev, &KERNELS, "mse_partial", &[])?;
        let threads = (groups * 256) as u32;
        dev.dispatch(
            &k,
            &MseParams {
                n: n as u32,
                threads,
            },
            &[self.arg(), target.arg(), partial.arg()],
            [groups as u32, 1, 1],
        )?;
        let out = scaled_sum(&partial, groups, 1.0 / n as f32)?;
        let (a, b) = (self.detach(), target.detach());
        Ok(out.record(
            op,
            &[self, target],
            Box::new(move |g, needs| {
                let dev = g.device();
                let da = Tensor::uninit(dev, a.dims(), DType::F32)?;
                let k = kernel(dev, &KERNELS, "mse_backward", &[])?;
                dev.dispatch(
                    &k,
                    &MseParams {
                        n: n as u32,
                        threads: 0,
                    },
                    &[a.arg(), b.arg(), g.arg(), da.arg()],
                    grid(n, 256),
                )?;
                let db = if needs[1] { Some(da.neg()?) } else { None };
                Ok(vec![Some(da), db])
            }),
        ))
    }
}
