//! With no adapter to be had, Device::new fails with a message that says what was tried and how
//! to install lavapipe. (Its own test binary: it sets WGPU_BACKEND for the whole process.)

use mtdiff_engine::{Device, DeviceOptions, Error};

#[test]
fn no_adapter_gives_the_install_hint() {
    // Metal does not exist on Linux (and DX12 nowhere but Windows): no adapter can match.
    let backend = if cfg!(target_os = "macos") {
        "dx12"
    } else {
        "metal"
    };
    std::env::set_var("WGPU_BACKEND", backend);
    let err = Device::new(DeviceOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NoAdapter { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("mesa-vulkan-drivers") && msg.contains("WGPU_BACKEND"),
        "{msg}"
    );
    std::env::set_var("WGPU_BACKEND", "vulkan");
    std::env::set_var("WGPU_ADAPTER_NAME", "no-such-adapter-xyz");
    let msg = Device::new(DeviceOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no-such-adapter-xyz"), "{msg}");
}
