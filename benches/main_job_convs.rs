//! Every distinct convolution of the main job's U-Net (16×16 glyphs, channels 16/32/32, batch
//! 64): the forward pass and the backward pass (data + weight gradients) of each, in GFLOP/s
//! ("elements" = FLOPs). These small, narrow convolutions are most of a training step's time,
//! so this is the bench to run when changing the conv kernels; compare with the large-shape
//! conv benches in `kernels` (reference U-Net shapes) and the matmul ceiling in `matmul`.
//! A shared VM's speed drifts by up to ~1.4× within minutes: compare two builds with
//! `--save-baseline A` / `--baseline A`, run in alternation, not against an old run.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtdiff_engine::ops::conv::Activation;

/// (name, input channels, output channels, input size, kernel, stride), as in the main job's
/// U-Net (model/src/backbone.rs with `TrainConfig::default()`).
const SHAPES: [(&str, usize, usize, usize, usize, usize); 10] = [
    ("enc0_16to16_16x16", 16, 16, 16, 3, 1),
    ("down0_16to16_16x16_s2", 16, 16, 16, 3, 2),
    ("enc1_16to32_8x8", 16, 32, 8, 3, 1),
    ("enc1_32to32_8x8", 32, 32, 8, 3, 1),
    ("mid_32to32_4x4", 32, 32, 4, 3, 1),
    ("dec1_64to32_8x8", 64, 32, 8, 3, 1),
    ("up0_32to32_16x16", 32, 32, 16, 3, 1),
    ("dec0_48to16_16x16", 48, 16, 16, 3, 1),
    ("dec0_skip_48to16_16x16_1x1", 48, 16, 16, 1, 1),
    ("conv_out_16to2_16x16", 16, 2, 16, 3, 1),
];

const BATCH: usize = 64;

/// Benches one convolution's forward and backward (data + weight gradients) in `group`: input
/// x (f32 or f16) of `[BATCH, ci, hw, hw]`, `co` channels out, kernel `k`, stride `s`.
fn bench_conv(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    up: &mut impl FnMut(&[usize]) -> mtdiff_engine::Tensor,
    (name, ci, co, hw, k, s): (&str, usize, usize, usize, usize, usize),
    f16_input: bool,
) {
    let dev = support::device();
    let pad = k / 2;
    let ohw = (hw + 2 * pad - k) / s + 1;
    let flops = (2 * BATCH * co * ohw * ohw * ci * k * k) as u64;
    let x = up(&[BATCH, ci, hw, hw]);
    let x = if f16_input { x.to_f16().unwrap() } else { x }.with_grad();
    let w = up(&[co, ci, k, k]).with_grad();
    let b = up(&[co]).with_grad();
    group.throughput(Throughput::Elements(flops));
    group.bench_function(format!("{name}_forward"), |bch| {
        bch.iter(|| {
            let y = x
                .conv2d(&w, Some(&b), s, pad, Activation::Identity)
                .unwrap();
            dev.synchronize().unwrap();
            y
        })
    });
    let y = x
        .conv2d(&w, Some(&b), s, pad, Activation::Identity)
        .unwrap();
    let gy = up(y.dims());
    let loss = y.mul(&gy).unwrap().sum_all().unwrap();
    dev.synchronize().unwrap();
    // Data + weight gradients: twice the forward FLOPs (plus the loss's small ops).
    group.throughput(Throughput::Elements(2 * flops));
    group.bench_function(format!("{name}_backward"), |bch| {
        bch.iter(|| {
            let g = loss.backward().unwrap();
            dev.synchronize().unwrap();
            g
        })
    });
}

fn bench_main_job_convs(c: &mut Criterion) {
    let dev = support::device();
    let mut tensors = support::UniformTensors::new(&dev, 0);
    let mut up = |shape: &[usize]| tensors.tensor(shape);
    let mut group = c.benchmark_group("main_job_convs");
    group.sample_size(10);
    for shape in SHAPES {
        bench_conv(&mut group, &mut up, shape, false);
    }
    group.finish();
}

/// The same convolutions with the input x in f16 (`--precision f16-mixed`): the 16-channel
/// layers read it as packed pairs (the row-blocked forward) or one value per load; compare
/// with the f32 rows of `main_job_convs` in the same run.
fn bench_main_job_convs_f16_input(c: &mut Criterion) {
    let dev = support::device();
    let mut tensors = support::UniformTensors::new(&dev, 0);
    let mut up = |shape: &[usize]| tensors.tensor(shape);
    let mut group = c.benchmark_group("main_job_convs_f16_input");
    group.sample_size(10);
    let picked = ["enc0", "dec0_48", "up0"];
    for shape in SHAPES
        .into_iter()
        .filter(|(n, ..)| picked.iter().any(|p| n.starts_with(p)))
    {
        bench_conv(&mut group, &mut up, shape, true);
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_main_job_convs,
    bench_main_job_convs_f16_input
);
criterion_main!(benches);
