//! Device behaviour: batched recording with per-dispatch parameter slots, the pipeline cache, the
//! buffer pool's steady state, out-of-memory as an error, embedding on a caller's wgpu device,
//! autodiff bookkeeping.

mod common;

use common::{device, rng};
use mtdiff_engine::{no_grad, Device, DeviceOptions, Error, Tensor};

#[test]
fn many_ops_with_different_shapes_in_one_flush_each_see_their_own_parameters() {
    // One big batch: nothing is submitted until the readback.
    let dev = Device::new(DeviceOptions {
        flush_every: 1000,
        ..Default::default()
    })
    .unwrap();
    let submits_before = dev.dispatch_stats().submits;
    let mut outs = Vec::new();
    for n in [1usize, 7, 33, 65, 129, 300] {
        let x = Tensor::from_slice(&dev, &vec![1.0; n * 3], &[n, 3]).unwrap();
        outs.push((
            n,
            x.sum(&[0], false).unwrap(),
            x.mul_scalar(n as f32).unwrap(),
        ));
    }
    assert_eq!(
        dev.dispatch_stats().submits,
        submits_before,
        "ops must not submit by themselves"
    );
    for (n, s, m) in outs {
        assert_eq!(s.to_vec().unwrap(), vec![n as f32; 3], "sum over {n} rows");
        assert!(
            m.to_vec().unwrap().iter().all(|&v| v == n as f32),
            "scale by {n}"
        );
    }
}

#[test]
fn flushes_every_n_dispatches() {
    let dev = Device::new(DeviceOptions {
        flush_every: 8,
        ..Default::default()
    })
    .unwrap();
    let x = Tensor::from_slice(&dev, &[1.0, 2.0], &[2]).unwrap();
    dev.flush().unwrap();
    let before = dev.dispatch_stats();
    let mut y = x.clone();
    for _ in 0..40 {
        y = y.add_scalar(1.0).unwrap();
    }
    let after = dev.dispatch_stats();
    assert_eq!(after.dispatches - before.dispatches, 40);
    assert_eq!(after.submits - before.submits, 5);
    assert_eq!(y.to_vec().unwrap(), vec![41.0, 42.0]);
}

#[test]
fn the_precompiler_compiles_every_new_kernel_on_cpu_adapters_and_changes_no_result() {
    let plain = device();
    let dev = Device::new(DeviceOptions {
        precompile: true,
        ..Default::default()
    })
    .unwrap();
    let mut r = rng(11);
    let (a, b) = (
        r.vec_range(37 * 29, -1.0, 1.0),
        r.vec_range(29 * 13, -1.0, 1.0),
    );
    let bias = r.vec_range(13, -1.0, 1.0);
    let run = |d: &Device| {
        let x = Tensor::from_slice(d, &a, &[37, 29]).unwrap();
        let w = Tensor::from_slice(d, &b, &[29, 13]).unwrap();
        let c = Tensor::from_slice(d, &bias, &[13]).unwrap();
        let y = x.matmul(&w).unwrap().add(&c).unwrap().exp().unwrap();
        y.sum(&[0], false).unwrap().to_vec().unwrap()
    };
    assert_eq!(run(&dev), run(&plain), "same kernels, same bits");
    let cache_off = std::env::var("MESA_SHADER_CACHE_DISABLE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    let cpu = dev.info().device_type == wgpu::DeviceType::Cpu && !cache_off;
    let built = dev.pipeline_count() as u64;
    // The helper works through its queue on its own thread: wait for it (bounded).
    let start = std::time::Instant::now();
    while cpu && dev.precompiled_kernels() < built && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let expected = if cpu { built } else { 0 };
    assert_eq!(
        dev.precompiled_kernels(),
        expected,
        "{} pipelines built on a {:?} adapter",
        built,
        dev.info().device_type
    );
    assert_eq!(plain.precompiled_kernels(), 0, "off by default");
    drop(dev); // stops and joins the helper thread
}

#[test]
fn pipelines_are_built_once() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let x = Tensor::from_slice(&dev, &[1.0; 10], &[10]).unwrap();
    x.exp().unwrap().to_vec().unwrap();
    let n = dev.pipeline_count();
    for _ in 0..5 {
        x.exp().unwrap();
    }
    x.exp().unwrap().to_vec().unwrap();
    assert_eq!(dev.pipeline_count(), n);
}

