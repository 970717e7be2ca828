//! Sharing buffers with an application that embeds the engine on its own `wgpu::Device`
//! ([`Device::from_wgpu`]): a caller's buffer as a [`Tensor`], a tensor's buffer for the
//! caller's bind groups, and readback that never blocks.
//!
//! # Ordering
//! The engine records its work into one pending command encoder and submits it to the shared
//! queue at [`Device::flush`] (and on its own every `flush_every` dispatches, at a readback, or
//! at a full upload queue). The queue runs submissions in order, so:
//! - **engine → application**: call [`Device::flush`] after the engine ops whose results you
//!   want, then submit your own commands that read them; they see every result recorded before
//!   the flush. To read on the CPU yourself, map after your submission completes (or use
//!   [`Tensor::to_vec_async`]).
//! - **application → engine**: submit your commands that write a buffer before the engine
//!   work that reads it is submitted: flush the engine first if it has recorded work that must
//!   see the old contents, then submit yours, then call the engine ops. A `queue.write_buffer`
//!   lands before the *next* submit on the queue, which may be the engine's pending encoder.
//!
//! # Lifetimes
//! A tensor made by the engine lives in a pooled buffer: when its last handle (clones and
//! views included) is dropped, the buffer returns to the pool and the next op may overwrite it.
//! Keep a clone of the [`Tensor`] for as long as your commands read its [`TensorBuffer`] (a
//! bind group keeps the `wgpu::Buffer` alive, not its contents), or take the buffer out of the
//! pool for good with [`Tensor::into_wgpu_buffer`]. A buffer given to the engine with
//! [`Tensor::from_wgpu_buffer`] never enters the pool: the engine only drops its handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::{DType, Storage, Tensor};

/// The usages a caller's buffer needs to serve as a tensor: kernels bind it as storage, and
/// readbacks, copies and fills read from or write to it.
pub const TENSOR_BUFFER_USAGES: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A tensor's buffer range, borrowed for an application's own bind groups or copies.
#[derive(Clone, Copy, Debug)]
pub struct TensorBuffer<'a> {
    /// The buffer (pooled: see the module docs for how long its contents stay the tensor's).
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of the tensor's first element.
    pub offset: u64,
    /// Bytes of the tensor's elements (4 per element, at least 4).
    pub size: u64,
}

impl<'a> TensorBuffer<'a> {
    /// The range as a bind group resource.
    pub fn binding(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: std::num::NonZeroU64::new(self.size),
        })
    }
}

impl Tensor {
    /// Wraps an application's buffer (made on `device`'s `wgpu::Device`) as a tensor of `shape`
    /// and `dtype` over its first bytes, without a copy. The buffer needs
    /// [`TENSOR_BUFFER_USAGES`] and at least 4 bytes per element, and must not be mapped while
    /// the engine uses it. Ops read it in place; [`Tensor::assign`] writes into it.
    pub fn from_wgpu_buffer(
        device: &Device,
        buffer: wgpu::Buffer,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let op = "from_wgpu_buffer";
        device.check_alive()?;
        let missing = TENSOR_BUFFER_USAGES - buffer.usage();
        if !missing.is_empty() {
            return Err(Error::invalid(
                op,
                format!(
                    "the buffer lacks usages {missing:?}; create it with \
                     mtdiff_engine::interop::TENSOR_BUFFER_USAGES (STORAGE | COPY_SRC | COPY_DST) \
                     among its usages"
                ),
            ));
        }
        let bytes = shape.iter().product::<usize>().max(1) as u64 * 4;
        if buffer.size() < bytes {
            return Err(Error::shape(
                op,
                format!("a buffer of at least {bytes} bytes for shape {shape:?}"),
                format!("{} bytes", buffer.size()),
            ));
        }
        let storage = Arc::new(Storage {
            buffer: Some(buffer),
            class: None,
            device: device.clone(),
        });
        Ok(Tensor::over(storage, shape, dtype))
    }

