//! Lab: matmul 1024³ reading A and B from rgba32float textures (textureLoad) instead of storage buffers.
//! Usage: cargo run --release -p mtdiff-engine --example tex_lab -- KERNEL.wgsl TM TN WGX WGY
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
        ..Default::default()
    }))
    .expect("device");
    use wgpu::util::DeviceExt;
    let a_data: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let b_data: Vec<f32> = (0..n * n).map(|i| ((i * 104729) % 997) as f32 / 997.0 - 0.5).collect();
    let mk_tex = |data: &[f32]| {
        let t = dev.create_texture(&wgpu::TextureDescriptor {
            label: None,
            size: wgpu::Extent3d { width: n / 4, height: n, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        queue.write_texture(
            t.as_image_copy(),
            bytemuck::cast_slice(data),
            wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(n * 4), rows_per_image: None },
            wgpu::Extent3d { width: n / 4, height: n, depth_or_array_layers: 1 },
        );
        t.create_view(&Default::default())
    };
    let (ta, tb) = (mk_tex(&a_data), mk_tex(&b_data));
    let c = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (n * n * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut params = [0u32; 64];
    params[..3].copy_from_slice(&[n, n, n]);
    let p = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let tex_entry = |b| wgpu::BindGroupLayoutEntry {
        binding: b,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    };
    let bgl = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            tex_entry(1),
            tex_entry(2),
            wgpu::BindGroupLayoutEntry {
                binding: 4,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
        ],
    });
    let layout = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let t0 = Instant::now();
    let pipe = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: Some(&layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &bgl,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: p.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&ta) },
            wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&tb) },
            wgpu::BindGroupEntry { binding: 4, resource: c.as_entire_binding() },
        ],
    });
    let run = || {
        let mut enc = dev.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(n.div_ceil(tm * wx), n.div_ceil(tn * wy), 1);
        }
        queue.submit([enc.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    };
    run();
    println!("compile + first run {:.1} s", t0.elapsed().as_secs_f64());
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    // Check a few outputs against the CPU.
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
    let out: Vec<f32> = bytemuck::cast_slice(&rb.slice(..).get_mapped_range().expect("map")).to_vec();
    let mut max_err = 0f64;
    for &(i, j) in &[(0usize, 0usize), (5, 17), (1023, 1023), (511, 3), (77, 900)] {
        let r: f64 = (0..n as usize)
            .map(|k| a_data[i * n as usize + k] as f64 * b_data[k * n as usize + j] as f64)
            .sum();
        max_err = max_err.max((r - out[i * n as usize + j] as f64).abs());
    }
    let gflops = |s: f64| 2.0 * (n as f64).powi(3) / s / 1e9;
    println!(
        "{}: best {:.1} GFLOP/s, median {:.1} GFLOP/s, max err {:.2e}",
        args[1],
        gflops(times[0]),
        gflops(times[3]),
        max_err
    );
}
