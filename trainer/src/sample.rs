//! Sampling from a checkpoint (`mtdiff sample`) and the grids a training run writes: joint
//! generation of every modality, or conditional generation with some given (docs/method.md §7).
//! Outputs: a PNG grid, the non-image outputs (labels with probabilities, vectors) as JSON
//! beside it, and optionally the raw samples as safetensors for other tools.

use std::path::{Path, PathBuf};

use mtdiff_engine::{Device, Tensor};
use mtdiff_model::{
    ModalityKind, MtDiffusion, Observation, Sampled, SamplerConfig, SamplerKind, TaskPreset,
};

use crate::checkpoint::{self, NamedTensor};
use crate::classifier::argmax;
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::report::{write_grid, GridLabels};
use crate::state;

/// Reads an image file into the model's [C, H, W] layout in [−1, 1] (resized, grey or RGB).
pub fn load_image(path: &Path, shape: [usize; 3]) -> Result<Vec<f32>> {
    crate::data::load_image_file(path, shape).map_err(|e| match e {
        Error::Data(m) => Error::Usage(m),
        e => e,
    })
}

/// A `--given` value as parsed on the host, before anything goes to the device.
#[derive(Clone, Debug, PartialEq)]
pub enum GivenValue {
    /// Class indices (one per sample, repeated cyclically).
    Labels(Vec<u32>),
    /// One vector for every sample.
    Vector(Vec<f32>),
    /// An image file (also the masked image's file; its mask comes from `--mask`).
    Image(PathBuf),
}

/// The labels of samples `samples` when `--given` lists `ys`: the list repeated over the sample
/// indices.
fn cycled(ys: &[u32], samples: std::ops::Range<usize>) -> Vec<u32> {
    samples.map(|k| ys[k % ys.len()]).collect()
}

/// Splits one `--given NAME=VALUE`.
pub fn split_given(g: &str) -> Result<(&str, &str)> {
    g.split_once('=')
        .ok_or_else(|| Error::Usage(format!("--given {g:?}: write NAME=VALUE, e.g. label=3")))
}

/// Parses the VALUE of `--given NAME=VALUE` for a modality of `kind`: a class index or comma
/// list for labels, comma-separated floats for vectors, an image path for image modalities.
pub fn parse_given_value(kind: &ModalityKind, name: &str, value: &str) -> Result<GivenValue> {
    Ok(match *kind {
        ModalityKind::Label { classes } => GivenValue::Labels(
            value
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|&y| (y as usize) < classes)
                        .ok_or_else(|| {
                            Error::Usage(format!(
                                "--given {name}={value}: labels are integers in 0..{classes}"
                            ))
                        })
                })
                .collect::<Result<_>>()?,
        ),
        ModalityKind::Vector { dim } => {
            let v: Vec<f32> = value
                .split(',')
                .map(|s| s.trim().parse::<f32>().ok().filter(|x| x.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    Error::Usage(format!("--given {name}: a comma list of finite numbers"))
                })?;
            if v.len() != dim {
                return Err(Error::Usage(format!(
                    "--given {name}: {} numbers, the model's vectors have {dim}",
                    v.len()
                )));
            }
            GivenValue::Vector(v)
        }
        ModalityKind::Image | ModalityKind::SecondImage | ModalityKind::MaskedImage => {
            GivenValue::Image(PathBuf::from(value))
        }
    })
}

