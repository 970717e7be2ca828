//! A graphics application that embeds mtdiff: it opens its own wgpu instance, adapter and
//! device, hands the device to the engine, samples a batch from a checkpoint, and draws the
//! samples with its own offscreen render pipeline — the fragment shader reads the sample
//! tensor's GPU buffer directly (no copy through the CPU) and applies the application's own
//! colour map — then writes the frame to a PNG.
//!
//! ```text
//! cargo run --release -p mtdiff --example render_samples -- [--ckpt RUN_OR_FILE] [--n 16]
//!     [--seed 0] [--steps 50] [--out frame.png]
//! ```
//! Without `--ckpt` it trains a small model for a few seconds first. `mtdiff sample --ckpt …
//! --n N --seed S --steps K` draws the same samples (same checkpoint, seed, sampler, adapter):
//! `tests/render_example.rs` checks that this frame is that grid through the colour map.

use std::path::{Path, PathBuf};

use mtdiff::{checkpoint, report, sample, state};
use mtdiff_engine::{wgpu, Device, DeviceOptions};
use mtdiff_model::{SamplerConfig, SamplerKind};

type AppResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What to draw.
pub struct Options {
    /// A checkpoint file or run directory; None: train a small one first.
    pub ckpt: Option<PathBuf>,
    /// Where the small model is trained when `ckpt` is None.
    pub scratch: PathBuf,
    /// Samples.
    pub n: usize,
    /// Sampler seed.
    pub seed: u64,
    /// DDPM steps.
    pub steps: usize,
}

/// Pixels between images in the application's frame.
pub const GAP: usize = 2;
/// The application's separator colour.
pub const GAP_RGB: [u8; 3] = [18, 22, 48];

/// The application's colour map of one 8-bit channel value: black → crimson → orange →
/// yellow; a channel takes its own component (grey images get the whole ramp).
pub fn colour_map(v: u8) -> [u8; 3] {
    let t = v as u32;
    [
        (2 * t).min(255) as u8,
        (2 * t).saturating_sub(255) as u8,
        (t * (255 - t) / 64).min(255) as u8,
    ]
}

/// Where image `k` of a frame with `cols` columns of `[C, H, W]` images at `zoom` starts.
pub fn origin(k: usize, cols: usize, shape: [usize; 3], zoom: usize) -> (usize, usize) {
    (
        GAP + (k % cols) * (shape[2] * zoom + GAP),
        GAP + (k / cols) * (shape[1] * zoom + GAP),
    )
}

/// A rendered frame: RGB rows, plus the layout it was drawn with.
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGB8.
    pub rgb: Vec<u8>,
    /// Columns of images.
    pub cols: usize,
    /// Pixels per image pixel.
    pub zoom: usize,
    /// `[C, H, W]` of one image.
    pub shape: [usize; 3],
    /// The checkpoint drawn.
    pub ckpt: PathBuf,
}

/// The fragment shader: the sample tensor `[N, C, H, W]` is read where it lies.
const SHADER: &str = r#"
struct Params { n: u32, c: u32, h: u32, w: u32, cols: u32, zoom: u32, gap: u32, gap_rgb: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> images: array<f32>;
@group(0) @binding(2) var<storage, read> ramp: array<u32>;

@vertex fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // One triangle covering the viewport.
    let xy = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(xy * 2.0 - 1.0, 0.0, 1.0);
}

fn unpack(rgb: u32) -> vec4<f32> {
    return vec4<f32>(f32(rgb & 255u), f32((rgb >> 8u) & 255u), f32((rgb >> 16u) & 255u), 255.0) / 255.0;
}

// The 8-bit value `mtdiff sample` writes for x in [-1, 1]: round((clamp(x) + 1) · 127.5).
fn level(x: f32) -> u32 {
    return u32(floor((clamp(x, -1.0, 1.0) + 1.0) * 127.5 + 0.5));
}

