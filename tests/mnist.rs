//! A short training run on real MNIST (the vendored subset in `tests/data/mnist`, 2,000 training
//! and 1,000 test digits; see the README there): the loss goes down and the
//! label head classifies real test images far above chance (classification through the
//! diffusion model, docs/method.md §9).

use std::path::Path;
use std::process::Command;

#[test]
fn short_mnist_run_learns_to_classify() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mnist-run");
    let _ = std::fs::remove_dir_all(&out);
    let args = [
        "train",
        "--out-dir",
        out.to_str().unwrap(),
        "--name",
        "m",
        "--data",
        &format!("mnist:{}", data.display()),
        "--unet-channels",
        "8,16,16",
        "--timesteps",
        "100",
        "--batch",
        "16",
        "--steps",
        "300",
        "--lr",
        "0.003",
        "--warmup",
        "20",
        "--log-every",
        "50",
        "--ckpt-every",
        "300",
        "--sample-steps",
        "5",
        "--eval-samples",
        "50",
        "--eval-classifier-steps",
        "30",
        // Every sample's label is hidden from the network, so the head learns from all of them.
        "--label-embedding",
        "false",
    ];
    let o = Command::new(env!("CARGO_BIN_EXE_mtdiff-cli"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let metrics = std::fs::read_to_string(out.join("m/metrics.jsonl")).unwrap();
    let col = |key: &str| -> Vec<f64> {
        metrics
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()[key]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let (loss, eps) = (col("loss"), col("eps"));
    // The total is dominated by the label's cross-entropy, which leaves its plateau late; the
    // denoising term falls several-fold.
    assert!(
        loss.last() < loss.first(),
        "the total loss should go down: {loss:?}"
    );
    assert!(
        eps.last().unwrap() < &(0.5 * eps[0]),
        "the ε-MSE should at least halve: {eps:?}"
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("m/eval_00000300.json")).unwrap())
            .unwrap();
    let acc = eval["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "label head accuracy, t = 0.05T")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    // 300 steps of batch 16 (4,800 images) leave the head early in its learning curve (about
    // 0.26 here, 2.6× chance); longer runs go much higher.
    assert!(
        acc >= 0.2,
        "label head accuracy on real test digits {acc} (chance 0.1)\n{stdout}"
    );
}
