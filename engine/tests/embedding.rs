//! An application that embeds the engine on its own wgpu device: its buffers as tensors, the
//! engine's tensors in its own passes, readback that never blocks, and the rules the engine
//! keeps on a device that is not its own (no error handler, no polling behind the caller's
//! back, labelled resources, memory it reports and releases).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use mtdiff_engine::{DType, Device, DeviceOptions, Tensor, TENSOR_BUFFER_USAGES};

/// The application's own device and queue, opened the way an application would.
fn callers_device() -> (wgpu::Device, wgpu::Queue) {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("the application"),
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("a device")
}

/// The application's compute kernel: `dst[i] = f(i, src[i])` as given in WGSL.
fn app_pass(
    d: &wgpu::Device,
    q: &wgpu::Queue,
    body: &str,
    src: wgpu::BindingResource<'_>,
    dst: &wgpu::Buffer,
    n: u32,
) {
    let code = format!(
        "@group(0) @binding(0) var<storage, read> src: array<f32>;\n\
         @group(0) @binding(1) var<storage, read_write> dst: array<f32>;\n\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
           let i = id.x; if (i >= {n}u) {{ return; }} {body}\n}}"
    );
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("app kernel"),
        source: wgpu::ShaderSource::Wgsl(code.into()),
    });
    let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("app kernel"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("app bind group"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: src,
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: dst.as_entire_binding(),
            },
        ],
    });
    let mut enc = d.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(n.div_ceil(64), 1, 1);
    }
    q.submit([enc.finish()]);
}

/// The application's own readback of a buffer (not the engine's).
fn app_read(d: &wgpu::Device, q: &wgpu::Queue, src: &wgpu::Buffer, n: usize) -> Vec<f32> {
    let staging = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app staging"),
        size: (n * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = d.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, (n * 4) as u64);
    q.submit([enc.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |r| r.expect("map"));
    d.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    let v =
        bytemuck::cast_slice::<u8, f32>(&staging.get_mapped_range(..).expect("mapped")).to_vec();
    v
}

fn app_buffer(d: &wgpu::Device, label: &str, n: usize, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    d.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (n * 4) as u64,
        usage,
        mapped_at_creation: false,
    })
}

#[test]
fn the_application_writes_the_engine_computes_the_application_reads_without_a_cpu_copy() {
    let (d, q) = callers_device();
    let dev = Device::from_wgpu(d.clone(), q.clone(), DeviceOptions::default());
    // Not a multiple of any workgroup or vec4 width.
    let n = 1003usize;
    let input = app_buffer(&d, "app input", n, TENSOR_BUFFER_USAGES);
    let target = app_buffer(&d, "app target", n, TENSOR_BUFFER_USAGES);
    let result = app_buffer(&d, "app result", n, TENSOR_BUFFER_USAGES);
    // 1. The application writes its buffer in its own pass (x_i = i / 100 − 3).
    let seed = app_buffer(&d, "app seed", 1, wgpu::BufferUsages::STORAGE);
    app_pass(
        &d,
        &q,
        "dst[i] = f32(i) / 100.0 - 3.0 + 0.0 * src[0];",
        seed.as_entire_binding(),
        &input,
        n as u32,
    );
    // 2. The engine computes on it in place and writes one result into another app buffer.
    let x = Tensor::from_wgpu_buffer(&dev, input, &[n], DType::F32).unwrap();
    let y = x.mul(&x).unwrap().add_scalar(1.0).unwrap();
    let live = dev.pool_stats().live_buffers;
    let out = Tensor::from_wgpu_buffer(&dev, target.clone(), &[n], DType::F32).unwrap();
    assert_eq!(
        dev.pool_stats().live_buffers,
        live,
        "wrapping allocates nothing"
    );
    out.assign(&y.mul_scalar(2.0).unwrap()).unwrap();
    dev.flush().unwrap();
    // 3. The application reads the engine's tensor and its own target in its own pass.
    app_pass(
        &d,
        &q,
        "dst[i] = src[i];",
        y.wgpu_buffer().binding(),
        &result,
        n as u32,
    );
    let from_tensor = app_read(&d, &q, &result, n);
    let from_target = app_read(&d, &q, &target, n);
    for i in 0..n {
        let xi = i as f32 / 100.0 - 3.0;
        let want = xi * xi + 1.0;
        assert!((from_tensor[i] - want).abs() <= 1e-5 * want, "y[{i}]");
        assert!(
            (from_target[i] - 2.0 * want).abs() <= 2e-5 * want,
            "out[{i}]"
        );
    }
    assert_eq!(
        dev.dispatch_stats().readbacks,
        0,
        "no data went through the CPU on the engine's side"
    );
    // The wrapped buffers are not the pool's: dropping them caches nothing.
    let cached = dev.pool_stats().cached_buffers;
    drop((x, out));
    assert_eq!(dev.pool_stats().cached_buffers, cached);
}

