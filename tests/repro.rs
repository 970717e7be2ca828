//! `mtdiff repro` end to end at the `tiny` budget: every experiment on both vendored datasets
//! trains, evaluates and reaches the report (tables, a verdict per claim, plots, JSON); an
//! interrupted campaign continues where it stopped; bad options are refused with the way out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtdiff-cli"))
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("repro-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `mtdiff repro --budget tiny` with the vendored data, runs and report under `dir`; a flag in
/// `more` replaces its default.
fn repro(dir: &Path, more: &[&str]) -> Output {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let defaults = [
        ("--budget", "tiny".into()),
        ("--runs", dir.join("runs")),
        ("--report", dir.join("reproduction.md")),
        ("--mnist", data.join("mnist")),
        ("--fashion", data.join("fashion-mnist")),
    ];
    let mut cmd = bin();
    cmd.arg("repro");
    for (flag, value) in defaults {
        if !more.contains(&flag) {
            cmd.arg(flag).arg(value);
        }
    }
    cmd.args(more).output().unwrap()
}

fn ok(dir: &Path, more: &[&str]) -> String {
    let out = repro(dir, more);
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "repro {more:?} failed:\n{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn every_setting_on_both_datasets_reaches_the_report_and_a_rerun_has_nothing_to_do() {
    let dir = scratch("all");
    let so = ok(&dir, &[]);
    // Eight runs per dataset: MT-Diffusion-E, -M, cond-DDPM and DDPM (both shared by two
    // settings), -U, -X, -T, -R.
    assert!(so.contains("trained 16 runs"), "{so}");
    let doc = std::fs::read_to_string(dir.join("reproduction.md")).unwrap();
    for heading in [
        "## 1. Image + label",
        "## 2. Masked-image training",
        "## 3. Image transition",
        "## 4. Image + representation",
        "### MNIST",
        "### Fashion-MNIST",
        "FID-lite floor",
        "8 steps × batch 8",
    ] {
        assert!(
            doc.contains(heading),
            "no {heading:?} in the report:\n{doc}"
        );
    }
    // Every claim has a verdict on both datasets, and every value was measured.
    let claims: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("- ") && l.contains(": **"))
        .collect();
    assert_eq!(claims.len(), 2 * 17, "{doc}");
    assert!(!doc.contains("not measured"), "{doc}");
    let summary = doc.split("## 1.").next().unwrap();
    assert_eq!(summary.matches("\n| ").count(), 1 + 17, "{summary}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reproduction/results-tiny.json")).unwrap(),
    )
    .unwrap();
    let results = json.as_array().unwrap();
    assert_eq!(results.len(), 16);
    // The DDPM run carries the masked-image curve's points although image-label asked first.
    let ddpm = results
        .iter()
        .find(|r| r["run"] == "DDPM" && r["dataset"] == "mnist")
        .unwrap();
    let names: Vec<&str> = ddpm["report"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"FID-lite (joint samples) @ 25%"),
        "{names:?}"
    );
    for d in ["mnist", "fashion"] {
        let (w, h) = png_size(&dir.join(format!("reproduction/{d}-masked-image-curve.png")));
        assert_eq!((w, h), (800, 500));
        let (w, h) = png_size(&dir.join(format!(
            "reproduction/{d}-MT-Diffusion-U/restoration_50.png"
        )));
        assert!(w > 8 * 28 && h > 4 * 28, "{w}×{h}");
    }
    // Everything is done: the rerun trains and evaluates nothing and writes the same report
    // but for its own running time.
    let so = ok(&dir, &[]);
    assert!(
        so.contains("trained 0 runs, evaluated 0 checkpoints"),
        "{so}"
    );
    let again = std::fs::read_to_string(dir.join("reproduction.md")).unwrap();
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("This invocation"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&again), strip(&doc));
}

#[test]
fn an_interrupted_campaign_continues_where_it_stopped() {
    let dir = scratch("resume");
    ok(&dir, &["--only", "transition"]);
    let run = dir.join("runs/tiny/mnist/MT-Diffusion-T-s0");
    let first = std::fs::read_to_string(run.join("repro-eval-00000008.json")).unwrap();
    // As if the campaign had stopped after the checkpoint of step 6: the last checkpoint and
    // the evaluation are gone.
    std::fs::remove_file(run.join("ckpt_00000008.safetensors")).unwrap();
    std::fs::remove_file(run.join("repro-eval-00000008.json")).unwrap();
    let so = ok(&dir, &["--only", "transition"]);
    assert!(
        so.contains("trained 1 runs, evaluated 1 checkpoints"),
        "{so}"
    );
    // Resuming reproduces the uninterrupted run, so its evaluation is the same.
    let second = std::fs::read_to_string(run.join("repro-eval-00000008.json")).unwrap();
    assert_eq!(first, second);
}

#[test]
fn bad_options_name_the_problem_and_the_way_out() {
    let dir = scratch("bad");
    let cases: [(&[&str], &str); 3] = [
        (&["--budget", "huge"], "full, small, tiny"),
        (&["--only", "nope"], "image-label, masked-image"),
        (&["--mnist", "/nonexistent"], "--mnist DIR"),
    ];
    for (args, want) in cases {
        let out = repro(&dir, args);
        let se = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(se.contains(want), "{args:?}: {se}");
    }
    // An experiment file with an unknown setting is refused before anything trains.
    let defs = dir.join("defs");
    std::fs::create_dir_all(&defs).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer/experiments");
    std::fs::copy(src.join("budgets.toml"), defs.join("budgets.toml")).unwrap();
    let text = std::fs::read_to_string(src.join("transition.toml")).unwrap();
    std::fs::write(
        defs.join("transition.toml"),
        text.replace("task = \"transition\"", "task = \"transition\", stepz = 3"),
    )
    .unwrap();
    let out = repro(&dir, &["--experiments", defs.to_str().unwrap()]);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && se.contains("stepz"), "{se}");
    assert!(!dir.join("runs").exists());
}
