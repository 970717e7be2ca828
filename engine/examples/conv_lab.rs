//! Kernel lab for conv2d forward variants (like `matmul_lab`): times a WGSL kernel file on one
//! convolution with raw wgpu, so variants can be compared without rebuilding the engine.
//! Usage: cargo run --release -p mtdiff-engine --example conv_lab -- KERNEL.wgsl N CI CO HW K
//!        STRIDE GX GY GZ [PARAM13 ...]
//! The kernel gets the bindings of `shaders/conv2d.wgsl` (0 uniform params [N, Ci, H, W, Co, KH,
//! KW, stride, pad, OH, OW, has_bias=1, silu=0, extra...], 1 x, 2 weights, 3 bias, 4 y, 5 pre),
//! entry point `main`, and the grid GX × GY × GZ. It prints the compile time, the largest error
//! against the f64 CPU reference (`cpu::conv2d`), and the best and median GFLOP/s of 9 runs.
//! LAB_WEIGHTS=ci_kk_co binds the weights transposed to [Ci, KH·KW, Co]. LAB_SM=K sets
//! parameter 11 (the subgroup kernels' SM; 1 otherwise). LAB_X=f16 binds x as f16, two to a
//! 32-bit word (element 2k in the low half, as `DType::F16` stores it), and checks against the
//! reference on the f16-rounded x.
use std::time::Instant;

use mtdiff_engine::cpu;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&args[1]).expect("kernel file");
    let num = |i: usize| args[i].parse::<usize>().expect("number");
    let (n, ci, co, hw, k, stride) = (num(2), num(3), num(4), num(5), num(6), num(7));
    let groups = [num(8) as u32, num(9) as u32, num(10) as u32];
    let extra: Vec<u32> = args[11..].iter().map(|a| a.parse().expect("u32")).collect();
    let pad = k / 2;
    let ohw = (hw + 2 * pad - k) / stride + 1;
    let inst = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(inst.request_adapter(&Default::default())).expect("adapter");
    let (dev, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        ..Default::default()
    }))
    .expect("device");
    use wgpu::util::DeviceExt;
    let gen = |len: usize, seed: usize| -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    let x_f16 = std::env::var("LAB_X").as_deref() == Ok("f16");
    let mut x = gen(n * ci * hw * hw, 1);
    if x_f16 {
        x = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    }
    let w = gen(co * ci * k * k, 2);
    let b = gen(co, 3);
    let bound_w: Vec<f32> = match std::env::var("LAB_WEIGHTS").as_deref() {
        Ok("ci_kk_co") => {
            let mut t = vec![0.0; w.len()];
            for o in 0..co {
                for c in 0..ci {
                    for t9 in 0..k * k {
                        t[(c * k * k + t9) * co + o] = w[(o * ci + c) * k * k + t9];
                    }
                }
            }
            t
        }
        _ => w.clone(),
    };
    let ylen = n * co * ohw * ohw;
    let st = wgpu::BufferUsages::STORAGE;
    let mk = |data: &[f32], usage| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage,
        })
    };
    let xb = if x_f16 {
        let mut halves: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
        halves.resize(x.len().div_ceil(2) * 2, half::f16::ZERO);
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&halves),
            usage: st,
        })
    } else {
        mk(&x, st)
    };
    let (wb, bb) = (mk(&bound_w, st), mk(&b, st));
    let yb = mk(&vec![0.0; ylen], st | wgpu::BufferUsages::COPY_SRC);
    let pre = mk(&[0.0; 4], st);
    let mut params = [0u32; 64];
    let sm = std::env::var("LAB_SM").map_or(1, |v| v.parse().expect("LAB_SM: a number"));
    let base = [n, ci, hw, hw, co, k, k, stride, pad, ohw, ohw, sm, 0].map(|v| v as u32);
    params[..13].copy_from_slice(&base);
    params[13..13 + extra.len()].copy_from_slice(&extra);
    let p = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let pipe = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let layout = pipe.get_bind_group_layout(0);
    let bufs = [&p, &xb, &wb, &bb, &yb, &pre];
    // Bindings the kernel does not use are absent from its derived layout: bind only the used
    // ones, found by trying each.
    let entries: Vec<wgpu::BindGroupEntry> = bufs
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            std::env::var("LAB_UNUSED")
                .map(|u| !u.split(',').any(|s| s == i.to_string()))
                .unwrap_or(true)
        })
        .map(|(i, buf)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: buf.as_entire_binding(),
        })
        .collect();
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    });
    let run = || {
        let mut enc = dev.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        queue.submit([enc.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    };
    let t0 = Instant::now();
    run();
    println!("compile + first run {:.2} s", t0.elapsed().as_secs_f64());
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let rb = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (ylen * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&yb, 0, &rb, 0, (ylen * 4) as u64);
    queue.submit([enc.finish()]);
    rb.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    dev.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    let out: Vec<f32> =
        bytemuck::cast_slice(&rb.slice(..).get_mapped_range().expect("map")).to_vec();
    let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let want = cpu::conv2d(
        &f64s(&x),
        &f64s(&w),
        Some(&f64s(&b)),
        cpu::ConvDims {
            n,
            ci,
            h: hw,
            w: hw,
            co,
            kh: k,
            kw: k,
            stride,
            pad,
        },
    );
    let max_err = want
        .iter()
        .zip(&out)
        .map(|(a, &b)| (a - b as f64).abs())
        .fold(0.0, f64::max);
    println!("max error {max_err:.2e}");
    let flops = (2 * n * co * ohw * ohw * ci * k * k) as f64;
    println!(
        "{}: best {:.1} GFLOP/s ({:.2} ms), median {:.1} GFLOP/s",
        args[1],
        flops / times[0] / 1e9,
        times[0] * 1e3,
        flops / times[4] / 1e9
    );
}
