//! `mtdiff eval`: the metrics of a checkpoint's task, printed as a table and written as JSON.
//!
//! - image+label: label agreement of joint samples (the evaluation classifier's class of the
//!   generated image vs the generated label), class accuracy of label-conditional samples,
//!   FID-lite (Fréchet distance on the classifier's penultimate features, N generated vs N test
//!   images), and the label head's accuracy on real test images noised to t = 0.05T, 0.1T, 0.2T
//!   (classification through the diffusion model, docs/method.md §9).
//!   FID-lite of the label-conditional samples too.
//! - masked image: PSNR over hidden and visible pixels of the restoration at mask ratios 10, 25,
//!   50 and 75 %, and the perceptual distance to the truth (the evaluation classifier's feature
//!   distance, an LPIPS stand-in), against the masked input itself and SDEdit (noise the masked
//!   image to 0.5T, denoise).
//! - transition: pair consistency, MSE(edges(x̂₁), x̂₂), of joint samples, of x₁ → x₂ and of
//!   x₂ → x₁ on test images, against random pairing.
//! - image+representation: MSE between generated vectors and the classifier's regression of the
//!   generated image, against random pairing; the head's MSE on test images against predicting 0.
//! - every task: FID-lite of joint samples, and beside it the real-vs-real floor at the same N
//!   (N training images against the test images: FID-lite is biased upwards at small N).

use std::path::{Path, PathBuf};

use mtdiff_engine::ops::diffusion::randn;
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, Tensor};
use mtdiff_model::modality::random_patch_mask;
use mtdiff_model::{HeadOutput, ModalityKind, MtDiffusion, Observation, SamplerConfig, TaskPreset};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::classifier::{argmax, frechet_distance, Classifier, Outputs, FEATURES};
use crate::data::pipeline::{
    default_workers, examples_in_parallel, BadImages, DEFAULT_MAX_BAD_IMAGES,
};
use crate::data::{edge_map, mask_patch, Dataset, Example, Representation};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::sample::SampleSet;
use crate::state;

/// Options of `mtdiff eval`.
pub struct EvalArgs {
    /// Checkpoint file or run directory.
    pub checkpoint: PathBuf,
    /// Generated samples per metric.
    pub n: usize,
    /// DDIM steps.
    pub steps: usize,
    /// Seed.
    pub seed: u64,
    /// Output JSON (default: `eval_<step>.json` beside the checkpoint).
    pub out: Option<PathBuf>,
    /// Training steps of the evaluation classifier (cached per value).
    pub classifier_steps: usize,
    /// Classifier-free guidance of label-conditional samples; None: the run's `--guidance`.
    pub guidance: Option<f64>,
    /// Guidance interval; None: the run's `--guidance-interval`.
    pub guidance_interval: Option<(f64, f64)>,
    /// Evaluate the raw weights instead of the EMA.
    pub no_ema: bool,
    /// Sample in f16 (`--precision f16`, see [`crate::sample::SampleArgs::f16`]); the
    /// evaluation classifier stays f32.
    pub f16: bool,
    /// Only FID-lite of joint samples and its floor, not the task's metrics.
    pub fid_only: bool,
    /// A folder for figures (masked image: the restoration at 50 % masked); None: none.
    pub figures: Option<PathBuf>,
}

impl EvalArgs {
    /// The defaults of `mtdiff eval` for `checkpoint`: N 100, 25 steps, seed 0, EMA weights,
    /// f32, the run's guidance, every metric, no figures.
    pub fn new(checkpoint: PathBuf) -> EvalArgs {
        EvalArgs {
            checkpoint,
            n: 100,
            steps: 25,
            seed: 0,
            out: None,
            classifier_steps: crate::classifier::TRAIN_STEPS,
            guidance: None,
            guidance_interval: None,
            no_ema: false,
            f16: false,
            fid_only: false,
            figures: None,
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metric {
    /// What is measured.
    pub name: String,
    /// The value (JSON: a number, or "inf", "-inf", "NaN").
    #[serde(with = "json_f64")]
    pub value: f64,
    /// Unit, N, and what it is compared with.
    pub note: String,
}

/// JSON has no infinities or NaN (serde_json writes them as null, which does not read back as
/// a number): they are written as the strings "inf", "-inf" and "NaN".
mod json_f64 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            Number(f64),
            Text(String),
        }
        match Value::deserialize(d)? {
            Value::Number(v) => Ok(v),
            Value::Text(t) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::NAN),
                other => Err(D::Error::custom(format!(
                    "{other:?} is not a number, inf, -inf or NaN"
                ))),
            },
        }
    }
}

