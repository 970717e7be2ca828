//! The GPU device, in four parts: adapter choice (`adapter`), buffers and their pool
//! (`buffers`), the pipeline cache (`pipeline`), and recording and submission (`recorder`: the
//! one pending command encoder with per-dispatch parameter slots).
//!
//! Ops never submit by themselves: they record a dispatch into the pending encoder, which is
//! submitted every [`DeviceOptions::flush_every`] dispatches, at a readback, or on [`Device::flush`].

mod adapter;
mod buffers;
mod pipeline;
mod precompile;
mod recorder;

pub use adapter::{adapters, use_more_software_rasterizer_threads, DeviceInfo};
pub use pipeline::{Access, Binding};
pub(crate) use pipeline::{KernelSource, Pipeline};
pub(crate) use recorder::BufferArg;
use recorder::Recorder;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
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
    /// Submit the pending encoder after this many recorded dispatches. Large enough that a
    /// training step is recorded whole before its first submit: lavapipe makes pipeline creation
    /// wait while its queue runs, so a kernel first used late in the step would otherwise be
    /// built (and handed to the precompiler) only after the earlier ones had compiled.
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
    /// On CPU adapters, compile each new kernel ahead of its first run on a second device and
    /// thread (lavapipe compiles a kernel at its first run, one at a time on its queue thread;
    /// Mesa's disk cache passes the helper's work on). Worth it where a program builds many
    /// kernels before they run, as the first training step does (`mtdiff` turns it on); off by
    /// default. `Device::new` also reads the environment variable `MTDIFF_PRECOMPILE` (`1` on,
    /// `0` off), and starts no precompiler while `MESA_SHADER_CACHE_DISABLE` is set (nothing
    /// could pass its work on); it never applies to a device from [`Device::from_wgpu`].
    pub precompile: bool,
    /// The most bytes of pooled tensor buffers this device may hold at once; an allocation past
    /// it fails with [`Error::OutOfMemory`] instead of running the host out of memory. `None`:
    /// on CPU adapters (whose "GPU memory" is the host's, where an over-allocation ends in the
    /// kernel's out-of-memory killer rather than an error) 80 % of the memory available when the
    /// device is opened (`MemAvailable` on Linux); on GPUs no budget of ours, the driver's
    /// refusal is the error. `MTDIFF_MEMORY_BUDGET_MB` overrides it.
    pub memory_budget_bytes: Option<u64>,
    /// Which adapter to open: its number in [`adapters`] (best first); `None`: the best.
    pub adapter: Option<usize>,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            flush_every: 512,
            max_pending_uploads: 64,
            max_pending_upload_bytes: 64 << 20,
            pool_cache_limit_bytes: 2 << 30,
            matmul: None,
            profile: None,
            time_kernels: false,
            subgroup_kernels: true,
            precompile: false,
            memory_budget_bytes: None,
            adapter: None,
        }
    }
}

/// The budget of pooled buffer bytes (see [`DeviceOptions::memory_budget_bytes`]) and where it
/// comes from.
fn memory_budget(options: &DeviceOptions, device_type: wgpu::DeviceType) -> Option<(u64, String)> {
    if let Some(mb) = std::env::var("MTDIFF_MEMORY_BUDGET_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some((mb << 20, "MTDIFF_MEMORY_BUDGET_MB".to_string()));
    }
    if let Some(bytes) = options.memory_budget_bytes {
        return Some((bytes, "DeviceOptions::memory_budget_bytes".to_string()));
    }
    if device_type != wgpu::DeviceType::Cpu {
        return None;
    }
    let room = host_memory_room()?;
    Some((
        room,
        format!(
            "80 % of the host memory available when the device was opened, {} MiB (a CPU \
             adapter's memory is the host's)",
            room >> 20
        ),
    ))
}

/// What a program may plan to hold in host memory: 80 % of what is available now
/// (`MemAvailable` of /proc/meminfo), where the system tells it. The engine's budget on CPU
/// adapters and the trainer's up-front checks (datasets, samples) all use it.
pub fn host_memory_room() -> Option<u64> {
    host_memory_available().map(|a| a / 5 * 4)
}

/// The host's available memory (`MemAvailable` of /proc/meminfo), where the system tells it.
fn host_memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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

pub(crate) struct Inner {
    /// Dropped first: its thread stops before the device goes.
    precompiler: Option<precompile::Precompiler>,
    pub(crate) wgpu: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: DeviceInfo,
    options: DeviceOptions,
    slot_bytes: u64,
    recorder: Mutex<Recorder>,
    pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
    pub(crate) pool: Mutex<Pool>,
    /// The budget of pooled buffer bytes, with what it was derived from.
    pub(crate) memory_budget: Option<(u64, String)>,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Option<String>>>,
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

impl Device {
    /// Opens the best adapter: highest-performance type first, native APIs before GL.
    /// Honours `WGPU_BACKEND` (e.g. `vulkan`, `gl`) and `WGPU_ADAPTER_NAME` (substring match).
    /// Blocks until the device is open; on the web use [`Device::new_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(options: DeviceOptions) -> Result<Device> {
        pollster::block_on(Self::new_async(options))
    }

    /// On the web a device opens asynchronously: this fails, naming [`Device::new_async`].
    #[cfg(target_arch = "wasm32")]
    pub fn new(_options: DeviceOptions) -> Result<Device> {
        Err(Error::Blocking {
            call: "Device::new",
            instead: "Device::new_async",
        })
    }

