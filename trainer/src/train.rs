//! The training loop. A step draws its batch, timesteps and masks from a CPU generator seeded by
//! (seed, step) and its noise on the GPU from (seed, step), records forward, backward and the
//! fused AdamW and EMA updates, and reads nothing back. Every `log_every` steps the interval's
//! losses are read back at once, checked for NaN/Inf, logged (`metrics.jsonl`, `loss.png`,
//! progress bar or plain lines); checkpoints are written only after such a check, so the newest
//! checkpoint is always a good one. `--resume` restores everything and continues exactly.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mtdiff_engine::loss_scale::{LossScaleState, LossScaler, LossScalerConfig};
use mtdiff_engine::ops::diffusion::randn_from;
use mtdiff_engine::optim::{AdamW, AdamWConfig, Ema};
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, Tensor};
use mtdiff_model::{
    LabelInput, ModelConfig, MtDiffusion, Observation, TimestepSampler, TimestepSampling,
};

use crate::checkpoint::{self, Meta, RngState};
use crate::config::TrainConfig;
use crate::data::pipeline::{
    batch_indices, check_queue_fits, workers_or_default, BadImages, Prefetcher,
};
use crate::data::{host_observations, Dataset, Example, HostObservation, Representation};
use crate::distributed::World;
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
    /// Data-parallel runs (`--devices` > 1): milliseconds per step spent on the all-reduce
    /// (reading the devices' flat gradients back and summing them); absent otherwise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub all_reduce_ms_per_step: f64,
    /// Data-parallel runs: bytes the all-reduce moves per step (every device's flat f32
    /// gradient read back, and the sum written to every device); absent otherwise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub all_reduce_bytes_per_step: f64,
    /// The first device's memory high-water mark so far, in MiB: the most bytes of tensors and
    /// scratch buffers in use at once (`PoolStats::peak_in_use_bytes`), which a training step
    /// sets. 0 in metrics written before it was recorded.
    #[serde(default)]
    pub peak_memory_mib: f64,
    /// With `--loss-scale true`: the loss scale after the interval's last step, and the steps
    /// skipped (gradients overflowed) since the run began; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    /// See `loss_scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<u64>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
/// starts over in a run directory that already has checkpoints. The stages, in order: prepare
/// the run, then per step build a batch and take the step; every `log_every` steps log the
/// interval, checkpoint and sample when due; finally sample the last grid.
pub fn train(cfg: &TrainConfig, resume: bool, overwrite: bool) -> Result<TrainSummary> {
    train_in(&World::single(), cfg, resume, overwrite)
}

/// [`train`] as one process of `world` (data parallelism over MPI, see
/// [`crate::distributed`]): rank 0 writes the run's files, every rank trains on its shards.
pub fn train_in(
    world: &World,
    cfg: &TrainConfig,
    resume: bool,
    overwrite: bool,
) -> Result<TrainSummary> {
    let too_large = || {
        format!(
            "The run does not fit this device: lower --batch (now {}) or the model \
             (--unet-channels {}, --res-blocks {}, --attn-levels)",
            cfg.batch,
            cfg.unet_channels
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
            cfg.res_blocks
        )
    };
    let mut run = Run::prepare(world, cfg, resume, overwrite)
        .map_err(|e| crate::error::explain_out_of_memory(e, too_large))?;
    let progress = Progress::new(cfg.steps, run.start, world.is_root());
    let t0 = Instant::now();
    let trained = train_steps(&mut run, &progress);
    progress.finish();
    if let Err(e) = trained {
        let e = crate::error::explain_out_of_memory(e, too_large);
        return Err(run.explain_device_loss(e));
    }
    let seconds = t0.elapsed().as_secs_f64();
    run.finish(seconds)
}

/// The training loop: steps from the run's start to the configured count, logging,
/// checkpointing and sampling when due.
fn train_steps(run: &mut Run<'_>, progress: &Progress) -> Result<()> {
    let cfg = run.cfg;
    let mut interval = Interval::new();
    run.start_batches()?;
    for step in run.start..cfg.steps {
        crate::faults::kill_point("kill-at-step");
        if crate::faults::hit("lose-device") {
            run.dev.wgpu_device().destroy();
        }
        let dispatches_before = run.dev.dispatch_stats().dispatches;
        let batch = run.batch(step)?;
        let losses = run.step(step, &batch)?;
        interval.push(
            losses,
            run.dev.dispatch_stats().dispatches - dispatches_before,
        );
        let done = step + 1;
        if done % cfg.log_every == 0 || done == cfg.steps {
            run.log(&mut interval, progress)?;
            if done % cfg.ckpt_every == 0 || done == cfg.steps {
                run.checkpoint(done)?;
            }
            if cfg.sample_every > 0 && done % cfg.sample_every == 0 && done != cfg.steps {
                run.sample_grid(done)?;
            }
        }
        progress.tick(done);
    }
    Ok(())
}

