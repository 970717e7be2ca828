//! Shared helpers of the engine's integration tests: one device per test process, random data,
//! and tolerance checks against the f64 CPU reference.
#![allow(dead_code)]

use std::sync::OnceLock;

use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, DeviceOptions, KernelProfile, MatmulStrategy};

/// The test process's device (whichever adapter is present: lavapipe in CI, a GPU elsewhere).
/// With no adapter the tests fail with the engine's message on how to install lavapipe.
pub fn device() -> Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| Device::new(DeviceOptions::default()).unwrap_or_else(|e| panic!("{e}")))
        .clone()
}

/// The matmul families this adapter can run: all three where subgroups have 8 lanes (lavapipe on
/// AVX2, what CI has), else the two that need nothing.
pub fn strategies() -> Vec<MatmulStrategy> {
    let mut s = vec![MatmulStrategy::RegisterBlocked, MatmulStrategy::Tiled];
    if device().has_8_lane_subgroups() {
        s.push(MatmulStrategy::Subgroup);
    }
    s
}

/// A second device forced to one matmul family (every family is tested on every adapter).
pub fn device_with(strategy: MatmulStrategy) -> Device {
    static RB: OnceLock<Device> = OnceLock::new();
    static TILED: OnceLock<Device> = OnceLock::new();
    static SUBGROUP: OnceLock<Device> = OnceLock::new();
    let cell = match strategy {
        MatmulStrategy::RegisterBlocked => &RB,
        MatmulStrategy::Tiled => &TILED,
        MatmulStrategy::Subgroup => &SUBGROUP,
    };
    cell.get_or_init(|| {
        Device::new(DeviceOptions {
            matmul: Some(strategy),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

pub fn rng(seed: u64) -> CpuRng {
    CpuRng::new(seed)
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// |gpu − cpu| ≤ atol + rtol·|cpu| elementwise, with a message naming the first failure.
#[track_caller]
pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f64], rtol: f64, atol: f64) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: length");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let err = (g as f64 - c).abs();
        assert!(
            err <= atol + rtol * c.abs() || (g.is_nan() && c.is_nan()),
            "{what}: element {i}: gpu {g} vs cpu {c} (|err| {err:.3e} > {atol:.1e} + {rtol:.1e}·|cpu|)"
        );
    }
}

/// The default device with the subgroup kernels turned off (the kernels other adapters run).
pub fn device_without_subgroup_kernels() -> Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| {
        Device::new(DeviceOptions {
            subgroup_kernels: false,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

/// A device forced to one kernel profile (every variant is tested on whatever adapter is here).
pub fn device_profile(profile: KernelProfile) -> Device {
    static CPU: OnceLock<Device> = OnceLock::new();
    static GPU: OnceLock<Device> = OnceLock::new();
    let cell = match profile {
        KernelProfile::Cpu => &CPU,
        KernelProfile::Gpu => &GPU,
    };
    cell.get_or_init(|| {
        Device::new(DeviceOptions {
            profile: Some(profile),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}