    /// [`Device::new`] without blocking: natively the same adapter choice; on the web
    /// (wasm32, WebGPU) the browser's high-performance adapter. Kernel timing and the
    /// precompiler (both need threads or clocks the web lacks) are off there.
    pub async fn new_async(mut options: DeviceOptions) -> Result<Device> {
        if std::env::var_os("MTDIFF_PROFILE_KERNELS").is_some() {
            options.time_kernels = true;
        }
        if std::env::var("MTDIFF_SUBGROUP_KERNELS").is_ok_and(|v| v == "0") {
            options.subgroup_kernels = false;
        }
        match std::env::var("MTDIFF_PRECOMPILE").as_deref() {
            Ok("0") => options.precompile = false,
            Ok("1") => options.precompile = true,
            _ => {}
        }
        #[cfg(not(target_arch = "wasm32"))]
        let adapter = adapter::choose_adapter(options.adapter)?;
        #[cfg(target_arch = "wasm32")]
        let adapter = adapter::request_web_adapter().await?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("mtdiff"),
                // Subgroup operations where the adapter has them: the CPU-adapter matmul uses them.
                // f16 shader arithmetic too, for kernels with f16 inputs (the f16 casts need none).
                required_features: adapter.features()
                    & (wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F16),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        // The helper hands its work over through Mesa's shader cache: without one it cannot help.
        let mesa_cache_off = std::env::var("MESA_SHADER_CACHE_DISABLE")
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let precompiler = (options.precompile
            && info.device_type == wgpu::DeviceType::Cpu
            && !mesa_cache_off
            && !cfg!(target_arch = "wasm32"))
        .then(|| precompile::Precompiler::start(&adapter, device.features(), device.limits()))
        .flatten();
        let dev = Self::build(device, queue, Some(info), options, precompiler);
        // Our own device: errors outside our scopes are stored and reported at the next flush,
        // never panicked on; a loss is remembered and reported by every later call.
        let lost = dev.inner.lost.clone();
        dev.inner.wgpu.set_device_lost_callback(move |reason, msg| {
            let msg = if msg.is_empty() {
                String::new()
            } else {
                format!(": {msg}")
            };
            *lock(&lost) = Some(format!("{reason:?}{msg}"));
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
        Self::build(device, queue, None, options, None)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        mut options: DeviceOptions,
        precompiler: Option<precompile::Precompiler>,
    ) -> Device {
        // Kernel timing waits for every dispatch, which the web cannot.
        options.time_kernels &= !cfg!(target_arch = "wasm32");
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
        let memory_budget = memory_budget(&options, info.device_type);
        let recorder = Recorder {
            encoder: None,
            params: vec![0u8; (slot_bytes as usize) * flush_every],
            params_buf,
            dispatches: 0,
            uploads: 0,
            upload_bytes: 0,
        };
        Device {
            inner: Arc::new(Inner {
                precompiler,
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
                memory_budget,
                lost: Arc::new(Mutex::new(None)),
                uncaptured: Arc::new(Mutex::new(None)),
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

    /// Kernels the precompiler (see [`DeviceOptions::precompile`]) has compiled and run so far;
    /// 0 without one.
    pub fn precompiled_kernels(&self) -> u64 {
        self.inner.precompiler.as_ref().map_or(0, |p| p.done())
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

    pub(crate) fn check_alive(&self) -> Result<()> {
        if let Some(reason) = lock(&self.inner.lost).clone() {
            return Err(Error::DeviceLost(reason));
        }
        if let Some(msg) = lock(&self.inner.uncaptured).take() {
            return Err(self.call_failed("an earlier GPU call", msg));
        }
        Ok(())
    }

    /// Runs `f` inside a validation and an out-of-memory error scope. On the web a scope's
    /// verdict only arrives asynchronously, so there `f` runs unscoped and its errors reach the
    /// uncaptured-error handler, which the next call after it reports.
    #[cfg(target_arch = "wasm32")]
    fn scoped<T>(&self, _context: &str, _bytes: u64, f: impl FnOnce() -> T) -> Result<T> {
        Ok(f())
    }

    /// Runs `f` inside a validation and an out-of-memory error scope.
    #[cfg(not(target_arch = "wasm32"))]
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
            return Err(self.call_failed(context, e.to_string()));
        }
        Ok(out)
    }

    /// The error of a failed wgpu call: [`Error::DeviceLost`] when the device is gone (on a lost
    /// device every call fails, its buffers being invalid), else a validation error.
    pub(crate) fn call_failed(&self, context: &str, message: String) -> Error {
        match self.lost_reason() {
            Some(reason) => Error::DeviceLost(reason),
            None => Error::Validation {
                context: context.to_string(),
                message,
            },
        }
    }

    /// Why the device was lost, if it was: the device-lost callback's report. A destroyed
    /// device reports only once its queue has drained, so this waits for that (up to 10 s; only
    /// failed calls ask).
    fn lost_reason(&self) -> Option<String> {
        if let Some(r) = lock(&self.inner.lost).clone() {
            return Some(r);
        }
        let _ = self.inner.wgpu.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(std::time::Duration::from_secs(10)),
        });
        lock(&self.inner.lost).clone()
    }
}
