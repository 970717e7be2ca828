//! Layout ops: permute/transpose and broadcast (strided copy), concat and slice along an axis,
//! row gather (embedding). Kernels: `shaders/layout.wgsl`; CPU reference in `cpu`.

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, StaticKernel};
use crate::ops::{check_f32, grid, kernel};
use crate::tensor::{DType, Tensor};

pub(crate) const SRC: &str = include_str!("../../../shaders/layout.wgsl");
/// `shaders/layout.wgsl`: each entry point and the storage bindings it uses, in dispatch order.
pub(crate) const KERNELS: StaticKernel = StaticKernel {
    label: "layout",
    file: "layout.wgsl",
    source: SRC,
    entries: &[
        entry("strided_copy", &[read("x"), write("y")]),
        entry("axis_copy", &[read("x"), write("y")]),
        entry("axis_copy_vec4", &[read("qx"), write("qy")]),
        entry(
            "gather_rows",
            &[read("gtable"), read("gidx"), write("gout")],
        ),
        entry(
            "gather_rows_backward",
            &[read("sdout"), read("sidx"), write("sdtable")],
        ),
    ],
};
const MAX_RANK: usize = 6;

crate::kernel_params! {
    /// `strided_copy`'s parameters (`shaders/layout.wgsl`): dims and strides right-aligned to
    /// rank 6, four to a WGSL `vec4`.
    pub struct StridedCopyParams {
        /// Output elements.
        n: u32,
        /// Padding (WGSL aligns the arrays to 16 bytes).
        _pad0: u32,
        /// Padding.
        _pad1: u32,
        /// Padding.
        _pad2: u32,
        /// The output's dims.
        out_dims: [[u32; 4]; 2],
        /// The input's strides per output axis.
        in_strides: [[u32; 4]; 2],
    }

    /// `axis_copy*`'s parameters: `count` slices of the middle axis of (outer, len, inner)
    /// views, from `src_start` of a `src_len` axis to `dst_start` of a `dst_len` one.
    pub struct AxisCopyParams {
        /// The leading run of axes.
        outer: u32,
        /// The trailing run (in quads for `axis_copy_vec4`).
        inner: u32,
        /// Slices copied.
        count: u32,
        /// The source's middle-axis length.
        src_len: u32,
        /// The first source slice.
        src_start: u32,
        /// The destination's middle-axis length.
        dst_len: u32,
        /// The first destination slice.
        dst_start: u32,
    }

    /// `gather_rows*`'s parameters.
    pub struct GatherParams {
        /// Indices gathered.
        indices: u32,
        /// Row length.
        dim: u32,
        /// Rows of the table.
        rows: u32,
    }
}

/// Six per-axis values as the two `vec4`s of a WGSL uniform array.
pub(crate) fn rank6_vec4s(v: [u32; 6]) -> [[u32; 4]; 2] {
    [[v[0], v[1], v[2], v[3]], [v[4], v[5], 0, 0]]
}

/// Contiguous output of `out_dims` reading `x` through `in_strides` (both of the same rank).
fn strided_copy(x: &Tensor, out_dims: &[usize], in_strides: &[usize]) -> Result<Tensor> {
    if out_dims.len() > MAX_RANK {
        return Err(Error::invalid(
            "strided_copy",
            format!("rank {} above the supported {MAX_RANK}", out_dims.len()),
        ));
    }
    let dev = x.device();
    let out = Tensor::uninit(dev, out_dims, x.dtype())?;
    let n = out.numel();
    let pad = MAX_RANK - out_dims.len();
    let mut dims = [1u32; MAX_RANK];
    let mut strides = [0u32; MAX_RANK];
    for i in 0..out_dims.len() {
        dims[pad + i] = out_dims[i] as u32;
        strides[pad + i] = in_strides[i] as u32;
    }
    let params = StridedCopyParams {
        n: n as u32,
        out_dims: rank6_vec4s(dims),
        in_strides: rank6_vec4s(strides),
        ..Default::default()
    };
    let k = kernel(dev, &KERNELS, "strided_copy", &[])?;
    dev.dispatch(&k, &params, &[x.arg(), out.arg()], grid(n, 256))?;
    Ok(out)
}

/// Copies `count` slices of the middle axis between (outer, len, inner) views of `src` and `dst`.
#[allow(clippy::too_many_arguments)]
fn axis_copy(
    dev: &Device,
    src: &Tensor,
    dst: &Tensor,
    outer: usize,
    inner: usize,
    count: usize,
    (src_len, src_start): (usize, usize),
    (dst_len, dst_start): (usize, usize),
) -> Result<()> {
    // Rows of a length divisible by 4 move as quads.
    let (entry, inner) = if inner.is_multiple_of(4) {
        ("axis_copy_vec4", inner / 4)
    } else {
        ("axis_copy", inner)
    };
    let k = kernel(dev, &KERNELS, entry, &[])?;
    let params = AxisCopyParams {
        outer: outer as u32,
        inner: inner as u32,
        count: count as u32,
        src_len: src_len as u32,
        src_start: src_start as u32,
        dst_len: dst_len as u32,
        dst_start: dst_start as u32,
    };
    dev.dispatch(
        &k,
        &params,
        &[src.arg(), dst.arg()],
        grid(outer * count * inner, 256),
    )
}