/// Everything a training run holds between steps.
struct Run<'a> {
    cfg: &'a TrainConfig,
    /// The processes of the run (one unless started by an MPI launcher).
    world: &'a World,
    data: Arc<dyn Dataset>,
    /// Unreadable images skipped so far.
    bad: Arc<BadImages>,
    /// The batches of the steps to come, decoded ahead on worker threads (started by
    /// [`Run::start_batches`] once the first step is known).
    batches: Option<Prefetcher>,
    repr: Representation,
    class_names: Vec<String>,
    plot_title: String,
    run_dir: PathBuf,
    metrics_path: PathBuf,
    dev: Device,
    learner: Learner,
    /// The step this process starts at (0, or the resumed checkpoint's).
    start: u64,
    /// The metrics lines so far (for the loss plot).
    history: Vec<MetricsLine>,
    /// The newest checkpoint written or resumed from.
    last_ckpt: Option<PathBuf>,
    /// Mean loss of the last interval this process logged (NaN before the first).
    final_loss: f64,
    /// Test hook [`FAULT_NAN_ENV`]: the step whose loss becomes NaN.
    fault_step: Option<u64>,
    /// The replicas on the other devices (`--devices N`: N − 1 of them).
    replicas: Vec<Replica>,
    /// Seconds spent reading back and summing gradients, and the bytes moved (data-parallel),
    /// since the start and at the last log line.
    all_reduce: AllReduceTotals,
    all_reduce_logged: AllReduceTotals,
}

/// Running totals of a data-parallel run's all-reduce.
#[derive(Clone, Copy, Default)]
struct AllReduceTotals {
    seconds: f64,
    bytes: u64,
}

/// One step's draws in host memory: the observations of the rows this process trains on, and
/// the timesteps and label dropout of the whole batch. Noise is drawn on each device from the
/// GPU stream of (seed, step).
pub struct HostBatch {
    /// The batch rows `obs` and `labels` hold (all of them unless data-parallel over MPI).
    rows: std::ops::Range<usize>,
    obs: Vec<HostObservation>,
    ts: Vec<u32>,
    /// With the label embedding: the rows' classes, and whether each sample of the whole batch
    /// is shown its label.
    labels: Option<(Vec<u32>, Vec<bool>)>,
}

/// One device's training state: the model, its parameters, AdamW, the EMA and the timestep
/// sampler; a step's host-side draws and its recording. No files, threads or read-backs, so
/// the web page (`trainer/web`) trains with the same code as `mtdiff train`.
pub struct Learner {
    /// The model.
    pub model: MtDiffusion,
    /// Its parameter tensors.
    pub params: Vec<Tensor>,
    /// The optimizer.
    pub opt: AdamW,
    /// The EMA of the parameters (none with `--ema 0` or where nothing samples).
    pub ema: Option<Ema>,
    /// Draws the training timesteps.
    pub timesteps: TimestepSampler,
    /// Dynamic loss scaling (`--loss-scale true`).
    pub scaler: Option<LossScaler>,
}

impl Learner {
    /// A fresh model of `model_cfg` on `dev` with `cfg`'s optimizer, timestep sampling and (when
    /// `keep_ema` and `cfg.ema` > 0) EMA.
    pub fn new(
        dev: &Device,
        cfg: &TrainConfig,
        model_cfg: &ModelConfig,
        keep_ema: bool,
    ) -> Result<Learner> {
        let model = MtDiffusion::new(dev, model_cfg)?;
        let params = model.params().tensors();
        let opt = AdamW::new(AdamWConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            max_grad_norm: (cfg.grad_clip > 0.0).then_some(cfg.grad_clip),
            ..AdamWConfig::default()
        });
        let ema = if cfg.ema > 0.0 && keep_ema {
            Some(Ema::new(&params, cfg.ema)?)
        } else {
            None
        };
        let sampling = TimestepSampling::parse(&cfg.timestep_sampling)?;
        let timesteps = TimestepSampler::new(sampling, model.schedule());
        let scaler = cfg
            .loss_scale
            .then(|| LossScaler::new(dev, LossScalerConfig::default()))
            .transpose()?;
        Ok(Learner {
            model,
            params,
            opt,
            ema,
            timesteps,
            scaler,
        })
    }

    /// A step's draws after its examples: masks, timesteps and label dropout, from `rng` (the
    /// generator of (seed, step) just after [`batch_indices`] drew `examples`), for `rows` of
    /// the batch.
    pub fn host_batch(
        &self,
        cfg: &TrainConfig,
        repr: &Representation,
        rng: &mut CpuRng,
        examples: &[Example],
        rows: std::ops::Range<usize>,
    ) -> Result<HostBatch> {
        let obs = host_observations(
            self.model.task(),
            examples,
            repr,
            rng,
            cfg.mask_ratio,
            rows.clone(),
            cfg.batch,
        )?;
        let ts: Vec<u32> = (0..cfg.batch)
            .map(|_| self.timesteps.sample(rng) as u32)
            .collect();
        let labels = self.model.embedded_label().map(|_| {
            (
                examples.iter().map(|e| e.label).collect(),
                (0..cfg.batch)
                    .map(|_| rng.uniform() >= cfg.label_drop)
                    .collect(),
            )
        });
        Ok(HostBatch {
            rows,
            obs,
            ts,
            labels,
        })
    }

    /// Records one training step on `dev` (the whole batch): the loss, its backward pass,
    /// AdamW and the EMA update. Reads nothing back. `nan` makes the loss NaN (a test hook).
    pub fn step(
        &mut self,
        cfg: &TrainConfig,
        dev: &Device,
        step: u64,
        host: &HostBatch,
        nan: bool,
    ) -> Result<StepLosses> {
        let batch = upload_rows(cfg, &self.model, dev, host, 0..cfg.batch, step)?;
        let terms = {
            let _precision = cfg.autocast();
            self.model
                .loss_given(&batch.obs, &batch.t, &batch.noise, batch.labels.as_ref())?
        };
        let mut total = terms.total;
        if nan {
            total = total.mul_scalar(f32::NAN)?;
        }
        self.opt.config.lr = cfg.lr_at(step);
        match &self.scaler {
            Some(sc) => {
                let grads = sc.scale(&total)?.backward()?;
                self.opt.step_scaled(&self.params, &grads, sc)?;
            }
            None => {
                let grads = total.backward()?;
                self.opt.step(&self.params, &grads)?;
            }
        }
        if let Some(e) = self.ema.as_mut() {
            e.decay = cfg.ema_at(step);
            e.update(&self.params)?;
        }
        Ok(StepLosses {
            step: step + 1,
            parts: vec![std::iter::once(total.detach())
                .chain(std::iter::once(terms.eps.detach()))
                .chain(terms.heads.iter().map(|(_, l)| l.detach()))
                .collect()],
            head_names: terms.heads.iter().map(|(n, _)| n.clone()).collect(),
        })
    }
}