/// The evaluation of one checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// Its step.
    pub step: u64,
    /// Its task.
    pub task: String,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

impl EvalReport {
    /// A plain-text table.
    pub fn table(&self) -> String {
        let w = self
            .metrics
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = format!(
            "eval of {} (step {}, task {})\n{:<w$}  {:>10}  note\n",
            self.checkpoint.display(),
            self.step,
            self.task,
            "metric",
            "value"
        );
        for m in &self.metrics {
            s += &format!("{:<w$}  {:>10.4}  {}\n", m.name, m.value, m.note);
        }
        s
    }

    /// `name` and, as a metric of its own, `name: random pairing` (the same measure with every
    /// generated item paired with another sample's).
    fn push_with_random(&mut self, name: &str, value: f64, random: f64, note: String) {
        self.push(name, value, format!("{note}; random pairing {random:.4}"));
        self.push(
            &format!("{name}: random pairing"),
            random,
            "sample k paired with sample k+1",
        );
    }

    /// The value of the metric called `name`, if it was measured.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    fn push(&mut self, name: &str, value: f64, note: impl Into<String>) {
        self.metrics.push(Metric {
            name: name.to_string(),
            value,
            note: note.into(),
        });
    }
}

/// Samples per chunk of the eval's sampling (its seeds, and so its numbers, depend on it).
const EVAL_CHUNK: usize = 100;

fn images_of(examples: &[Example]) -> Vec<f32> {
    examples
        .iter()
        .flat_map(|e| e.image.iter().copied())
        .collect()
}

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// PSNR for images in [−1, 1] (peak-to-peak 2) over the pixels where `select` is true.
fn psnr(a: &[f32], b: &[f32], select: impl Fn(usize) -> bool) -> f64 {
    let (mut se, mut n) = (0.0, 0usize);
    for i in 0..a.len() {
        if select(i) {
            se += ((a[i] - b[i]) as f64).powi(2);
            n += 1;
        }
    }
    if n == 0 {
        return f64::NAN;
    }
    let m = se / n as f64;
    if m == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (4.0 / m).log10()
    }
}

/// Rotates sample k to k+1: a random pairing that never pairs a sample with itself.
fn shifted(values: &[f32], per: usize) -> Vec<f32> {
    let n = values.len() / per.max(1);
    (0..n)
        .flat_map(|k| {
            values[((k + 1) % n) * per..((k + 1) % n + 1) * per]
                .iter()
                .copied()
        })
        .collect()
}

