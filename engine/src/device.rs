//! The GPU device: adapter choice, the one pending command encoder with per-dispatch parameter
//! slots, the pipeline cache and the buffer pool.
//!
//! Ops never submit by themselves: they record a dispatch into the pending encoder, which is
//! submitted every [`DeviceOptions::flush_every`] dispatches, at a readback, or on [`Device::flush`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::params::KernelParams;
use crate::pool::{Pool, PoolStats};

/// Bytes of one dispatch's parameter slot: 64 u32 words.
pub(crate) const PARAM_BYTES: usize = crate::params::MAX_PARAM_BYTES;

/// Which matmul kernel family to use (docs/experiments.md, "Kernels on lavapipe": what is fast
/// on lavapipe is not fast on a GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulStrategy {
    /// Register-blocked 8×16 per thread, vec4 loads straight from storage: best on CPU adapters.
    RegisterBlocked,
    /// Workgroup-memory tiles (64×64, 4×4 per thread): best on real GPUs.
    Tiled,
    /// Lanes of an 8-wide subgroup share B through `subgroupBroadcast` (8×32 per lane's block):
    /// best on CPU adapters with 8-lane subgroups (lavapipe on AVX2); needs
    /// [`DeviceInfo::subgroup_size`] `== Some(8)`.
    Subgroup,
}

/// Which family of kernel variants to run: what is fast on a CPU adapter (lavapipe: few
/// barriers, many FMAs per load, long loops per thread) is slow on a GPU and vice versa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelProfile {
    /// Variants tuned for CPU adapters.
    Cpu,
    /// Variants tuned for GPUs.
    Gpu,
}

/// Knobs of a [`Device`]; `Default` is right for most uses.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// Submit the pending encoder after this many recorded dispatches.
    pub flush_every: usize,
    /// Submit after this many pending uploads (each one a staging copy in the encoder).
    pub max_pending_uploads: usize,
    /// Submit once pending uploads hold this many staging bytes.
    pub max_pending_upload_bytes: u64,
    /// Free pooled buffers beyond this many cached bytes instead of keeping them.
    pub pool_cache_limit_bytes: u64,
    /// Force a matmul kernel family; `None` follows the kernel profile.
    pub matmul: Option<MatmulStrategy>,
    /// Force a kernel profile; `None` chooses by adapter type (tests force both).
    pub profile: Option<KernelProfile>,
    /// Time every kernel: each dispatch is submitted and waited for on its own and its wall
    /// time is added to [`Device::kernel_times`]. Slow; for profiling only. `Device::new` also
    /// turns it on when the environment variable `MTDIFF_PROFILE_KERNELS` is set.
    pub time_kernels: bool,
    /// Use the subgroup kernels (matmul, conv2d) where the adapter allows them: a CPU kernel
    /// profile and 8-lane subgroups. Tests turn it off to exercise the other kernels there too.
    pub subgroup_kernels: bool,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            flush_every: 48,
            max_pending_uploads: 64,
            max_pending_upload_bytes: 64 << 20,
            pool_cache_limit_bytes: 2 << 30,
            matmul: None,
            profile: None,
            time_kernels: false,
            subgroup_kernels: true,
        }
    }
}

/// Accumulated wall time of one kernel under [`DeviceOptions::time_kernels`].
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The kernel's label (family/entry point and variant).
    pub kernel: String,
    /// Dispatches timed.
    pub count: u64,
    /// Total seconds, submit to completion.
    pub seconds: f64,
}

/// What the adapter is and what it can do.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// Adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// Graphics backend (Vulkan, Metal, DX12, GL).
    pub backend: wgpu::Backend,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: wgpu::DeviceType,
    /// Driver name.
    pub driver: String,
    /// Driver version string.
    pub driver_info: String,
    /// Limits the device was opened with.
    pub limits: wgpu::Limits,
    /// Features the device was opened with.
    pub features: wgpu::Features,
    /// The subgroup size, when subgroup operations are enabled and every subgroup has the same
    /// size (`None` otherwise, e.g. on a caller's device opened without `Features::SUBGROUP`).
    pub subgroup_size: Option<u32>,
}

impl DeviceInfo {
    /// The Mesa version (major, minor) of a Mesa driver (lavapipe, RADV, ANV, …), read from the
    /// driver string ("Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"); `None` for other drivers.
    pub fn mesa_version(&self) -> Option<(u32, u32)> {
        parse_mesa_version(&self.driver_info)
    }

