//! Helpers shared by the tests that run the `mtdiff` command line: the flags of a tiny training
//! run, flag editing, and the losses a run logged.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;

/// `train` flags of a tiny image+label run named `name` under `out`: 8×8 glyphs, a two-level
/// U-Net of 8 and 16 channels, 50 timesteps, batch 4, `steps` steps, a log line every 2 steps, a
/// checkpoint every 4, 4 sampling steps. Tests add what they need (`--eval`, `--warmup`, …).
pub fn tiny_run(out: &Path, name: &str, steps: u64) -> Vec<String> {
    let steps = steps.to_string();
    [
        "train",
        "--out-dir",
        out.to_str().unwrap(),
        "--name",
        name,
        "--data",
        "glyphs:8",
        "--unet-channels",
        "8,16",
        "--timesteps",
        "50",
        "--batch",
        "4",
        "--steps",
        &steps,
        "--log-every",
        "2",
        "--ckpt-every",
        "4",
        "--sample-steps",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `args` with `flag` set to `value` (replaced where present, appended otherwise).
pub fn set(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    match args.iter().position(|a| a == flag) {
        Some(i) => args[i + 1] = value.to_string(),
        None => args.extend([flag.to_string(), value.to_string()]),
    }
    args
}

/// Owned strings.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// (step, loss, ε-loss) of every line of a run's `metrics.jsonl`.
pub fn losses(run: &Path) -> Vec<(u64, f64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
                v["eps"].as_f64().unwrap(),
            )
        })
        .collect()
}
