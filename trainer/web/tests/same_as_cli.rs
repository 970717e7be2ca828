//! The page's code gives `mtdiff`'s numbers: run natively (same adapter), a checkpoint's samples
//! equal `mtdiff sample`'s raw output and live training's losses equal `mtdiff train`'s, bit for
//! bit. The browser test (`trainer/web/tests/browser.mjs`) compares the page with these.

use std::path::{Path, PathBuf};

use mtdiff::config::TrainConfig;
use mtdiff::sample::{run as sample_run, SampleArgs};
use mtdiff::train::train;
use mtdiff_model::SamplerConfig;
use mtdiff_web::{open_device, LiveTraining, LoadedCheckpoint, SampleRequest};

/// A tiny image+label run: 8×8 glyphs, a U-Net of 8 and 16 channels, 50 timesteps, batch 4,
/// `steps` steps, one log line and one checkpoint at the end.
fn tiny(out: &Path, steps: u64) -> TrainConfig {
    TrainConfig {
        name: "web".into(),
        out_dir: out.to_path_buf(),
        data: "glyphs:8".into(),
        unet_channels: vec![8, 16],
        timesteps: 50,
        batch: 4,
        steps,
        log_every: steps,
        ckpt_every: steps,
        sample_every: 0,
        sample_steps: 4,
        eval: false,
        ..TrainConfig::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtdiff-web-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn metrics_loss(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last["loss"].as_f64().unwrap()
}

#[test]
fn live_training_gives_the_losses_of_mtdiff_train() {
    let dir = scratch("train");
    let cfg = tiny(&dir, 3);
    let summary = train(&cfg, false, true).unwrap();
    let dev = pollster::block_on(open_device()).unwrap();
    let mut live = LiveTraining::new(&dev, cfg.clone()).unwrap();
    let mut losses = dev.block_on(live.train(2)).unwrap();
    losses.extend(dev.block_on(live.train(5)).unwrap());
    assert_eq!(losses.len(), 3, "training stops at the configured length");
    assert_eq!(live.steps_done(), 3);
    let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / 3.0;
    assert_eq!(mean, metrics_loss(&summary.run_dir), "losses {losses:?}");
    let grid = dev.block_on(live.sample_grid(2, 7)).unwrap();
    assert_eq!(grid.n, 20, "2 per class of 10");
    assert_eq!(grid.images.len(), 20 * 8 * 8);
    assert!(grid.images.iter().all(|v| v.is_finite()));
    assert_eq!(grid.labels.unwrap()[..4], [0, 0, 1, 1]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_loaded_checkpoint_samples_what_mtdiff_sample_writes() {
    let dir = scratch("sample");
    let summary = train(&tiny(&dir, 2), false, true).unwrap();
    let dev = pollster::block_on(open_device()).unwrap();
    let bytes = std::fs::read(&summary.checkpoint).unwrap();
    let ckpt = LoadedCheckpoint::load(&dev, &bytes, true).unwrap();
    assert_eq!(ckpt.step(), 2);
    assert_eq!(ckpt.image_shape(), [1, 8, 8]);
    for label in [Some(3), None] {
        let req = SampleRequest {
            n: 5,
            seed: 11,
            steps: 6,
            label,
        };
        let page = dev.block_on(ckpt.sample(&req)).unwrap();
        let raw = dir.join("raw.safetensors");
        sample_run(&SampleArgs {
            checkpoint: summary.checkpoint.clone(),
            n: 5,
            sampler: SamplerConfig {
                steps: 6,
                seed: 11,
                ..SamplerConfig::default()
            },
            given: label.map(|y| format!("label={y}")).into_iter().collect(),
            mask: None,
            out: Some(dir.join("grid.png")),
            raw: Some(raw.clone()),
            no_ema: false,
            guidance: None,
            guidance_interval: None,
            f16: false,
        })
        .unwrap();
        let file = std::fs::read(&raw).unwrap();
        let st = safetensors::SafeTensors::deserialize(&file).unwrap();
        let cli: Vec<f32> = st
            .tensor("image")
            .unwrap()
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(page.images, cli, "label {label:?}");
        let labels = page.labels.unwrap();
        assert_eq!(labels.len(), 5);
        if let Some(y) = label {
            assert!(labels.iter().all(|&l| l == y));
        }
    }
    let bad = SampleRequest {
        n: 2,
        seed: 0,
        steps: 2,
        label: Some(10),
    };
    let err = dev.block_on(ckpt.sample(&bad)).unwrap_err().to_string();
    assert!(err.contains("label 10") && err.contains("0..10"), "{err}");
    assert!(LoadedCheckpoint::load(&dev, b"not a checkpoint", true).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
