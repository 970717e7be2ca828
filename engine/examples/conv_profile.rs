//! Per-kernel wall times of the reference conv 3×3 (N=32, 64→64, 28×28) forward + backward.
use mtdiff_engine::ops::conv::Activation;
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, DeviceOptions, Tensor};

fn main() {
    let dev = Device::new(DeviceOptions {
        time_kernels: true,
        ..Default::default()
    })
    .expect("adapter");
    let mut rng = CpuRng::new(0);
    let mut up = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        Tensor::from_slice(&dev, &rng.vec_range(n, -1.0, 1.0), shape).unwrap()
    };
    let x = up(&[32, 64, 28, 28]).with_grad();
    let w = up(&[64, 64, 3, 3]).with_grad();
    let b = up(&[64]).with_grad();
    let gy = up(&[32, 64, 28, 28]);
    for _ in 0..3 {
        let y = x.conv2d(&w, Some(&b), 1, 1, Activation::Identity).unwrap();
        let g = y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
        dev.synchronize().unwrap();
        drop(g);
    }
    for k in dev.kernel_times() {
        println!(
            "{:50} {:4} calls {:8.1} ms/call",
            k.kernel,
            k.count,
            k.seconds * 1e3 / k.count as f64
        );
    }
}