#[test]
fn a_callers_buffer_is_checked_for_usages_and_size() {
    let (d, q) = callers_device();
    let dev = Device::from_wgpu(d.clone(), q, DeviceOptions::default());
    let no_copy = app_buffer(&d, "storage only", 8, wgpu::BufferUsages::STORAGE);
    let msg = Tensor::from_wgpu_buffer(&dev, no_copy, &[8], DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("COPY_SRC")
            && msg.contains("COPY_DST")
            && msg.contains("TENSOR_BUFFER_USAGES"),
        "{msg}"
    );
    let small = app_buffer(&d, "small", 8, TENSOR_BUFFER_USAGES);
    let msg = Tensor::from_wgpu_buffer(&dev, small, &[3, 3], DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("36 bytes") && msg.contains("32 bytes"),
        "{msg}"
    );
}

#[test]
fn a_tensors_buffer_can_be_taken_out_of_the_pool() {
    let (d, q) = callers_device();
    let dev = Device::from_wgpu(d.clone(), q.clone(), DeviceOptions::default());
    let data: Vec<f32> = (0..37).map(|i| i as f32 * 0.25).collect();
    // The only handle: the pooled buffer itself, and the pool stops counting it.
    let t = Tensor::from_slice(&dev, &data, &[37]).unwrap();
    let live = dev.pool_stats().live_buffers;
    let buf = t.into_wgpu_buffer().unwrap();
    assert_eq!(dev.pool_stats().live_buffers, live - 1);
    dev.flush().unwrap();
    assert_eq!(app_read(&d, &q, &buf, 37), data);
    // A shared handle: a copy, the tensor stays the engine's.
    let t = Tensor::from_slice(&dev, &data, &[37]).unwrap();
    let keep = t.clone();
    let copy = t.into_wgpu_buffer().unwrap();
    dev.flush().unwrap();
    assert_eq!(app_read(&d, &q, &copy, 37), data);
    assert_eq!(keep.to_vec().unwrap(), data);
    // A view that does not start at the storage's start: a copy of its elements only.
    let rows = Tensor::from_slice(&dev, &data[..36], &[9, 4]).unwrap();
    let tail = rows.narrow(4, 5).unwrap().into_wgpu_buffer().unwrap();
    dev.flush().unwrap();
    assert_eq!(app_read(&d, &q, &tail, 20), data[16..36].to_vec());
}

#[test]
fn async_readback_completes_only_when_the_application_polls() {
    let (d, q) = callers_device();
    let dev = Device::from_wgpu(d, q, DeviceOptions::default());
    let data: Vec<f32> = (0..77).map(|i| (i as f32).sin()).collect();
    let t = Tensor::from_slice(&dev, &data, &[7, 11])
        .unwrap()
        .exp()
        .unwrap();
    let mut fut = t.to_vec_async().unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    // Nobody polled the device: the engine has no thread of its own that would.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!fut.is_ready());
    assert!(std::pin::Pin::new(&mut fut).poll(&mut cx).is_pending());
    // The application's event loop polls without blocking until the data is there.
    let got = loop {
        dev.poll().unwrap();
        if let Poll::Ready(v) = std::pin::Pin::new(&mut fut).poll(&mut cx) {
            break v.unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let want: Vec<f32> = data.iter().map(|v| v.exp()).collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} vs {w}");
    }
    let u = Tensor::from_u32(&dev, &[3, 1, 4, 1, 5], &[5]).unwrap();
    let fut = u.to_vec_u32_async().unwrap();
    // Any blocking engine call polls too.
    dev.synchronize().unwrap();
    while !fut.is_ready() {
        dev.poll().unwrap();
    }
    assert_eq!(pollster::block_on(fut).unwrap(), vec![3, 1, 4, 1, 5]);
    assert!(
        t.to_vec_u32_async().is_err(),
        "a dtype mismatch is an error"
    );
}