/// One device's inputs: its rows of a [`HostBatch`] and their noise.
struct Batch {
    obs: Vec<Observation>,
    t: Tensor,
    noise: Tensor,
    labels: Option<LabelInput>,
}

/// The rows of a batch of `batch` that replica `k` of `n` takes: contiguous, sizes differing by
/// at most one.
pub fn shard(batch: usize, n: usize, k: usize) -> std::ops::Range<usize> {
    batch * k / n..batch * (k + 1) / n
}

/// Rows `rows` of `host` on `dev`, with their noise: elements of the GPU normal stream of
/// (seed, step) from the rows' first, so any split of the batch draws the same noise.
fn upload_rows(
    cfg: &TrainConfig,
    model: &MtDiffusion,
    dev: &Device,
    host: &HostBatch,
    rows: std::ops::Range<usize>,
    step: u64,
) -> Result<Batch> {
    let b = rows.len();
    let local = rows.start - host.rows.start..rows.end - host.rows.start;
    let obs = host
        .obs
        .iter()
        .map(|h| h.upload(dev, model.task().image_shape, local.clone()))
        .collect::<Result<Vec<_>>>()?;
    let t = Tensor::from_u32(dev, &host.ts[rows.clone()], &[b])?;
    let per_sample: usize = model.sample_dims(1).iter().product();
    let noise = randn_from(
        dev,
        &model.sample_dims(b),
        cfg.seed,
        step,
        rows.start * per_sample,
    )?;
    let labels = host.labels.as_ref().map(|(labels, shown)| {
        let whole = rows.len() == shown.len();
        let unshown = shown.iter().filter(|&&s| !s).count() as f32;
        LabelInput {
            labels: labels[local.clone()].to_vec(),
            shown: shown[rows.clone()].to_vec(),
            // A share f of the batch: f × this loss sums over the shares to the batch's.
            denominator: (!whole)
                .then(|| unshown.max(1.0) * rows.len() as f32 / shown.len() as f32),
        }
    });
    Ok(Batch {
        obs,
        t,
        noise,
        labels,
    })
}

/// One replica of the model beyond the first, on a device of its own (`--devices`): the same
/// parameters and optimizer state, kept identical by applying the same summed gradient.
struct Replica {
    dev: Device,
    model: MtDiffusion,
    params: Vec<Tensor>,
    opt: AdamW,
    /// Its loss scaler (`--loss-scale true`), in step with the first device's.
    scaler: Option<LossScaler>,
}

/// One step's losses, still on the GPU.
pub struct StepLosses {
    /// 1-based count of steps done after this one.
    pub step: u64,
    /// Per device (one unless data-parallel): the total loss, then the ε-MSE and each head's
    /// loss, each scaled by the device's share of the batch so that they sum to the batch's.
    pub parts: Vec<Vec<Tensor>>,
    /// The heads' modality names, in order after the ε-MSE.
    pub head_names: Vec<String>,
}

