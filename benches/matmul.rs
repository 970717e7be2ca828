//! Matmul throughput (GFLOP/s) on square sizes and a tall-skinny U-Net shape, for the kernel
//! family the adapter uses. Ceiling for comparison on lavapipe (2 cores): ~27 GFLOP/s for the best
//! WGSL matmul measured (docs/experiments.md, "The matmul probe"); PyTorch on the same cores ~207.
//! Each iteration records one matmul and synchronizes, so the time includes one submit+wait.

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::Tensor;

fn bench_matmul(c: &mut Criterion) {
    let dev = support::device();
    let mut group = c.benchmark_group(format!("matmul/{:?}", dev.matmul_strategy()));
    group.sample_size(10);
    let mut rng = CpuRng::new(0);
    // (name, M, N, K): square sizes, and a U-Net conv as GEMM (batch 32 × 28×28 pixels, 64×3×3 → 64).
    let shapes = [
        ("256", 256, 256, 256),
        ("512", 512, 512, 512),
        ("1024", 1024, 1024, 1024),
        ("2048", 2048, 2048, 2048),
        ("unet_25088x64x576", 25088, 64, 576),
    ];
    for (name, m, n, k) in shapes {
        let a = Tensor::from_slice(&dev, &rng.vec_range(m * k, -1.0, 1.0), &[m, k]).unwrap();
        let b = Tensor::from_slice(&dev, &rng.vec_range(k * n, -1.0, 1.0), &[k, n]).unwrap();
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |bch| {
            bch.iter(|| {
                let c = a.matmul(&b).unwrap();
                dev.synchronize().unwrap();
                c
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
