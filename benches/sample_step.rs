//! One denoising step of the reference U-Net (`model/tests/data/reference_unet.json`) at batch 64
//! of 1×28×28, forward only: the U-Net's ε prediction and the fused DDPM ancestral update, the
//! timestep counting down from T − 1 — the peer's sampling protocol (`bench.py --phase sample
//! --batch 64`, "inference_mode forward + DDPM ancestral update"), so images/s per denoising step
//! compare directly with PyTorch's. Throughput is reported in images ("elements").

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtdiff_engine::ops::diffusion::{randn, reverse_step, StepKind};
use mtdiff_engine::{NoGradGuard, Tensor};
use mtdiff_model::nn::ParamStore;
use mtdiff_model::{Schedule, ScheduleConfig, UNet, UNetConfig};

fn bench_sample_step(c: &mut Criterion) {
    let dev = support::device();
    let mut ps = ParamStore::new(&dev, 0);
    let net = UNet::new(&mut ps, &UNetConfig::reference()).unwrap();
    let schedule = Schedule::new(ScheduleConfig::default()).unwrap();
    let big_t = schedule.len();
    let table = Tensor::from_slice(&dev, &schedule.ddpm_table(), &[big_t, 5]).unwrap();
    let batch = 64usize;
    let _no_grad = NoGradGuard::new();
    let mut x = randn(&dev, &[batch, 1, 28, 28], 3, 0).unwrap();
    let mut step = 0usize;
    let mut group = c.benchmark_group("sample_step");
    group.sample_size(10);
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("reference_unet_batch64", |b| {
        b.iter(|| {
            let tt = big_t - 1 - step % big_t;
            step += 1;
            let t = Tensor::from_u32(&dev, &vec![tt as u32; batch], &[batch]).unwrap();
            let eps = net.forward(&x, &t).unwrap().out;
            let (prev, _x0) = reverse_step(
                StepKind::Ddpm,
                &x,
                &eps,
                &t,
                &table,
                None,
                0.0,
                5,
                step as u64,
            )
            .unwrap();
            x = prev;
            dev.synchronize().unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sample_step);
criterion_main!(benches);