/// The steps since the last log line, their losses unread.
struct Interval {
    steps: Vec<StepLosses>,
    started: Instant,
    dispatches: u64,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            steps: Vec::new(),
            started: Instant::now(),
            dispatches: 0,
        }
    }

    fn push(&mut self, losses: StepLosses, dispatches: u64) {
        self.steps.push(losses);
        self.dispatches += dispatches;
    }
}

impl<'a> Run<'a> {
    /// A device loss during training, told as such: what happened, the last good checkpoint and
    /// the way on; other errors as they are.
    fn explain_device_loss(&self, e: Error) -> Error {
        crate::error::explain_device_loss(e, || {
            let then = match self.last_ckpt {
                Some(_) => "continue with --resume",
                None => "start the run again (--overwrite)",
            };
            (self.last_good_checkpoint(), then.to_string())
        })
    }

    /// "the last good checkpoint is …", or that none exists yet.
    fn last_good_checkpoint(&self) -> String {
        self.last_ckpt
            .as_ref()
            .map(|p| format!("the last good checkpoint is {}", p.display()))
            .unwrap_or_else(|| "no checkpoint was written yet".to_string())
    }

    /// Prepares the run: the data, the run directory (refusing or clearing old checkpoints),
    /// the device, model, optimizer and EMA, and on `resume` their state from the newest
    /// checkpoint.
    fn prepare(
        world: &'a World,
        cfg: &'a TrainConfig,
        resume: bool,
        overwrite: bool,
    ) -> Result<Run<'a>> {
        cfg.validate()?;
        let data: Arc<dyn Dataset> = Arc::from(cfg.source()?.load(false)?);
        check_queue_fits(
            data.image_shape(),
            cfg.batch,
            workers_or_default(cfg.data_workers),
        )?;
        let repr = Representation::fit(data.as_ref())?;
        let model_cfg = cfg.model_config(data.as_ref(), &repr)?;
        let class_names: Vec<String> = (0..data.classes()).map(|k| data.class_name(k)).collect();
        let plot_title = format!("run {} · {} on {}", cfg.name, cfg.task, data.name());
        let run_dir = cfg.run_dir();
        if world.size() * cfg.devices > cfg.batch {
            return Err(Error::Usage(format!(
                "{} processes × --devices {} take more shards than --batch {} has samples: raise \
                 --batch or use fewer processes or devices",
                world.size(),
                cfg.devices,
                cfg.batch
            )));
        }
        if world.is_root() {
            prepare_dir(&run_dir)?;
            clear_or_refuse_existing(&run_dir, resume, overwrite)?;
        }
        if let Some(&bad) = cfg.adapters.iter().max() {
            let present = mtdiff_engine::adapters();
            if bad >= present.len() {
                let list: Vec<String> = present
                    .iter()
                    .enumerate()
                    .map(|(k, a)| format!("{k}: {a}"))
                    .collect();
                return Err(Error::Usage(format!(
                    "--adapters names adapter {bad}, but this machine has {} ({}); `mtdiff info` \
                     lists them",
                    present.len(),
                    list.join("; ")
                )));
            }
        }
        let dev = crate::driver::open_device_on(cfg.adapter_of(0))?;
        if let Some(note) = crate::driver::old_lavapipe_note(dev.info()) {
            eprintln!("{note}");
        }
        // Only rank 0 samples and checkpoints, so only it keeps the EMA.
        let learner = Learner::new(&dev, cfg, &model_cfg, world.is_root())?;
        let metrics_path = run_dir.join("metrics.jsonl");
        let mut run = Run {
            cfg,
            world,
            data,
            bad: Arc::new(BadImages::new(cfg.max_bad_images)),
            batches: None,
            repr,
            class_names,
            plot_title,
            run_dir,
            metrics_path,
            dev,
            learner,
            start: 0,
            history: Vec::new(),
            last_ckpt: None,
            final_loss: f64::NAN,
            fault_step: std::env::var(FAULT_NAN_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
            replicas: Vec::new(),
            all_reduce: AllReduceTotals::default(),
            all_reduce_logged: AllReduceTotals::default(),
        };
        if world.is_root() {
            if resume {
                run.resume()?;
            } else {
                let _ = std::fs::remove_file(&run.metrics_path);
            }
            let config_path = run.run_dir.join("config.toml");
            std::fs::write(&config_path, toml::to_string(cfg).unwrap_or_default())
                .map_err(|e| Error::io(&config_path, e))?;
        }
        run.start_replicas()?;
        Ok(run)
    }

