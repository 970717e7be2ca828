//! `mtdiff repro`: the paper's claims at MNIST scale. Trains every run of the experiment
//! definitions ([`plan`]) that is missing or unfinished (resuming from its newest checkpoint),
//! evaluates each once (cached beside it), and writes the report ([`markdown`]): tables,
//! claims with verdicts, plots and the raw JSON.

pub mod markdown;
pub mod plan;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::eval::{self, EvalArgs, EvalReport};
use crate::fsutil::write_atomic;
use plan::{Budget, Experiment, Plan, RunDef};

/// Options of `mtdiff repro`.
#[derive(Clone, Debug)]
pub struct ReproArgs {
    /// The budget's name (tiny, small, full).
    pub budget: String,
    /// Only these experiments (empty: all).
    pub only: Vec<String>,
    /// Other experiment definitions (None: the built-in ones).
    pub experiments: Option<PathBuf>,
    /// Where runs are trained: `<runs>/<budget>/<dataset>/<run>-s<seed>/`.
    pub runs: PathBuf,
    /// The report: a Markdown file; its figures and JSON go to a folder of the same stem.
    pub report: PathBuf,
    /// MNIST's IDX files.
    pub mnist: PathBuf,
    /// Fashion-MNIST's IDX files.
    pub fashion: PathBuf,
}

/// One evaluated run: its identity and its metrics (curve points as "METRIC @ 25%").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// The experiment that asked for it first.
    pub experiment: String,
    /// "mnist" or "fashion".
    pub dataset: String,
    /// The run's name.
    pub run: String,
    /// Its seed.
    pub seed: u64,
    /// Its final evaluation, curve points added.
    pub report: EvalReport,
}

/// What `repro` did.
pub struct ReproSummary {
    /// Runs trained (or continued) now.
    pub trained: usize,
    /// Evaluations computed now (the others came from the cache).
    pub evaluated: usize,
    /// The report written.
    pub report: PathBuf,
}

