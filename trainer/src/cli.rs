//! The `mtdiff` command line (clap derive): argument parsing, merging of defaults, the
//! `--config` file and flags, and dispatch to the library's commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::config::{parse_interval, TrainConfig};
use crate::error::{Error, Result};
use crate::{eval, sample, train};
use clap::{Args, Parser, Subcommand};
use mtdiff_engine::{Device, DeviceOptions, MatmulStrategy};
use mtdiff_model::SamplerConfig;

/// Multi-task diffusion models (MT-Diffusion) on any wgpu adapter.
#[derive(Parser, Debug)]
#[command(name = "mtdiff", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model (defaults: image+label on the built-in glyphs, a few minutes on a CPU).
    Train(Box<TrainArgs>),
    /// Generate samples from a checkpoint, jointly or given some modalities.
    Sample(SampleCli),
    /// Evaluate a checkpoint with the metrics of its task; prints a table and writes JSON.
    Eval(EvalCli),
    /// Write a checkpoint's weights (EMA by default) as a plain safetensors file, f32 or f16.
    Export(ExportCli),
    /// Run only the input pipeline (the batches training would read) and report images/s, CPU
    /// use and peak memory.
    Data(DataCli),
    /// Reproduce the paper's claims on MNIST and Fashion-MNIST: train what is missing (resuming
    /// unfinished runs), evaluate, and write the report with tables, verdicts and plots.
    Repro(ReproCli),
    /// Print the adapter, backend, limits and features the engine would use.
    Info,
    /// List every kernel source the engine compiles; with --dump, write them as compiled.
    Kernels {
        /// Write each source, prelude included, into DIR/static/ and DIR/generated/.
        #[arg(long, value_name = "DIR")]
        dump: Option<PathBuf>,
    },
    /// Train a 2-layer MLP on a toy 2-class problem with the engine and print its accuracy.
    Demo {
        /// Training steps.
        #[arg(long, default_value_t = 400)]
        steps: usize,
        /// Hidden units.
        #[arg(long, default_value_t = 32)]
        hidden: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Flags of `train`; each overrides the `--config` file, which overrides the defaults.
#[derive(Args, Debug, Default)]
struct TrainArgs {
    /// A TOML file with any of the settings below (snake_case keys).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run from its newest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start over in a run directory that already holds checkpoints.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Run name: the run is written to OUT_DIR/NAME/ [default: default].
    #[arg(long)]
    name: Option<String>,
    /// Parent folder of runs [default: runs].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// image-label, masked-image, transition, image-representation or ddpm [default: image-label].
    #[arg(long)]
    task: Option<String>,
    /// glyphs, glyphs:SIZE, mnist:DIR (MNIST/Fashion IDX), folder:DIR (a subfolder per class,
    /// or DIR/labels.csv) or shards:PATH (WebDataset-style .tar shards) [default: glyphs].
    #[arg(long)]
    data: Option<String>,
    /// Side folder and shard images are resized to [default: 32].
    #[arg(long)]
    image_size: Option<usize>,
    /// Channels of folder and shard images, 1 or 3 [default: 3].
    #[arg(long)]
    channels: Option<usize>,
    /// Threads decoding batches ahead of the step; 0: one per logical CPU [default: 0].
    #[arg(long)]
    data_workers: Option<usize>,
    /// Unreadable or corrupt images skipped (each with a warning) before the run stops
    /// [default: 100].
    #[arg(long)]
    max_bad_images: Option<usize>,
    /// Train data-parallel on this many devices (of the adapter `mtdiff info` shows), each on its
    /// share of every batch; --batch stays the global batch [default: 1].
    #[arg(long)]
    devices: Option<usize>,
    /// The adapter of each device, comma separated, by the numbers `mtdiff info` lists (sets
    /// --devices to their count when it is not given; none: every device on adapter 0)
    /// [default: none].
    #[arg(long, value_delimiter = ',')]
    adapters: Option<Vec<usize>>,
    /// U-Net channels per level, comma separated [default: 16,32,32].
    #[arg(long, value_delimiter = ',')]
    unet_channels: Option<Vec<usize>>,
    /// Residual blocks per U-Net level [default: 1].
    #[arg(long)]
    res_blocks: Option<usize>,
    /// U-Net levels with self-attention after each residual block, comma separated (0 = full
    /// resolution; the bottleneck always has it) [default: none].
    #[arg(long, value_delimiter = ',')]
    attn_levels: Option<Vec<usize>>,
    /// The time and class embedding scale and shift each residual block's second group norm
    /// (AdaGN), true or false; false adds it [default: true].
    #[arg(long)]
    scale_shift: Option<bool>,
    /// Diffusion timesteps T [default: 400].
    #[arg(long)]
    timesteps: Option<usize>,
    /// Noise schedule: linear or cosine [default: linear].
    #[arg(long)]
    beta_schedule: Option<String>,
    /// Training timesteps: uniform, or log-snr:MEAN,STD (ln SNR drawn from a normal)
    /// [default: log-snr:-1,2.5].
    #[arg(long)]
    timestep_sampling: Option<String>,
    /// Optimizer steps [default: 600].
    #[arg(long)]
    steps: Option<u64>,
    /// Batch size [default: 64].
    #[arg(long)]
    batch: Option<usize>,
    /// Learning rate [default: 0.004].
    #[arg(long)]
    lr: Option<f32>,
    /// Warm-up steps [default: 50].
    #[arg(long)]
    warmup: Option<u64>,
    /// Learning-rate schedule after warm-up: cosine or constant [default: cosine].
    #[arg(long)]
    lr_schedule: Option<String>,
    /// Weight decay [default: 0].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Gradient-norm clip, 0 = off [default: 1].
    #[arg(long)]
    grad_clip: Option<f32>,
    /// EMA decay, 0 = off [default: 0.995].
    #[arg(long)]
    ema: Option<f32>,
    /// Log every N steps [default: 25].
    #[arg(long)]
    log_every: Option<u64>,
    /// Checkpoint every N steps, a multiple of --log-every [default: 100].
    #[arg(long)]
    ckpt_every: Option<u64>,
    /// Checkpoints to keep [default: 3].
    #[arg(long)]
    keep: Option<usize>,
    /// Sample grid every N steps, 0 = only at the end [default: 0].
    #[arg(long)]
    sample_every: Option<u64>,
    /// Sampling steps (DDPM, respaced) for sample grids and eval [default: 25].
    #[arg(long)]
    sample_steps: Option<usize>,
    /// Seed [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Image-label task: the label also enters through a class embedding (MT-Diffusion-E),
    /// true or false [default: true].
    #[arg(long)]
    label_embedding: Option<bool>,
    /// Tasks without a label (masked-image, ddpm, …): the dataset's label conditions the U-Net
    /// through a class embedding only, not generated (MT-Diffusion-X; with ddpm, a
    /// class-conditional DDPM), true or false [default: false].
    #[arg(long)]
    class_conditional: Option<bool>,
    /// Probability that a training sample sees no label through the embedding [default: 0.3].
    #[arg(long)]
    label_drop: Option<f64>,
    /// Loss weight of the label head's cross-entropy [default: 0.1].
    #[arg(long)]
    label_weight: Option<f64>,
    /// RMS γ of the label's class map aggregated into z_t, relative to the images' (0: the label
    /// is not aggregated) [default: 0.1].
    #[arg(long)]
    label_map_scale: Option<f64>,
    /// Classifier-free guidance of label-conditional samples with --label-embedding (grids and
    /// the final eval; 1 = none) [default: 4.5].
    #[arg(long)]
    guidance: Option<f64>,
    /// LO,HI: guidance acts only at timesteps from LO·T to HI·T; below LO·T the steps are
    /// plain label-conditional (0,1: every step) [default: 0.25,1.0].
    #[arg(long, value_name = "LO,HI", value_parser = parse_interval)]
    guidance_interval: Option<(f64, f64)>,
    /// Min-SNR-γ weighting of the ε loss, 0 = off [default: 5].
    #[arg(long)]
    snr_gamma: Option<f64>,
    /// Dynamic loss scaling: true or false (PyTorch GradScaler's rule, decided on the GPU;
    /// steps whose gradients overflow are skipped and counted in metrics.jsonl) [default: false].
    #[arg(long)]
    loss_scale: Option<bool>,
    /// Arithmetic of the training steps: f32, or f16-mixed (f32 master weights, optimizer and
    /// loss; convolutions and matmuls read f16 and sum in f32). f16-mixed turns --loss-scale on
    /// unless it is given [default: f32].
    #[arg(long)]
    precision: Option<String>,
    /// Evaluate the final checkpoint: true or false [default: true].
    #[arg(long)]
    eval: Option<bool>,
    /// Samples per metric in the final evaluation [default: 100].
    #[arg(long)]
    eval_samples: Option<usize>,
    /// Training steps of the evaluation classifier [default: 500].
    #[arg(long)]
    eval_classifier_steps: Option<usize>,
}

impl TrainArgs {
    /// Defaults, then the config file, then the flags.
    fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_toml(p)?,
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            name,
            out_dir,
            task,
            data,
            image_size,
            channels,
            data_workers,
            max_bad_images,
            devices,
            adapters,
            unet_channels,
            res_blocks,
            attn_levels,
            scale_shift,
            timesteps,
            beta_schedule,
            timestep_sampling,
            steps,
            batch,
            lr,
            warmup,
            lr_schedule,
            weight_decay,
            grad_clip,
            ema,
            log_every,
            ckpt_every,
            keep,
            sample_every,
            sample_steps,
            seed,
            label_embedding,
            class_conditional,
            label_drop,
            label_weight,
            label_map_scale,
            guidance,
            guidance_interval,
            snr_gamma,
            loss_scale,
            precision,
            eval,
            eval_samples,
            eval_classifier_steps
        );
        // Mixed precision scales the loss unless told otherwise (f16 gradients underflow).
        if self.precision.as_deref() == Some("f16-mixed") && self.loss_scale.is_none() {
            c.loss_scale = true;
        }
        if let (Some(a), None) = (&self.adapters, self.devices) {
            c.devices = a.len();
        }
        Ok(c)
    }
}