    /// Restores model, optimizer, EMA, step and metrics from the run's newest checkpoint.
    fn resume(&mut self) -> Result<()> {
        let Some((_, path)) = checkpoint::list(&self.run_dir).pop() else {
            return Err(Error::Checkpoint {
                path: self.run_dir.clone(),
                message: "--resume: no checkpoint to resume from (run without --resume)".into(),
            });
        };
        let ckpt = checkpoint::load(&path)?;
        if ckpt.meta.model != *self.learner.model.config() {
            return Err(Error::Checkpoint {
                path,
                message: "is from a different model configuration (task, data shape, U-Net or \
                          schedule); resume with the flags it was trained with, or start a new \
                          --name"
                    .into(),
            });
        }
        state::restore_training(
            &self.learner.model,
            &mut self.learner.opt,
            self.learner.ema.as_ref(),
            &ckpt,
        )?;
        // The loss scale continues where it was (a checkpoint without one starts at 2¹⁶).
        if let (Some(sc), Some(v)) = (&self.learner.scaler, ckpt.meta.loss_scale) {
            sc.restore(LossScaleState::from_values(&v)?)?;
        }
        self.start = ckpt.meta.step;
        if ckpt.meta.train.steps != self.cfg.steps && self.cfg.lr_schedule == "cosine" {
            println!(
                "note: --steps {} differs from the run's {}: the cosine learning-rate schedule is \
                 recomputed for the new length (resuming with the same --steps continues exactly)",
                self.cfg.steps, ckpt.meta.train.steps
            );
        }
        self.history = truncate_metrics(&self.metrics_path, self.start)?;
        println!(
            "resumed from {} at step {}",
            ckpt.path.display(),
            self.start
        );
        self.last_ckpt = Some(ckpt.path);
        Ok(())
    }

    /// Opens the other devices of `--devices N`, and gives every replica (on this process's
    /// other devices, and on the other ranks' devices) rank 0's first device's parameters,
    /// optimizer moments and step (fresh or resumed), through the host.
    fn start_replicas(&mut self) -> Result<()> {
        for k in 1..self.cfg.devices {
            let dev = crate::driver::open_device_on(self.cfg.adapter_of(k))?;
            let model = MtDiffusion::new(&dev, self.learner.model.config())?;
            let params = model.params().tensors();
            let opt = AdamW::new(self.learner.opt.config);
            let scaler = self
                .cfg
                .loss_scale
                .then(|| LossScaler::new(&dev, LossScalerConfig::default()))
                .transpose()?;
            self.replicas.push(Replica {
                dev,
                model,
                params,
                opt,
                scaler,
            });
        }
        if self.replicas.is_empty() && self.world.size() == 1 {
            return Ok(());
        }
        // Rank 0's state as one host vector: parameters, then (once AdamW has stepped) the
        // moments m and v; its length is the same on every rank.
        let (mut start, mut adam_step) = (self.start, self.learner.opt.steps() as u64);
        self.world.broadcast_u64(&mut start);
        self.world.broadcast_u64(&mut adam_step);
        let sizes: Vec<usize> = self.learner.params.iter().map(|p| p.numel()).collect();
        let total: usize = sizes.iter().sum();
        let with_moments = adam_step > 0;
        let mut state = Vec::with_capacity(total * if with_moments { 3 } else { 1 });
        if self.world.is_root() {
            for p in &self.learner.params {
                state.extend(p.to_vec()?);
            }
            if with_moments {
                for part in [0, 1] {
                    for p in &self.learner.params {
                        let (m, v) = self.learner.opt.moments(p).ok_or_else(|| {
                            Error::Data("internal error: a parameter without moments".into())
                        })?;
                        state.extend([m, v][part].to_vec()?);
                    }
                }
            }
        } else {
            state.resize(total * if with_moments { 3 } else { 1 }, 0.0);
        }
        self.world.broadcast(&mut state);
        // The loss scaler's state (rank 0's, restored from a checkpoint or new) everywhere.
        if let Some(sc) = &self.learner.scaler {
            let mut scale = if self.world.is_root() {
                sc.state().to_vec()?
            } else {
                vec![0.0; 4]
            };
            self.world.broadcast(&mut scale);
            let scale = LossScaleState::from_values(&scale)?;
            sc.restore(scale)?;
            for r in &self.replicas {
                if let Some(rs) = &r.scaler {
                    rs.restore(scale)?;
                }
            }
        }
        self.start = start;
        let root = self.world.is_root();
        let mut targets: Vec<(&Device, &[Tensor], &mut AdamW)> = Vec::new();
        if !root {
            targets.push((&self.dev, &self.learner.params, &mut self.learner.opt));
        }
        for r in &mut self.replicas {
            targets.push((&r.dev, &r.params, &mut r.opt));
        }
        for (dev, params, opt) in targets {
            let mut at = 0;
            for (p, &n) in params.iter().zip(&sizes) {
                p.write(&state[at..at + n])?;
                if with_moments {
                    let m = &state[total + at..total + at + n];
                    let v = &state[2 * total + at..2 * total + at + n];
                    opt.restore(
                        adam_step as u32,
                        p,
                        Tensor::from_slice(dev, m, p.dims())?,
                        Tensor::from_slice(dev, v, p.dims())?,
                    )?;
                }
                at += n;
            }
        }
        Ok(())
    }

