//! The definitions `mtdiff repro` runs: budgets and experiments as TOML data
//! (`trainer/experiments/*.toml`, built into the binary; `--experiments DIR` reads others).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::TrainConfig;
use crate::error::{Error, Result};

/// How long every run trains and how it is evaluated.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Optimizer steps of every run (a multiple of 4: the curves evaluate quarters).
    pub steps: u64,
    /// Batch size.
    pub batch: usize,
    /// One run per seed.
    pub seeds: Vec<u64>,
    /// Generated samples per metric.
    pub eval_samples: usize,
    /// Training steps of the evaluation classifier.
    pub eval_classifier_steps: usize,
    /// Sampling steps of the evaluation.
    pub sample_steps: usize,
}

/// One trained configuration of an experiment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDef {
    /// Its name (a plain folder name; runs of the same name in two experiments are one run).
    pub name: String,
    /// One line on what it is.
    pub about: String,
    /// Training settings over `mtdiff train`'s defaults (the keys of a run.toml).
    pub config: toml::Table,
}

/// A metric evaluated on earlier checkpoints too.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// Fractions of the budget (besides 1): 0.25 and 0.5 evaluate steps/4 and steps/2.
    pub fractions: Vec<f64>,
    /// The metric, reported as "METRIC @ 25%" and so on.
    pub metric: String,
    /// The runs it is measured on.
    pub runs: Vec<String>,
}

/// A table of the report.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    /// Its heading.
    pub title: String,
    /// Its metrics.
    pub metrics: Vec<String>,
    /// Its runs (default: all the experiment's).
    #[serde(default)]
    pub runs: Vec<String>,
    /// "runs" (a row per run, the default) or "metrics" (a row per metric).
    #[serde(default = "rows_default")]
    pub rows: String,
}

fn rows_default() -> String {
    "runs".to_string()
}

/// A claim of the paper, tested on one metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claim in words.
    pub text: String,
    /// The metric of `ours`.
    pub metric: String,
    /// The run that stands for MT-Diffusion.
    pub ours: String,
    /// The baseline run (its `baseline_metric`, default `metric`), or
    pub baseline: Option<String>,
    /// … the baseline run's metric when it differs from `metric`, or
    pub baseline_metric: Option<String>,
    /// … a fixed value (chance, a threshold).
    pub baseline_value: Option<f64>,
    /// "lower" or "higher" is better.
    pub better: String,
    /// "better": ours must beat the baseline by more than the margin; "no-worse": ours may
    /// trail it by at most the margin.
    pub test: String,
    /// The smallest difference that counts (with several seeds, at least the sum of the two
    /// standard deviations).
    pub margin: f64,
}

/// One experiment: a setting of the paper, its runs, tables and claims.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Its name (`--only NAME`).
    pub name: String,
    /// Its heading.
    pub title: String,
    /// What the paper reports.
    pub paper: String,
    /// "mnist" and/or "fashion".
    pub datasets: Vec<String>,
    /// The runs.
    #[serde(rename = "run")]
    pub runs: Vec<RunDef>,
    /// Metrics on earlier checkpoints.
    pub curve: Option<Curve>,
    /// The report's tables.
    #[serde(rename = "table", default)]
    pub tables: Vec<TableDef>,
    /// The claims tested.
    #[serde(rename = "claim", default)]
    pub claims: Vec<Claim>,
}

/// The built-in definitions: (file name, text).
const BUILT_IN: [(&str, &str); 5] = [
    (
        "budgets.toml",
        include_str!("../../experiments/budgets.toml"),
    ),
    (
        "image-label.toml",
        include_str!("../../experiments/image-label.toml"),
    ),
    (
        "masked-image.toml",
        include_str!("../../experiments/masked-image.toml"),
    ),
    (
        "transition.toml",
        include_str!("../../experiments/transition.toml"),
    ),
    (
        "image-representation.toml",
        include_str!("../../experiments/image-representation.toml"),
    ),
];

/// Every budget and experiment.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Budgets by name.
    pub budgets: BTreeMap<String, Budget>,
    /// Experiments in the order of their files' names.
    pub experiments: Vec<Experiment>,
}