/// `mtdiff eval`.
pub fn run(args: &EvalArgs) -> Result<EvalReport> {
    if args.n < 2 {
        return Err(Error::Usage("--n must be ≥ 2".to_string()));
    }
    let path = checkpoint::resolve(&args.checkpoint)?;
    let ckpt = checkpoint::load(&path)?;
    let dev = crate::driver::open_device()?;
    let mut model = state::model_from(&dev, &ckpt, !args.no_ema)?;
    model.set_f16(args.f16);
    let source = ckpt.meta.train.source()?;
    let train = source.load(false)?;
    let test = source.load(true)?;
    let repr = Representation::fit(train.as_ref())?;
    let run_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let cache = run_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join(".eval-cache");
    let net = Classifier::load_or_train(
        &dev,
        &cache,
        train.as_ref(),
        test.as_ref(),
        &repr,
        args.classifier_steps,
    )?;
    let task = model.task().clone();
    let shape = task.image_shape;
    let n = args.n;
    let sampler = SamplerConfig {
        steps: args.steps.min(model.schedule().len()),
        seed: args.seed,
        guidance: args.guidance.unwrap_or(ckpt.meta.train.guidance),
        guidance_interval: args
            .guidance_interval
            .unwrap_or(ckpt.meta.train.guidance_interval),
        ..SamplerConfig::default()
    };
    let mut report = EvalReport {
        checkpoint: path.clone(),
        step: ckpt.meta.step,
        task: task
            .preset
            .map(|p| p.name().to_string())
            .unwrap_or_default(),
        metrics: Vec::new(),
    };
    report.push(
        "eval classifier test accuracy",
        net.test_accuracy,
        format!(
            "reference: the judge's own accuracy on real {} test images",
            test.name()
        ),
    );
    let m = n.min(test.len());
    let bad = BadImages::new(DEFAULT_MAX_BAD_IMAGES);
    let all: Vec<usize> = (0..m).collect();
    let test_ex = examples_in_parallel(test.as_ref(), &all, &bad, default_workers())?;
    let test_images = images_of(&test_ex);
    let test_out = net.run(&test_images, m, shape)?;
    let none = |_: usize, _: usize| Ok(vec![None; task.modalities.len()]);
    let joint = crate::sample::generate_chunked(EVAL_CHUNK, &model, n, &sampler, none)?;
    let joint_out = net.run(&joint.images, n, shape)?;
    report.push(
        "FID-lite (joint samples)",
        frechet_distance(&joint_out.features, &test_out.features, FEATURES),
        format!(
            "{n} generated vs {m} test images, {FEATURES}-d classifier features; lower is better"
        ),
    );
    // The floor: N real training images against the same test images, through the same judge.
    let k = n.min(train.len());
    let idx: Vec<usize> = (0..k).collect();
    let train_ex = examples_in_parallel(train.as_ref(), &idx, &bad, default_workers())?;
    let train_out = net.run(&images_of(&train_ex), k, shape)?;
    report.push(
        "FID-lite floor (real vs real)",
        frechet_distance(&train_out.features, &test_out.features, FEATURES),
        format!("{k} training vs {m} test images: what a perfect generator scores at this N"),
    );
    let ctx = Context {
        dev: &dev,
        model: &model,
        net: &net,
        test: test.as_ref(),
        repr: &repr,
        sampler: &sampler,
        test_ex: &test_ex,
        test_images: &test_images,
        test_out: &test_out,
        joint: &joint,
        joint_out: &joint_out,
        seed: args.seed,
    };
    if !args.fid_only {
        // --class-conditional: a label that is only a condition, in any task but image-label
        // (whose label is a modality and is measured by image_label).
        if task.preset != Some(TaskPreset::ImageLabel) {
            if let Some(i) = model.embedded_label() {
                if let ModalityKind::Label { classes } = task.modalities[i].kind {
                    label_given(&ctx, i, classes, &mut report)?;
                }
            }
        }
        match task.preset {
            Some(TaskPreset::ImageLabel) => image_label(&ctx, &mut report)?,
            Some(TaskPreset::MaskedImage) => {
                masked_image(&ctx, args.figures.as_deref(), &mut report)?
            }
            Some(TaskPreset::Transition) => transition(&ctx, &mut report)?,
            Some(TaskPreset::ImageRepresentation) => image_representation(&ctx, &mut report)?,
            _ => {}
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run_dir.join(format!("eval_{:08}.json", ckpt.meta.step)));
    write_atomic(
        &out,
        serde_json::to_string_pretty(&report)
            .expect("json")
            .as_bytes(),
    )?;
    crate::train::print_kernel_times(&dev);
    Ok(report)
}

/// What every task's metrics are computed from: the model and the judge, the test set, the
/// joint samples and the judge's view of both.
#[derive(Clone, Copy)]
struct Context<'a> {
    dev: &'a Device,
    model: &'a MtDiffusion,
    net: &'a Classifier,
    test: &'a dyn Dataset,
    repr: &'a Representation,
    sampler: &'a SamplerConfig,
    /// The first `m` test examples and their images.
    test_ex: &'a [Example],
    test_images: &'a [f32],
    /// The judge's outputs on the test images.
    test_out: &'a Outputs,
    /// `n` joint samples and the judge's outputs on their images.
    joint: &'a SampleSet,
    joint_out: &'a Outputs,
    seed: u64,
}

impl Context<'_> {
    /// Joint samples.
    fn n(&self) -> usize {
        self.joint.n
    }
    /// Test examples.
    fn m(&self) -> usize {
        self.test_ex.len()
    }
    /// The image shape [C, H, W].
    fn shape(&self) -> [usize; 3] {
        self.model.task().image_shape
    }
    /// Values per image.
    fn per(&self) -> usize {
        self.shape().iter().product()
    }
}