/// Flags of `sample`.
#[derive(Args, Debug)]
struct SampleCli {
    /// A checkpoint file or a run directory (its newest checkpoint).
    #[arg(long, default_value = "runs/default")]
    ckpt: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// ddpm (ancestral, respaced to --steps) or ddim (deterministic with --eta 0).
    #[arg(long, default_value = "ddpm")]
    sampler: String,
    /// Reverse steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// DDIM η.
    #[arg(long, default_value_t = 0.0)]
    eta: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// An observed modality, NAME=VALUE (label=3, image=x.png, image2=y.png, masked=x.png, repr=…);
    /// repeatable.
    #[arg(long)]
    given: Vec<String>,
    /// The mask of --given masked=… (white = visible).
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Output PNG; the labels/vectors go to the .json beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the raw samples to this safetensors file.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Sample from the raw weights instead of the EMA.
    #[arg(long)]
    no_ema: bool,
    /// Classifier-free guidance scale with --given label=… on a model with a label embedding
    /// (1 = none) [default: the run's --guidance].
    #[arg(long)]
    guidance: Option<f64>,
    /// LO,HI: guidance acts only at timesteps from LO·T to HI·T (0,1: every step) [default:
    /// the run's --guidance-interval].
    #[arg(long, value_name = "LO,HI", value_parser = parse_interval)]
    guidance_interval: Option<(f64, f64)>,
    /// f32, or f16: convolutions and matmuls read f16 activations and weights and sum in f32
    /// (half their memory traffic); everything else stays f32.
    #[arg(long, default_value = "f32")]
    precision: String,
}