/// Runs the campaign and writes the report.
pub fn run(args: &ReproArgs) -> Result<ReproSummary> {
    let plan = Plan::load(args.experiments.as_deref())?;
    let budget = plan.budget(&args.budget)?.clone();
    let experiments: Vec<&Experiment> = plan
        .experiments
        .iter()
        .filter(|e| args.only.is_empty() || args.only.contains(&e.name))
        .collect();
    if let Some(bad) = args
        .only
        .iter()
        .find(|o| !plan.experiments.iter().any(|e| &e.name == *o))
    {
        return Err(Error::Usage(format!(
            "--only {bad:?}: the experiments are {}",
            plan.experiments
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let assets = markdown::assets_dir(&args.report);
    std::fs::create_dir_all(&assets).map_err(|e| Error::io(&assets, e))?;
    let t0 = Instant::now();
    let mut done = Done::default();
    let mut results: Vec<RunResult> = Vec::new();
    for e in &experiments {
        for dataset in &e.datasets {
            let data = data_flag(args, dataset)?;
            let out_dir = args.runs.join(&args.budget).join(dataset);
            for r in &e.runs {
                for &seed in &budget.seeds {
                    // A run shared by two experiments trains once; the second's evaluations
                    // come from the cache, and its curve points are added.
                    let curve = e.curve.as_ref().filter(|c| c.runs.contains(&r.name));
                    let report = run_one(
                        r, &budget, &data, &out_dir, seed, curve, &assets, dataset, &mut done,
                    )?;
                    let same = |x: &&mut RunResult| {
                        &x.dataset == dataset && x.run == r.name && x.seed == seed
                    };
                    match results.iter_mut().find(same) {
                        Some(known) => {
                            for m in report.metrics {
                                if known.report.value(&m.name).is_none() {
                                    known.report.metrics.push(m);
                                }
                            }
                        }
                        None => results.push(RunResult {
                            experiment: e.name.clone(),
                            dataset: dataset.clone(),
                            run: r.name.clone(),
                            seed,
                            report,
                        }),
                    }
                }
            }
        }
    }
    let json = assets.join(format!("results-{}.json", args.budget));
    write_atomic(
        &json,
        serde_json::to_string_pretty(&results)
            .expect("json")
            .as_bytes(),
    )?;
    let doc = markdown::Report {
        args,
        budget: &budget,
        experiments: &experiments,
        results: &results,
        seconds: t0.elapsed().as_secs_f64(),
        trained: done.trained,
    };
    doc.write()?;
    Ok(ReproSummary {
        trained: done.trained,
        evaluated: done.evaluated,
        report: args.report.clone(),
    })
}

/// Counts of work done now rather than found done.
#[derive(Default)]
struct Done {
    trained: usize,
    evaluated: usize,
}

/// The `--data` value of `dataset`, after checking its files are there.
fn data_flag(args: &ReproArgs, dataset: &str) -> Result<String> {
    let (dir, flag) = match dataset {
        "mnist" => (&args.mnist, "--mnist"),
        _ => (&args.fashion, "--fashion"),
    };
    if !dir.join("train-images-idx3-ubyte.gz").exists()
        && !dir.join("train-images-idx3-ubyte").exists()
    {
        return Err(Error::Usage(format!(
            "{dataset}: no train-images-idx3-ubyte(.gz) in {}: run from the repository root \
             (the vendored subsets in tests/data/) or pass {flag} DIR with the IDX files",
            dir.display()
        )));
    }
    Ok(format!("mnist:{}", dir.display()))
}

/// Trains `run` (or continues it) unless its last checkpoint is there, then evaluates it and
/// its curve points (each evaluation cached as JSON in the run's folder).
#[allow(clippy::too_many_arguments)]
fn run_one(
    run: &RunDef,
    budget: &Budget,
    data: &str,
    out_dir: &Path,
    seed: u64,
    curve: Option<&plan::Curve>,
    assets: &Path,
    dataset: &str,
    done: &mut Done,
) -> Result<EvalReport> {
    let cfg = plan::run_config(run, budget, data, out_dir, seed)?;
    let dir = cfg.run_dir();
    let have = checkpoint::list(&dir);
    let last = have.last().map(|(s, _)| *s).unwrap_or(0);
    if last < budget.steps {
        eprintln!(
            "repro: training {} on {dataset}, seed {seed} ({} of {} steps done)",
            run.name, last, budget.steps
        );
        crate::train::train(&cfg, !have.is_empty(), false)?;
        done.trained += 1;
    }
    let figures = assets.join(format!("{dataset}-{}", run.name));
    let mut report = evaluate(&cfg, &dir, budget.steps, false, Some(&figures), done)?;
    if let Some(c) = curve {
        for f in &c.fractions {
            let step = (f * budget.steps as f64).round() as u64;
            let point = evaluate(&cfg, &dir, step, true, None, done)?;
            let value = point.value(&c.metric).ok_or_else(|| {
                Error::Usage(format!(
                    "the curve's metric {:?} was not measured",
                    c.metric
                ))
            })?;
            report.metrics.push(eval::Metric {
                name: markdown::at_fraction(&c.metric, *f),
                value,
                note: format!("the checkpoint of step {step}"),
            });
        }
    }
    Ok(report)
}

/// The evaluation of the run's checkpoint of `step`, from `repro-eval-<step>.json` in the run
/// folder or computed now (and cached there).
fn evaluate(
    cfg: &crate::config::TrainConfig,
    dir: &Path,
    step: u64,
    fid_only: bool,
    figures: Option<&Path>,
    done: &mut Done,
) -> Result<EvalReport> {
    let cache = dir.join(format!(
        "repro-eval-{step:08}{}.json",
        if fid_only { "-fid" } else { "" }
    ));
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Ok(report) = serde_json::from_str(&text) {
            return Ok(report);
        }
    }
    let ckpt = checkpoint::path_for(dir, step);
    if !ckpt.exists() {
        return Err(Error::Checkpoint {
            path: ckpt,
            message: "is missing: the run was trained with other settings; delete its folder \
                      and run repro again"
                .to_string(),
        });
    }
    let mut args = EvalArgs::new(ckpt);
    args.n = cfg.eval_samples;
    args.steps = cfg.sample_steps;
    args.seed = cfg.seed;
    args.out = Some(cache);
    args.classifier_steps = cfg.eval_classifier_steps;
    args.fid_only = fid_only;
    args.figures = figures.map(Path::to_path_buf);
    let report = eval::run(&args)?;
    done.evaluated += 1;
    Ok(report)
}
