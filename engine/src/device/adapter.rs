//! Adapter choice: which of the machine's adapters a [`Device`](super::Device) opens, and what
//! it is ([`DeviceInfo`]).

use std::fmt;

use crate::error::{Error, Result};

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

    /// Whether the device has f16 shader arithmetic (`SHADER_F16`, requested wherever the
    /// adapter offers it); f16 tensors and their casts work without it.
    pub fn has_shader_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }
}

/// On Mesa's software drivers (llvmpipe, lavapipe), sets `LP_NUM_THREADS` to twice the number
/// of CPUs unless the environment already sets it, and returns the value in force. llvmpipe runs
/// a dispatch's workgroups on one worker thread per CPU by default; the host's own threads (the
/// program's, the Vulkan queue's) share those cores, and a worker that loses its core for a
/// moment holds up the end of every dispatch. With twice as many workers the main job trained
/// ~11 % faster on a 2-core VM, with bit-identical results (docs/experiments.md). Other drivers
/// ignore the variable.
///
/// # Safety
///
/// Call before any other thread exists (first thing in `main`): setting an environment
/// variable races with reads of the environment from other threads.
pub unsafe fn use_more_software_rasterizer_threads() -> String {
    const VAR: &str = "LP_NUM_THREADS";
    if let Ok(v) = std::env::var(VAR) {
        return v;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let v = (2 * cpus).to_string();
    std::env::set_var(VAR, &v);
    v
}

/// (major, minor) after "Mesa " in a driver version string.
fn parse_mesa_version(driver_info: &str) -> Option<(u32, u32)> {
    let rest = &driver_info[driver_info.find("Mesa ")? + 5..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
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

/// Lower is preferred: discrete, integrated, virtual, CPU, other.
fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// The adapters a device may open, best first: highest-performance type first, native APIs
/// before GL. Honours `WGPU_BACKEND` (e.g. `vulkan`, `gl`) and `WGPU_ADAPTER_NAME` (substring
/// match). Returns the backends searched and what was present (for the error).
fn ranked_adapters() -> (
    wgpu::Backends,
    Vec<wgpu::Adapter>,
    Vec<String>,
    Option<String>,
) {
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
    let mut ranked: Vec<wgpu::Adapter> = adapters.into_iter().filter(matches).collect();
    // A stable sort: adapters of one rank keep the driver's order.
    ranked.sort_by_key(|a| {
        let i = a.get_info();
        (type_rank(i.device_type), i.backend == wgpu::Backend::Gl)
    });
    (backends, ranked, found, name_filter)
}

/// The adapter a device opens: number `index` of [`adapters`] (0, the best, by default).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn choose_adapter(index: Option<usize>) -> Result<wgpu::Adapter> {
    let (backends, mut ranked, found, name_filter) = ranked_adapters();
    let count = ranked.len();
    let k = index.unwrap_or(0);
    if k < count {
        return Ok(ranked.swap_remove(k));
    }
    Err(Error::NoAdapter {
        tried: format!(
            "backends {backends:?}{}{}; adapters present: [{}]",
            name_filter
                .as_ref()
                .map(|n| format!(", WGPU_ADAPTER_NAME={n:?}"))
                .unwrap_or_default(),
            index
                .map(|k| format!(", adapter number {k} of {count} (see `mtdiff info`)"))
                .unwrap_or_default(),
            found.join(", ")
        ),
    })
}

/// The browser's adapter (WebGPU), high-performance preferred: on the web adapters cannot be
/// listed, only requested.
#[cfg(target_arch = "wasm32")]
pub(super) async fn request_web_adapter() -> Result<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::BROWSER_WEBGPU;
    let instance = wgpu::Instance::new(desc);
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::RequestDevice {
            adapter: "the browser's WebGPU".into(),
            reason: format!(
                "{e}; use a browser with WebGPU enabled (Chrome or Edge 113+, Firefox 141+ on \
                 Windows, or Chromium with --enable-unsafe-webgpu)"
            ),
        })
}

/// The adapters a device may open, in the order [`DeviceOptions::adapter`](super::DeviceOptions)
/// numbers them: "name (backend, type)" each.
pub fn adapters() -> Vec<String> {
    ranked_adapters()
        .1
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect()
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
