//! The report of `mtdiff repro`: Markdown tables (mean ± sd over seeds), a verdict per claim,
//! the curve plots (PNG) and links to the restoration figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

use super::plan::{Budget, Claim, Experiment, TableDef};
use super::{ReproArgs, RunResult};

/// The folder of the report's figures and JSON: `docs/reproduction.md` → `docs/reproduction/`.
pub fn assets_dir(report: &Path) -> PathBuf {
    report.with_extension("")
}

/// The name of a curve point: "METRIC @ 25%".
pub fn at_fraction(metric: &str, fraction: f64) -> String {
    format!("{metric} @ {}%", (fraction * 100.0).round())
}

/// Human names of the datasets.
fn dataset_title(d: &str) -> &str {
    match d {
        "mnist" => "MNIST",
        "fashion" => "Fashion-MNIST",
        other => other,
    }
}

/// Everything the report is written from.
pub struct Report<'a> {
    /// The command's options.
    pub args: &'a ReproArgs,
    /// The budget.
    pub budget: &'a Budget,
    /// The experiments run.
    pub experiments: &'a [&'a Experiment],
    /// Every run's evaluation.
    pub results: &'a [RunResult],
    /// Seconds this invocation took.
    pub seconds: f64,
    /// Runs trained (or continued) by this invocation.
    pub trained: usize,
}

/// A claim's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Ours passes the test by more than the margin.
    Holds,
    /// Ours fails it by more than the margin.
    DoesNotHold,
    /// The difference is within the margin.
    Inconclusive,
    /// A value is missing.
    NotMeasured,
}

impl Verdict {
    fn text(&self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// Mean and sample standard deviation (0 for one value) of the finite-or-infinite values.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 || !mean.is_finite() {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// A value with the digits its size needs.
fn num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "−∞" }.to_string();
    }
    if v.is_nan() {
        return "NaN".to_string();
    }
    match v.abs() {
        a if a >= 100.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// "mean ± sd" over seeds, or the one value.
fn cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "—".to_string();
    }
    let (m, sd) = mean_sd(v);
    if v.len() < 2 {
        num(m)
    } else {
        format!("{} ± {}", num(m), num(sd))
    }
}

/// The test of a claim: `ours` against `base` (seed values), higher or lower better.
pub fn verdict(claim: &Claim, ours: &[f64], base: &[f64]) -> (Verdict, String) {
    if ours.is_empty() || base.is_empty() {
        return (Verdict::NotMeasured, String::new());
    }
    let (mo, so) = mean_sd(ours);
    let (mb, sb) = mean_sd(base);
    let gain = if claim.better == "higher" {
        mo - mb
    } else {
        mb - mo
    };
    let u = claim.margin.max(so + sb);
    let v = if gain.is_nan() {
        Verdict::Inconclusive
    } else if claim.test == "no-worse" {
        if gain >= -u {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        }
    } else if gain > u {
        Verdict::Holds
    } else if gain < -u {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    };
    let seeds = ours.len().min(base.len());
    let detail = format!(
        "{} vs {}; {} is better; margin {} ({} seed{})",
        num(mo),
        num(mb),
        claim.better,
        num(u),
        seeds,
        if seeds == 1 { "" } else { "s" }
    );
    (v, detail)
}

