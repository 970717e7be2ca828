//! The training loop. A step draws its batch, timesteps and masks from a CPU generator seeded by
//! (seed, step) and its noise on the GPU from (seed, step), records forward, backward and the
//! fused AdamW and EMA updates, and reads nothing back. Every `log_every` steps the interval's
//! losses are read back at once, checked for NaN/Inf, logged (`metrics.jsonl`, `loss.png`,
//! progress bar or plain lines); checkpoints are written only after such a check, so the newest
//! checkpoint is always a good one. `--resume` restores everything and continues exactly.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mtdiff_engine::ops::diffusion::randn;
use mtdiff_engine::optim::{AdamW, AdamWConfig, Ema};
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, DeviceOptions, Tensor};
use mtdiff_model::{LabelInput, MtDiffusion, TimestepSampler, TimestepSampling};

use crate::checkpoint::{self, Meta, RngState};
use crate::config::TrainConfig;
use crate::data::{observations, Example, Representation};
use crate::error::{Error, Result};
use crate::fsutil::{remove_stale_temps, write_atomic};
use crate::report::loss_plot_png;
use crate::{sample, state};

/// Test hook: the loss of this step becomes NaN (to exercise divergence handling).
pub const FAULT_NAN_ENV: &str = "MTDIFF_FAULT_NAN_AT_STEP";

/// What a finished run reports.
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The final checkpoint.
    pub checkpoint: PathBuf,
    /// Steps taken in this process.
    pub steps_run: u64,
    /// Mean loss of the last logging interval.
    pub final_loss: f64,
    /// Wall time of the training loop, seconds.
    pub seconds: f64,
}