/// Flags of `eval`.
#[derive(Args, Debug)]
struct EvalCli {
    /// A checkpoint file or a run directory (its newest checkpoint).
    #[arg(long, default_value = "runs/default")]
    ckpt: PathBuf,
    /// Generated samples per metric.
    #[arg(long, default_value_t = 200)]
    n: usize,
    /// Sampling steps (DDPM, respaced).
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output JSON [default: eval_<step>.json beside the checkpoint].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training steps of the evaluation classifier (cached per value).
    #[arg(long, default_value_t = mtdiff_classifier_steps())]
    classifier_steps: usize,
    /// Classifier-free guidance of label-conditional samples (models with a label embedding)
    /// [default: the run's --guidance].
    #[arg(long)]
    guidance: Option<f64>,
    /// LO,HI: guidance acts only at timesteps from LO·T to HI·T (0,1: every step) [default:
    /// the run's --guidance-interval].
    #[arg(long, value_name = "LO,HI", value_parser = parse_interval)]
    guidance_interval: Option<(f64, f64)>,
    /// Evaluate the raw weights instead of the EMA.
    #[arg(long)]
    no_ema: bool,
    /// f32, or f16: the model's convolutions and matmuls read f16 (the classifier stays f32).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Only FID-lite of joint samples and its real-vs-real floor (fast), not the task's metrics.
    #[arg(long)]
    fid_only: bool,
    /// Write figures into DIR (masked image: restoration_50.png, the restoration at 50 % masked
    /// against SDEdit and the truth).
    #[arg(long, value_name = "DIR")]
    figures: Option<PathBuf>,
}

