//! Recording and submission: the one pending command encoder with per-dispatch parameter
//! slots, buffer copies, uploads and readbacks in program order, flushes and waits.

use std::sync::atomic::Ordering;

use super::pipeline::{Access, Pipeline};
use super::{lock, Device, PARAM_BYTES};
use crate::error::{Error, Result};
use crate::params::KernelParams;

/// A buffer range bound to one kernel binding.
#[derive(Clone, Copy)]
pub(crate) struct BufferArg<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

pub(super) struct Recorder {
    pub(super) encoder: Option<wgpu::CommandEncoder>,
    /// CPU copy of this flush's parameter slots, written to `params_buf` just before submit.
    pub(super) params: Vec<u8>,
    pub(super) params_buf: wgpu::Buffer,
    pub(super) dispatches: usize,
    pub(super) uploads: usize,
    pub(super) upload_bytes: u64,
}

impl Device {
    /// Submits everything recorded so far (does not wait for it).
    pub fn flush(&self) -> Result<()> {
        self.check_alive()?;
        let mut rec = lock(&self.inner.recorder);
        self.flush_locked(&mut rec).map(|_| ())
    }

    /// Polls the device once without blocking: runs the callbacks of finished work (e.g. the
    /// readbacks of [`Tensor::to_vec_async`](crate::Tensor::to_vec_async)). Returns whether
    /// the queue was empty. An application with its own event loop calls this (or its own
    /// `wgpu::Device::poll`) from it; the engine itself only polls inside blocking calls.
    pub fn poll(&self) -> Result<bool> {
        self.check_alive()?;
        let status = self
            .inner
            .wgpu
            .poll(wgpu::PollType::Poll)
            .map_err(|e| Error::DeviceLost(format!("polling the GPU failed: {e}")))?;
        Ok(status.is_queue_empty())
    }