@fragment fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let px = u32(pos.x);
    let py = u32(pos.y);
    let cw = p.w * p.zoom + p.gap;
    let ch = p.h * p.zoom + p.gap;
    if (px < p.gap || py < p.gap) { return unpack(p.gap_rgb); }
    let ix = (px - p.gap) % cw;
    let iy = (py - p.gap) % ch;
    let k = ((py - p.gap) / ch) * p.cols + (px - p.gap) / cw;
    if (ix >= p.w * p.zoom || iy >= p.h * p.zoom || (px - p.gap) / cw >= p.cols || k >= p.n) {
        return unpack(p.gap_rgb);
    }
    let sx = ix / p.zoom;
    let sy = iy / p.zoom;
    var rgb = vec3<u32>(0u);
    for (var c = 0u; c < 3u; c++) {
        let src = min(c, p.c - 1u);
        let v = level(images[((k * p.c + src) * p.h + sy) * p.w + sx]);
        rgb[c] = (ramp[v] >> (8u * c)) & 255u;
    }
    return unpack(rgb.x | (rgb.y << 8u) | (rgb.z << 16u));
}
"#;

/// The application's device: its own instance and adapter, with the features and limits the
/// engine runs best with (subgroups where the adapter has them, the adapter's limits).
fn app_device() -> AppResult<(wgpu::Device, wgpu::Queue)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    Ok(pollster::block_on(adapter.request_device(
        &wgpu::DeviceDescriptor {
            label: Some("render_samples"),
            required_features: adapter.features() & wgpu::Features::SUBGROUP,
            required_limits: adapter.limits(),
            ..Default::default()
        },
    ))?)
}

/// A small image-label model, trained for a few seconds under `dir`.
fn train_small(dir: &Path) -> AppResult<PathBuf> {
    let cfg = mtdiff::config::TrainConfig {
        name: "render-demo".into(),
        out_dir: dir.to_path_buf(),
        data: "glyphs:8".into(),
        unet_channels: vec![8, 16],
        timesteps: 50,
        steps: 40,
        batch: 16,
        warmup: 5,
        log_every: 10,
        ckpt_every: 40,
        sample_steps: 4,
        eval: false,
        ..Default::default()
    };
    println!("no --ckpt: training a small model in {}", dir.display());
    Ok(mtdiff::train::train(&cfg, false, true)?.checkpoint)
}