#[test]
fn block_on_drives_async_engine_code_to_its_end_natively() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let t = Tensor::from_slice(&dev, &[1.0, -2.0, 0.5], &[3]).unwrap();
    // Several read-backs awaited in turn, as the web crate's async functions do.
    let both = dev.block_on(async {
        let a = t
            .mul_scalar(2.0)
            .unwrap()
            .to_vec_async()
            .unwrap()
            .await
            .unwrap();
        let b = t.neg().unwrap().to_vec_async().unwrap().await.unwrap();
        (a, b)
    });
    assert_eq!(both, (vec![2.0, -4.0, 1.0], vec![-1.0, 2.0, -0.5]));
    assert_eq!(
        dev.block_on(async { 7 }),
        7,
        "a ready future needs no GPU work"
    );
}

#[test]
fn on_a_callers_device_the_engine_keeps_the_embedders_rules() {
    let (d, q) = callers_device();
    // The application's own handlers, installed before the engine sees the device.
    let uncaptured = Arc::new(AtomicUsize::new(0));
    let u = uncaptured.clone();
    d.on_uncaptured_error(Arc::new(move |_e: wgpu::Error| {
        u.fetch_add(1, Ordering::SeqCst);
    }));
    let dev = Device::from_wgpu(d.clone(), q, DeviceOptions::default());
    let x = Tensor::from_slice(&dev, &[0.5; 300], &[3, 100]).unwrap();
    let y = x.softmax().unwrap().sum_all().unwrap();
    assert!((y.to_scalar().unwrap() - 3.0).abs() < 1e-5);
    // The engine's own errors stay inside its error scopes: an error for the engine's caller,
    // nothing for the application's handler.
    let bad = Tensor::from_slice(&dev, &[1.0; 4], &[4]).unwrap();
    let mapped = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("mapped app buffer"),
        size: 16,
        usage: TENSOR_BUFFER_USAGES,
        mapped_at_creation: true,
    });
    let m = Tensor::from_wgpu_buffer(&dev, mapped, &[4], DType::F32).unwrap();
    assert!(
        bad.add(&m).and_then(|s| s.to_vec()).is_err(),
        "a mapped buffer in an engine op is an error"
    );
    assert_eq!(uncaptured.load(Ordering::SeqCst), 0);
    // The application's handler is still the one installed: its own mistakes reach it.
    let _invalid = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app mistake"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    assert_eq!(uncaptured.load(Ordering::SeqCst), 1);
    // Labelled buffers: a wgpu error about an engine tensor names it.
    let scope = d.push_error_scope(wgpu::ErrorFilter::Validation);
    let t = Tensor::from_slice(&dev, &[1.0; 8], &[8]).unwrap();
    let tb = t.wgpu_buffer();
    let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let _bg = d.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: tb.binding(),
        }],
    });
    let err = pollster::block_on(scope.pop()).expect("a storage-only buffer bound as uniform");
    assert!(err.to_string().contains("mtdiff.tensor"), "{err}");
    // Labelled pipelines: every one the ops built has its kernel's name.
    let labels = dev.pipeline_labels();
    assert!(!labels.is_empty());
    assert!(
        labels
            .iter()
            .all(|l| l.contains('.') && !l.starts_with('.')),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.starts_with("reduce.")),
        "{labels:?}"
    );
    // Memory it reports and releases: dropped tensors are cached, and released on request.
    drop((x, y, bad, m, t));
    let before = dev.pool_stats();
    assert!(before.cached_bytes > 0 && before.cached_buffers > 0);
    dev.release_cached_buffers();
    let after = dev.pool_stats();
    assert_eq!((after.cached_buffers, after.cached_bytes), (0, 0));
    assert_eq!(after.live_bytes, before.live_bytes - before.cached_bytes);
}