/// The `--given NAME=VALUE` observations of samples `samples` (a label list is cycled over the
/// sample indices), uploaded (VALUE: see [`parse_given_value`]).
pub fn parse_given(
    dev: &Device,
    model: &MtDiffusion,
    given: &[String],
    mask: Option<&Path>,
    samples: std::ops::Range<usize>,
) -> Result<Vec<Option<Observation>>> {
    let n = samples.len();
    let task = model.task();
    let shape = task.image_shape;
    let dims = model.sample_dims(n);
    let mut out: Vec<Option<Observation>> = vec![None; task.modalities.len()];
    for g in given {
        let (name, value) = split_given(g)?;
        let i = task.index_of(name)?;
        let repeat = |v: Vec<f32>| -> Vec<f32> { (0..n).flat_map(|_| v.iter().copied()).collect() };
        let kind = &task.modalities[i].kind;
        let obs = match (parse_given_value(kind, name, value)?, kind) {
            (GivenValue::Labels(ys), _) => {
                let y = cycled(&ys, samples.clone());
                Observation::Label(Tensor::from_u32(dev, &y, &[n])?)
            }
            (GivenValue::Vector(v), _) => {
                let dim = v.len();
                Observation::Vector(Tensor::from_slice(dev, &repeat(v), &[n, dim])?)
            }
            (GivenValue::Image(path), ModalityKind::MaskedImage) => {
                let mask_path = mask.ok_or_else(|| {
                    Error::Usage(format!(
                        "--given {name}=… needs --mask MASK.png (white = visible)"
                    ))
                })?;
                let img = load_image(&path, shape)?;
                let m1 = load_image(mask_path, [1, shape[1], shape[2]])?;
                let m: Vec<f32> = m1
                    .iter()
                    .map(|&v| if v > 0.0 { 1.0 } else { 0.0 })
                    .collect();
                let hw = shape[1] * shape[2];
                let masked: Vec<f32> = img.iter().enumerate().map(|(j, v)| v * m[j % hw]).collect();
                Observation::Masked {
                    image: Tensor::from_slice(dev, &repeat(masked), &dims)?,
                    mask: Tensor::from_slice(dev, &repeat(m), &[n, 1, shape[1], shape[2]])?,
                }
            }
            (GivenValue::Image(path), _) => Observation::Image(Tensor::from_slice(
                dev,
                &repeat(load_image(&path, shape)?),
                &dims,
            )?),
        };
        out[i] = Some(obs);
    }
    Ok(out)
}

/// Samples and their non-image outputs, on the CPU.
pub struct SampleSet {
    /// [n, C, H, W] main images.
    pub images: Vec<f32>,
    /// Per modality name: values per sample (label probabilities, vectors, images).
    pub outputs: Vec<NamedTensor>,
    /// n.
    pub n: usize,
}

/// Refuses `n` samples whose results (every modality at most an image's size, f32, plus the
/// grid) would not fit in 80 % of the host memory available now, before any sampling.
fn check_samples_fit_in_memory(model: &MtDiffusion, n: usize) -> Result<()> {
    let Some(room) = mtdiff_engine::host_memory_room() else {
        return Ok(());
    };
    let task = model.task();
    let per_sample = 4
        * task.image_shape.iter().product::<usize>() as u128
        * (task.modalities.len() as u128 + 1);
    let need = n as u128 * per_sample;
    let room = room as u128;
    if need > room {
        return Err(Error::Usage(format!(
            "--n {n}: the samples would take {} MiB of memory, more than the {} MiB available: \
             lower --n (at most about {}), or run several times with different --seed",
            need >> 20,
            room >> 20,
            room / per_sample
        )));
    }
    Ok(())
}

/// Samples per chunk of `mtdiff sample`: any `--n` runs, in chunks of this many (memory grows
/// with the chunk, not with `--n`).
pub const SAMPLE_CHUNK: usize = 64;

/// Samples still on the device: the main images and each generated non-image or extra output
/// by modality name.
pub struct DeviceSamples {
    /// [n, C, H, W] main images.
    pub images: Tensor,
    /// (modality name, tensor) of every other generated output.
    pub outputs: Vec<(String, Tensor)>,
    /// n.
    pub n: usize,
}

/// Runs the sampler on one batch of `n`, leaving the results on the device (the web page reads
/// them back asynchronously; [`generate`] reads them at once).
pub fn sample_on_device(
    model: &MtDiffusion,
    given: &[Option<Observation>],
    n: usize,
    cfg: &SamplerConfig,
) -> Result<DeviceSamples> {
    let s = model.sample(given, n, cfg)?;
    let mut outputs = Vec::new();
    for (i, o) in s.outputs.into_iter().enumerate() {
        if let Some(Sampled::Image(t) | Sampled::Probs(t) | Sampled::Vector(t)) = o {
            outputs.push((model.task().modalities[i].name.clone(), t));
        }
    }
    Ok(DeviceSamples {
        images: s.image,
        outputs,
        n,
    })
}

