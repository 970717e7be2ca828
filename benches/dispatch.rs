//! Per-op overhead: 1,000 tiny elementwise ops recorded and flushed; criterion reports the time
//! of the whole batch, so time per op = time / 1000 (also printed as "elements" = ops per second).
//! Reference point on lavapipe: ~47 µs per dispatch inside one submit (docs/experiments.md).

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtdiff_engine::Tensor;

fn bench_dispatch(c: &mut Criterion) {
    let dev = support::device();
    let x = Tensor::from_slice(&dev, &[1.0; 64], &[64]).unwrap();
    let mut group = c.benchmark_group("dispatch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000_tiny_elementwise_ops", |b| {
        b.iter(|| {
            let mut y = x.clone();
            for _ in 0..1000 {
                y = y.add_scalar(1.0).unwrap();
            }
            dev.synchronize().unwrap();
            y
        })
    });
    group.finish();
}

criterion_group!(benches, bench_dispatch);
criterion_main!(benches);