/// Flags of `repro`.
#[derive(Args, Debug)]
struct ReproCli {
    /// tiny (checks the pipeline in minutes), small (about two hours on a 2-core CPU) or full
    /// (a GPU or a long run); trainer/experiments/budgets.toml defines them.
    #[arg(long, default_value = "small")]
    budget: String,
    /// Only these experiments, comma separated (image-label, masked-image, transition,
    /// image-representation).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A folder of experiment definitions to use instead of the built-in ones (budgets.toml
    /// and one TOML file per experiment, as in trainer/experiments/).
    #[arg(long, value_name = "DIR")]
    experiments: Option<PathBuf>,
    /// Where the runs are trained: RUNS/BUDGET/DATASET/RUN-sSEED/.
    #[arg(long, default_value = "runs/repro")]
    runs: PathBuf,
    /// The report (Markdown); figures and the raw JSON go into the folder of the same name.
    #[arg(long, default_value = "docs/reproduction.md")]
    report: PathBuf,
    /// MNIST's IDX files (default: the vendored 2,000/1,000-image subset).
    #[arg(long, default_value = "tests/data/mnist", value_name = "DIR")]
    mnist: PathBuf,
    /// Fashion-MNIST's IDX files (default: the vendored subset).
    #[arg(long, default_value = "tests/data/fashion-mnist", value_name = "DIR")]
    fashion: PathBuf,
}

/// Flags of `export`.
#[derive(Args, Debug)]
struct ExportCli {
    /// A checkpoint file or a run directory (its newest checkpoint).
    #[arg(long, default_value = "runs/default")]
    ckpt: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// f32 (the checkpoint's values) or f16 (half the size, rounded to nearest even).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Export the raw weights instead of the EMA's.
    #[arg(long)]
    no_ema: bool,
}

/// Flags of `data`.
#[derive(Args, Debug)]
struct DataCli {
    /// glyphs, glyphs:SIZE, mnist:DIR, folder:DIR or shards:PATH (as for train).
    #[arg(long, default_value = "glyphs")]
    data: String,
    /// Side folder and shard images are resized to.
    #[arg(long, default_value_t = 64)]
    image_size: usize,
    /// Channels of folder and shard images, 1 or 3.
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Batches to decode.
    #[arg(long, default_value_t = 40)]
    batches: u64,
    /// Decoding threads; 0: one per logical CPU.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Seed of the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Read the test split.
    #[arg(long)]
    test: bool,
    /// Unreadable or corrupt images skipped before it stops.
    #[arg(long, default_value_t = crate::data::pipeline::DEFAULT_MAX_BAD_IMAGES)]
    max_bad_images: usize,
}

