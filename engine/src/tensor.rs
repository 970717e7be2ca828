//! Tensors: a shape and a dtype over a pooled GPU buffer, with an optional autodiff node.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::autodiff::{self, BackwardFn, Node, NodeInput};
use crate::device::{BufferArg, Device};
use crate::error::{Error, Result};

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: every differentiable tensor.
    F32,
    /// 32-bit unsigned integer: indices and class labels.
    U32,
    /// 16-bit float (IEEE binary16), stored two to a 32-bit word (element 2k in the low half):
    /// uploaded ([`Tensor::from_f16`]), read back ([`Tensor::to_vec_f16`]) and cast
    /// ([`Tensor::to_f16`], [`Tensor::to_f32`]); arithmetic ops take f32.
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
        }
    }

    /// Bytes of `numel` elements in a buffer (whole 32-bit words; at least one).
    pub fn buffer_bytes(self, numel: usize) -> usize {
        (numel.max(1) * self.size_bytes()).next_multiple_of(4)
    }
}

/// Dimensions of a tensor, row-major.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: &[usize]) -> Shape {
        Shape(dims.to_vec())
    }
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// Contiguous row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.0.len()];
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Shape {
        Shape(d.to_vec())
    }
}

/// Identity of a tensor (shared by its clones), the key of [`crate::Gradients`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl TensorId {
    fn fresh() -> TensorId {
        TensorId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }
}

/// A GPU buffer: pooled (dropping it returns the buffer to its device's pool) or a caller's
/// (wrapped by [`Tensor::from_wgpu_buffer`]; dropping it only drops the engine's handle).
pub(crate) struct Storage {
    pub(crate) buffer: Option<wgpu::Buffer>,
    /// The pool's size class; `None` for a caller's buffer, which never enters the pool.
    pub(crate) class: Option<u64>,
    pub(crate) device: Device,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let (Some(b), Some(class)) = (self.buffer.take(), self.class) {
            self.device.recycle(b, class);
        }
    }
}

struct TensorInner {
    id: TensorId,
    storage: Arc<Storage>,
    /// Offset into the storage in elements (a leading-axis view).
    offset: usize,
    shape: Shape,
    dtype: DType,
    requires_grad: bool,
    node: Option<Arc<Node>>,
}

/// An n-dimensional array on a GPU; cheap to clone (shared handle, same [`TensorId`]).
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({:?}, {:?}, {:?}",
            self.0.id, self.0.shape, self.0.dtype
        )?;
        if let Some(n) = &self.0.node {
            write!(f, ", op={}", n.op)?;
        } else if self.0.requires_grad {
            write!(f, ", leaf")?;
        }
        write!(f, ")")
    }
}

impl Tensor {
    /// An uninitialised tensor (crate-internal: every op writes its whole output).
    pub(crate) fn uninit(device: &Device, shape: &[usize], dtype: DType) -> Result<Tensor> {
        device.check_alive()?;
        let numel: usize = shape.iter().product();
        let (buffer, class) = device.alloc_storage(dtype.buffer_bytes(numel) as u64)?;
        let storage = Arc::new(Storage {
            buffer: Some(buffer),
            class: Some(class),
            device: device.clone(),
        });
        Ok(Tensor::over(storage, shape, dtype))
    }

