//! Compiling kernels ahead of their first run on CPU adapters. lavapipe compiles a pipeline's
//! machine code when the pipeline first runs, on its one queue thread, so a cold start compiles
//! every kernel in turn on one core (minutes for the main job on a 2-core VM) while the other
//! waits. The precompiler is a second device on the same adapter, with a thread of its own: each
//! pipeline the engine builds is handed to it, and it builds the same pipeline and runs it once
//! on zeroed buffers (all-zero parameters: every kernel's bounds are zero, so it does no work).
//! Mesa's shader disk cache then serves the machine code to the engine's device when it reaches
//! that kernel. Jobs are taken newest first, so the helper works from the far end of the
//! pending command stream while the queue thread compiles from its near end.
//!
//! Nothing depends on it for correctness: the helper's device computes nothing the engine reads.
//! Without Mesa's disk cache it could not pass its work on, so `Device::new` does not start it
//! while `MESA_SHADER_CACHE_DISABLE` is set.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::lock;
use super::pipeline::{build, Binding, KernelSource};

/// One pipeline to compile: everything [`build`] needs, owned (`source` with the prelude).
pub(crate) struct PrecompileJob {
    pub label: String,
    pub source: String,
    pub entry: String,
    pub constants: Vec<(String, f64)>,
    pub bindings: Vec<Binding>,
    pub slots: Vec<u32>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<PrecompileJob>,
    stop: bool,
    /// Jobs compiled and run so far.
    done: u64,
}

/// The helper device's thread and its job stack (newest on top).
pub(crate) struct Precompiler {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Precompiler {
    /// Opens a second device on `adapter` with `features` and `limits` (those of the engine's
    /// device, so the driver sees the same shaders) and starts its thread; `None` when the
    /// adapter gives no second device.
    pub(crate) fn start(
        adapter: &wgpu::Adapter,
        features: wgpu::Features,
        limits: wgpu::Limits,
    ) -> Option<Precompiler> {
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("mtdiff.precompile"),
            required_features: features,
            required_limits: limits,
            ..Default::default()
        }))
        .ok()?;
        // Errors on the helper (none are expected) must not panic: the engine's device checks
        // every kernel itself.
        device.on_uncaptured_error(Arc::new(|_| {}));
        let shared: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mtdiff-precompile".into())
            .spawn(move || run(&device, &queue, &worker))
            .ok()?;
        Some(Precompiler {
            shared,
            thread: Some(thread),
        })
    }

    /// Jobs compiled and run so far.
    pub(crate) fn done(&self) -> u64 {
        lock(&self.shared.0).done
    }

    /// Queues `job`; it is compiled before the jobs queued earlier.
    pub(crate) fn submit(&self, job: PrecompileJob) {
        let (queue, ready) = &*self.shared;
        lock(queue).jobs.push(job);
        ready.notify_one();
    }
}

impl Drop for Precompiler {
    /// Stops the thread after the job it is on (the driver must not be torn down under it).
    fn drop(&mut self) {
        let (queue, ready) = &*self.shared;
        {
            let mut q = lock(queue);
            q.stop = true;
            q.jobs.clear();
        }
        ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The helper thread: compiles and runs jobs, newest first, until stopped.
fn run(device: &wgpu::Device, queue: &wgpu::Queue, shared: &(Mutex<Queue>, Condvar)) {
    let (jobs, ready) = shared;
    let params = zeroed(device, 256, wgpu::BufferUsages::UNIFORM);
    let mut storage: Vec<wgpu::Buffer> = Vec::new();
    loop {
        let job = {
            let mut q = lock(jobs);
            loop {
                if q.stop {
                    return;
                }
                if let Some(j) = q.jobs.pop() {
                    break j;
                }
                q = ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        while storage.len() < job.bindings.len() {
            storage.push(zeroed(device, 4096, wgpu::BufferUsages::STORAGE));
        }
        let constants: Vec<(&str, f64)> = job
            .constants
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let src = KernelSource {
            label: &job.label,
            source: job.source.as_str().into(),
            entry: &job.entry,
            constants: &constants,
            bindings: &job.bindings,
        };
        let (pipeline, layout) = build(device, &src, &job.slots);
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        })
        .chain(
            job.slots
                .iter()
                .zip(&storage)
                .map(|(&slot, b)| wgpu::BindGroupEntry {
                    binding: slot,
                    resource: b.as_entire_binding(),
                }),
        )
        .collect();
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("mtdiff.precompile"),
            layout: &layout,
            entries: &entries,
        });
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        queue.submit([enc.finish()]);
        let _ = device.poll(wgpu::PollType::wait_indefinitely());
        lock(jobs).done += 1;
    }
}

/// A zero-filled buffer of `size` bytes (wgpu zeroes new buffers).
fn zeroed(device: &wgpu::Device, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("mtdiff.precompile"),
        size,
        usage,
        mapped_at_creation: false,
    })
}
