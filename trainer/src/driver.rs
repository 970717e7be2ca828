//! The device the commands train, sample and evaluate on, and advice about the adapter's driver
//! (printed by `mtdiff info` and at the start of `train`).

use mtdiff_engine::{Device, DeviceInfo, DeviceOptions};

use crate::error::Result;

/// The device of `train`, `sample` and `eval`: the engine's defaults with the precompiler on (on a
/// CPU adapter a run builds its kernels in bulk, and compiling them is most of its first step).
pub fn open_device() -> Result<Device> {
    open_device_on(None)
}

/// [`open_device`] on adapter number `adapter` of `mtdiff info`'s list (`None`: the best).
pub fn open_device_on(adapter: Option<usize>) -> Result<Device> {
    Ok(Device::new(DeviceOptions {
        precompile: true,
        adapter,
        ..DeviceOptions::default()
    })?)
}

/// The oldest Mesa whose lavapipe the README recommends (Debian 12 backports, Ubuntu 24.04 and
/// Debian 13 ship one at least this new).
pub const RECOMMENDED_MESA: (u32, u32) = (24, 0);

/// A note when the adapter is a lavapipe older than [`RECOMMENDED_MESA`]: what it costs and how
/// to upgrade; `None` otherwise.
pub fn old_lavapipe_note(info: &DeviceInfo) -> Option<String> {
    if !info.is_lavapipe() {
        return None;
    }
    let (major, minor) = info.mesa_version()?;
    ((major, minor) < RECOMMENDED_MESA).then(|| {
        format!(
            "note: this lavapipe is Mesa {major}.{minor}; Mesa 25 runs our training step about \
             2.3x faster on the same CPU (same results). On Debian 12 install it from \
             bookworm-backports with `sudo .ci/install-lavapipe`; Ubuntu 24.04 and Debian 13 \
             ship Mesa 24 or newer (README, Quick start)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtdiff_engine::wgpu;

    fn lavapipe(driver_info: &str) -> DeviceInfo {
        DeviceInfo {
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            backend: wgpu::Backend::Vulkan,
            device_type: wgpu::DeviceType::Cpu,
            driver: "llvmpipe".into(),
            driver_info: driver_info.into(),
            limits: wgpu::Limits::default(),
            features: wgpu::Features::empty(),
            subgroup_size: Some(8),
        }
    }

    #[test]
    fn old_lavapipe_gets_a_note_and_new_or_other_drivers_none() {
        let note = old_lavapipe_note(&lavapipe("Mesa 22.3.6 (LLVM 15.0.6)")).unwrap();
        assert!(
            note.contains("Mesa 22.3") && note.contains("install-lavapipe"),
            "{note}"
        );
        assert_eq!(
            old_lavapipe_note(&lavapipe("Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)")),
            None
        );
        let gpu = DeviceInfo {
            name: "AMD Radeon".into(),
            device_type: wgpu::DeviceType::DiscreteGpu,
            ..lavapipe("Mesa 22.3.6")
        };
        assert_eq!(old_lavapipe_note(&gpu), None);
    }
}