/// Samples with the engine on the application's device and renders them in the
/// application's own pass.
pub fn render(opts: &Options) -> AppResult<Frame> {
    let ckpt_path = match &opts.ckpt {
        Some(p) => checkpoint::resolve(p)?,
        None => train_small(&opts.scratch)?,
    };
    let (device, queue) = app_device()?;
    // 1. The engine on the application's device: sample a batch; the result stays on the GPU.
    let engine = Device::from_wgpu(device.clone(), queue.clone(), DeviceOptions::default());
    let ckpt = checkpoint::load(&ckpt_path)?;
    let model = state::model_from(&engine, &ckpt, true)?;
    let base = SamplerConfig {
        kind: SamplerKind::Ddpm,
        steps: opts.steps,
        seed: opts.seed,
        ..SamplerConfig::default()
    };
    let cfg = sample::sampler_for(&ckpt, &base, None, None);
    let given = vec![None; model.task().modalities.len()];
    let samples = model.sample(&given, opts.n, &cfg)?;
    let images = &samples.image;
    // Everything the engine recorded is submitted before the application's pass below.
    engine.flush()?;

    // 2. The application's frame.
    let shape = model.task().image_shape;
    let cols = (opts.n as f64).sqrt().ceil() as usize;
    let rows = opts.n.div_ceil(cols);
    let zoom = report::grid_zoom(shape);
    let (width, height) = (
        GAP + cols * (shape[2] * zoom + GAP),
        GAP + rows * (shape[1] * zoom + GAP),
    );
    let pack = |c: [u8; 3]| c[0] as u32 | (c[1] as u32) << 8 | (c[2] as u32) << 16;
    let ramp: Vec<u32> = (0..=255u8).map(|v| pack(colour_map(v))).collect();
    let params = [
        opts.n as u32,
        shape[0] as u32,
        shape[1] as u32,
        shape[2] as u32,
        cols as u32,
        zoom as u32,
        GAP as u32,
        pack(GAP_RGB),
    ];
    let upload = |label, bytes: &[u8], usage| {
        let b = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len() as u64,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&b, 0, bytes);
        b
    };
    let params_buf = upload(
        "app params",
        bytemuck::cast_slice(&params),
        wgpu::BufferUsages::UNIFORM,
    );
    let ramp_buf = upload(
        "app colour map",
        bytemuck::cast_slice(&ramp),
        wgpu::BufferUsages::STORAGE,
    );
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let target = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("app frame"),
        size: wgpu::Extent3d {
            width: width as u32,
            height: height as u32,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("app grid shader"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("app grid pipeline"),
        layout: None,
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: Default::default(),
        depth_stencil: None,
        multisample: Default::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs"),
            compilation_options: Default::default(),
            targets: &[Some(format.into())],
        }),
        multiview_mask: None,
        cache: None,
    });
    // The sample tensor's own buffer range, bound like any of the application's buffers.
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("app grid bindings"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: images.wgpu_buffer().binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: ramp_buf.as_entire_binding(),
            },
        ],
    });
    let row_bytes = (width * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize);
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app frame readback"),
        size: (row_bytes * height) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let view = target.create_view(&Default::default());
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("app grid pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.draw(0..3, 0..1);
    }
    enc.copy_texture_to_buffer(
        target.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row_bytes as u32),
                rows_per_image: None,
            },
        },
        target.size(),
    );
    queue.submit([enc.finish()]);
    readback.map_async(wgpu::MapMode::Read, .., |r| {
        r.expect("mapping the frame");
    });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let mut rgb = Vec::with_capacity(width * height * 3);
    {
        let data = readback.get_mapped_range(..)?;
        for row in data.chunks(row_bytes).take(height) {
            for px in row[..width * 4].chunks(4) {
                rgb.extend_from_slice(&px[..3]);
            }
        }
    }
    // The sample tensor was read by the application's pass, which has finished: it may go.
    drop(samples);
    Ok(Frame {
        width,
        height,
        rgb,
        cols,
        zoom,
        shape,
        ckpt: ckpt_path,
    })
}

/// Writes a frame as a PNG.
pub fn write_png(frame: &Frame, path: &Path) -> AppResult<()> {
    let img = image::RgbImage::from_raw(frame.width as u32, frame.height as u32, frame.rgb.clone())
        .ok_or("the frame has the wrong number of bytes")?;
    img.save(path)?;
    Ok(())
}

fn parse(args: &[String]) -> AppResult<(Options, PathBuf)> {
    let mut opts = Options {
        ckpt: None,
        scratch: std::env::temp_dir().join("mtdiff-render-samples"),
        n: 16,
        seed: 0,
        steps: 50,
    };
    let mut out = PathBuf::from("frame.png");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--ckpt" => opts.ckpt = Some(PathBuf::from(value()?)),
            "--n" => opts.n = value()?.parse()?,
            "--seed" => opts.seed = value()?.parse()?,
            "--steps" => opts.steps = value()?.parse()?,
            "--out" => out = PathBuf::from(value()?),
            other => {
                return Err(format!(
                    "unknown flag {other}; flags: --ckpt RUN_OR_FILE, --n, --seed, --steps, --out"
                )
                .into())
            }
        }
    }
    if opts.n == 0 {
        return Err("--n must be ≥ 1".into());
    }
    Ok((opts, out))
}

fn main() -> AppResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (opts, out) = parse(&args)?;
    let frame = render(&opts)?;
    write_png(&frame, &out)?;
    println!(
        "drew {} samples of {} into {} ({}×{})",
        opts.n,
        frame.ckpt.display(),
        out.display(),
        frame.width,
        frame.height
    );
    Ok(())
}