/// Runs the sampler on one batch of `n` and reads the results back.
pub fn generate(
    model: &MtDiffusion,
    given: &[Option<Observation>],
    n: usize,
    cfg: &SamplerConfig,
) -> Result<SampleSet> {
    let s = sample_on_device(model, given, n, cfg)?;
    let outputs = s
        .outputs
        .iter()
        .map(|(name, t)| Ok(NamedTensor::new(name.clone(), t.dims(), t.to_vec()?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(SampleSet {
        images: s.images.to_vec()?,
        outputs,
        n,
    })
}

/// Generates `n` samples in chunks of at most `chunk` (chunk k with seed `cfg.seed + 7919·k`, so
/// `n ≤ chunk` gives what one [`generate`] call gives); `given(start, len)` builds the
/// observations of a chunk.
pub fn generate_chunked(
    chunk: usize,
    model: &MtDiffusion,
    n: usize,
    cfg: &SamplerConfig,
    mut given: impl FnMut(usize, usize) -> Result<Vec<Option<Observation>>>,
) -> Result<SampleSet> {
    let mut all = SampleSet {
        images: Vec::new(),
        outputs: Vec::new(),
        n: 0,
    };
    let chunk = chunk.max(1);
    for (k, start) in (0..n).step_by(chunk).enumerate() {
        let b = (n - start).min(chunk);
        let c = SamplerConfig {
            seed: cfg.seed.wrapping_add(k as u64 * 7919),
            ..cfg.clone()
        };
        let s = generate(model, &given(start, b)?, b, &c)?;
        all.images.extend(s.images);
        if all.outputs.is_empty() {
            all.outputs = s.outputs;
        } else {
            for (dst, src) in all.outputs.iter_mut().zip(s.outputs) {
                dst.shape[0] += src.shape[0];
                dst.values.extend(src.values);
            }
        }
        all.n += b;
    }
    Ok(all)
}

/// Name of class `k`: the dataset's, or the index where the checkpoint has no names.
fn class_label(names: &[String], k: usize) -> String {
    names.get(k).cloned().unwrap_or_else(|| k.to_string())
}

/// The label of each of the `n` samples, where the task has a label: the given one, or the
/// generated one (the most probable class).
fn sample_labels(
    model: &MtDiffusion,
    given: &[String],
    s: &SampleSet,
) -> Result<Option<Vec<usize>>> {
    let task = model.task();
    let Some(i) = task
        .modalities
        .iter()
        .position(|m| matches!(m.kind, ModalityKind::Label { .. }))
    else {
        return Ok(None);
    };
    let name = &task.modalities[i].name;
    for g in given {
        let (n, value) = split_given(g)?;
        if n == name {
            if let GivenValue::Labels(ys) = parse_given_value(&task.modalities[i].kind, n, value)? {
                return Ok(Some(
                    cycled(&ys, 0..s.n)
                        .into_iter()
                        .map(|y| y as usize)
                        .collect(),
                ));
            }
        }
    }
    Ok(s.outputs
        .iter()
        .find(|o| &o.name == name && o.shape.len() == 2)
        .map(|o| o.values.chunks(o.shape[1]).map(argmax).collect()))
}

/// The sampler of a training run's grids: its sampling steps and guidance, `seed`.
pub fn grid_sampler(cfg: &TrainConfig, seed: u64) -> SamplerConfig {
    SamplerConfig {
        steps: cfg.sample_steps,
        seed,
        guidance: cfg.guidance,
        guidance_interval: cfg.guidance_interval,
        ..SamplerConfig::default()
    }
}

/// The grid a training run writes: for image+label one row per class (the label given, its
/// name left of the row), for the transition task (image, second image) pairs, otherwise joint
/// samples.
pub fn training_grid(
    model: &MtDiffusion,
    cfg: &TrainConfig,
    class_names: &[String],
    path: &Path,
) -> Result<()> {
    let dev = model.device().clone();
    let task = model.task();
    let shape = task.image_shape;
    let sampler = grid_sampler(cfg, cfg.seed ^ 0xA11);
    match task.preset {
        Some(TaskPreset::ImageLabel) => {
            let ModalityKind::Label { classes } = task.modalities[1].kind else {
                unreachable!("the image-label preset's second modality is a label")
            };
            let per = 6;
            let y: Vec<u32> = (0..classes * per).map(|k| (k / per) as u32).collect();
            let mut given = vec![None; task.modalities.len()];
            given[1] = Some(Observation::Label(Tensor::from_u32(&dev, &y, &[y.len()])?));
            let s = generate(model, &given, y.len(), &sampler)?;
            let rows = (0..classes).map(|k| class_label(class_names, k)).collect();
            write_grid(path, &s.images, s.n, shape, per, &GridLabels::Rows(rows))
        }
        Some(TaskPreset::Transition) => {
            let n = 16;
            let s = generate(model, &vec![None; task.modalities.len()], n, &sampler)?;
            let per = shape.iter().product::<usize>();
            let second = &s.outputs[0].values;
            let mut pairs = Vec::with_capacity(2 * n * per);
            for k in 0..n {
                pairs.extend_from_slice(&s.images[k * per..(k + 1) * per]);
                pairs.extend_from_slice(&second[k * per..(k + 1) * per]);
            }
            write_grid(path, &pairs, 2 * n, shape, 8, &GridLabels::None)
        }
        _ => {
            let n = 32;
            let s = generate(model, &vec![None; task.modalities.len()], n, &sampler)?;
            write_grid(path, &s.images, n, shape, 8, &GridLabels::None)
        }
    }
}

/// Options of `mtdiff sample`.
pub struct SampleArgs {
    /// Checkpoint file or run directory.
    pub checkpoint: PathBuf,
    /// Number of samples.
    pub n: usize,
    /// Sampler settings.
    pub sampler: SamplerConfig,
    /// `NAME=VALUE` observations.
    pub given: Vec<String>,
    /// Mask for `--given masked=…`.
    pub mask: Option<PathBuf>,
    /// Output PNG (JSON beside it).
    pub out: Option<PathBuf>,
    /// Also write the raw samples here (safetensors).
    pub raw: Option<PathBuf>,
    /// Use the raw weights instead of the EMA.
    pub no_ema: bool,
    /// Guidance scale overriding `sampler.guidance`; None: the run's `--guidance`.
    pub guidance: Option<f64>,
    /// Guidance interval; None: the run's `--guidance-interval`.
    pub guidance_interval: Option<(f64, f64)>,
    /// `--precision f16`: the convolutions and matmuls read f16 activations and weights and sum
    /// in f32 (`mtdiff_engine::Autocast`); everything else stays f32.
    pub f16: bool,
}

/// Parses `--precision` of `mtdiff sample`: f32 or f16 (true).
pub fn parse_precision(s: &str) -> Result<bool> {
    match s {
        "f32" => Ok(false),
        "f16" => Ok(true),
        _ => Err(Error::Usage(format!("--precision {s:?}: use f32 or f16"))),
    }
}

/// The sampler `mtdiff sample` runs for `ckpt`: `base` with the guidance scale and interval
/// given, or else the run's own (what an embedding application uses to get the same samples).
pub fn sampler_for(
    ckpt: &checkpoint::Checkpoint,
    base: &SamplerConfig,
    guidance: Option<f64>,
    guidance_interval: Option<(f64, f64)>,
) -> SamplerConfig {
    SamplerConfig {
        guidance: guidance.unwrap_or(ckpt.meta.train.guidance),
        guidance_interval: guidance_interval.unwrap_or(ckpt.meta.train.guidance_interval),
        ..base.clone()
    }
}

/// `mtdiff sample`: returns the PNG path written.
pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    if args.n == 0 {
        return Err(Error::Usage("--n must be ≥ 1".to_string()));
    }
    let path = checkpoint::resolve(&args.checkpoint)?;
    let ckpt = checkpoint::load(&path)?;
    let dev = crate::driver::open_device()?;
    let mut model = state::model_from(&dev, &ckpt, !args.no_ema)?;
    model.set_f16(args.f16);
    check_samples_fit_in_memory(&model, args.n)?;
    // Checked once for all chunks, before any sampling.
    parse_given(&dev, &model, &args.given, args.mask.as_deref(), 0..1)?;
    let sampler = sampler_for(&ckpt, &args.sampler, args.guidance, args.guidance_interval);
    if crate::faults::hit("lose-device") {
        dev.wgpu_device().destroy();
    }
    let s = generate_chunked(SAMPLE_CHUNK, &model, args.n, &sampler, |start, b| {
        parse_given(
            &dev,
            &model,
            &args.given,
            args.mask.as_deref(),
            start..start + b,
        )
    })
    .map_err(|e| {
        let e = crate::error::explain_out_of_memory(e, || {
            format!(
                "Not even one chunk of {SAMPLE_CHUNK} samples fits this device: sample from a \
                 smaller model, or on an adapter with more memory"
            )
        });
        crate::error::explain_device_loss(e, || {
            (
                format!(
                    "nothing was written and the checkpoint {} is untouched",
                    path.display()
                ),
                "run the command again".to_string(),
            )
        })
    })?;
    let out = args.out.clone().unwrap_or_else(|| {
        path.parent()
            .unwrap_or(Path::new("."))
            .join(format!("sample_{:08}.png", ckpt.meta.step))
    });
    let shape = model.task().image_shape;
    let cols = (args.n as f64).sqrt().ceil() as usize;
    let mut grid_images = s.images.clone();
    let mut grid_n = s.n;
    for o in &s.outputs {
        if o.shape.len() == 4 {
            // A generated image modality: shown as extra rows below the main images.
            grid_images.extend_from_slice(&o.values);
            grid_n += s.n;
            println!("{}: shown below the images in the grid", o.name);
        }
    }
    // Each image captioned with its label's name (given or generated) where the task has one.
    let captions = match sample_labels(&model, &args.given, &s)? {
        Some(ks) => GridLabels::Cells(
            ks.iter()
                .map(|&k| class_label(&ckpt.meta.class_names, k))
                .collect(),
        ),
        None => GridLabels::None,
    };
    write_grid(&out, &grid_images, grid_n, shape, cols, &captions)?;
    let mut records: Vec<serde_json::Map<String, serde_json::Value>> =
        (0..s.n).map(|_| serde_json::Map::new()).collect();
    for NamedTensor {
        name,
        shape,
        values,
    } in &s.outputs
    {
        if shape.len() != 2 {
            continue;
        }
        let w = shape[1];
        let is_label = matches!(
            model.task().modalities[model.task().index_of(name)?].kind,
            ModalityKind::Label { .. }
        );
        for (k, rec) in records.iter_mut().enumerate() {
            let row = &values[k * w..(k + 1) * w];
            if is_label {
                rec.insert(name.clone(), serde_json::json!(argmax(row)));
                rec.insert(format!("{name}_probs"), serde_json::json!(row));
            } else {
                rec.insert(name.clone(), serde_json::json!(row));
            }
        }
    }
    let json = serde_json::json!({
        "checkpoint": path,
        "step": ckpt.meta.step,
        "sampler": sampler,
        "given": args.given,
        "samples": records,
    });
    write_atomic(
        &out.with_extension("json"),
        serde_json::to_string_pretty(&json)
            .expect("json")
            .as_bytes(),
    )?;
    if let Some(raw) = &args.raw {
        let image = NamedTensor::new("image", &model.sample_dims(s.n), s.images.clone());
        let tensors: Vec<NamedTensor> = std::iter::once(image)
            .chain(s.outputs.iter().cloned())
            .collect();
        write_raw(raw, &tensors)?;
    }
    Ok(out)
}

/// Writes tensors as a plain safetensors file (no mtdiff metadata).
fn write_raw(path: &Path, tensors: &[NamedTensor]) -> Result<()> {
    let data = checkpoint::encode(tensors, None)
        .map_err(|e| Error::Usage(format!("cannot serialise raw samples: {e}")))?;
    write_atomic(path, &data)
}

/// The sampler named on the command line.
pub fn sampler_kind(name: &str) -> Result<SamplerKind> {
    match name {
        "ddim" => Ok(SamplerKind::Ddim),
        "ddpm" => Ok(SamplerKind::Ddpm),
        _ => Err(Error::Usage(format!(
            "--sampler {name:?}: use ddim or ddpm"
        ))),
    }
}