#[test]
fn buffer_count_stops_growing_over_a_thousand_training_iterations() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let mut r = rng(3);
    let w = Tensor::from_slice(&dev, &r.vec_range(8 * 4, -1.0, 1.0), &[4, 8])
        .unwrap()
        .with_grad();
    let x = Tensor::from_slice(&dev, &r.vec_range(16 * 8, -1.0, 1.0), &[16, 8]).unwrap();
    let mut opt = mtdiff_engine::optim::Sgd::new(0.01, 0.9);
    let mut live = Vec::new();
    for it in 0..1000 {
        let loss = x
            .linear(&w, None)
            .unwrap()
            .tanh()
            .unwrap()
            .square()
            .unwrap()
            .mean_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        opt.step(std::slice::from_ref(&w), &grads).unwrap();
        if it % 100 == 99 {
            dev.synchronize().unwrap();
            live.push(dev.pool_stats().live_buffers);
        }
    }
    let stats = dev.pool_stats();
    assert!(
        live[1..].iter().all(|&n| n == live[1]),
        "live buffers kept growing: {live:?}"
    );
    assert!(stats.reused_total > 10 * stats.created_total, "{stats:?}");
}

#[test]
fn allocation_beyond_the_adapter_limits_is_an_out_of_memory_error() {
    let dev = device();
    let too_big = dev.info().limits.max_buffer_size as usize / 4 + 1024;
    match Tensor::zeros(&dev, &[too_big]) {
        Err(Error::OutOfMemory { bytes, reason }) => {
            assert!(bytes as usize >= too_big * 4);
            assert!(reason.contains("max_"), "{reason}");
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    // The device still works afterwards.
    assert_eq!(
        Tensor::from_slice(&dev, &[2.0], &[1])
            .unwrap()
            .square()
            .unwrap()
            .to_vec()
            .unwrap(),
        vec![4.0]
    );
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let dev = device();
    let a = Tensor::zeros(&dev, &[2, 3]).unwrap();
    let b = Tensor::zeros(&dev, &[4]).unwrap();
    let msg = a.add(&b).unwrap_err().to_string();
    assert!(
        msg.contains("binary") && msg.contains("[2, 3]") && msg.contains("[4]"),
        "{msg}"
    );
    let msg = Tensor::from_slice(&dev, &[1.0; 5], &[2, 3])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("from_slice") && msg.contains("[2, 3]"),
        "{msg}"
    );
}

#[test]
fn embedding_on_a_callers_wgpu_device() {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
    let (d, q) = pollster::block_on(adapter.request_device(&Default::default())).expect("a device");
    let dev = Device::from_wgpu(d.clone(), q, DeviceOptions::default());
    let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[3]).unwrap();
    assert_eq!(x.mul(&x).unwrap().to_vec().unwrap(), vec![1.0, 4.0, 9.0]);
    assert_eq!(dev.info().name, adapter.get_info().name);
    // The caller's device is still the caller's: it keeps working for its own use.
    let buf = d.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    drop(buf);
}

#[test]
fn gradients_accumulate_over_reuse_and_no_grad_records_nothing() {
    let dev = device();
    let x = Tensor::from_slice(&dev, &[1.0, -2.0, 3.0], &[3])
        .unwrap()
        .with_grad();
    // y = x·x + 3x uses x three times: dy/dx = 2x + 3.
    let y = x
        .mul(&x)
        .unwrap()
        .add(&x.mul_scalar(3.0).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![5.0, -1.0, 9.0]);
    let z = no_grad(|| x.square().unwrap());
    assert!(!z.requires_grad() && z.op_name().is_none());
    let d = x.detach().square().unwrap();
    assert!(!d.requires_grad());
    assert!(x.square().unwrap().requires_grad());
}

#[test]
fn assign_overwrites_in_program_order() {
    let dev = device();
    let p = Tensor::from_slice(&dev, &[1.0, 2.0], &[2]).unwrap();
    let before = p.mul_scalar(10.0).unwrap(); // recorded before the assign: sees the old data
    p.assign(&Tensor::from_slice(&dev, &[5.0, 6.0], &[2]).unwrap())
        .unwrap();
    assert_eq!(before.to_vec().unwrap(), vec![10.0, 20.0]);
    assert_eq!(p.to_vec().unwrap(), vec![5.0, 6.0]);
    assert!(p.assign(&Tensor::zeros(&dev, &[3]).unwrap()).is_err());
}

#[test]
fn write_uploads_in_program_order_into_a_tensor_or_view() {
    let dev = device();
    let p = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let before = p.mul_scalar(10.0).unwrap(); // recorded before the write: sees the old data
    p.write(&[5.0, 6.0, 7.0, 8.0]).unwrap();
    let after = p.mul_scalar(10.0).unwrap();
    assert_eq!(before.to_vec().unwrap(), vec![10.0, 20.0, 30.0, 40.0]);
    assert_eq!(after.to_vec().unwrap(), vec![50.0, 60.0, 70.0, 80.0]);
    assert!(p.write(&[1.0]).is_err());
    assert!(Tensor::from_u32(&dev, &[1], &[1])
        .unwrap()
        .write(&[1.0])
        .is_err());
}