/// The generator of step `step`'s batch, timesteps and masks.
pub fn step_rng(seed: u64, step: u64) -> CpuRng {
    CpuRng::new(seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One metrics line.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct MetricsLine {
    /// Last step of the interval (1-based count of steps done).
    pub step: u64,
    /// Mean total loss over the interval.
    pub loss: f64,
    /// Mean ε-MSE over the interval.
    pub eps: f64,
    /// Mean head losses over the interval, by modality name.
    pub heads: Vec<(String, f64)>,
    /// Learning rate at the last step.
    pub lr: f32,
    /// Images per second over the interval.
    pub img_per_s: f64,
    /// GPU dispatches per training step (batch, forward, backward, optimizer, EMA; not the
    /// logging readback, checkpoints or grids). 0 in metrics written before it was recorded.
    #[serde(default)]
    pub dispatches_per_step: f64,
}

/// Opens (or creates) the run directory, checking that it can be written.
fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Usage(format!(
            "output directory {} cannot be created ({e}); choose another with --out-dir",
            dir.display()
        ))
    })?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(|e| {
        Error::Usage(format!(
            "output directory {} cannot be written ({e}); choose another with --out-dir",
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(probe);
    remove_stale_temps(dir);
    Ok(())
}

/// Keeps the metrics lines with step ≤ `upto` (after a resume, the lines past the checkpoint
/// are recomputed).
fn truncate_metrics(path: &Path, upto: u64) -> Result<Vec<MetricsLine>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let kept: Vec<MetricsLine> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<MetricsLine>(l).ok())
        .filter(|m| m.step <= upto)
        .collect();
    let body: String = kept
        .iter()
        .map(|m| serde_json::to_string(m).expect("metrics serialise") + "\n")
        .collect();
    write_atomic(path, body.as_bytes())?;
    Ok(kept)
}

/// Trains according to `cfg`; `resume` continues from the run's newest checkpoint, `overwrite`
/// starts over in a run directory that already has checkpoints.
pub fn train(cfg: &TrainConfig, resume: bool, overwrite: bool) -> Result<TrainSummary> {
    cfg.validate()?;
    let source = cfg.source()?;
    let data = source.load(false)?;
    let repr = Representation::fit(data.as_ref());
    let model_cfg = cfg.model_config(data.as_ref(), &repr)?;
    let class_names: Vec<String> = (0..data.classes()).map(|k| data.class_name(k)).collect();
    let plot_title = format!("run {} · {} on {}", cfg.name, cfg.task, data.name());
    let run_dir = cfg.run_dir();
    prepare_dir(&run_dir)?;
    let existing = checkpoint::list(&run_dir);
    if !existing.is_empty() && !resume {
        if !overwrite {
            return Err(Error::Usage(format!(
                "{} already holds checkpoints; pass --resume to continue that run, --overwrite \
                 to start it over, or choose another --name",
                run_dir.display()
            )));
        }
        for (_, p) in &existing {
            std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
        }
        let _ = std::fs::remove_file(run_dir.join("metrics.jsonl"));
    }
    let dev = Device::new(DeviceOptions::default())?;
    if let Some(note) = crate::driver::old_lavapipe_note(dev.info()) {
        eprintln!("{note}");
    }
    let model = MtDiffusion::new(&dev, &model_cfg)?;
    let params = model.params().tensors();
    let mut opt = AdamW::new(AdamWConfig {
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        max_grad_norm: (cfg.grad_clip > 0.0).then_some(cfg.grad_clip),
        ..AdamWConfig::default()
    });
    let mut ema = if cfg.ema > 0.0 {
        Some(Ema::new(&params, cfg.ema)?)
    } else {
        None
    };
    let mut start = 0u64;
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut history = Vec::new();
    if resume {
        let Some((_, path)) = checkpoint::list(&run_dir).pop() else {
            return Err(Error::Checkpoint {
                path: run_dir.clone(),
                message: "--resume: no checkpoint to resume from (run without --resume)".into(),
            });
        };
        let ckpt = checkpoint::load(&path)?;
        if ckpt.meta.model != *model.config() {
            return Err(Error::Checkpoint {
                path,
                message: "is from a different model configuration (task, data shape, U-Net or \
                          schedule); resume with the flags it was trained with, or start a new \
                          --name"
                    .into(),
            });
        }
        state::restore_training(&model, &mut opt, ema.as_ref(), &ckpt)?;
        start = ckpt.meta.step;
        if ckpt.meta.train.steps != cfg.steps && cfg.lr_schedule == "cosine" {
            println!(
                "note: --steps {} differs from the run's {}: the cosine learning-rate schedule is \
                 recomputed for the new length (resuming with the same --steps continues exactly)",
                cfg.steps, ckpt.meta.train.steps
            );
        }
        history = truncate_metrics(&metrics_path, start)?;
        println!("resumed from {} at step {start}", ckpt.path.display());
    } else {
        let _ = std::fs::remove_file(&metrics_path);
    }
    std::fs::write(
        run_dir.join("config.toml"),
        toml::to_string(cfg).unwrap_or_default(),
    )
    .map_err(|e| Error::io(run_dir.join("config.toml"), e))?;

    let fault_step: Option<u64> = std::env::var(FAULT_NAN_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let dims = model.sample_dims(cfg.batch);
    let sampling = TimestepSampling::parse(&cfg.timestep_sampling)?;
    let timesteps = TimestepSampler::new(sampling, model.schedule());
    let progress = Progress::new(cfg.steps, start);
    let mut pending: Vec<(u64, Tensor, Vec<Tensor>)> = Vec::new();
    let mut last_ckpt = checkpoint::list(&run_dir).pop().map(|(_, p)| p);
    let mut final_loss = f64::NAN;
    let t0 = Instant::now();
    let mut interval_start = Instant::now();
    let mut interval_steps = 0u64;
    let mut interval_dispatches = 0u64;
    for step in start..cfg.steps {
        let step_start_dispatches = dev.dispatch_stats().dispatches;
        let mut rng = step_rng(cfg.seed, step);
        let indices: Vec<usize> = (0..cfg.batch).map(|_| rng.below(data.len())).collect();
        let examples: Vec<Example> = indices.iter().map(|&i| data.example(i)).collect();
        let obs = observations(
            &dev,
            model.task(),
            &examples,
            &repr,
            &mut rng,
            cfg.mask_ratio,
        )?;
        let ts: Vec<u32> = (0..cfg.batch)
            .map(|_| timesteps.sample(&mut rng) as u32)
            .collect();
        let t = Tensor::from_u32(&dev, &ts, &[cfg.batch])?;
        let noise = randn(&dev, &dims, cfg.seed, step)?;
        let labels = model.embedded_label().map(|_| LabelInput {
            labels: examples.iter().map(|e| e.label).collect(),
            shown: examples
                .iter()
                .map(|_| rng.uniform() >= cfg.label_drop)
                .collect(),
        });
        let terms = model.loss_given(&obs, &t, &noise, labels.as_ref())?;
        let mut total = terms.total;
        if fault_step == Some(step + 1) {
            total = total.mul_scalar(f32::NAN)?;
        }
        let grads = total.backward()?;
        opt.config.lr = cfg.lr_at(step);
        opt.step(&params, &grads)?;
        if let Some(e) = ema.as_mut() {
            e.decay = cfg.ema_at(step);
            e.update(&params)?;
        }
        pending.push((
            step + 1,
            total.detach(),
            std::iter::once(terms.eps.detach())
                .chain(terms.heads.iter().map(|(_, l)| l.detach()))
                .collect(),
        ));
        interval_steps += 1;
        interval_dispatches += dev.dispatch_stats().dispatches - step_start_dispatches;
        let done = step + 1;
        if done % cfg.log_every == 0 || done == cfg.steps {
            let rows = read_interval(&pending)?;
            let names: Vec<String> = terms.heads.iter().map(|(n, _)| n.clone()).collect();
            let line = interval_metrics(&pending, &rows, &names, opt.config.lr);
            let secs = interval_start.elapsed().as_secs_f64();
            let line = MetricsLine {
                img_per_s: (interval_steps * cfg.batch as u64) as f64 / secs.max(1e-9),
                dispatches_per_step: interval_dispatches as f64 / interval_steps.max(1) as f64,
                ..line
            };
            if let Err(step_bad) = first_bad(&pending, &rows) {
                let keep = last_ckpt
                    .as_ref()
                    .map(|p| format!("the last good checkpoint is {}", p.display()))
                    .unwrap_or_else(|| "no checkpoint was written yet".to_string());
                progress.finish();
                return Err(Error::Diverged(format!(
                    "the loss became NaN or infinite at step {step_bad}; stopped. {keep}. Lower \
                     --lr, keep --grad-clip on, or resume from that checkpoint with --resume"
                )));
            }
            pending.clear();
            final_loss = line.loss;
            append_metrics(&metrics_path, &line)?;
            history.push(line.clone());
            if let Ok(png) = loss_plot_png(&history, &plot_title) {
                write_atomic(&run_dir.join("loss.png"), &png)?;
            }
            progress.log(&line, cfg.steps);
            interval_start = Instant::now();
            interval_steps = 0;
            interval_dispatches = 0;
            if done % cfg.ckpt_every == 0 || done == cfg.steps {
                let meta = Meta {
                    format: checkpoint::FORMAT.to_string(),
                    model: model.config().clone(),
                    train: cfg.clone(),
                    step: done,
                    adam_step: opt.steps(),
                    rng: RngState {
                        seed: cfg.seed,
                        next_step: done,
                    },
                    dataset: data.name(),
                    class_names: class_names.clone(),
                };
                let path = checkpoint::path_for(&run_dir, done);
                checkpoint::save(&path, &meta, &state::collect(&model, &opt, ema.as_ref())?)?;
                checkpoint::prune(&run_dir, cfg.keep)?;
                last_ckpt = Some(path);
            }
            if cfg.sample_every > 0 && done % cfg.sample_every == 0 && done != cfg.steps {
                state::with_ema(&model, ema.as_ref(), || {
                    sample::training_grid(
                        &model,
                        cfg,
                        &class_names,
                        &run_dir.join(format!("samples_{done:08}.png")),
                    )
                })?;
            }
        }
        progress.tick(done);
    }
    progress.finish();
    let seconds = t0.elapsed().as_secs_f64();
    print_kernel_times(&dev);
    let checkpoint = last_ckpt.ok_or_else(|| Error::Usage("no steps were run".to_string()))?;
    if start < cfg.steps {
        state::with_ema(&model, ema.as_ref(), || {
            sample::training_grid(
                &model,
                cfg,
                &class_names,
                &run_dir.join(format!("samples_{:08}.png", cfg.steps)),
            )
        })?;
    }
    Ok(TrainSummary {
        run_dir,
        checkpoint,
        steps_run: cfg.steps.saturating_sub(start),
        final_loss,
        seconds,
    })
}

/// Reads the interval's losses back in one transfer; the mean of each term.
fn read_interval(pending: &[(u64, Tensor, Vec<Tensor>)]) -> Result<Vec<Vec<f32>>> {
    let mut all: Vec<&Tensor> = Vec::new();
    for (_, total, terms) in pending {
        all.push(total);
        all.extend(terms.iter());
    }
    let flat: Vec<Tensor> = all
        .iter()
        .map(|t| t.reshape(&[1]))
        .collect::<std::result::Result<_, _>>()?;
    let refs: Vec<&Tensor> = flat.iter().collect();
    let values = Tensor::cat(&refs, 0)?.to_vec()?;
    let per = values.len() / pending.len().max(1);
    Ok(values.chunks(per.max(1)).map(|c| c.to_vec()).collect())
}

/// The first step whose loss is not finite, as Err(step); Ok(()) when all are.
fn first_bad(
    pending: &[(u64, Tensor, Vec<Tensor>)],
    rows: &[Vec<f32>],
) -> std::result::Result<(), u64> {
    for ((step, _, _), row) in pending.iter().zip(rows) {
        if !row[0].is_finite() {
            return Err(*step);
        }
    }
    Ok(())
}

/// The metrics of an interval (means; non-finite values stay non-finite).
fn interval_metrics(
    pending: &[(u64, Tensor, Vec<Tensor>)],
    rows: &[Vec<f32>],
    head_names: &[String],
    lr: f32,
) -> MetricsLine {
    let n = rows.len().max(1) as f64;
    let mean = |k: usize| rows.iter().map(|r| r[k] as f64).sum::<f64>() / n;
    MetricsLine {
        step: pending.last().map(|p| p.0).unwrap_or(0),
        loss: mean(0),
        eps: mean(1),
        heads: head_names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), mean(2 + i)))
            .collect(),
        lr,
        img_per_s: 0.0,
        dispatches_per_step: 0.0,
    }
}