    /// Data-parallel runs: an error unless every replica's parameters are bitwise those of the
    /// first device (they receive the same summed gradient and the same update).
    fn check_replicas_identical(&self, done: u64) -> Result<()> {
        if self.replicas.is_empty() && self.world.size() == 1 {
            return Ok(());
        }
        let bits = |params: &[Tensor]| -> Result<Vec<u32>> {
            let mut v = Vec::new();
            for p in params {
                v.extend(p.to_vec()?.iter().map(|x| x.to_bits()));
            }
            Ok(v)
        };
        let first = bits(&self.learner.params)?;
        // Across ranks: a hash of each rank's first device's parameters.
        let hash = first.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        if !self.world.all_equal(hash) {
            return Err(Error::Diverged(format!(
                "after step {done} the parameters differ between MPI ranks; the replicas must \
                 stay identical (a bug: please report it); the checkpoint of step {done} was not \
                 written"
            )));
        }
        for (k, r) in self.replicas.iter().enumerate() {
            if bits(&r.params)? != first {
                return Err(Error::Diverged(format!(
                    "after step {done} the parameters on device {} differ from device 0's; the \
                     replicas of --devices must stay identical (a bug: please report it); the \
                     checkpoint of step {done} was not written",
                    k + 1
                )));
            }
        }
        Ok(())
    }

    /// Starts the data workers on the steps this process runs.
    fn start_batches(&mut self) -> Result<()> {
        let (seed, batch, len) = (self.cfg.seed, self.cfg.batch, self.data.len());
        let workers = workers_or_default(self.cfg.data_workers);
        self.batches = Some(Prefetcher::start(
            self.data.clone(),
            self.bad.clone(),
            move |step| batch_indices(&mut step_rng(seed, step), batch, len),
            self.rows(),
            self.start..self.cfg.steps,
            workers,
        )?);
        Ok(())
    }

    /// The rows of every batch this process trains on: rank r's share of K (its devices'
    /// consecutive shards), all of them in a world of one.
    fn rows(&self) -> std::ops::Range<usize> {
        shard(self.cfg.batch, self.world.size(), self.world.rank())
    }

    /// Step `step`'s batch: examples, masks, timesteps and label dropout from the CPU generator
    /// of (seed, step), in that order, and noise from the GPU stream of (seed, step). The
    /// examples come decoded from the data workers, which drew the same indices.
    fn batch(&mut self, step: u64) -> Result<HostBatch> {
        let ready = match self.batches.as_mut() {
            Some(b) => b.next_batch()?,
            None => return Err(Error::Data("the data pipeline was not started".into())),
        };
        let cfg = self.cfg;
        let mut rng = step_rng(cfg.seed, step);
        let indices = batch_indices(&mut rng, cfg.batch, self.data.len());
        if ready.step != step || ready.indices != indices {
            return Err(Error::Data(format!(
                "internal error: the data pipeline's batch for step {} is not step {step}'s draw",
                ready.step
            )));
        }
        self.learner
            .host_batch(cfg, &self.repr, &mut rng, &ready.examples, self.rows())
    }

    /// Records one training step: the loss, its backward pass, AdamW and the EMA update. Reads
    /// nothing back (data-parallel: see [`Run::data_parallel_step`]).
    fn step(&mut self, step: u64, host: &HostBatch) -> Result<StepLosses> {
        if !self.replicas.is_empty() || self.world.size() > 1 {
            return self.data_parallel_step(step, host);
        }
        let nan = self.fault_step == Some(step + 1);
        self.learner.step(self.cfg, &self.dev, step, host, nan)
    }

