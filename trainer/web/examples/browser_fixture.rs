//! Writes what the browser test (`tests/browser.mjs`) gives the page and what it expects back:
//! a checkpoint trained here, `test.json` with the sampling and training to run in the page,
//! and the native results of the same calls (the page's code run natively on this machine's
//! adapter, which `tests/same_as_cli.rs` shows equal to `mtdiff sample` and `mtdiff train`).
//!
//! `cargo run --release -p mtdiff-web --example browser_fixture -- DIR [tiny|main]`: `tiny` (the
//! default) an 8×8 model for the CI test, `main` the main job's model for speed figures.

use std::path::PathBuf;

use mtdiff::config::TrainConfig;
use mtdiff_web::{describe_adapter, open_device, LiveTraining, LoadedCheckpoint, SampleRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: browser_fixture DIR [tiny|main]")?,
    );
    let size = args.next().unwrap_or_else(|| "tiny".into());
    std::fs::create_dir_all(&dir)?;
    let base = TrainConfig {
        name: "browser-fixture".into(),
        out_dir: dir.join("runs"),
        sample_every: 0,
        eval: false,
        ..TrainConfig::default()
    };
    let (cfg, sample, train_steps) = match size.as_str() {
        "tiny" => (
            TrainConfig {
                data: "glyphs:8".into(),
                unet_channels: vec![8, 16],
                timesteps: 50,
                batch: 8,
                steps: 6,
                log_every: 6,
                ckpt_every: 6,
                sample_steps: 4,
                ..base
            },
            SampleRequest {
                n: 6,
                seed: 5,
                steps: 8,
                label: Some(3),
            },
            4,
        ),
        "main" => (
            TrainConfig {
                steps: 4,
                log_every: 4,
                ckpt_every: 4,
                ..base
            },
            SampleRequest {
                n: 16,
                seed: 5,
                steps: 10,
                label: Some(3),
            },
            4,
        ),
        other => return Err(format!("size {other:?}: tiny or main").into()),
    };
    let summary = mtdiff::train::train(&cfg, false, true)?;
    let bytes = std::fs::read(&summary.checkpoint)?;
    std::fs::write(dir.join("ckpt.safetensors"), &bytes)?;

    let dev = pollster::block_on(open_device())?;
    let ckpt = LoadedCheckpoint::load(&dev, &bytes, true)?;
    let t0 = std::time::Instant::now();
    let samples = dev.block_on(ckpt.sample(&sample))?;
    let sample_seconds = t0.elapsed().as_secs_f64();
    // The page trains a fresh run of the same configuration.
    let mut live = LiveTraining::new(&dev, cfg.clone())?;
    let t0 = std::time::Instant::now();
    let losses = dev.block_on(live.train(train_steps))?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let spec = serde_json::json!({
        "checkpoint": "ckpt.safetensors",
        "sample": {
            "n": sample.n,
            "seed": sample.seed,
            "steps": sample.steps,
            "label": sample.label,
        },
        "train": { "config": cfg, "steps": train_steps },
        "native": {
            "adapter": describe_adapter(&dev),
            "images": samples.images,
            "labels": samples.labels,
            "losses": losses,
            "sample_seconds": sample_seconds,
            "train_seconds": train_seconds,
        },
    });
    std::fs::write(dir.join("test.json"), serde_json::to_string(&spec)?)?;
    println!(
        "wrote {} (checkpoint of step {}, native adapter {})",
        dir.join("test.json").display(),
        ckpt.step(),
        describe_adapter(&dev)
    );
    Ok(())
}