/// [`Tensor::cat`] along an axis with nothing but size-1 axes before it: each input is one
/// contiguous block of the output, so the join is buffer copies (no dispatch), and the inputs'
/// gradients are views (or copies) of the output gradient's blocks.
fn cat_blocks(
    tensors: &[&Tensor],
    dims: &[usize],
    axis: usize,
    inner: usize,
    dtype: DType,
) -> Result<Tensor> {
    let dev = tensors[0].device();
    let out = Tensor::uninit(dev, dims, dtype)?;
    let mut ranges = Vec::new();
    let mut start = 0;
    for t in tensors {
        let len = t.dims()[axis];
        let src = t.arg();
        let dst = out.arg();
        if t.numel() > 0 {
            dev.copy(
                &src,
                &crate::device::BufferArg {
                    offset: dst.offset + (start * inner * 4) as u64,
                    size: src.size,
                    ..dst
                },
            )?;
        }
        ranges.push((start, len, t.dims().to_vec()));
        start += len;
    }
    Ok(out.record(
        "cat",
        tensors,
        Box::new(move |g, needs| {
            ranges
                .iter()
                .zip(needs)
                .map(|((s, l, d), &need)| {
                    if need {
                        g.rows_as(*s, *l, inner, d).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .collect()
        }),
    ))
}

fn split_at_axis(dims: &[usize], axis: usize) -> (usize, usize) {
    (
        dims[..axis].iter().product(),
        dims[axis + 1..].iter().product(),
    )
}

impl Tensor {
    /// Reorders axes: output axis i is input axis `perm[i]` (a copy); differentiable.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        if perm.len() != r
            || perm
                .iter()
                .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::invalid(
                "permute",
                format!("{perm:?} is not a permutation of {r} axes"),
            ));
        }
        let strides = self.shape().strides();
        let out_dims: Vec<usize> = perm.iter().map(|&p| self.dims()[p]).collect();
        let in_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
        let out = strided_copy(self, &out_dims, &in_strides)?;
        let mut inverse = vec![0; r];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(out.record(
            "permute",
            &[self],
            Box::new(move |g, _| Ok(vec![Some(g.permute(&inverse)?)])),
        ))
    }

    /// Swaps the last two axes (a copy; matmul reads transposed operands without one).
    pub fn t(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs rank ≥ 2, got {}", self.shape()),
            ));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 1, r - 2);
        self.permute(&perm)
    }

    /// Expands size-1 (or missing leading) axes to `shape` (a copy); differentiable.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let target = crate::ops::elementwise::broadcast_shape("broadcast_to", self.dims(), shape)?;
        if target != shape {
            return Err(Error::shape(
                "broadcast_to",
                format!("a shape that broadcasts to {shape:?}"),
                format!("{}", self.shape()),
            ));
        }
        if self.dims() == shape {
            return Ok(self.clone());
        }
        let lead = shape.len() - self.rank();
        let strides = self.shape().strides();
        let in_strides: Vec<usize> = (0..shape.len())
            .map(|i| {
                if i < lead || self.dims()[i - lead] == 1 {
                    0
                } else {
                    strides[i - lead]
                }
            })
            .collect();
        let out = strided_copy(self, shape, &in_strides)?;
        let dims = self.dims().to_vec();
        Ok(out.record(
            "broadcast_to",
            &[self],
            Box::new(move |g, _| Ok(vec![Some(g.sum_to_shape(&dims)?)])),
        ))
    }

    /// Joins tensors along `axis`; all other axes must agree. Differentiable. f32, or u32
    /// along axis 0 (e.g. label batches).
    pub fn cat(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
        let first = *tensors
            .first()
            .ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
        // u32 tensors (labels, indices) join along their first axis, as whole-buffer copies.
        let u32_rows = first.dtype() == DType::U32
            && tensors.iter().all(|t| t.dtype() == DType::U32)
            && axis == 0;
        if !u32_rows {
            check_f32("cat", tensors)?;
        } else if tensors.iter().any(|t| !t.device().same(first.device())) {
            return Err(Error::invalid("cat", "operands live on different devices"));
        }
        if axis >= first.rank() {
            return Err(Error::invalid(
                "cat",
                format!("axis {axis} out of range for rank {}", first.rank()),
            ));
        }
        let mut dims = first.dims().to_vec();
        dims[axis] = 0;
        for t in tensors {
            let mut d = t.dims().to_vec();
            let len = std::mem::replace(&mut d[axis], 0);
            if d != dims
                .iter()
                .enumerate()
                .map(|(i, &v)| if i == axis { 0 } else { v })
                .collect::<Vec<_>>()
            {
                return Err(Error::shape(
                    "cat",
                    format!("{} except along axis {axis}", first.shape()),
                    format!("{}", t.shape()),
                ));
            }
            dims[axis] += len;
        }
        let dev = first.device();
        let (outer, inner) = split_at_axis(&dims, axis);
        if outer == 1 {
            return cat_blocks(tensors, &dims, axis, inner, first.dtype());
        }
        let out = Tensor::uninit(dev, &dims, DType::F32)?;
        let mut start = 0;
        let mut ranges = Vec::new();
        for t in tensors {
            let len = t.dims()[axis];
            axis_copy(
                dev,
                t,
                &out,
                outer,
                inner,
                len,
                (len, 0),
                (dims[axis], start),
            )?;
            ranges.push((start, len));
            start += len;
        }
        Ok(out.record(
            "cat",
            tensors,
            Box::new(move |g, needs| {
                ranges
                    .iter()
                    .zip(needs)
                    .map(|(&(s, l), &need)| {
                        if need {
                            g.slice(axis, s, l).map(Some)
                        } else {
                            Ok(None)
                        }
                    })
                    .collect()
            }),
        ))
    }

    /// The rows `start..start+len` of `self` viewed as `[rows, inner]`, shaped `dims`: a view
    /// where the offset can be bound, else a buffer copy (never a dispatch).
    fn rows_as(&self, start: usize, len: usize, inner: usize, dims: &[usize]) -> Result<Tensor> {
        let rows = self.numel() / inner.max(1);
        self.reshape(&[rows, inner])?
            .narrow(start, len)?
            .reshape(dims)
    }

    /// Elements `start..start+len` along `axis` (a copy; see [`Tensor::narrow`] for a view of
    /// the leading axis). Differentiable.
    pub fn slice(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        check_f32("slice", &[self])?;
        if axis >= self.rank() || start + len > self.dims()[axis] {
            return Err(Error::invalid(
                "slice",
                format!(
                    "{start}..{} along axis {axis} of {}",
                    start + len,
                    self.shape()
                ),
            ));
        }
        let full = self.dims().to_vec();
        let mut dims = full.clone();
        dims[axis] = len;
        let dev = self.device();
        let out = Tensor::uninit(dev, &dims, DType::F32)?;
        let (outer, inner) = split_at_axis(&dims, axis);
        axis_copy(
            dev,
            self,
            &out,
            outer,
            inner,
            len,
            (full[axis], start),
            (len, 0),
        )?;
        Ok(out.record(
            "slice",
            &[self],
            Box::new(move |g, _| {
                let gi = Tensor::zeros(g.device(), &full)?;
                axis_copy(
                    g.device(),
                    g,
                    &gi,
                    outer,
                    inner,
                    len,
                    (len, 0),
                    (full[axis], start),
                )?;
                Ok(vec![Some(gi)])
            }),
        ))
    }

    /// Rows of this `[rows, dim]` table picked by u32 `indices` of any shape: output
    /// `[indices.., dim]` (an embedding lookup; out-of-range indices give zero rows).
    /// Differentiable with respect to the table.
    pub fn gather_rows(&self, indices: &Tensor) -> Result<Tensor> {
        check_f32("gather_rows", &[self])?;
        indices.expect_dtype("gather_rows", DType::U32)?;
        if self.rank() != 2 {
            return Err(Error::shape(
                "gather_rows",
                "a [rows, dim] table",
                format!("{}", self.shape()),
            ));
        }
        let (rows, dim) = (self.dims()[0], self.dims()[1]);
        let n = indices.numel();
        let mut out_dims = indices.dims().to_vec();
        out_dims.push(dim);
        let dev = self.device();
        let out = Tensor::uninit(dev, &out_dims, DType::F32)?;
        let params = GatherParams {
            indices: n as u32,
            dim: dim as u32,
            rows: rows as u32,
        };
        let k = kernel(dev, &KERNELS, "gather_rows", &[])?;
        dev.dispatch(
            &k,
            &params,
            &[self.arg(), indices.arg(), out.arg()],
            grid(n * dim, 256),
        )?;
        let idx = indices.clone();
        Ok(out.record(
            "gather_rows",
            &[self],
            Box::new(move |g, _| {
                let dev = g.device();
                let dt = Tensor::uninit(dev, &[rows, dim], DType::F32)?;
                let k = kernel(dev, &KERNELS, "gather_rows_backward", &[])?;
                dev.dispatch(
                    &k,
                    &params,
                    &[g.arg(), idx.arg(), dt.arg()],
                    grid(rows * dim, 256),
                )?;
                Ok(vec![Some(dt)])
            }),
        ))
    }
}
