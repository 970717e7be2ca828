//! Buffers: creation within the adapter's limits and the pool of storage buffers.

use super::{lock, Device};
use crate::error::{Error, Result};

impl Device {
    /// Checks, before anything is allocated on the host or the device, that a tensor of `bytes`
    /// fits this device: one storage binding, one buffer, and the memory budget with what is
    /// held now. Callers that build large host data for a tensor ask first.
    pub fn check_tensor_bytes(&self, bytes: u64) -> Result<()> {
        self.check_limits(bytes, wgpu::BufferUsages::STORAGE)?;
        self.check_budget(crate::pool::size_class(bytes))
    }

    /// Creates a raw buffer, turning limits and driver refusals into `Err`.
    pub(crate) fn create_buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        self.check_limits(bytes, usage)?;
        self.scoped(label, bytes, || {
            self.inner.wgpu.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// Refuses a buffer beyond the adapter's size limits.
    fn check_limits(&self, bytes: u64, usage: wgpu::BufferUsages) -> Result<()> {
        let limits = &self.inner.info.limits;
        if bytes > limits.max_buffer_size {
            return Err(Error::OutOfMemory {
                bytes,
                reason: format!(
                    "above this adapter's max_buffer_size of {} bytes",
                    limits.max_buffer_size
                ),
            });
        }
        if usage.contains(wgpu::BufferUsages::STORAGE)
            && bytes > limits.max_storage_buffer_binding_size
        {
            return Err(Error::OutOfMemory {
                bytes,
                reason: format!(
                    "above this adapter's max_storage_buffer_binding_size of {} bytes",
                    limits.max_storage_buffer_binding_size
                ),
            });
        }
        Ok(())
    }

    /// A pooled storage buffer of at least `bytes` bytes.
    pub(crate) fn alloc_storage(&self, bytes: u64) -> Result<(wgpu::Buffer, u64)> {
        let class = crate::pool::size_class(bytes);
        if let Some(buf) = lock(&self.inner.pool).take(class) {
            return Ok((buf, class));
        }
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        self.check_budget(class)?;
        let buf = match self.create_buffer("mtdiff.tensor", class, usage) {
            Ok(b) => b,
            Err(Error::OutOfMemory { .. }) => {
                // Cached buffers of other sizes may be what stands in the way: free them once.
                self.release_cached_buffers();
                self.create_buffer("mtdiff.tensor", class, usage)?
            }
            Err(e) => return Err(e),
        };
        lock(&self.inner.pool).created(class);
        Ok((buf, class))
    }

    /// Refuses a new buffer of `bytes` that would take the pool past the memory budget, after
    /// freeing the cached buffers once.
    fn check_budget(&self, bytes: u64) -> Result<()> {
        let Some((budget, source)) = &self.inner.memory_budget else {
            return Ok(());
        };
        let held = || lock(&self.inner.pool).stats().live_bytes;
        if held() + bytes > *budget {
            self.release_cached_buffers();
        }
        let held = held();
        if held + bytes > *budget {
            return Err(Error::OutOfMemory {
                bytes,
                reason: format!("{held} bytes are held and the budget is {budget} bytes: {source}"),
            });
        }
        Ok(())
    }

    /// Forgets a pooled buffer that an application now owns ([`Tensor::into_wgpu_buffer`]).
    pub(crate) fn forget_pooled(&self, class: u64) {
        lock(&self.inner.pool).taken_out(class);
    }

    /// Returns a buffer to the pool (called when a tensor's storage is dropped).
    pub(crate) fn recycle(&self, buffer: wgpu::Buffer, class: u64) {
        lock(&self.inner.pool).give_back(buffer, class, self.inner.options.pool_cache_limit_bytes);
    }
}