    /// Whether this is Mesa's software Vulkan driver (lavapipe, which reports "llvmpipe").
    pub fn is_lavapipe(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu && self.name.starts_with("llvmpipe")
    }
}

/// (major, minor) after "Mesa " in a driver version string.
fn parse_mesa_version(driver_info: &str) -> Option<(u32, u32)> {
    let rest = &driver_info[driver_info.find("Mesa ")? + 5..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod mesa_version_tests {
    use super::parse_mesa_version;

    #[test]
    fn mesa_versions_parse_from_driver_strings() {
        assert_eq!(
            parse_mesa_version("Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"),
            Some((25, 0))
        );
        assert_eq!(
            parse_mesa_version("Mesa 22.3.6 (LLVM 15.0.6)"),
            Some((22, 3))
        );
        assert_eq!(parse_mesa_version("NVIDIA 550.54"), None);
        assert_eq!(parse_mesa_version("Mesa x"), None);
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        writeln!(f, "adapter:  {}", self.name)?;
        writeln!(f, "backend:  {:?}", self.backend)?;
        writeln!(f, "type:     {:?}", self.device_type)?;
        writeln!(f, "driver:   {} {}", self.driver, self.driver_info)?;
        writeln!(f, "max_buffer_size: {} MiB", l.max_buffer_size >> 20)?;
        writeln!(
            f,
            "max_storage_buffer_binding_size: {} MiB",
            l.max_storage_buffer_binding_size >> 20
        )?;
        writeln!(
            f,
            "max_storage_buffers_per_shader_stage: {}",
            l.max_storage_buffers_per_shader_stage
        )?;
        writeln!(
            f,
            "max_compute_workgroup_size: {}x{}x{} ({} invocations), workgroup memory {} KiB",
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size >> 10
        )?;
        match self.subgroup_size {
            Some(n) => writeln!(f, "subgroups: {n} lanes")?,
            None => writeln!(f, "subgroups: not enabled")?,
        }
        write!(f, "features: {:?}", self.features)
    }
}

/// Counters of recorded work, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Dispatches recorded since the device was made.
    pub dispatches: u64,
    /// Command buffers submitted.
    pub submits: u64,
    /// Readbacks (GPU→CPU copies) done.
    pub readbacks: u64,
}

/// Whether a kernel's storage binding is read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// A compiled compute pipeline and its bind group layout.
pub(crate) struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    label: String,
    bindings: Vec<Access>,
}

/// A buffer range bound to one kernel binding.
#[derive(Clone, Copy)]
pub(crate) struct BufferArg<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

/// Everything needed to build a pipeline on a cache miss.
pub(crate) struct KernelSource<'a> {
    pub label: &'a str,
    pub source: Cow<'a, str>,
    pub entry: &'a str,
    pub constants: &'a [(&'a str, f64)],
    pub bindings: &'a [Access],
}

struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    /// CPU copy of this flush's parameter slots, written to `params_buf` just before submit.
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    dispatches: usize,
    uploads: usize,
    upload_bytes: u64,
}

pub(crate) struct Inner {
    pub(crate) wgpu: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: DeviceInfo,
    options: DeviceOptions,
    slot_bytes: u64,
    recorder: Mutex<Recorder>,
    pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
    pub(crate) pool: Mutex<Pool>,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Option<String>>>,
    /// Bound where a kernel declares a binding that this dispatch does not use (no bias, no
    /// aggregate term, ...): one read-only and one write placeholder, so none is allocated per op.
    unused_read: wgpu::Buffer,
    unused_write: wgpu::Buffer,
    dispatches: AtomicU64,
    submits: AtomicU64,
    readbacks: AtomicU64,
    kernel_times: Mutex<HashMap<String, (u64, f64)>>,
}

