//! Set-up shared by the benches (each bench target compiles this module and uses part of it).
#![allow(dead_code)]

use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, DeviceOptions, Tensor};

/// The default device, or a panic naming the missing driver; on lavapipe with the worker
/// threads `mtdiff` uses (`use_more_software_rasterizer_threads`).
pub fn device() -> Device {
    // SAFETY: each bench creates its device first, before the engine or the driver start a
    // thread (criterion runs the benches on the main thread).
    unsafe {
        mtdiff_engine::use_more_software_rasterizer_threads();
    }
    Device::new(DeviceOptions::default()).expect("a wgpu adapter (install mesa-vulkan-drivers)")
}

/// Tensors of values uniform in [−1, 1], from a fixed seed.
pub struct UniformTensors {
    dev: Device,
    rng: CpuRng,
}

impl UniformTensors {
    /// Tensors on `dev` from `seed`.
    pub fn new(dev: &Device, seed: u64) -> UniformTensors {
        UniformTensors {
            dev: dev.clone(),
            rng: CpuRng::new(seed),
        }
    }

    /// The next tensor of `shape`.
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_slice(&self.dev, &self.rng.vec_range(n, -1.0, 1.0), shape).unwrap()
    }
}