    /// This tensor's buffer, offset and size, for an application's own bind groups on the
    /// shared device (call [`Device::flush`] before submitting commands that read it).
    pub fn wgpu_buffer(&self) -> TensorBuffer<'_> {
        let a = self.arg();
        TensorBuffer {
            buffer: a.buffer,
            offset: a.offset,
            size: a.size,
        }
    }

    /// The buffer holding this tensor's elements from byte 0, owned by the caller from now on
    /// (it never returns to the pool). Without a copy when this handle is the storage's only
    /// one and views it from its start; otherwise the elements are copied into a new buffer
    /// (in program order, like any op). Flush before submitting commands that read it.
    pub fn into_wgpu_buffer(self) -> Result<wgpu::Buffer> {
        let dev = self.device().clone();
        let whole = self.storage_offset() == 0;
        if whole && self.handle_count() == 1 && Arc::strong_count(self.storage()) == 1 {
            let mut storage = Arc::clone(self.storage());
            drop(self);
            let s = Arc::get_mut(&mut storage).expect("the last handle of this storage");
            let buffer = s.buffer.take().expect("a live storage holds its buffer");
            if let Some(class) = s.class.take() {
                dev.forget_pooled(class);
            }
            return Ok(buffer);
        }
        let a = self.arg();
        let buffer = dev.create_buffer("mtdiff.exported", a.size, TENSOR_BUFFER_USAGES)?;
        dev.copy(
            &a,
            &crate::device::BufferArg {
                buffer: &buffer,
                offset: 0,
                size: a.size,
            },
        )?;
        Ok(buffer)
    }

    /// Reads the data back as f32 without blocking: the future is ready once the device has
    /// been polled after the copy finished (by the application's event loop,
    /// [`Device::poll`], or any blocking engine call; on WebGPU the browser does it).
    pub fn to_vec_async(&self) -> Result<Readback<f32>> {
        self.expect_dtype("to_vec_async", DType::F32)?;
        Readback::start(self)
    }

    /// [`Tensor::to_vec_async`] for a u32 tensor.
    pub fn to_vec_u32_async(&self) -> Result<Readback<u32>> {
        self.expect_dtype("to_vec_u32_async", DType::U32)?;
        Readback::start(self)
    }
}

/// What the map callback reports, and who to wake.
#[derive(Default)]
struct MapState {
    done: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

/// A readback in flight ([`Tensor::to_vec_async`]): a future of the tensor's elements.
pub struct Readback<T> {
    device: Device,
    staging: wgpu::Buffer,
    numel: usize,
    state: Arc<Mutex<MapState>>,
    _elem: std::marker::PhantomData<T>,
}

impl<T: bytemuck::Pod> Readback<T> {
    fn start(t: &Tensor) -> Result<Readback<T>> {
        let device = t.device().clone();
        let (staging, _idx) = device.copy_to_staging(&t.arg())?;
        let state = Arc::new(Mutex::new(MapState::default()));
        let s = state.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
            st.done = Some(r);
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        });
        Ok(Readback {
            device,
            staging,
            numel: t.numel(),
            state,
            _elem: std::marker::PhantomData,
        })
    }

    /// Whether the data has arrived (the future will be ready when polled).
    pub fn is_ready(&self) -> bool {
        self.lock().done.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MapState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, r: std::result::Result<(), wgpu::BufferAsyncError>) -> Result<Vec<T>> {
        r.map_err(|e| Error::Readback(e.to_string()))?;
        let data = {
            let view = self
                .staging
                .get_mapped_range(..)
                .map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::pod_collect_to_vec::<u8, T>(&view)[..self.numel].to_vec()
        };
        self.staging.unmap();
        self.device.count_readback();
        self.device.check_alive()?;
        Ok(data)
    }
}

impl<T: bytemuck::Pod> Future for Readback<T> {
    type Output = Result<Vec<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let done = {
            let mut st = self.lock();
            match st.done.take() {
                Some(r) => r,
                None => {
                    st.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        Poll::Ready(self.finish(done))
    }
}

impl<T> Unpin for Readback<T> {}