    /// A step on every device: each takes its rows of the batch ([`shard`]) and computes its
    /// share of the loss (scaled by its share of the rows) and of the gradient; the flat
    /// gradients are read back, summed in device order on the host, written back to every
    /// device, and each applies the same AdamW update, so the replicas stay identical. The
    /// read-back is the all-reduce, the one wait inside a data-parallel step.
    fn data_parallel_step(&mut self, step: u64, host: &HostBatch) -> Result<StepLosses> {
        let cfg = self.cfg;
        let n = 1 + self.replicas.len();
        // This process's devices take shards r·n … r·n + n − 1 of the world's K·n.
        let shards = n * self.world.size();
        let first_shard = n * self.world.rank();
        let mut flats = Vec::with_capacity(n);
        let mut parts = Vec::with_capacity(n);
        let mut head_names = Vec::new();
        for k in 0..n {
            let (dev, model, params, opt, scaler) = match k {
                0 => (
                    &self.dev,
                    &self.learner.model,
                    &self.learner.params,
                    &mut self.learner.opt,
                    self.learner.scaler.as_ref(),
                ),
                _ => {
                    let r = &mut self.replicas[k - 1];
                    (&r.dev, &r.model, &r.params, &mut r.opt, r.scaler.as_ref())
                }
            };
            let rows = shard(cfg.batch, shards, first_shard + k);
            let share = rows.len() as f32 / cfg.batch as f32;
            let batch = upload_rows(cfg, model, dev, host, rows, step)?;
            let terms = {
                let _precision = cfg.autocast();
                model.loss_given(&batch.obs, &batch.t, &batch.noise, batch.labels.as_ref())?
            };
            let mut total = terms.total.mul_scalar(share)?;
            if k == 0 && self.fault_step == Some(step + 1) {
                total = total.mul_scalar(f32::NAN)?;
            }
            let grads = match scaler {
                Some(sc) => sc.scale(&total)?.backward()?,
                None => total.backward()?,
            };
            flats.push(opt.gather(params, &grads)?);
            let mut losses = vec![total.detach(), terms.eps.detach().mul_scalar(share)?];
            for (_, l) in &terms.heads {
                losses.push(l.detach().mul_scalar(share)?);
            }
            parts.push(losses);
            head_names = terms.heads.iter().map(|(n, _)| n.clone()).collect();
        }
        // The all-reduce proper is timed once every device has finished the step's compute.
        for f in &flats {
            f.device().synchronize()?;
        }
        let started = Instant::now();
        let mut sum = flats[0].to_vec()?;
        for f in &flats[1..] {
            for (s, v) in sum.iter_mut().zip(f.to_vec()?) {
                *s += v;
            }
        }
        self.world.sum(&mut sum);
        for flat in &flats {
            flat.write(&sum)?;
        }
        self.all_reduce.seconds += started.elapsed().as_secs_f64();
        // Device ↔ host: every device's gradient down, the sum up; between ranks a ring
        // all-reduce sends and receives 2(K − 1)/K of the buffer each.
        let k = self.world.size();
        self.all_reduce.bytes += (2 * 4 * sum.len() * n + 2 * 4 * sum.len() * (k - 1) / k) as u64;
        let lr = cfg.lr_at(step);
        for k in 0..flats.len() {
            let (opt, scaler) = match k {
                0 => (&mut self.learner.opt, self.learner.scaler.as_ref()),
                _ => {
                    let r = &mut self.replicas[k - 1];
                    (&mut r.opt, r.scaler.as_ref())
                }
            };
            opt.config.lr = lr;
            match scaler {
                Some(sc) => opt.step_gathered_scaled(sc)?,
                None => opt.step_gathered()?,
            };
        }
        if let Some(e) = self.learner.ema.as_mut() {
            e.decay = cfg.ema_at(step);
            e.update(&self.learner.params)?;
        }
        Ok(StepLosses {
            step: step + 1,
            parts,
            head_names,
        })
    }

    /// Reads the interval's losses back, stops on a non-finite one, and writes the metrics line,
    /// the loss plot and the progress; starts the next interval.
    fn log(&mut self, interval: &mut Interval, progress: &Progress) -> Result<()> {
        let mut rows = read_interval(&interval.steps)?;
        if self.world.size() > 1 {
            // Each rank's rows hold its shards' shares: their sum is the global batch's.
            let per = rows.first().map_or(0, |r| r.len());
            let mut flat: Vec<f32> = rows.concat();
            self.world.sum(&mut flat);
            rows = flat.chunks(per.max(1)).map(|c| c.to_vec()).collect();
        }
        if let Some(step_bad) = first_bad(&interval.steps, &rows) {
            let keep = self.last_good_checkpoint();
            return Err(Error::Diverged(format!(
                "the loss became NaN or infinite at step {step_bad}; stopped. {keep}. Lower \
                 --lr, keep --grad-clip on, or resume from that checkpoint with --resume"
            )));
        }
        let n = interval.steps.len() as u64;
        let secs = interval.started.elapsed().as_secs_f64();
        let (total, last) = (self.all_reduce, self.all_reduce_logged);
        self.all_reduce_logged = total;
        let per_step = n.max(1) as f64;
        // The loss scaler's state, read with the losses (one more small read-back per line).
        let scale = match &self.learner.scaler {
            Some(sc) => Some(LossScaleState::from_values(&sc.state().to_vec()?)?),
            None => None,
        };
        let line = MetricsLine {
            loss_scale: scale.map(|s| s.scale as f64),
            skipped_steps: scale.map(|s| s.skipped_steps as u64),
            img_per_s: (n * self.cfg.batch as u64) as f64 / secs.max(1e-9),
            dispatches_per_step: interval.dispatches as f64 / per_step,
            peak_memory_mib: self.dev.pool_stats().peak_in_use_bytes as f64 / 1048576.0,
            all_reduce_ms_per_step: (total.seconds - last.seconds) * 1e3 / per_step,
            all_reduce_bytes_per_step: (total.bytes - last.bytes) as f64 / per_step,
            ..interval_metrics(&interval.steps, &rows, self.learner.opt.config.lr)
        };
        self.final_loss = line.loss;
        if !self.world.is_root() {
            *interval = Interval::new();
            return Ok(());
        }
        append_metrics(&self.metrics_path, &line)?;
        self.history.push(line.clone());
        if let Ok(png) = loss_plot_png(&self.history, &self.plot_title) {
            write_atomic(&self.run_dir.join("loss.png"), &png)?;
        }
        progress.log(&line, self.cfg.steps);
        *interval = Interval::new();
        Ok(())
    }