    /// Runs a future of this device's async calls (e.g. [`Tensor::to_vec_async`](crate::Tensor::to_vec_async))
    /// to its end natively, waiting on the device whenever the future waits: the blocking
    /// counterpart of a browser's event loop, for native callers and tests of async code.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            // Runs the callbacks of finished work (a map callback wakes a read-back); with
            // nothing in flight it returns at once.
            let _ = self.inner.wgpu.poll(wgpu::PollType::wait_indefinitely());
            std::thread::yield_now();
        }
    }

    /// Submits everything recorded and waits until the GPU has finished it.
    pub fn synchronize(&self) -> Result<()> {
        self.check_alive()?;
        let idx = {
            let mut rec = lock(&self.inner.recorder);
            self.flush_locked(&mut rec)?
        };
        if let Some(idx) = idx {
            self.wait(idx)?;
        }
        Ok(())
    }

    fn wait(&self, idx: wgpu::SubmissionIndex) -> Result<()> {
        self.inner
            .wgpu
            .poll(wgpu::PollType::Wait {
                submission_index: Some(idx),
                timeout: None,
            })
            .map_err(|e| Error::DeviceLost(format!("waiting for the GPU failed: {e}")))?;
        Ok(())
    }

    fn encoder<'r>(&self, rec: &'r mut Recorder) -> &'r mut wgpu::CommandEncoder {
        rec.encoder.get_or_insert_with(|| {
            self.inner
                .wgpu
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("mtdiff.ops"),
                })
        })
    }

    /// Records one dispatch with `params` in its own uniform slot; submits when `flush_every`
    /// is reached.
    pub(crate) fn dispatch<P: KernelParams>(
        &self,
        pipeline: &Pipeline,
        params: &P,
        args: &[BufferArg<'_>],
        workgroups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_bytes(pipeline, bytemuck::bytes_of(params), args, workgroups)
    }

    fn dispatch_bytes(
        &self,
        pipeline: &Pipeline,
        bytes: &[u8],
        args: &[BufferArg<'_>],
        workgroups: [u32; 3],
    ) -> Result<()> {
        assert!(
            bytes.len() <= PARAM_BYTES,
            "kernel parameters exceed one slot"
        );
        if workgroups.contains(&0) {
            return Ok(());
        }
        if args.len() != pipeline.bindings.len() {
            return Err(Error::Validation {
                context: pipeline.label.clone(),
                message: format!(
                    "{} buffers bound for the {} declared bindings",
                    args.len(),
                    pipeline.bindings.len()
                ),
            });
        }
        // A written buffer may not be bound a second time in the same dispatch; checked here so
        // the error names the kernel instead of surfacing at a later submit.
        for (i, (a, b)) in args.iter().zip(&pipeline.bindings).enumerate() {
            if b.access == Access::ReadWrite
                && args
                    .iter()
                    .enumerate()
                    .any(|(j, other)| j != i && other.buffer == a.buffer)
            {
                return Err(Error::Validation {
                    context: pipeline.label.clone(),
                    message: format!(
                        "`{}` is written and also bound elsewhere in the same dispatch",
                        b.name
                    ),
                });
            }
        }
        let mut rec = lock(&self.inner.recorder);
        let timing = self.inner.options.time_kernels;
        if timing {
            // Drain earlier work so only this kernel is timed.
            if let Some(idx) = self.flush_locked(&mut rec)? {
                self.wait(idx)?;
            }
        }
        // Only read when timing (the web has no clock here, and never times).
        let started = timing.then(std::time::Instant::now);
        let slot = rec.dispatches as u64 * self.inner.slot_bytes;
        rec.params[slot as usize..slot as usize + bytes.len()].copy_from_slice(bytes);
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &rec.params_buf,
                offset: slot,
                size: std::num::NonZeroU64::new(PARAM_BYTES as u64),
            }),
        })
        .chain(
            args.iter()
                .zip(&pipeline.slots)
                .map(|(a, &slot)| wgpu::BindGroupEntry {
                    binding: slot,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: a.buffer,
                        offset: a.offset,
                        size: std::num::NonZeroU64::new(a.size.max(4)),
                    }),
                }),
        )
        .collect();
        let bind = self.scoped("bind group", 0, || {
            self.inner
                .wgpu
                .create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&pipeline.label),
                    layout: &pipeline.layout,
                    entries: &entries,
                })
        })?;
        drop(entries);
        {
            let enc = self.encoder(&mut rec);
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&pipeline.label),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        }
        rec.dispatches += 1;
        self.inner.dispatches.fetch_add(1, Ordering::Relaxed);
        if let Some(started) = started {
            if let Some(idx) = self.flush_locked(&mut rec)? {
                self.wait(idx)?;
            }
            let mut times = lock(&self.inner.kernel_times);
            let e = times.entry(pipeline.label.clone()).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += started.elapsed().as_secs_f64();
        } else if rec.dispatches >= self.inner.options.flush_every {
            self.flush_locked(&mut rec)?;
        }
        Ok(())
    }

    /// Records a buffer-to-buffer copy in program order.
    pub(crate) fn copy(&self, src: &BufferArg<'_>, dst: &BufferArg<'_>) -> Result<()> {
        // Checked here so a bad copy fails at its call, not at some later submit.
        if src.offset + src.size > src.buffer.size() || dst.offset + src.size > dst.buffer.size() {
            return Err(Error::Validation {
                context: "copy".into(),
                message: format!(
                    "{} bytes from offset {} to offset {} overrun a buffer",
                    src.size, src.offset, dst.offset
                ),
            });
        }
        let mut rec = lock(&self.inner.recorder);
        self.encoder(&mut rec)
            .copy_buffer_to_buffer(src.buffer, src.offset, dst.buffer, dst.offset, src.size);
        Ok(())
    }

    /// Records zero-filling of a buffer range in program order.
    pub(crate) fn clear(&self, dst: &BufferArg<'_>) -> Result<()> {
        let mut rec = lock(&self.inner.recorder);
        self.encoder(&mut rec)
            .clear_buffer(dst.buffer, dst.offset, Some(dst.size));
        Ok(())
    }

    /// Uploads bytes through a staging buffer copied inside the pending encoder, so the upload
    /// happens in program order (a `queue.write_buffer` would run before every dispatch of the
    /// next submit, and could overwrite a recycled buffer that a pending dispatch still reads).
    pub(crate) fn upload(&self, dst: &BufferArg<'_>, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let padded = len.div_ceil(4) * 4;
        let staging = self.scoped("upload staging buffer", padded, || {
            self.inner.wgpu.create_buffer(&wgpu::BufferDescriptor {
                label: Some("mtdiff.upload"),
                size: padded,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::MAP_WRITE,
                mapped_at_creation: true,
            })
        })?;
        {
            let mut view = staging
                .get_mapped_range_mut(..)
                .map_err(|e| self.call_failed("upload", e.to_string()))?;
            view.slice(..data.len()).copy_from_slice(data);
        }
        staging.unmap();
        let mut rec = lock(&self.inner.recorder);
        self.encoder(&mut rec).copy_buffer_to_buffer(
            &staging,
            0,
            dst.buffer,
            dst.offset,
            padded.min(dst.size),
        );
        rec.uploads += 1;
        rec.upload_bytes += padded;
        if rec.uploads >= self.inner.options.max_pending_uploads
            || rec.upload_bytes >= self.inner.options.max_pending_upload_bytes
        {
            self.flush_locked(&mut rec)?;
        }
        Ok(())
    }

    /// Records a copy of `src` into a new mappable staging buffer and submits everything
    /// recorded up to it; the staging buffer and that submission's index.
    pub(crate) fn copy_to_staging(
        &self,
        src: &BufferArg<'_>,
    ) -> Result<(wgpu::Buffer, wgpu::SubmissionIndex)> {
        self.check_alive()?;
        let size = src.size.div_ceil(4) * 4;
        let staging = self.create_buffer(
            "mtdiff.readback",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        let mut rec = lock(&self.inner.recorder);
        self.encoder(&mut rec)
            .copy_buffer_to_buffer(src.buffer, src.offset, &staging, 0, size);
        let idx = self
            .flush_locked(&mut rec)?
            .expect("an encoder with a copy was just recorded");
        Ok((staging, idx))
    }

    /// Counts a finished readback.
    pub(crate) fn count_readback(&self) {
        self.inner.readbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies a buffer range to the CPU: flushes, waits for that submission, maps.
    pub(crate) fn read(&self, src: &BufferArg<'_>) -> Result<Vec<u8>> {
        if cfg!(target_arch = "wasm32") {
            return Err(Error::Blocking {
                call: "a blocking read-back (to_vec)",
                instead: "Tensor::to_vec_async",
            });
        }
        let (staging, idx) = self.copy_to_staging(src)?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(idx)?;
        rx.recv()
            .map_err(|_| Error::Readback("the map callback never ran".into()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Readback(e.to_string()))?
            .to_vec();
        staging.unmap();
        self.inner.readbacks.fetch_add(1, Ordering::Relaxed);
        self.check_alive()?;
        Ok(data)
    }

    fn flush_locked(&self, rec: &mut Recorder) -> Result<Option<wgpu::SubmissionIndex>> {
        let Some(enc) = rec.encoder.take() else {
            return Ok(None);
        };
        let used = rec.dispatches * self.inner.slot_bytes as usize;
        if used > 0 {
            // Runs before this submit's command buffer, after every earlier submit.
            self.inner
                .queue
                .write_buffer(&rec.params_buf, 0, &rec.params[..used]);
        }
        rec.dispatches = 0;
        rec.uploads = 0;
        rec.upload_bytes = 0;
        let idx = self.scoped("submit", 0, || self.inner.queue.submit([enc.finish()]))?;
        self.inner.submits.fetch_add(1, Ordering::Relaxed);
        Ok(Some(idx))
    }
}