    /// A fresh tensor (no grad, no node) over all of `storage` from element 0.
    pub(crate) fn over(storage: Arc<Storage>, shape: &[usize], dtype: DType) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::fresh(),
            storage,
            offset: 0,
            shape: Shape::new(shape),
            dtype,
            requires_grad: false,
            node: None,
        }))
    }

    /// Handles (clones) of this tensor, views excluded.
    pub(crate) fn handle_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// The storage this tensor views (crate-internal: interop takes buffers out of it).
    pub(crate) fn storage(&self) -> &Arc<Storage> {
        &self.0.storage
    }

    fn check_len(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != len {
            return Err(Error::shape(
                op,
                format!("{n} elements for shape {shape:?}"),
                format!("{len} elements"),
            ));
        }
        Ok(())
    }

    /// Uploads f32 data with the given shape.
    pub fn from_slice(device: &Device, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Self::check_len("from_slice", data.len(), shape)?;
        let t = Self::uninit(device, shape, DType::F32)?;
        device.upload(&t.arg(), bytemuck::cast_slice(data))?;
        Ok(t)
    }

    /// Uploads u32 data (indices, labels) with the given shape.
    pub fn from_u32(device: &Device, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        Self::check_len("from_u32", data.len(), shape)?;
        let t = Self::uninit(device, shape, DType::U32)?;
        device.upload(&t.arg(), bytemuck::cast_slice(data))?;
        Ok(t)
    }

    /// A scalar (shape `[]`).
    pub fn scalar(device: &Device, value: f32) -> Result<Tensor> {
        Self::from_slice(device, &[value], &[])
    }

    /// A tensor of zeros (a buffer clear recorded in program order).
    pub fn zeros(device: &Device, shape: &[usize]) -> Result<Tensor> {
        let t = Self::uninit(device, shape, DType::F32)?;
        device.clear(&t.arg())?;
        Ok(t)
    }

    /// Reads the data back as f32 (flushes pending work and waits for it).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.expect_dtype("to_vec", DType::F32)?;
        let bytes = self.device().read(&self.arg())?;
        Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes)[..self.numel()].to_vec())
    }

    /// Reads the data back as u32.
    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        self.expect_dtype("to_vec_u32", DType::U32)?;
        let bytes = self.device().read(&self.arg())?;
        Ok(bytemuck::pod_collect_to_vec::<u8, u32>(&bytes)[..self.numel()].to_vec())
    }

    /// Uploads f16 data with the given shape (an f16 tensor; see [`DType::F16`]).
    pub fn from_f16(device: &Device, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        Self::check_len("from_f16", data.len(), shape)?;
        let t = Self::uninit(device, shape, DType::F16)?;
        let mut bytes: Vec<u8> = bytemuck::cast_slice(data).to_vec();
        bytes.resize(DType::F16.buffer_bytes(data.len()), 0);
        device.upload(&t.arg(), &bytes)?;
        Ok(t)
    }

    /// Reads an f16 tensor back.
    pub fn to_vec_f16(&self) -> Result<Vec<half::f16>> {
        self.expect_dtype("to_vec_f16", DType::F16)?;
        let bytes = self.device().read(&self.arg())?;
        Ok(bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes)[..self.numel()].to_vec())
    }

    /// Reads back a one-element tensor.
    pub fn to_scalar(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "to_scalar",
                "one element",
                format!("{}", self.shape()),
            ));
        }
        Ok(self.to_vec()?[0])
    }

    /// The identity shared by this tensor's clones.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// The device holding the data.
    pub fn device(&self) -> &Device {
        &self.0.storage.device
    }
    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    /// The op that produced this tensor, if it is part of a recorded graph.
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(|n| n.op)
    }
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.0.node.as_ref()
    }

    /// A new leaf sharing this data whose gradient [`Tensor::backward`] will return.
    pub fn with_grad(&self) -> Tensor {
        self.view(self.0.offset, self.0.shape.clone(), true)
    }

    /// A new tensor sharing this data, cut from the graph (no gradient flows through it).
    pub fn detach(&self) -> Tensor {
        self.view(self.0.offset, self.0.shape.clone(), false)
    }

    fn view(&self, offset: usize, shape: Shape, requires_grad: bool) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::fresh(),
            storage: self.0.storage.clone(),
            offset,
            shape,
            dtype: self.0.dtype,
            requires_grad,
            node: None,
        }))
    }

    /// Whether `self` and `other` are views of the same storage.
    pub(crate) fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// Where this view starts in its storage, in elements.
    pub(crate) fn storage_offset(&self) -> usize {
        self.0.offset
    }

    /// A view of `shape` at element `offset` of this tensor's storage (crate-internal: the caller
    /// keeps it inside the storage and at an offset kernels can bind).
    pub(crate) fn view_at(&self, offset: usize, shape: &[usize]) -> Tensor {
        self.view(offset, Shape::new(shape), false)
    }

    /// The buffer range of this tensor, for binding to a kernel.
    pub(crate) fn arg(&self) -> BufferArg<'_> {
        BufferArg {
            buffer: self
                .0
                .storage
                .buffer
                .as_ref()
                .expect("a live storage holds its buffer"),
            offset: (self.0.offset * self.0.dtype.size_bytes()) as u64,
            size: self.0.dtype.buffer_bytes(self.numel()) as u64,
        }
    }

    pub(crate) fn expect_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype() != dtype {
            return Err(Error::invalid(
                op,
                format!("expected a {dtype:?} tensor, got {:?}", self.dtype()),
            ));
        }
        Ok(())
    }

    /// Attaches a backward rule to a freshly made output, if grad mode is on and an input needs it.
    pub(crate) fn record(
        self,
        op: &'static str,
        inputs: &[&Tensor],
        backward: BackwardFn,
    ) -> Tensor {
        if !autodiff::grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return self;
        }
        let mut out = self;
        let inner = Arc::get_mut(&mut out.0).expect("a freshly made op output has one owner");
        inner.requires_grad = true;
        inner.node = Some(Arc::new(Node {
            op,
            inputs: inputs.iter().map(|t| NodeInput::of(t)).collect(),
            backward,
        }));
        out
    }

    /// Same data, new shape with the same number of elements (no copy); differentiable.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("{} elements", self.numel()),
                format!("{shape:?}"),
            ));
        }
        let old = self.dims().to_vec();
        let out = self.view(self.0.offset, Shape::new(shape), false);
        Ok(out.record(
            "reshape",
            &[self],
            Box::new(move |g, _| Ok(vec![Some(g.reshape(&old)?)])),
        ))
    }

    /// Rows `start..start+len` of the leading axis: a view when the offset can be bound directly,
    /// else a copy (buffer bindings need aligned offsets); differentiable.
    pub fn narrow(&self, start: usize, len: usize) -> Result<Tensor> {
        if self.dtype() == DType::F16 {
            return Err(Error::invalid(
                "narrow",
                "f16 tensors have no row views yet: narrow in f32, then cast",
            ));
        }
        let d0 = *self
            .dims()
            .first()
            .ok_or_else(|| Error::invalid("narrow", "a scalar has no leading axis"))?;
        if start + len > d0 {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "rows {start}..{} out of range for {}",
                    start + len,
                    self.shape()
                ),
            ));
        }
        let row: usize = self.dims()[1..].iter().product();
        let mut dims = self.dims().to_vec();
        dims[0] = len;
        let offset = self.0.offset + start * row;
        let align = self
            .device()
            .info()
            .limits
            .min_storage_buffer_offset_alignment as usize;
        let out = if (offset * 4).is_multiple_of(align) {
            self.view(offset, Shape::new(&dims), false)
        } else {
            let out = Tensor::uninit(self.device(), &dims, self.dtype())?;
            let src = BufferArg {
                offset: (offset * 4) as u64,
                ..out.arg()
            };
            let src = BufferArg {
                buffer: self.arg().buffer,
                ..src
            };
            self.device().copy(&src, &out.arg())?;
            out
        };
        let full = self.dims().to_vec();
        Ok(out.record(
            "narrow",
            &[self],
            Box::new(move |g, _| {
                let gi = Tensor::zeros(g.device(), &full)?;
                let dst = BufferArg {
                    offset: (start * row * 4) as u64,
                    ..gi.arg()
                };
                g.device().copy(&g.arg(), &dst)?;
                Ok(vec![Some(gi)])
            }),
        ))
    }

    /// Overwrites this f32 tensor's data with `data` (its number of elements), in place and in
    /// program order, uploaded straight into its buffer (no intermediate tensor). Every view of
    /// the same storage sees the change; the graph is not involved.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        self.expect_dtype("write", DType::F32)?;
        Self::check_len("write", data.len(), self.dims())?;
        self.device()
            .upload(&self.arg(), bytemuck::cast_slice(data))
    }

    /// Overwrites this tensor's data with `src` (same shape), in place and in program order.
    /// Every view of the same storage sees the change; the graph is not involved.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() || src.dtype() != self.dtype() {
            return Err(Error::shape(
                "assign",
                format!("{} {:?}", self.shape(), self.dtype()),
                format!("{} {:?}", src.shape(), src.dtype()),
            ));
        }
        if !src.device().same(self.device()) {
            return Err(Error::invalid(
                "assign",
                "tensors live on different devices",
            ));
        }
        self.device().copy(&src.arg(), &self.arg())
    }
}
