//! One whole training step of the reference U-Net (`model/tests/data/reference_unet.json`) on the
//! engine: q_sample, U-Net forward, ε-MSE, backward, AdamW (lr 2e-4, weight decay 0.01), at batch
//! 32 of 1×28×28 — the peer protocol, so images/s compare directly with PyTorch's 228 img/s on the
//! same two cores (peer README). Throughput is reported in images ("elements").

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtdiff_engine::ops::diffusion::{q_sample, randn};
use mtdiff_engine::optim::{AdamW, AdamWConfig};
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::Tensor;
use mtdiff_model::nn::ParamStore;
use mtdiff_model::{Schedule, ScheduleConfig, UNet, UNetConfig};

fn bench_train_step(c: &mut Criterion) {
    let dev = support::device();
    let mut ps = ParamStore::new(&dev, 0);
    let net = UNet::new(&mut ps, &UNetConfig::reference()).unwrap();
    let params = ps.tensors();
    let schedule = Schedule::new(ScheduleConfig::default()).unwrap();
    let table = Tensor::from_slice(&dev, &schedule.q_sample_table(), &[1000, 2]).unwrap();
    let mut opt = AdamW::new(AdamWConfig {
        lr: 2e-4,
        weight_decay: 0.01,
        ..AdamWConfig::default()
    });
    let batch = 32usize;
    let mut rng = CpuRng::new(1);
    let x0 = Tensor::from_slice(
        &dev,
        &rng.vec_range(batch * 784, -1.0, 1.0),
        &[batch, 1, 28, 28],
    )
    .unwrap();
    let mut step = 0u64;
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("reference_unet_batch32", |b| {
        b.iter(|| {
            step += 1;
            let t: Vec<u32> = (0..batch).map(|_| rng.below(1000) as u32).collect();
            let t = Tensor::from_u32(&dev, &t, &[batch]).unwrap();
            let eps = randn(&dev, &[batch, 1, 28, 28], 7, step).unwrap();
            let xt = q_sample(&x0, &eps, &t, &table, None).unwrap();
            let loss = net.forward(&xt, &t).unwrap().out.mse(&eps).unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&params, &grads).unwrap();
            dev.synchronize().unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
