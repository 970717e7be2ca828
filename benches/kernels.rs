//! Throughput of the diffusion-network kernels on the reference U-Net's shapes
//! (`model/tests/data/reference_unet.json`): conv 3×3 (N=32, 64→64, 28×28) forward and backward,
//! group norm (32×64×28×28, 8 groups, fused SiLU), attention (B=32, 4 heads, seq 196, d=32)
//! forward, AdamW over 1.18 M parameters. GFLOP/s for compute-bound ops ("elements" = FLOPs),
//! GB/s for memory-bound ones ("bytes"). PyTorch on the same two cores: conv forward 407,
//! backward 224, attention 91 GFLOP/s (peer README). Each iteration records the op(s) and
//! synchronizes.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtdiff_engine::ops::conv::Activation;
use mtdiff_engine::optim::{AdamW, AdamWConfig};
use mtdiff_engine::Tensor;

fn bench_kernels(c: &mut Criterion) {
    let dev = support::device();
    let mut tensors = support::UniformTensors::new(&dev, 0);
    let mut up = |shape: &[usize]| tensors.tensor(shape);
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);

    let (n, ci, co, hw) = (32usize, 64usize, 64usize, 28usize);
    let conv_flops = (2 * n * co * hw * hw * ci * 9) as u64;
    let x = up(&[n, ci, hw, hw]);
    let w = up(&[co, ci, 3, 3]).with_grad();
    let b = up(&[co]).with_grad();
    group.throughput(Throughput::Elements(conv_flops));
    group.bench_function("conv3x3_forward_32x64x28x28", |bch| {
        bch.iter(|| {
            let y = x.conv2d(&w, Some(&b), 1, 1, Activation::Identity).unwrap();
            dev.synchronize().unwrap();
            y
        })
    });
    let xg = x.with_grad();
    let y = xg.conv2d(&w, Some(&b), 1, 1, Activation::Identity).unwrap();
    let gy = up(y.dims());
    let loss = y.mul(&gy).unwrap().sum_all().unwrap();
    dev.synchronize().unwrap();
    // Data + weight gradients: twice the forward FLOPs (the loss's own ops are negligible).
    group.throughput(Throughput::Elements(2 * conv_flops));
    group.bench_function("conv3x3_backward_data+weight", |bch| {
        bch.iter(|| {
            let g = loss.backward().unwrap();
            dev.synchronize().unwrap();
            g
        })
    });

    let gx = up(&[32, 64, 28, 28]);
    let (gamma, beta) = (up(&[64]), up(&[64]));
    group.throughput(Throughput::Bytes((2 * gx.numel() * 4) as u64));
    group.bench_function("group_norm_silu_32x64x28x28_g8", |bch| {
        bch.iter(|| {
            let y = gx.group_norm(8, &gamma, &beta, 1e-5, true).unwrap();
            dev.synchronize().unwrap();
            y
        })
    });
    // Forward and backward (dx, dγ, dβ); the upstream gradient is that of a plain sum.
    let (gxg, gg, gb) = (gx.with_grad(), gamma.with_grad(), beta.with_grad());
    group.throughput(Throughput::Bytes((4 * gx.numel() * 4) as u64));
    group.bench_function("group_norm_silu_forward_backward_32x64x28x28_g8", |bch| {
        bch.iter(|| {
            let y = gxg.group_norm(8, &gg, &gb, 1e-5, true).unwrap();
            let grads = y.sum_all().unwrap().backward().unwrap();
            dev.synchronize().unwrap();
            grads
        })
    });

    let (bq, hq, s, d) = (32usize, 4usize, 196usize, 32usize);
    let (q, k, v) = (
        up(&[bq, hq, s, d]),
        up(&[bq, hq, s, d]),
        up(&[bq, hq, s, d]),
    );
    group.throughput(Throughput::Elements((4 * bq * hq * s * s * d) as u64));
    group.bench_function("attention_forward_32x4x196x32", |bch| {
        bch.iter(|| {
            let o = q.attention(&k, &v, 1.0 / (d as f32).sqrt()).unwrap();
            dev.synchronize().unwrap();
            o
        })
    });

    // AdamW over the reference U-Net's 1,179,105 parameters in 4 tensors: reads p, g, m, v and
    // writes p, m, v (28 bytes per parameter).
    let sizes = [589_824usize, 294_912, 294_336, 33];
    let params: Vec<Tensor> = sizes.iter().map(|&n| up(&[n]).with_grad()).collect();
    let mut loss = Tensor::scalar(&dev, 0.0).unwrap();
    for p in &params {
        loss = loss.add(&p.sum_all().unwrap()).unwrap();
    }
    let grads = loss.backward().unwrap();
    let mut opt = AdamW::new(AdamWConfig {
        max_grad_norm: Some(1.0),
        ..AdamWConfig::default()
    });
    group.throughput(Throughput::Bytes((28 * sizes.iter().sum::<usize>()) as u64));
    group.bench_function("adamw_1.18M_params_clipped", |bch| {
        bch.iter(|| {
            opt.step(&params, &grads).unwrap();
            dev.synchronize().unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