/// Image-label: the generated labels against the judge, class accuracy given the label, the
/// label head on noised test images.
fn image_label(ctx: &Context<'_>, report: &mut EvalReport) -> Result<()> {
    let Context {
        dev,
        model,
        test_ex,
        joint,
        joint_out,
        ..
    } = *ctx;
    let (n, m, seed) = (ctx.n(), ctx.m(), ctx.seed);
    let task = model.task();
    let big_t = model.schedule().len();
    let ModalityKind::Label { classes } = task.modalities[1].kind else {
        return Err(Error::Usage("image-label task without a label".to_string()));
    };
    let probs = &joint.outputs[0].values;
    let agree = (0..n)
        .filter(|&k| {
            argmax(&probs[k * classes..(k + 1) * classes])
                == argmax(&joint_out.logits[k * classes..(k + 1) * classes])
        })
        .count();
    report.push(
        "label agreement (joint)",
        agree as f64 / n as f64,
        format!(
            "generated label = classifier(generated image), N = {n}; chance {:.2}",
            1.0 / classes as f64
        ),
    );
    let mut hist = vec![0usize; classes];
    for k in 0..n {
        hist[argmax(&probs[k * classes..(k + 1) * classes])] += 1;
    }
    report.push(
        "generated label histogram min/max",
        *hist.iter().min().unwrap_or(&0) as f64 / (*hist.iter().max().unwrap_or(&1)).max(1) as f64,
        format!("counts {hist:?}; 1 = perfectly uniform"),
    );
    label_given(ctx, 1, classes, report)?;
    for frac in [0.05, 0.1, 0.2] {
        let t = ((frac * big_t as f64) as usize).min(big_t - 1);
        let acc = head_accuracy(dev, model, test_ex, t, classes, seed)?;
        report.push(
            &format!("label head accuracy, t = {frac}T"),
            acc,
            format!("real test images noised to t = {t}, N = {m}"),
        );
    }
    Ok(())
}

/// Label-conditional samples (labels 0, 1, … in turn given as modality `label`): FID-lite,
/// class accuracy and the worst class's accuracy.
fn label_given(
    ctx: &Context<'_>,
    label: usize,
    classes: usize,
    report: &mut EvalReport,
) -> Result<()> {
    let Context {
        dev,
        model,
        net,
        test,
        sampler,
        ..
    } = *ctx;
    let (n, m, shape) = (ctx.n(), ctx.m(), ctx.shape());
    let task = model.task();
    let cond = crate::sample::generate_chunked(EVAL_CHUNK, model, n, sampler, |start, b| {
        let y: Vec<u32> = (start..start + b).map(|k| (k % classes) as u32).collect();
        let mut g = vec![None; task.modalities.len()];
        g[label] = Some(Observation::Label(Tensor::from_u32(dev, &y, &[b])?));
        Ok(g)
    })?;
    let cond_out = net.run(&cond.images, n, shape)?;
    report.push(
        "FID-lite (label given)",
        frechet_distance(&cond_out.features, &ctx.test_out.features, FEATURES),
        format!("{n} images generated given labels 0, 1, … in turn vs {m} test images"),
    );
    let hits: Vec<bool> = (0..n)
        .map(|k| argmax(&cond_out.logits[k * classes..(k + 1) * classes]) == k % classes)
        .collect();
    let hit = hits.iter().filter(|&&h| h).count();
    let per_class = per_class_accuracy(&hits, classes);
    let per_class_text: Vec<String> = per_class
        .iter()
        .enumerate()
        .map(|(c, a)| format!("{} {a:.2}", test.class_name(c)))
        .collect();
    report.push(
        "class accuracy (label given)",
        hit as f64 / n as f64,
        match model.embedded_label() {
            Some(_) => format!(
                "classifier(image generated given label k) = k, N = {n}, guidance {} at \
                 t/T in [{}, {}]",
                sampler.guidance, sampler.guidance_interval.0, sampler.guidance_interval.1
            ),
            None => format!("classifier(image generated given label k) = k, N = {n}"),
        },
    );
    report.push(
        "worst class accuracy (label given)",
        per_class.iter().copied().fold(f64::INFINITY, f64::min),
        format!("per class: {}", per_class_text.join(", ")),
    );
    Ok(())
}