impl Report<'_> {
    /// The values of `metric` of `run` on `dataset`, one per seed.
    fn values(&self, dataset: &str, run: &str, metric: &str) -> Vec<f64> {
        self.results
            .iter()
            .filter(|r| r.dataset == dataset && r.run == run)
            .filter_map(|r| r.report.value(metric))
            .collect()
    }

    /// Ours' and the baseline's values of a claim on `dataset`.
    fn claim_values(&self, dataset: &str, c: &Claim) -> (Vec<f64>, Vec<f64>) {
        let ours = self.values(dataset, &c.ours, &c.metric);
        let base = match (&c.baseline, c.baseline_value) {
            (Some(b), _) => self.values(
                dataset,
                b,
                c.baseline_metric.as_deref().unwrap_or(&c.metric),
            ),
            (None, Some(v)) => vec![v],
            (None, None) => Vec::new(),
        };
        (ours, base)
    }

    /// Writes the Markdown file and the curve plots.
    pub fn write(&self) -> Result<()> {
        let assets = assets_dir(&self.args.report);
        let mut s = String::new();
        self.header(&mut s);
        self.summary(&mut s);
        for (k, e) in self.experiments.iter().enumerate() {
            writeln!(s, "\n## {}. {}\n", k + 1, e.title).ok();
            writeln!(s, "{}\n", e.paper.trim()).ok();
            writeln!(s, "Runs:").ok();
            for r in &e.runs {
                writeln!(s, "- **{}**: {}", r.name, r.about).ok();
            }
            for d in &e.datasets {
                writeln!(s, "\n### {}\n", dataset_title(d)).ok();
                let floor = self.floor(d, e);
                if !floor.is_empty() {
                    writeln!(
                        s,
                        "FID-lite floor (real training vs test images at the same N): {}.\n",
                        cell(&floor)
                    )
                    .ok();
                }
                for t in &e.tables {
                    self.table(&mut s, d, e, t);
                }
                if let Some(c) = &e.curve {
                    let png = self.curve_plot(d, e, c)?;
                    let name = format!("{d}-{}-curve.png", e.name);
                    write_atomic(&assets.join(&name), &png)?;
                    writeln!(
                        s,
                        "![{} during training on {}]({}/{name})\n",
                        c.metric,
                        dataset_title(d),
                        self.assets_link()
                    )
                    .ok();
                }
                for r in &e.runs {
                    let fig = format!("{d}-{}/restoration_50.png", r.name);
                    if assets.join(&fig).exists() {
                        writeln!(
                            s,
                            "Restoration at 50 % masked, {} (rows: masked input, SDEdit, {}, \
                             truth):\n\n![restoration]({}/{fig})\n",
                            dataset_title(d),
                            r.name,
                            self.assets_link()
                        )
                        .ok();
                    }
                }
                writeln!(s, "Claims:\n").ok();
                for c in &e.claims {
                    let (ours, base) = self.claim_values(d, c);
                    let (v, detail) = verdict(c, &ours, &base);
                    writeln!(s, "- {}: **{}** ({detail})", c.text, v.text()).ok();
                }
            }
        }
        write_atomic(&self.args.report, s.as_bytes())
    }

    /// The link from the report to its assets folder.
    fn assets_link(&self) -> String {
        assets_dir(&self.args.report)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    }

    fn header(&self, s: &mut String) {
        let b = self.budget;
        let only = if self.args.only.is_empty() {
            String::new()
        } else {
            format!(" --only {}", self.args.only.join(","))
        };
        writeln!(
            s,
            "# The paper's claims at MNIST scale (`{}` budget)\n\n\
             Written by `mtdiff repro --budget {}{only}`: rerun the command rather than edit \
             this file. The raw values are in `{}/results-{}.json`.\n",
            self.args.budget,
            self.args.budget,
            self.assets_link(),
            self.args.budget
        )
        .ok();
        writeln!(
            s,
            "- **Budget**: every run trains {} steps × batch {} ({} images seen) per seed; \
             seeds {:?}. Every baseline has the same budget.\n\
             - **Evaluation**: N = {} generated samples per metric, {} sampling steps (DDPM, \
             respaced); the judge is a small CNN trained {} steps on the training images \
             (`mtdiff eval`).\n\
             - **Data**: MNIST from `{}`, Fashion-MNIST from `{}` (IDX files).\n\
             - **FID-lite** is the Fréchet distance between the judge's {}-d features of \
             generated and test images. It is biased upwards at small N, so each dataset states \
             its floor: real training images against the test images at the same N.\n\
             - **Values** are the mean ± standard deviation over seeds (one seed: the value). A \
             claim holds when MT-Diffusion beats its baseline by more than the margin (at least \
             the two standard deviations added), does not hold when it trails by more, and is \
             inconclusive in between; a \"no worse\" claim holds unless it trails by more than \
             the margin.\n\
             - This invocation trained {} runs and took {:.1} min.",
            b.steps,
            b.batch,
            b.steps as usize * b.batch,
            b.seeds,
            b.eval_samples,
            b.sample_steps,
            b.eval_classifier_steps,
            self.args.mnist.display(),
            self.args.fashion.display(),
            crate::classifier::FEATURES,
            self.trained,
            self.seconds / 60.0
        )
        .ok();
    }

    /// One line per claim and dataset.
    fn summary(&self, s: &mut String) {
        let datasets: Vec<&str> = super::plan::DATASETS
            .iter()
            .copied()
            .filter(|d| {
                self.experiments
                    .iter()
                    .any(|e| e.datasets.iter().any(|x| x == d))
            })
            .collect();
        writeln!(s, "\n## Summary\n").ok();
        let heads: Vec<&str> = datasets.iter().map(|d| dataset_title(d)).collect();
        writeln!(s, "| setting | claim | {} |", heads.join(" | ")).ok();
        writeln!(s, "|---|---|{}", "---|".repeat(datasets.len())).ok();
        for e in self.experiments {
            for c in &e.claims {
                let cells: Vec<String> = datasets
                    .iter()
                    .map(|d| {
                        if !e.datasets.iter().any(|x| x == d) {
                            return "—".to_string();
                        }
                        let (ours, base) = self.claim_values(d, c);
                        verdict(c, &ours, &base).0.text().to_string()
                    })
                    .collect();
                writeln!(s, "| {} | {} | {} |", e.name, c.text, cells.join(" | ")).ok();
            }
        }
    }

    /// The FID-lite floor values of the experiment's first run on `dataset`.
    fn floor(&self, dataset: &str, e: &Experiment) -> Vec<f64> {
        e.runs
            .first()
            .map(|r| self.values(dataset, &r.name, "FID-lite floor (real vs real)"))
            .unwrap_or_default()
    }

    fn table(&self, s: &mut String, dataset: &str, e: &Experiment, t: &TableDef) {
        let runs: Vec<&str> = if t.runs.is_empty() {
            e.runs.iter().map(|r| r.name.as_str()).collect()
        } else {
            t.runs.iter().map(String::as_str).collect()
        };
        writeln!(s, "{}:\n", t.title).ok();
        if t.rows == "metrics" {
            writeln!(s, "| metric | {} |", runs.join(" | ")).ok();
            writeln!(s, "|---|{}", "---|".repeat(runs.len())).ok();
            for m in &t.metrics {
                let cells: Vec<String> = runs
                    .iter()
                    .map(|r| cell(&self.values(dataset, r, m)))
                    .collect();
                writeln!(s, "| {m} | {} |", cells.join(" | ")).ok();
            }
        } else {
            writeln!(s, "| run | {} |", t.metrics.join(" | ")).ok();
            writeln!(s, "|---|{}", "---|".repeat(t.metrics.len())).ok();
            for r in &runs {
                let cells: Vec<String> = t
                    .metrics
                    .iter()
                    .map(|m| cell(&self.values(dataset, r, m)))
                    .collect();
                writeln!(s, "| {r} | {} |", cells.join(" | ")).ok();
            }
        }
        writeln!(s).ok();
    }

    /// The curve's metric against the fraction of the budget, a line per run (seed means).
    fn curve_plot(&self, dataset: &str, e: &Experiment, c: &super::plan::Curve) -> Result<Vec<u8>> {
        let mut fractions = c.fractions.clone();
        fractions.push(1.0);
        let series: Vec<(String, Vec<(f64, f64)>)> = c
            .runs
            .iter()
            .map(|r| {
                let points = fractions
                    .iter()
                    .filter_map(|&f| {
                        let name = if f == 1.0 {
                            c.metric.clone()
                        } else {
                            at_fraction(&c.metric, f)
                        };
                        let v = self.values(dataset, r, &name);
                        (!v.is_empty()).then(|| (f * 100.0, mean_sd(&v).0))
                    })
                    .collect();
                (r.clone(), points)
            })
            .collect();
        crate::report::line_plot_png(
            &format!("{} — {}", e.title, dataset_title(dataset)),
            "% of the training budget",
            &c.metric,
            &series,
        )
        .map_err(|e| Error::Usage(format!("the curve plot: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(better: &str, test: &str, margin: f64) -> Claim {
        Claim {
            text: String::new(),
            metric: String::new(),
            ours: String::new(),
            baseline: None,
            baseline_metric: None,
            baseline_value: Some(0.0),
            better: better.to_string(),
            test: test.to_string(),
            margin,
        }
    }

    #[test]
    fn verdicts_follow_direction_margin_and_spread() {
        let lower = claim("lower", "better", 3.0);
        assert_eq!(verdict(&lower, &[30.0], &[35.0]).0, Verdict::Holds);
        assert_eq!(verdict(&lower, &[33.0], &[35.0]).0, Verdict::Inconclusive);
        assert_eq!(verdict(&lower, &[40.0], &[35.0]).0, Verdict::DoesNotHold);
        // Two seeds each with sd ≈ 2.8: the margin becomes their sum, 5.7.
        assert_eq!(
            verdict(&lower, &[28.0, 32.0], &[33.0, 37.0]).0,
            Verdict::Inconclusive
        );
        let higher = claim("higher", "no-worse", 0.05);
        assert_eq!(verdict(&higher, &[0.86], &[0.9]).0, Verdict::Holds);
        assert_eq!(verdict(&higher, &[0.8], &[0.9]).0, Verdict::DoesNotHold);
        assert_eq!(verdict(&higher, &[], &[0.9]).0, Verdict::NotMeasured);
        assert_eq!(cell(&[1.0, 3.0]), "2.00 ± 1.41");
        assert_eq!(cell(&[f64::INFINITY]), "∞");
    }
}