    /// Writes the checkpoint of step `done` and prunes old ones.
    fn checkpoint(&mut self, done: u64) -> Result<()> {
        let meta = Meta {
            format: checkpoint::FORMAT.to_string(),
            model: self.learner.model.config().clone(),
            train: self.cfg.clone(),
            step: done,
            adam_step: self.learner.opt.steps(),
            rng: RngState {
                seed: self.cfg.seed,
                next_step: done,
            },
            dataset: self.data.name(),
            class_names: self.class_names.clone(),
            loss_scale: match &self.learner.scaler {
                Some(sc) => Some(LossScaleState::from_values(&sc.state().to_vec()?)?.values()),
                None => None,
            },
        };
        self.check_replicas_identical(done)?;
        let path = checkpoint::path_for(&self.run_dir, done);
        if !self.world.is_root() {
            self.last_ckpt = Some(path);
            return Ok(());
        }
        let tensors = state::collect(
            &self.learner.model,
            &self.learner.opt,
            self.learner.ema.as_ref(),
        )?;
        checkpoint::save(&path, &meta, &tensors)?;
        checkpoint::prune(&self.run_dir, self.cfg.keep)?;
        self.last_ckpt = Some(path);
        Ok(())
    }

    /// Writes the sample grid of step `done` (`samples_<step>.png`), with the EMA weights.
    fn sample_grid(&self, done: u64) -> Result<()> {
        if !self.world.is_root() {
            return Ok(());
        }
        state::with_ema(&self.learner.model, self.learner.ema.as_ref(), || {
            sample::training_grid(
                &self.learner.model,
                self.cfg,
                &self.class_names,
                &self.run_dir.join(format!("samples_{done:08}.png")),
            )
        })
    }

    /// After the last step: the kernel profile, the final grid (when this process trained),
    /// and the summary.
    fn finish(self, seconds: f64) -> Result<TrainSummary> {
        if self.world.is_root() {
            print_kernel_times(&self.dev);
        }
        let checkpoint = self
            .last_ckpt
            .clone()
            .ok_or_else(|| Error::Usage("no steps were run".to_string()))?;
        let steps = self.cfg.steps;
        if self.start < steps {
            self.sample_grid(steps)?;
        }
        Ok(TrainSummary {
            run_dir: self.run_dir,
            checkpoint,
            steps_run: steps.saturating_sub(self.start),
            final_loss: self.final_loss,
            seconds,
        })
    }
}

/// Refuses to start over in a run directory that holds checkpoints unless `resume` or
/// `overwrite`; with `overwrite`, deletes them and the metrics.
fn clear_or_refuse_existing(run_dir: &Path, resume: bool, overwrite: bool) -> Result<()> {
    let existing = checkpoint::list(run_dir);
    if existing.is_empty() || resume {
        return Ok(());
    }
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
    Ok(())
}

/// Reads the interval's losses back in one transfer: per step, the total then each term.
fn read_interval(pending: &[StepLosses]) -> Result<Vec<Vec<f32>>> {
    let devices = pending.first().map_or(0, |s| s.parts.len());
    let mut sums: Vec<f32> = Vec::new();
    // One read-back per device of all its values; the devices' shares summed in device order.
    for k in 0..devices {
        let flat: Vec<Tensor> = pending
            .iter()
            .flat_map(|s| s.parts[k].iter())
            .map(|t| t.reshape(&[1]))
            .collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&Tensor> = flat.iter().collect();
        let values = Tensor::cat(&refs, 0)?.to_vec()?;
        if k == 0 {
            sums = values;
        } else {
            for (s, v) in sums.iter_mut().zip(values) {
                *s += v;
            }
        }
    }
    let per = sums.len() / pending.len().max(1);
    Ok(sums.chunks(per.max(1)).map(|c| c.to_vec()).collect())
}

/// The first step whose total loss is not finite, if any.
fn first_bad(pending: &[StepLosses], rows: &[Vec<f32>]) -> Option<u64> {
    pending
        .iter()
        .zip(rows)
        .find(|(_, row)| !row[0].is_finite())
        .map(|(s, _)| s.step)
}

/// The metrics of an interval (means; non-finite values stay non-finite).
fn interval_metrics(pending: &[StepLosses], rows: &[Vec<f32>], lr: f32) -> MetricsLine {
    let n = rows.len().max(1) as f64;
    let mean = |k: usize| rows.iter().map(|r| r[k] as f64).sum::<f64>() / n;
    let head_names: &[String] = pending.last().map(|s| &s.head_names[..]).unwrap_or(&[]);
    MetricsLine {
        step: pending.last().map(|s| s.step).unwrap_or(0),
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
        peak_memory_mib: 0.0,
        all_reduce_ms_per_step: 0.0,
        all_reduce_bytes_per_step: 0.0,
        loss_scale: None,
        skipped_steps: None,
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
    fn new(steps: u64, start: u64, shown: bool) -> Progress {
        let bar = (shown && std::io::stderr().is_terminal()).then(|| {
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