/// A GPU device with its queue; cheap to clone (shared handle).
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Device({:?} on {:?})",
            self.inner.info.name, self.inner.info.backend
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding an engine lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl Device {
    /// Opens the best adapter: highest-performance type first, native APIs before GL.
    /// Honours `WGPU_BACKEND` (e.g. `vulkan`, `gl`) and `WGPU_ADAPTER_NAME` (substring match).
    pub fn new(mut options: DeviceOptions) -> Result<Device> {
        if std::env::var_os("MTDIFF_PROFILE_KERNELS").is_some() {
            options.time_kernels = true;
        }
        if std::env::var("MTDIFF_SUBGROUP_KERNELS").is_ok_and(|v| v == "0") {
            options.subgroup_kernels = false;
        }
        // Without WGPU_BACKEND: the native APIs first, GL only when none has an adapter (probing
        // GL's EGL/Wayland stack prints warnings on headless machines).
        let env_backends = wgpu::Backends::from_env();
        let name_filter = std::env::var("WGPU_ADAPTER_NAME")
            .ok()
            .filter(|s| !s.is_empty());
        let enumerate = |backends: wgpu::Backends| {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            desc.backends = backends;
            let instance = wgpu::Instance::new(desc);
            pollster::block_on(instance.enumerate_adapters(backends))
        };
        let matches = |a: &wgpu::Adapter| match &name_filter {
            Some(n) => a.get_info().name.to_lowercase().contains(&n.to_lowercase()),
            None => true,
        };
        let (backends, adapters) = match env_backends {
            Some(b) => (b, enumerate(b)),
            None => {
                let native = enumerate(wgpu::Backends::PRIMARY);
                if native.iter().any(matches) {
                    (wgpu::Backends::PRIMARY, native)
                } else {
                    let all = wgpu::Backends::PRIMARY | wgpu::Backends::GL;
                    (all, enumerate(all))
                }
            }
        };
        let found: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        let adapter = adapters
            .into_iter()
            .filter(matches)
            .min_by_key(|a| {
                let i = a.get_info();
                (type_rank(i.device_type), i.backend == wgpu::Backend::Gl)
            })
            .ok_or_else(|| Error::NoAdapter {
                tried: format!(
                    "backends {backends:?}{}; adapters present: [{}]",
                    name_filter
                        .as_ref()
                        .map(|n| format!(", WGPU_ADAPTER_NAME={n:?}"))
                        .unwrap_or_default(),
                    found.join(", ")
                ),
            })?;
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("mtdiff"),
            // Subgroup operations where the adapter has them: the CPU-adapter matmul uses them.
            required_features: adapter.features() & wgpu::Features::SUBGROUP,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| Error::RequestDevice {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
        let dev = Self::build(device, queue, Some(info), options);
        // Our own device: errors outside our scopes are stored and reported at the next flush,
        // never panicked on; a loss is remembered and reported by every later call.
        let lost = dev.inner.lost.clone();
        dev.inner.wgpu.set_device_lost_callback(move |reason, msg| {
            *lock(&lost) = Some(format!("{reason:?}: {msg}"));
        });
        let uncaptured = dev.inner.uncaptured.clone();
        dev.inner
            .wgpu
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                lock(&uncaptured).get_or_insert_with(|| e.to_string());
            }));
        Ok(dev)
    }

    /// Wraps a caller's existing device and queue (embedding in a graphics tool). The engine
    /// installs no error handler and no device-lost callback on it; its own errors are caught in
    /// error scopes per call.
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue, options: DeviceOptions) -> Device {
        Self::build(device, queue, None, options)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        options: DeviceOptions,
    ) -> Device {
        let ai = adapter_info.unwrap_or_else(|| device.adapter_info());
        let limits = device.limits();
        let info = DeviceInfo {
            name: ai.name,
            backend: ai.backend,
            device_type: ai.device_type,
            driver: ai.driver,
            driver_info: ai.driver_info,
            features: device.features(),
            subgroup_size: (device.features().contains(wgpu::Features::SUBGROUP)
                && ai.subgroup_min_size == ai.subgroup_max_size)
                .then_some(ai.subgroup_min_size),
            limits,
        };
        let slot_bytes =
            (PARAM_BYTES as u64).max(info.limits.min_uniform_buffer_offset_alignment as u64);
        let flush_every = options.flush_every.max(1);
        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("mtdiff.params"),
            size: slot_bytes * flush_every as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let recorder = Recorder {
            encoder: None,
            params: vec![0u8; (slot_bytes as usize) * flush_every],
            params_buf,
            dispatches: 0,
            uploads: 0,
            upload_bytes: 0,
        };
        let placeholder = |label| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let (unused_read, unused_write) = (
            placeholder("mtdiff.unused_read"),
            placeholder("mtdiff.unused_write"),
        );
        Device {
            inner: Arc::new(Inner {
                wgpu: device,
                queue,
                info,
                options: DeviceOptions {
                    flush_every,
                    ..options
                },
                slot_bytes,
                recorder: Mutex::new(recorder),
                pipelines: Mutex::new(HashMap::new()),
                pool: Mutex::new(Pool::default()),
                lost: Arc::new(Mutex::new(None)),
                uncaptured: Arc::new(Mutex::new(None)),
                unused_read,
                unused_write,
                dispatches: AtomicU64::new(0),
                submits: AtomicU64::new(0),
                readbacks: AtomicU64::new(0),
                kernel_times: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Adapter name, backend, driver, limits and features.
    pub fn info(&self) -> &DeviceInfo {
        &self.inner.info
    }

    /// The options the device runs with.
    pub fn options(&self) -> &DeviceOptions {
        &self.inner.options
    }

    /// The wrapped wgpu device.
    pub fn wgpu_device(&self) -> &wgpu::Device {
        &self.inner.wgpu
    }

    /// The wrapped wgpu queue.
    pub fn wgpu_queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// The kernel profile in use: the option if set, else by adapter type.
    pub fn kernel_profile(&self) -> KernelProfile {
        self.inner
            .options
            .profile
            .unwrap_or(match self.inner.info.device_type {
                wgpu::DeviceType::Cpu => KernelProfile::Cpu,
                _ => KernelProfile::Gpu,
            })
    }

    /// The matmul family in use: the option if set, else by kernel profile (on CPU adapters the
    /// subgroup family when subgroups have 8 lanes, else the register-blocked one).
    pub fn matmul_strategy(&self) -> MatmulStrategy {
        self.inner
            .options
            .matmul
            .unwrap_or(match self.kernel_profile() {
                KernelProfile::Cpu if self.subgroup_kernels() => MatmulStrategy::Subgroup,
                KernelProfile::Cpu => MatmulStrategy::RegisterBlocked,
                KernelProfile::Gpu => MatmulStrategy::Tiled,
            })
    }

    /// Whether the subgroup kernels for CPU adapters run here: the option is on, the kernel
    /// profile is `Cpu`, and subgroups have 8 lanes. `Device::new` turns the option off when the
    /// environment variable `MTDIFF_SUBGROUP_KERNELS` is `0`.
    pub fn subgroup_kernels(&self) -> bool {
        self.inner.options.subgroup_kernels
            && self.kernel_profile() == KernelProfile::Cpu
            && self.has_8_lane_subgroups()
    }

    /// Whether subgroup operations are enabled with exactly 8 lanes per subgroup, what the
    /// subgroup kernels for CPU adapters are written for.
    pub fn has_8_lane_subgroups(&self) -> bool {
        self.inner.info.subgroup_size == Some(8)
    }

    /// Whether two handles refer to the same device.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Buffer pool statistics.
    pub fn pool_stats(&self) -> PoolStats {
        lock(&self.inner.pool).stats()
    }

    /// Destroys every cached (free) pooled buffer.
    pub fn release_cached_buffers(&self) {
        lock(&self.inner.pool).release_cached();
    }

    /// Counters of dispatches, submits and readbacks.
    pub fn dispatch_stats(&self) -> DispatchStats {
        DispatchStats {
            dispatches: self.inner.dispatches.load(Ordering::Relaxed),
            submits: self.inner.submits.load(Ordering::Relaxed),
            readbacks: self.inner.readbacks.load(Ordering::Relaxed),
        }
    }

    /// Per-kernel wall times collected under [`DeviceOptions::time_kernels`], slowest first
    /// (empty when timing is off).
    pub fn kernel_times(&self) -> Vec<KernelTime> {
        let mut v: Vec<KernelTime> = lock(&self.inner.kernel_times)
            .iter()
            .map(|(k, &(count, seconds))| KernelTime {
                kernel: k.clone(),
                count,
                seconds,
            })
            .collect();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        v
    }

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

    pub(crate) fn check_alive(&self) -> Result<()> {
        if let Some(reason) = lock(&self.inner.lost).clone() {
            return Err(Error::DeviceLost(reason));
        }
        if let Some(msg) = lock(&self.inner.uncaptured).take() {
            return Err(Error::Validation {
                context: "an earlier GPU call".into(),
                message: msg,
            });
        }
        Ok(())
    }

    /// Runs `f` inside a validation and an out-of-memory error scope.
    fn scoped<T>(&self, context: &str, bytes: u64, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self
            .inner
            .wgpu
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self
            .inner
            .wgpu
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::OutOfMemory {
                bytes,
                reason: e.to_string(),
            });
        }
        if let Some(e) = v {
            return Err(Error::Validation {
                context: context.to_string(),
                message: e.to_string(),
            });
        }
        Ok(out)
    }

    /// Creates a raw buffer, turning limits and driver refusals into `Err`.
    pub(crate) fn create_buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
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
        self.scoped(label, bytes, || {
            self.inner.wgpu.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        })
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

    /// Forgets a pooled buffer that an application now owns ([`Tensor::into_wgpu_buffer`]).
    pub(crate) fn forget_pooled(&self, class: u64) {
        lock(&self.inner.pool).taken_out(class);
    }

    /// Returns a buffer to the pool (called when a tensor's storage is dropped).
    pub(crate) fn recycle(&self, buffer: wgpu::Buffer, class: u64) {
        lock(&self.inner.pool).give_back(buffer, class, self.inner.options.pool_cache_limit_bytes);
    }

    /// The cached pipeline for `key`, built from `make()` on first use.
    pub(crate) fn pipeline(
        &self,
        key: &str,
        make: impl FnOnce() -> KernelSource<'static>,
    ) -> Result<Arc<Pipeline>> {
        if let Some(p) = lock(&self.inner.pipelines).get(key) {
            return Ok(p.clone());
        }
        let src = make();
        let d = &self.inner.wgpu;
        let built =
            self.scoped(src.label, 0, || {
                let entries: Vec<wgpu::BindGroupLayoutEntry> =
                    std::iter::once(wgpu::BindGroupLayoutEntry {
                        binding: 0,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .chain(src.bindings.iter().enumerate().map(|(i, a)| {
                        wgpu::BindGroupLayoutEntry {
                            binding: i as u32 + 1,
                            visibility: wgpu::ShaderStages::COMPUTE,
                            ty: wgpu::BindingType::Buffer {
                                ty: wgpu::BufferBindingType::Storage {
                                    read_only: *a == Access::Read,
                                },
                                has_dynamic_offset: false,
                                min_binding_size: None,
                            },
                            count: None,
                        }
                    }))
                    .collect();
                let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(src.label),
                    entries: &entries,
                });
                let pl = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(src.label),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
                let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(src.label),
                    source: wgpu::ShaderSource::Wgsl(crate::ops::with_prelude(&src.source).into()),
                });
                let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(src.label),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(src.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: src.constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
                Pipeline {
                    pipeline,
                    layout,
                    label: format!("{}.{}", src.label, src.entry),
                    bindings: src.bindings.to_vec(),
                }
            })?;
        let p = Arc::new(built);
        lock(&self.inner.pipelines).insert(key.to_string(), p.clone());
        Ok(p)
    }

    /// Whether the pipeline cache holds `key`.
    pub(crate) fn has_pipeline(&self, key: &str) -> bool {
        lock(&self.inner.pipelines).contains_key(key)
    }

    /// A placeholder for a binding the dispatch does not use (`write`: for a read-write binding).
    /// Kernels never touch it unless a parameter says the binding is in use.
    pub(crate) fn unused(&self, write: bool) -> BufferArg<'_> {
        let buffer = if write {
            &self.inner.unused_write
        } else {
            &self.inner.unused_read
        };
        BufferArg {
            buffer,
            offset: 0,
            size: 16,
        }
    }

    /// The labels of the pipelines built so far (`family.entry`, the label wgpu and capture
    /// tools such as RenderDoc show for the pipeline, its layouts and its bind groups), sorted.
    pub fn pipeline_labels(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.inner.pipelines)
            .values()
            .map(|p| p.label.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Number of pipelines built so far.
    pub fn pipeline_count(&self) -> usize {
        lock(&self.inner.pipelines).len()
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
        // A written buffer may not be bound a second time in the same dispatch; checked here so
        // the error names the kernel instead of surfacing at a later submit.
        for (i, a) in args.iter().enumerate() {
            if pipeline.bindings.get(i) == Some(&Access::ReadWrite)
                && args
                    .iter()
                    .enumerate()
                    .any(|(j, b)| j != i && b.buffer == a.buffer)
            {
                return Err(Error::Validation {
                    context: pipeline.label.clone(),
                    message: format!(
                        "binding {} is written and also bound elsewhere in the same dispatch",
                        i + 1
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
        let started = std::time::Instant::now();
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
        .chain(args.iter().enumerate().map(|(i, a)| wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: a.buffer,
                offset: a.offset,
                size: std::num::NonZeroU64::new(a.size.max(4)),
            }),
        }))
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
        if timing {
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
                .map_err(|e| Error::Validation {
                    context: "upload".into(),
                    message: e.to_string(),
                })?;
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