fn mtdiff_classifier_steps() -> usize {
    crate::classifier::TRAIN_STEPS
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            let cfg = args.config()?;
            let world = crate::distributed::World::detect()?;
            let s = match train::train_in(&world, &cfg, args.resume, args.overwrite) {
                Ok(s) => s,
                Err(e) if world.size() > 1 => {
                    // Every other rank would wait forever in the next collective.
                    eprintln!("error: {}{e}", world.prefix());
                    world.abort_others();
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if !world.is_root() {
                return Ok(());
            }
            println!(
                "trained {} steps in {:.0} s; final loss {:.4}; checkpoint {}",
                s.steps_run,
                s.seconds,
                s.final_loss,
                s.checkpoint.display()
            );
            if cfg.eval {
                let report = eval::run(&eval::EvalArgs {
                    checkpoint: s.checkpoint.clone(),
                    n: cfg.eval_samples,
                    steps: cfg.sample_steps,
                    seed: cfg.seed,
                    out: None,
                    classifier_steps: cfg.eval_classifier_steps,
                    guidance: Some(cfg.guidance),
                    guidance_interval: Some(cfg.guidance_interval),
                    no_ema: false,
                    f16: false,
                    fid_only: false,
                    figures: None,
                })?;
                println!("{}", report.table());
            }
            println!("run directory: {}", s.run_dir.display());
        }
        Command::Sample(a) => {
            let out = sample::run(&sample::SampleArgs {
                checkpoint: a.ckpt,
                n: a.n,
                sampler: SamplerConfig {
                    kind: sample::sampler_kind(&a.sampler)?,
                    steps: a.steps,
                    eta: a.eta,
                    seed: a.seed,
                    ..SamplerConfig::default()
                },
                given: a.given,
                mask: a.mask,
                out: a.out,
                raw: a.raw,
                no_ema: a.no_ema,
                guidance: a.guidance,
                guidance_interval: a.guidance_interval,
                f16: sample::parse_precision(&a.precision)?,
            })?;
            println!(
                "wrote {} and {}",
                out.display(),
                out.with_extension("json").display()
            );
        }
        Command::Eval(a) => {
            let report = eval::run(&eval::EvalArgs {
                checkpoint: a.ckpt,
                n: a.n,
                steps: a.steps,
                seed: a.seed,
                out: a.out,
                classifier_steps: a.classifier_steps,
                guidance: a.guidance,
                guidance_interval: a.guidance_interval,
                no_ema: a.no_ema,
                f16: sample::parse_precision(&a.precision)?,
                fid_only: a.fid_only,
                figures: a.figures,
            })?;
            println!("{}", report.table());
        }
        Command::Export(a) => {
            let s = crate::export::run(&crate::export::ExportArgs {
                checkpoint: a.ckpt,
                out: a.out,
                dtype: crate::export::ExportDtype::parse(&a.dtype)?,
                no_ema: a.no_ema,
            })?;
            println!(
                "wrote {} ({} weights: {} tensors, {} parameters, {} bytes; largest rounding \
                 {:.3e})",
                s.out.display(),
                s.weights,
                s.tensors,
                s.parameters,
                s.bytes,
                s.max_rounding
            );
        }
        Command::Data(a) => {
            if a.batch == 0 || a.batches == 0 {
                return Err(Error::Usage(
                    "--batch and --batches must be at least 1".to_string(),
                ));
            }
            let workers = crate::data::pipeline::workers_or_default(a.workers);
            let m = crate::data::measure::measure(&crate::data::measure::MeasureArgs {
                source: crate::data::DataSource::parse(&a.data, a.image_size, a.channels)?,
                test: a.test,
                batch: a.batch,
                batches: a.batches,
                workers,
                seed: a.seed,
                max_bad_images: a.max_bad_images,
            })?;
            println!("{}", m.report(workers));
        }
        Command::Repro(a) => {
            let s = crate::repro::run(&crate::repro::ReproArgs {
                budget: a.budget,
                only: a.only,
                experiments: a.experiments,
                runs: a.runs,
                report: a.report,
                mnist: a.mnist,
                fashion: a.fashion,
            })?;
            println!(
                "trained {} runs, evaluated {} checkpoints; wrote {}",
                s.trained,
                s.evaluated,
                s.report.display()
            );
        }
        Command::Info => {
            let dev = Device::new(DeviceOptions::default())?;
            println!("{}", dev.info());
            println!("adapters (numbers for train --adapters; 0 is used by default):");
            for (k, a) in mtdiff_engine::adapters().iter().enumerate() {
                println!("  {k}: {a}");
            }
            if let Some(note) = crate::driver::old_lavapipe_note(dev.info()) {
                println!("{note}");
            }
            let family = match dev.matmul_strategy() {
                MatmulStrategy::RegisterBlocked => "register-blocked (CPU adapter)",
                MatmulStrategy::Tiled => "workgroup-tiled (GPU adapter)",
                MatmulStrategy::Subgroup => "subgroup-blocked (CPU adapter, 8-lane subgroups)",
            };
            println!("matmul kernels: {family}");
            println!(
                "f16: tensors, casts and f16-input kernels (train --precision f16-mixed, sample \
                 --precision f16) yes, on any adapter; f16 shader arithmetic (SHADER_F16) {}",
                if dev.info().has_shader_f16() {
                    "yes"
                } else {
                    "no"
                }
            );
            if dev.info().is_lavapipe() {
                let threads = std::env::var("LP_NUM_THREADS").unwrap_or_default();
                println!(
                    "lavapipe worker threads: {threads} (LP_NUM_THREADS; mtdiff sets twice the \
                     CPU count unless it is set)"
                );
            }
        }
        Command::Kernels { dump } => {
            let kernels = mtdiff_engine::ops::sources::all_kernels();
            match dump {
                Some(dir) => {
                    for k in &kernels {
                        let folder = dir.join(if k.generated { "generated" } else { "static" });
                        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
                        let path = folder.join(&k.name);
                        let text = mtdiff_engine::ops::with_prelude(&k.source);
                        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
                    }
                    println!(
                        "wrote {} kernel sources to {}",
                        kernels.len(),
                        dir.display()
                    );
                }
                None => {
                    for k in &kernels {
                        let kind = if k.generated { "generated" } else { "static" };
                        println!("{kind:<9}  {}", k.name);
                    }
                }
            }
        }
        Command::Demo {
            steps,
            hidden,
            seed,
        } => {
            let dev = Device::new(DeviceOptions::default())?;
            println!("adapter: {} ({:?})", dev.info().name, dev.info().backend);
            let t = Instant::now();
            let report = mtdiff_engine::demo::train_mlp(&dev, hidden, steps, seed, |step, loss| {
                println!("step {step:>5}  loss {loss:.4}");
            })
            .map_err(Error::from)?;
            println!(
                "two-moons MLP: test accuracy {:.1} % after {} steps ({:.1} s)",
                100.0 * report.test_accuracy,
                report.steps,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Parses the process arguments, runs the command, prints any error; the process exit code.
pub fn main() -> ExitCode {
    ignore_file_size_signal();
    // SAFETY: the first thing the program does, before any thread exists.
    unsafe {
        mtdiff_engine::use_more_software_rasterizer_threads();
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A write past a file-size limit (`ulimit -f`) raises SIGXFSZ, which kills the process without
/// a word; ignored, the write fails with EFBIG instead and the error says what happened.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The `[default: …]` in each `train` flag's help is the value `TrainConfig::default()` has
    /// (the flags are `Option`s, so clap cannot print the defaults itself).
    #[test]
    fn train_help_states_the_real_defaults() {
        let defaults = toml::Value::try_from(TrainConfig::default()).expect("serializable");
        let table = defaults.as_table().expect("a table");
        let mut cmd = Cli::command();
        let train = cmd.find_subcommand_mut("train").expect("train subcommand");
        let mut checked = 0;
        for arg in train.get_arguments() {
            let key = arg.get_id().as_str();
            let Some(value) = table.get(key) else {
                continue;
            };
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let Some(stated) = help
                .split("[default: ")
                .nth(1)
                .and_then(|r| r.split(']').next())
            else {
                continue;
            };
            let real = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(a) if a.is_empty() => "none".to_string(),
                toml::Value::Array(a) => a
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let same = match (stated.parse::<f64>(), real.parse::<f64>()) {
                (Ok(a), Ok(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                _ => stated == real,
            };
            assert!(same, "--{key}: help says {stated}, the default is {real}");
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} flags checked");
    }
}
