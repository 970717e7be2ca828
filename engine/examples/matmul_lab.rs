//! Kernel lab for matmul variants (in the style of llm.c's dev/cuda): times a WGSL matmul kernel
//! file on 1024³ with raw wgpu, so variants can be compared without rebuilding the engine.
//! Usage: cargo run --release -p mtdiff-engine --example matmul_lab -- KERNEL.wgsl TM TN WGX WGY
//! The kernel gets bindings 0 uniform [M,N,K,0,0,0,0], 1 A, 2 B, 3 bias, 4 C, and computes a
//! TM×TN block per thread with thread (x, y) of the grid at rows x·TM, columns y·TN (the grid is
//! 1024/(TM·WGX) × 1024/(TN·WGY) workgroups). It prints the compile time, the largest error of a
//! few entries against an f64 CPU product, and the best and median GFLOP/s of 7 runs.
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&args[1]).expect("kernel file");
    let num = |i: usize| args[i].parse::<u32>().expect("number");
    let (tm, tn, wx, wy) = (num(2), num(3), num(4), num(5));
    let n = 1024u32;
    let inst = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(inst.request_adapter(&Default::default())).expect("adapter");
    let (dev, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        // Subgroup operations where the adapter has them (for subgroup kernel variants).
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        ..Default::default()
    }))
    .expect("device");
    use wgpu::util::DeviceExt;
    let data: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mk = |usage| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&data),
            usage,
        })
    };
    let st = wgpu::BufferUsages::STORAGE;
    let (a, b, bias, c) = (
        mk(st),
        mk(st),
        mk(st),
        mk(st | wgpu::BufferUsages::COPY_SRC),
    );
    let mut params = [0u32; 64];
    params[..3].copy_from_slice(&[n, n, n]);
    let p = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let desc = wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    };
    // LAB_UNCHECKED=1 drops naga's index clamping, to measure what bounds checks cost.
    let module = if std::env::var("LAB_UNCHECKED").is_ok() {
        // SAFETY: lab kernels only index inside their buffers for the fixed 1024³ problem.
        unsafe { dev.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
    } else {
        dev.create_shader_module(desc)
    };
    let pipe = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipe.get_bind_group_layout(0),
        entries: &[&p, &a, &b, &bias, &c]
            .iter()
            .enumerate()
            .map(|(i, buf)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: buf.as_entire_binding(),
            })
            .collect::<Vec<_>>(),
    });
    let run = |reps: u32| {
        let mut enc = dev.create_command_encoder(&Default::default());
        for _ in 0..reps {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(n.div_ceil(tm * wx), n.div_ceil(tn * wy), 1);
        }
        queue.submit([enc.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    };
    let t0 = Instant::now();
    run(1);
    println!("compile + first run {:.1} s", t0.elapsed().as_secs_f64());
    // Shared machines are noisy: report the best and the median of 7 runs.
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            run(1);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let rb = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (n * n * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&c, 0, &rb, 0, (n * n * 4) as u64);
    queue.submit([enc.finish()]);
    rb.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    dev.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    let out: Vec<f32> =
        bytemuck::cast_slice(&rb.slice(..).get_mapped_range().expect("map")).to_vec();
    let mut max_err = 0f64;
    for &(i, j) in &[
        (0usize, 0usize),
        (5, 17),
        (1023, 1023),
        (511, 3),
        (77, 900),
        (300, 600),
    ] {
        let r: f64 = (0..n as usize)
            .map(|k| data[i * n as usize + k] as f64 * data[k * n as usize + j] as f64)
            .sum();
        max_err = max_err.max((r - out[i * n as usize + j] as f64).abs());
    }
    println!("max error {max_err:.2e}");
    let gflops = |s: f64| 2.0 * (n as f64).powi(3) / s / 1e9;
    println!(
        "{}: best {:.1} GFLOP/s, median {:.1} GFLOP/s",
        args[1],
        gflops(times[0]),
        gflops(times[3])
    );
}