impl Plan {
    /// The built-in definitions (`dir` None) or those in `dir` (`budgets.toml` and one
    /// `*.toml` per experiment).
    pub fn load(dir: Option<&Path>) -> Result<Plan> {
        let files: Vec<(PathBuf, String)> = match dir {
            None => BUILT_IN
                .iter()
                .map(|(n, t)| (PathBuf::from("trainer/experiments").join(n), t.to_string()))
                .collect(),
            Some(dir) => {
                let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|e| Error::io(dir, e))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                paths.sort();
                paths
                    .into_iter()
                    .map(|p| {
                        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                        Ok((p, text))
                    })
                    .collect::<Result<_>>()?
            }
        };
        let mut budgets = None;
        let mut experiments: Vec<Experiment> = Vec::new();
        let mut sorted = files;
        sorted.sort_by_key(|(p, _)| experiment_order(p));
        for (path, text) in sorted {
            let bad = |e: toml::de::Error| {
                Error::Usage(format!("{}: {e}(see trainer/experiments/)", path.display()))
            };
            if path.file_name().is_some_and(|n| n == "budgets.toml") {
                budgets = Some(toml::from_str(&text).map_err(bad)?);
            } else {
                experiments.push(toml::from_str(&text).map_err(bad)?);
            }
        }
        let budgets = budgets.ok_or_else(|| {
            Error::Usage("the experiment definitions have no budgets.toml".to_string())
        })?;
        let plan = Plan {
            budgets,
            experiments,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// The budget called `name`.
    pub fn budget(&self, name: &str) -> Result<&Budget> {
        self.budgets.get(name).ok_or_else(|| {
            Error::Usage(format!(
                "--budget {name:?}: use one of {}",
                self.budgets.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Checks names, references and settings, so that a campaign does not fail hours in.
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Usage(m));
        for (name, b) in &self.budgets {
            if b.steps == 0 || !b.steps.is_multiple_of(4) || b.seeds.is_empty() || b.batch == 0 {
                return bad(format!(
                    "budget {name}: steps must be a positive multiple of 4, batch ≥ 1, seeds not \
                     empty"
                ));
            }
        }
        let mut configs: BTreeMap<&str, &toml::Table> = BTreeMap::new();
        for e in &self.experiments {
            let names: Vec<&str> = e.runs.iter().map(|r| r.name.as_str()).collect();
            let known = |r: &str, what: &str| {
                if names.contains(&r) {
                    Ok(())
                } else {
                    bad(format!(
                        "experiment {}: {what} names run {r:?}, which it does not define",
                        e.name
                    ))
                }
            };
            for d in &e.datasets {
                if !DATASETS.contains(&d.as_str()) {
                    return bad(format!(
                        "experiment {}: dataset {d:?}: use {}",
                        e.name,
                        DATASETS.join(" or ")
                    ));
                }
            }
            for r in &e.runs {
                if let Some(other) = configs.insert(&r.name, &r.config) {
                    if other != &r.config {
                        return bad(format!(
                            "run {:?} is defined twice with different settings",
                            r.name
                        ));
                    }
                }
                let budget = self.budgets.values().next().expect("validated: one budget");
                let cfg = run_config(r, budget, "mnist:.", Path::new("."), 0)?;
                cfg.validate()?;
            }
            if let Some(c) = &e.curve {
                for r in &c.runs {
                    known(r, "its curve")?;
                }
                if c.fractions.iter().any(|f| !(0.0 < *f && *f < 1.0)) {
                    return bad(format!(
                        "experiment {}: curve fractions must be in (0, 1)",
                        e.name
                    ));
                }
            }
            for t in &e.tables {
                for r in &t.runs {
                    known(r, "a table")?;
                }
                if t.rows != "runs" && t.rows != "metrics" {
                    return bad(format!(
                        "experiment {}: table rows {:?}: use runs or metrics",
                        e.name, t.rows
                    ));
                }
            }
            for c in &e.claims {
                known(&c.ours, "a claim")?;
                if let Some(b) = &c.baseline {
                    known(b, "a claim")?;
                } else if c.baseline_value.is_none() {
                    return bad(format!(
                        "experiment {}: claim {:?} needs a baseline or a baseline_value",
                        e.name, c.text
                    ));
                }
                if !matches!(c.better.as_str(), "lower" | "higher")
                    || !matches!(c.test.as_str(), "better" | "no-worse")
                {
                    return bad(format!(
                        "experiment {}: claim {:?}: better is lower or higher, test is better or \
                         no-worse",
                        e.name, c.text
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The datasets an experiment may name.
pub const DATASETS: [&str; 2] = ["mnist", "fashion"];

/// Budgets first, then the four settings in the paper's order, then any other file by name.
fn experiment_order(path: &Path) -> (usize, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let rank = [
        "budgets.toml",
        "image-label.toml",
        "masked-image.toml",
        "transition.toml",
        "image-representation.toml",
    ]
    .iter()
    .position(|n| *n == name)
    .unwrap_or(usize::MAX);
    (rank, name)
}

/// The training configuration of `run` at `budget` on `data` (a `--data` value), seed `seed`,
/// in `out_dir/<run>-s<seed>/`: the run's settings over the defaults, then the budget's. The
/// run checkpoints every quarter and keeps them all (the curves evaluate them); the final
/// evaluation is `repro`'s, not `train`'s.
pub fn run_config(
    run: &RunDef,
    budget: &Budget,
    data: &str,
    out_dir: &Path,
    seed: u64,
) -> Result<TrainConfig> {
    let defaults = toml::Table::try_from(TrainConfig::default())
        .map_err(|e| Error::Usage(format!("run {}: {e}", run.name)))?;
    let mut table = defaults;
    for (k, v) in &run.config {
        table.insert(k.clone(), v.clone());
    }
    let mut cfg: TrainConfig = table
        .try_into()
        .map_err(|e| Error::Usage(format!("run {}: {e}(the keys of a run.toml)", run.name)))?;
    let quarter = budget.steps / 4;
    cfg.name = format!("{}-s{seed}", run.name);
    cfg.out_dir = out_dir.to_path_buf();
    cfg.data = data.to_string();
    cfg.steps = budget.steps;
    cfg.batch = budget.batch;
    cfg.seed = seed;
    cfg.sample_steps = budget.sample_steps.min(cfg.timesteps);
    cfg.eval = false;
    cfg.eval_samples = budget.eval_samples;
    cfg.eval_classifier_steps = budget.eval_classifier_steps;
    cfg.ckpt_every = quarter;
    cfg.log_every = (1..=25.min(quarter))
        .rev()
        .find(|d| quarter.is_multiple_of(*d))
        .unwrap_or(1);
    cfg.keep = 4;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_plan_loads_and_its_runs_checkpoint_every_quarter() {
        let plan = Plan::load(None).unwrap();
        assert_eq!(plan.experiments.len(), 4);
        let small = plan.budget("small").unwrap();
        let run = &plan.experiments[0].runs[0];
        let cfg = run_config(run, small, "mnist:x", Path::new("out"), 2).unwrap();
        assert_eq!((cfg.ckpt_every, cfg.log_every, cfg.keep), (120, 24, 4));
        assert_eq!(cfg.run_dir(), Path::new("out/MT-Diffusion-E-s2"));
        let tiny = plan.budget("tiny").unwrap();
        let cfg = run_config(run, tiny, "mnist:x", Path::new("out"), 0).unwrap();
        assert_eq!((cfg.ckpt_every, cfg.log_every), (2, 2));
        assert!(plan
            .budget("huge")
            .unwrap_err()
            .to_string()
            .contains("tiny"));
    }

    #[test]
    fn bad_definitions_are_refused_with_the_file_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("mtdiff-plan-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("budgets.toml"), BUILT_IN[0].1).unwrap();
        let exp = BUILT_IN[1]
            .1
            .replace("ours = \"MT-Diffusion-E\"", "ours = \"E\"");
        std::fs::write(dir.join("image-label.toml"), exp).unwrap();
        let e = Plan::load(Some(&dir)).unwrap_err().to_string();
        assert!(e.contains("\"E\""), "{e}");
        let exp = BUILT_IN[1]
            .1
            .replace("label_embedding = false", "label_embeding = false");
        std::fs::write(dir.join("image-label.toml"), exp).unwrap();
        let e = Plan::load(Some(&dir)).unwrap_err().to_string();
        assert!(e.contains("label_embeding"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