/// Masked-image: restoration quality at four mask ratios; with `figures`, the restoration at
/// 50 % masked as `restoration_50.png`.
fn masked_image(ctx: &Context<'_>, figures: Option<&Path>, report: &mut EvalReport) -> Result<()> {
    if let Some(dir) = figures {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    for ratio in [0.1, 0.25, 0.5, 0.75] {
        let figure = figures
            .filter(|_| ratio == 0.5)
            .map(|dir| dir.join("restoration_50.png"));
        masked_metrics(ctx, ratio, figure.as_deref(), report)?;
    }
    Ok(())
}

/// Transition: the joint pairs' consistency (x₂ against the edges of x₁) and x₁ → x₂ on test
/// images.
fn transition(ctx: &Context<'_>, report: &mut EvalReport) -> Result<()> {
    let Context {
        dev,
        model,
        sampler,
        test_images,
        joint,
        ..
    } = *ctx;
    let (n, m, shape, per) = (ctx.n(), ctx.m(), ctx.shape(), ctx.per());
    let second = &joint.outputs[0].values;
    let edges: Vec<f32> = joint
        .images
        .chunks(per)
        .flat_map(|x| edge_map(x, shape))
        .collect();
    report.push_with_random(
        "pair consistency (joint), MSE",
        mse(&edges, second),
        mse(&edges, &shifted(second, per)),
        format!("MSE(edges(x̂1), x̂2), N = {n}"),
    );
    let cond = crate::sample::generate_chunked(EVAL_CHUNK, model, m, sampler, |start, b| {
        let x = &test_images[start * per..(start + b) * per];
        let mut g = vec![None; model.task().modalities.len()];
        g[0] = Some(Observation::Image(Tensor::from_slice(
            dev,
            x,
            &model.sample_dims(b),
        )?));
        Ok(g)
    })?;
    let truth: Vec<f32> = test_images
        .chunks(per)
        .flat_map(|x| edge_map(x, shape))
        .collect();
    let gen2 = &cond.outputs[0].values;
    report.push_with_random(
        "x1 → x2 on test images, MSE",
        mse(gen2, &truth),
        mse(gen2, &shifted(&truth, per)),
        format!("vs the true edge map, N = {m}"),
    );
    // x₂ → x₁: the image generated given the test edge map, judged by its own edges.
    let back = crate::sample::generate_chunked(EVAL_CHUNK, model, m, sampler, |start, b| {
        let e = &truth[start * per..(start + b) * per];
        let mut g = vec![None; model.task().modalities.len()];
        g[1] = Some(Observation::Image(Tensor::from_slice(
            dev,
            e,
            &model.sample_dims(b),
        )?));
        Ok(g)
    })?;
    let back_edges: Vec<f32> = back
        .images
        .chunks(per)
        .flat_map(|x| edge_map(x, shape))
        .collect();
    report.push_with_random(
        "x2 → x1 on test images, MSE",
        mse(&back_edges, &truth),
        mse(&back_edges, &shifted(&truth, per)),
        format!("MSE(edges(x̂1), x2) given the test edge map x2, N = {m}"),
    );
    Ok(())
}

/// Image-representation: the joint representations against the judge's regression, and the
/// representation head on noised test images.
fn image_representation(ctx: &Context<'_>, report: &mut EvalReport) -> Result<()> {
    let Context {
        dev,
        model,
        repr,
        test_ex,
        joint,
        joint_out,
        ..
    } = *ctx;
    let (n, m, seed) = (ctx.n(), ctx.m(), ctx.seed);
    let big_t = model.schedule().len();
    let d = repr.dim();
    let r_gen = &joint.outputs[0].values;
    report.push_with_random(
        "representation consistency (joint), MSE",
        mse(r_gen, &joint_out.repr),
        mse(r_gen, &shifted(&joint_out.repr, d)),
        format!("MSE(r̂, judge's regression of x̂) per entry, N = {n}"),
    );
    let t = (0.05 * big_t as f64) as usize;
    let truth: Vec<f32> = test_ex.iter().flat_map(|e| repr.of(e)).collect();
    let pred = head_values(dev, model, test_ex, t, seed)?;
    report.push(
        "representation head on test images, MSE",
        mse(&pred, &truth),
        format!("t = {t}, N = {m}"),
    );
    report.push(
        "representation head on test images, MSE: predicting the mean",
        mse(&vec![0.0; truth.len()], &truth),
        "the representation is centred on (up to 1,000) training images: the mean predictor is 0",
    );
    Ok(())
}

/// The label head's accuracy on `examples` noised to timestep `t`.
fn head_accuracy(
    dev: &Device,
    model: &MtDiffusion,
    examples: &[Example],
    t: usize,
    classes: usize,
    seed: u64,
) -> Result<f64> {
    let mut correct = 0;
    for (k, chunk) in examples.chunks(100).enumerate() {
        let b = chunk.len();
        let x = Tensor::from_slice(dev, &images_of(chunk), &model.sample_dims(b))?;
        let noise = randn(dev, &model.sample_dims(b), seed ^ 0xC1A55, k as u64)?;
        let mut given = vec![None; model.task().modalities.len()];
        given[0] = Some(Observation::Image(x));
        let p = mtdiff_engine::no_grad(|| model.infer(&given, t, &noise))?;
        let Some(HeadOutput::Logits(l)) = &p.heads[1] else {
            return Err(Error::Usage("the model has no label head".to_string()));
        };
        let l = l.to_vec()?;
        correct += chunk
            .iter()
            .enumerate()
            .filter(|(i, e)| argmax(&l[i * classes..(i + 1) * classes]) == e.label as usize)
            .count();
    }
    Ok(correct as f64 / examples.len().max(1) as f64)
}

/// The vector head's predictions for `examples` noised to timestep `t`.
fn head_values(
    dev: &Device,
    model: &MtDiffusion,
    examples: &[Example],
    t: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for (k, chunk) in examples.chunks(100).enumerate() {
        let b = chunk.len();
        let x = Tensor::from_slice(dev, &images_of(chunk), &model.sample_dims(b))?;
        let noise = randn(dev, &model.sample_dims(b), seed ^ 0x2E9, k as u64)?;
        let mut given = vec![None; model.task().modalities.len()];
        given[0] = Some(Observation::Image(x));
        let p = mtdiff_engine::no_grad(|| model.infer(&given, t, &noise))?;
        let Some(h) = &p.heads[1] else {
            return Err(Error::Usage("the model has no vector head".to_string()));
        };
        out.extend(h.tensor().to_vec()?);
    }
    Ok(out)
}

/// Restoration at one mask ratio for MT-Diffusion, the masked input, and SDEdit: PSNR of the
/// hidden and the visible pixels, and the perceptual distance to the truth; with `figure`, a
/// PNG of 8 examples: masked input, SDEdit, MT-Diffusion, truth (one row each).
fn masked_metrics(
    ctx: &Context<'_>,
    ratio: f64,
    figure: Option<&Path>,
    report: &mut EvalReport,
) -> Result<()> {
    let Context {
        dev,
        model,
        net,
        sampler,
        test_ex: examples,
        test_out,
        ..
    } = *ctx;
    let shape = model.task().image_shape;
    let (c, h, w) = (shape[0], shape[1], shape[2]);
    let n = examples.len();
    let truth = images_of(examples);
    let mut rng = CpuRng::new(0x3A5C ^ (ratio * 100.0) as u64);
    let mask = random_patch_mask(&mut rng, n, h, w, mask_patch(h), ratio);
    let visible = |i: usize| mask[(i / (c * h * w)) * h * w + i % (h * w)] == 1.0;
    let masked: Vec<f32> = truth
        .iter()
        .enumerate()
        .map(|(i, v)| if visible(i) { *v } else { 0.0 })
        .collect();
    let k = model.task().modalities.len();
    let per = c * h * w;
    let restored = crate::sample::generate_chunked(EVAL_CHUNK, model, n, sampler, |start, b| {
        let mut g = vec![None; k];
        g[1] = Some(Observation::Masked {
            image: Tensor::from_slice(
                dev,
                &masked[start * per..(start + b) * per],
                &model.sample_dims(b),
            )?,
            mask: Tensor::from_slice(
                dev,
                &mask[start * h * w..(start + b) * h * w],
                &[b, 1, h, w],
            )?,
        });
        Ok(g)
    })?;
    // SDEdit: noise the masked image to t0 = 0.5T and denoise jointly (nothing observed).
    let t0 = model.schedule().len() / 2;
    let mut sdedit = Vec::new();
    for (j, start) in (0..n).step_by(100).enumerate() {
        let b = (n - start).min(100);
        let x = Tensor::from_slice(
            dev,
            &masked[start * per..(start + b) * per],
            &model.sample_dims(b),
        )?;
        let noise = randn(
            dev,
            &model.sample_dims(b),
            sampler.seed ^ 0x5DED17,
            j as u64,
        )?;
        let tt = Tensor::from_u32(dev, &vec![t0 as u32; b], &[b])?;
        let mut obs = vec![None; k];
        obs[0] = Some(Observation::Image(x));
        let z = mtdiff_engine::no_grad(|| model.noisy(&obs, &tt, &noise))?;
        let s = model.sample_from(&vec![None; k], b, sampler, Some((&z, t0)))?;
        sdedit.extend(s.image.to_vec()?);
    }
    let pct = (ratio * 100.0).round();
    if let Some(path) = figure {
        let shown = n.min(8);
        let mut rows = Vec::with_capacity(4 * shown * per);
        for out in [&masked, &sdedit, &restored.images, &truth] {
            rows.extend_from_slice(&out[..shown * per]);
        }
        let names = ["masked", "SDEdit", "ours", "truth"]
            .map(String::from)
            .to_vec();
        crate::report::write_grid(
            path,
            &rows,
            4 * shown,
            shape,
            shown,
            &crate::report::GridLabels::Rows(names),
        )?;
    }
    for (name, out) in [
        ("MT-Diffusion", &restored.images),
        ("masked input", &masked),
        ("SDEdit t0=0.5T", &sdedit),
    ] {
        report.push(
            &format!("PSNR hidden px, {pct}% masked: {name}"),
            psnr(out, &truth, |i| !visible(i)),
            format!("dB, N = {n}; higher is better"),
        );
        report.push(
            &format!("PSNR visible px, {pct}% masked: {name}"),
            psnr(out, &truth, visible),
            "dB (inf = exact)".to_string(),
        );
        let features = net.run(out, n, shape)?.features;
        report.push(
            &format!("perceptual distance, {pct}% masked: {name}"),
            mse(&features, &test_out.features[..n * FEATURES]),
            format!(
                "mean squared distance of the evaluation classifier's {FEATURES}-d features to \
                 the truth's (an LPIPS stand-in), N = {n}; lower is better"
            ),
        );
    }
    Ok(())
}

/// Fraction of hits per class, where sample k was generated given class k mod `classes`.
fn per_class_accuracy(hits: &[bool], classes: usize) -> Vec<f64> {
    let mut count = vec![(0usize, 0usize); classes];
    for (k, &h) in hits.iter().enumerate() {
        let c = &mut count[k % classes];
        c.0 += h as usize;
        c.1 += 1;
    }
    count
        .iter()
        .map(|&(hit, all)| hit as f64 / all.max(1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_round_trip_through_json_infinities_and_nan_included() {
        let report = EvalReport {
            checkpoint: PathBuf::from("c"),
            step: 3,
            task: "masked-image".to_string(),
            metrics: [1.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]
                .iter()
                .map(|&value| Metric {
                    name: format!("{value}"),
                    value,
                    note: String::new(),
                })
                .collect(),
        };
        let text = serde_json::to_string(&report).unwrap();
        assert!(
            text.contains("\"inf\"") && text.contains("\"NaN\""),
            "{text}"
        );
        let back: EvalReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back.metrics[0].value, 1.5);
        assert_eq!(back.metrics[1].value, f64::INFINITY);
        assert_eq!(back.metrics[2].value, f64::NEG_INFINITY);
        assert!(back.metrics[3].value.is_nan());
        let bad = text.replace("\"NaN\"", "\"many\"");
        let e = serde_json::from_str::<EvalReport>(&bad).unwrap_err();
        assert!(e.to_string().contains("many"), "{e}");
    }

    use super::*;

    #[test]
    fn per_class_accuracy_counts_each_class_apart() {
        // Classes cycle 0, 1, 2: class 0 hits 2 of 2, class 1 0 of 2, class 2 1 of 1.
        let hits = [true, false, true, true, false];
        assert_eq!(per_class_accuracy(&hits, 3), vec![1.0, 0.0, 1.0]);
        // A class with no samples reads 0, not NaN.
        assert_eq!(per_class_accuracy(&[true], 2), vec![1.0, 0.0]);
    }
}