fn append_metrics(path: &Path, line: &MetricsLine) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(
        f,
        "{}",
        serde_json::to_string(line).expect("metrics serialise")
    )
    .map_err(|e| Error::io(path, e))
}

/// A progress bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(steps: u64, start: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(steps);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  {msg}  ETA {eta}",
                )
                .expect("static template"),
            );
            b.set_position(start);
            b
        });
        Progress { bar }
    }

    fn tick(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn log(&self, m: &MetricsLine, steps: u64) {
        let heads: String = m
            .heads
            .iter()
            .map(|(n, v)| format!("  {n} {v:.4}"))
            .collect();
        let msg = format!(
            "loss {:.4}  eps {:.4}{heads}  {:.1} img/s",
            m.loss, m.eps, m.img_per_s
        );
        match &self.bar {
            Some(b) => b.set_message(msg),
            None => println!("step {:>6}/{steps}  {msg}", m.step),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// Prints the slowest kernels when the device timed them (`MTDIFF_PROFILE_KERNELS=1`).
pub fn print_kernel_times(dev: &Device) {
    let times = dev.kernel_times();
    if times.is_empty() {
        return;
    }
    let total: f64 = times.iter().map(|k| k.seconds).sum();
    println!("kernel times (each dispatch waited for; {total:.2} s in all):");
    for k in times.iter().take(30) {
        println!(
            "  {:>7.3} s {:>5.1} %  {:>6} × {:>8.1} µs  {}",
            k.seconds,
            100.0 * k.seconds / total,
            k.count,
            1e6 * k.seconds / k.count as f64,
            k.kernel
        );
    }
}
