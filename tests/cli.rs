//! The `mtdiff` command line end to end on tiny configurations: train → checkpoint → sample →
//! eval for every task; `--resume` reproduces an uninterrupted run's losses; SIGKILL at random
//! moments never leaves an unloadable checkpoint; NaN stops a run naming the step; bad input
//! fails with a clear message and a non-zero exit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{losses, set, strings, tiny_run};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtdiff-cli"))
}

/// A fresh scratch directory under the target dir.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Flags of a tiny run of `task` named `name` under `out`.
fn tiny(out: &Path, name: &str, task: &str, steps: u64) -> Vec<String> {
    let mut a = tiny_run(out, name, steps);
    a.extend(strings(&[
        "--task",
        task,
        "--warmup",
        "2",
        "--eval-samples",
        "8",
        "--eval-classifier-steps",
        "10",
    ]));
    a
}

fn run(args: &[String]) -> Output {
    let out = bin().args(args).output().unwrap();
    out
}

fn ok(args: &[String]) -> String {
    let out = run(args);
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{args:?} failed:\n{so}\n{se}");
    so
}

/// Runs, expects failure, returns stderr.
fn fails(args: &[String]) -> String {
    let out = run(args);
    let se = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail; stderr:\n{se}");
    se
}

fn decode_png(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn train_sample_eval_end_to_end_for_every_task() {
    let out = scratch("e2e");
    for task in [
        "image-label",
        "masked-image",
        "transition",
        "image-representation",
        "ddpm",
    ] {
        let stdout = ok(&tiny(&out, task, task, 8));
        assert!(
            stdout.contains("eval of"),
            "{task}: the final eval table is printed:\n{stdout}"
        );
        let run = out.join(task);
        let ckpt = run.join("ckpt_00000008.safetensors");
        let loaded = mtdiff::checkpoint::load(&ckpt)
            .unwrap_or_else(|e| panic!("{task}: checkpoint loads: {e}"));
        // The dataset's class names travel with the checkpoint (for grids and reports).
        assert_eq!(loaded.meta.class_names.len(), 10, "{task}");
        assert_eq!(loaded.meta.class_names[0], "ring", "{task}");
        assert_eq!(decode_png(&run.join("loss.png")), (900, 600));
        let (grid_w, _) = decode_png(&run.join("samples_00000008.png"));
        if task == "image-label" {
            // Six 8×8 glyphs at zoom 6 per row, after a margin with the class names.
            assert!(
                grid_w > 6 * 49 + 1,
                "{task}: no margin for the row names ({grid_w})"
            );
        } else {
            assert!(grid_w > 8, "{task}");
        }
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        assert_eq!(
            metrics.lines().count(),
            4,
            "{task}: one line per log interval"
        );
        let eval: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("eval_00000008.json")).unwrap())
                .unwrap();
        assert!(
            eval["metrics"].as_array().unwrap().len() >= 2,
            "{task}: {eval}"
        );
        // Joint sampling from the run directory (its newest checkpoint).
        let png = out.join(format!("{task}-joint.png"));
        let raw = out.join(format!("{task}-joint.safetensors"));
        ok(&strings(&[
            "sample",
            "--ckpt",
            run.to_str().unwrap(),
            "--n",
            "4",
            "--steps",
            "4",
            "--out",
            png.to_str().unwrap(),
            "--raw",
            raw.to_str().unwrap(),
        ]));
        decode_png(&png);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(png.with_extension("json")).unwrap())
                .unwrap();
        assert_eq!(json["samples"].as_array().unwrap().len(), 4);
        let bytes = std::fs::read(&raw).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("image").unwrap().shape(), &[4, 1, 8, 8]);
        if task == "image-label" {
            // `eval` on its own, of the raw weights, to a chosen file.
            let raw_eval = out.join("raw-eval.json");
            let table = ok(&strings(&[
                "eval",
                "--ckpt",
                ckpt.to_str().unwrap(),
                "--n",
                "4",
                "--steps",
                "3",
                "--classifier-steps",
                "10",
                "--no-ema",
                "--out",
                raw_eval.to_str().unwrap(),
            ]));
            assert!(table.contains("label agreement"), "{table}");
            let raw_eval: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&raw_eval).unwrap()).unwrap();
            assert_eq!(raw_eval["step"], 8, "{raw_eval}");
            let s0 = &json["samples"][0];
            assert!(
                s0["label"].as_u64().unwrap() < 10 && s0["label_probs"].is_array(),
                "{s0}"
            );
        }
    }
}

#[test]
fn conditional_sampling_from_the_command_line() {
    let out = scratch("given");
    // With the label embedding (MT-Diffusion-E): the given label goes through both paths.
    let mut lab = tiny(&out, "lab", "image-label", 4);
    lab.extend(strings(&["--label-embedding", "true"]));
    ok(&lab);
    let run = out.join("lab");
    let png = out.join("three.png");
    ok(&strings(&[
        "sample",
        "--ckpt",
        run.to_str().unwrap(),
        "--n",
        "3",
        "--steps",
        "3",
        "--given",
        "label=3",
        "--out",
        png.to_str().unwrap(),
        "--sampler",
        "ddpm",
        "--guidance",
        "2.5",
        "--guidance-interval",
        "0.5,1",
    ]));
    decode_png(&png);
    // Classifier-free guidance on the embedding path; the JSON records the sampler used.
    let json = std::fs::read_to_string(png.with_extension("json")).unwrap();
    assert!(json.contains("\"guidance\": 2.5"), "{json}");
    let sampler: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        sampler["sampler"]["guidance_interval"],
        serde_json::json!([0.5, 1.0]),
        "{json}"
    );
    // Classification of an image through the diffusion model: the image is given.
    ok(&strings(&[
        "sample",
        "--ckpt",
        run.to_str().unwrap(),
        "--n",
        "1",
        "--steps",
        "3",
        "--given",
        &format!("image={}", png.display()),
        "--out",
        out.join("cls.png").to_str().unwrap(),
    ]));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cls.json")).unwrap()).unwrap();
    assert!(json["samples"][0]["label"].is_u64(), "{json}");
    // Masked restoration needs a mask.
    ok(&tiny(&out, "mask", "masked-image", 4));
    let e = fails(&strings(&[
        "sample",
        "--ckpt",
        out.join("mask").to_str().unwrap(),
        "--given",
        &format!("masked={}", png.display()),
    ]));
    assert!(e.contains("--mask"), "{e}");
    let e = fails(&strings(&[
        "sample",
        "--ckpt",
        run.to_str().unwrap(),
        "--given",
        "label=12",
    ]));
    assert!(e.contains("0..10"), "{e}");
    let e = fails(&strings(&[
        "sample",
        "--ckpt",
        run.to_str().unwrap(),
        "--given",
        "colour=3",
    ]));
    assert!(e.contains("no modality \"colour\""), "{e}");
}

/// The "loss" fields of a metrics file.

#[test]
fn resume_reproduces_an_uninterrupted_run() {
    let out = scratch("resume");
    let steps = 60;
    // With the label embedding, whose hidden labels are drawn per step too.
    let extra = ["--eval", "false", "--label-embedding", "true"];
    let mut a = tiny(&out, "whole", "image-label", steps);
    a.extend(strings(&extra));
    ok(&a);
    // The same run, killed (SIGKILL) once its checkpoint at step 8 exists, then resumed.
    let mut b = tiny(&out, "split", "image-label", steps);
    b.extend(strings(&extra));
    let mut child = bin()
        .args(&b)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = out.join("split");
    let start = Instant::now();
    while !run.join("ckpt_00000008.safetensors").exists()
        && start.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed_at = mtdiff::checkpoint::list(&run).last().unwrap().0;
    assert!(resumed_at < steps, "the run was interrupted before its end");
    let mut b2 = b.clone();
    b2.push("--resume".into());
    let stdout = ok(&b2);
    assert!(stdout.contains("resumed from"), "{stdout}");
    let (la, lb) = (losses(&out.join("whole")), losses(&run));
    assert_eq!(la.len(), steps as usize / 2);
    assert_eq!(
        la, lb,
        "interrupted at step {resumed_at} + resumed must give the uninterrupted losses exactly"
    );
    // Without --resume, an existing run is not silently overwritten.
    let e = fails(&b);
    assert!(e.contains("--resume") && e.contains("--overwrite"), "{e}");
}

#[test]
fn sigkill_at_random_moments_never_corrupts_a_checkpoint() {
    let out = scratch("kill");
    let mut args = set(tiny(&out, "k", "image-label", 100_000), "--ckpt-every", "2");
    args.extend(strings(&["--eval", "false", "--keep", "3"]));
    let run = out.join("k");
    // The kill delays come from this seed: printed, and replayed with MTDIFF_TEST_SEED=<seed>.
    let first_seed = match std::env::var("MTDIFF_TEST_SEED") {
        Ok(v) => v
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("MTDIFF_TEST_SEED={v:?} is not an unsigned integer")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64,
    };
    eprintln!("sigkill test: seed {first_seed} (replay with MTDIFF_TEST_SEED={first_seed})");
    let replay = format!("seed {first_seed}, replay with MTDIFF_TEST_SEED={first_seed}");
    let mut seed = first_seed;
    let mut last_step = 0;
    for round in 0..4 {
        let mut a = args.clone();
        if round > 0 {
            a.push("--resume".into());
        }
        let mut child = bin()
            .args(&a)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it get going (shader compilation, first checkpoint), then kill at a random moment.
        let start = Instant::now();
        while mtdiff::checkpoint::list(&run)
            .last()
            .map(|c| c.0)
            .unwrap_or(0)
            <= last_step
            && start.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay_ms = 200 + (seed >> 33) % 1500;
        eprintln!("sigkill test: round {round}, kill {delay_ms} ms after the checkpoint after step {last_step}");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // --keep 3, plus one when the kill fell between a new checkpoint's rename and the
        // removal of the oldest (the next checkpoint removes it).
        let ckpts = mtdiff::checkpoint::list(&run);
        assert!(
            !ckpts.is_empty() && ckpts.len() <= 4,
            "round {round} ({replay}): {ckpts:?}"
        );
        for (step, path) in &ckpts {
            let c = mtdiff::checkpoint::load(path).unwrap_or_else(|e| {
                panic!(
                    "round {round} ({replay}): {} does not load: {e}",
                    path.display()
                )
            });
            assert_eq!(c.meta.step, *step, "{replay}");
        }
        let newest = ckpts.last().unwrap().0;
        assert!(
            newest > last_step,
            "round {round} ({replay}): progress after resuming from {last_step}"
        );
        last_step = newest;
    }
    // A final resume finishes the run from the newest checkpoint.
    let mut a = set(
        tiny(&out, "k", "image-label", last_step + 2),
        "--ckpt-every",
        "2",
    );
    a.extend(strings(&["--eval", "false", "--keep", "3", "--resume"]));
    let stdout = ok(&a);
    assert!(stdout.contains(&format!("at step {last_step}")), "{stdout}");
    let ckpts = mtdiff::checkpoint::list(&run);
    assert!(ckpts.len() <= 3, "back to --keep 3: {ckpts:?}");
}

#[test]
fn nan_loss_stops_the_run_naming_the_step_and_keeps_the_good_checkpoint() {
    let out = scratch("nan");
    let mut args = tiny(&out, "n", "image-label", 20);
    args.extend(strings(&["--eval", "false"]));
    let o = bin()
        .args(&args)
        .env(mtdiff::train::FAULT_NAN_ENV, "7")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(e.contains("at step 7"), "{e}");
    assert!(e.contains("ckpt_00000004.safetensors"), "{e}");
    let ckpts = mtdiff::checkpoint::list(&out.join("n"));
    assert_eq!(ckpts.iter().map(|c| c.0).collect::<Vec<_>>(), vec![4]);
    mtdiff::checkpoint::load(&ckpts[0].1).unwrap();
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let out = scratch("bad");
    let t = |extra: &[&str]| {
        let mut a = tiny(&out, "b", "image-label", 2);
        for kv in extra.chunks(2) {
            a = set(a, kv[0], kv[1]);
        }
        a.extend(strings(&["--eval", "false", "--overwrite"]));
        a
    };
    // One `--flag=value` argument, for values clap would otherwise read as a flag (e.g. -1).
    let t_eq = |flag_eq_value: &str| {
        let mut a = t(&[]);
        a.push(flag_eq_value.into());
        a
    };
    // Missing data directory.
    let e = fails(&t(&["--data", "mnist:/no/such/dir"]));
    assert!(
        e.contains("/no/such/dir") && e.contains("no such directory"),
        "{e}"
    );
    // Truncated and wrong-magic IDX files.
    let idx = out.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    images.extend(vec![0u8; 28 * 28]); // one image of the two announced
    std::fs::write(idx.join("train-images-idx3-ubyte"), &images).unwrap();
    std::fs::write(
        idx.join("train-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 2, 3, 4],
    )
    .unwrap();
    let e = fails(&t(&["--data", &format!("mnist:{}", idx.display())]));
    assert!(e.contains("truncated"), "{e}");
    images[3] = 9;
    std::fs::write(idx.join("train-images-idx3-ubyte"), &images).unwrap();
    let e = fails(&t(&["--data", &format!("mnist:{}", idx.display())]));
    assert!(e.contains("magic"), "{e}");
    // An image folder with no images.
    let folder = out.join("folder");
    std::fs::create_dir_all(folder.join("cats")).unwrap();
    std::fs::create_dir_all(folder.join("dogs")).unwrap();
    std::fs::write(folder.join("cats/readme.txt"), "not an image").unwrap();
    let e = fails(&t(&["--data", &format!("folder:{}", folder.display())]));
    assert!(e.contains("no images"), "{e}");
    // Unknown or out-of-range flag values: each message names what is wrong.
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (t(&["--task", "painting"]), &["unknown task", "image-label"]),
        (t(&["--data", "pictures"]), &["glyphs"]),
        (strings(&["train", "--steps", "many"]), &["invalid value"]),
        (t(&["--ckpt-every", "3"]), &["multiple"]),
        (t(&["--label-drop", "1.5"]), &["--label-drop", "[0, 1]"]),
        (t_eq("--label-weight=-1"), &["--label-weight"]),
        (t(&["--guidance", "nan"]), &["--guidance"]),
        (
            t(&["--beta-schedule", "quadratic"]),
            &["--beta-schedule", "cosine"],
        ),
        (t_eq("--label-map-scale=-0.5"), &["--label-map-scale"]),
        (
            t(&["--timestep-sampling", "log-snr:0"]),
            &["--timestep-sampling", "log-snr:MEAN,STD"],
        ),
        (
            t(&["--guidance-interval", "0.6,0.4"]),
            &["--guidance-interval", "lo ≤ hi"],
        ),
        (t(&["--attn-levels", "7"]), &["--attn-levels 7"]),
    ];
    for (args, needles) in cases {
        let e = fails(&args);
        assert!(needles.iter().all(|n| e.contains(n)), "{args:?}: {e}");
    }
    // An output directory that cannot be written: a path under a regular file.
    let file = out.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let mut a = tiny(&file.join("sub"), "b", "image-label", 2);
    a.extend(strings(&["--eval", "false"]));
    let e = fails(&a);
    assert!(
        e.contains("cannot be created") && e.contains("--out-dir"),
        "{e}"
    );
    // Corrupt and truncated checkpoints; a checkpoint from another model configuration.
    ok(&t(&[]));
    let run = out.join("b");
    let ckpt = mtdiff::checkpoint::list(&run).pop().unwrap().1;
    let bytes = std::fs::read(&ckpt).unwrap();
    let cut = out.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&strings(&["sample", "--ckpt", cut.to_str().unwrap()]));
    assert!(e.contains("corrupt or truncated"), "{e}");
    let junk = out.join("junk.safetensors");
    std::fs::write(&junk, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    let e = fails(&strings(&["eval", "--ckpt", junk.to_str().unwrap()]));
    assert!(e.contains("junk.safetensors"), "{e}");
    let e = fails(&strings(&[
        "sample",
        "--ckpt",
        out.join("nothing-here").to_str().unwrap(),
    ]));
    assert!(e.contains("no such file"), "{e}");
    let mut other = t(&["--unet-channels", "8,8"]);
    other.retain(|a| a != "--overwrite");
    other.push("--resume".into());
    let e = fails(&other);
    assert!(e.contains("different model configuration"), "{e}");
    // A --config file with an unknown key.
    let toml = out.join("run.toml");
    std::fs::write(&toml, "stepz = 3\n").unwrap();
    let e = fails(&strings(&["train", "--config", toml.to_str().unwrap()]));
    assert!(e.contains("stepz"), "{e}");
}

#[test]
fn config_file_values_apply_and_flags_override_them() {
    let out = scratch("config");
    let toml = out.join("run.toml");
    let mut body = String::new();
    body += &format!(
        "out_dir = {:?}\nname = \"fromfile\"\ntask = \"ddpm\"\n",
        out.display()
    );
    body += "data = \"glyphs:8\"\nunet_channels = [8, 16]\ntimesteps = 50\nbatch = 4\n";
    body += "steps = 6\nlog_every = 2\nckpt_every = 2\nsample_steps = 3\neval = false\n";
    std::fs::write(&toml, body).unwrap();
    ok(&strings(&[
        "train",
        "--config",
        toml.to_str().unwrap(),
        "--steps",
        "4",
    ]));
    let ckpts = mtdiff::checkpoint::list(&out.join("fromfile"));
    assert_eq!(
        ckpts.last().unwrap().0,
        4,
        "the flag overrides the file's steps"
    );
    let c = mtdiff::checkpoint::load(&ckpts.last().unwrap().1).unwrap();
    assert_eq!(c.meta.train.task, "ddpm");
    assert_eq!(c.meta.model.unet.channels, vec![8, 16]);
}

/// The most GPU dispatches one training step of the main job's model may take (batch, forward,
/// backward, the packed AdamW with clipping, the EMA); the count is deterministic. Measured
/// 2026-12-04: 296 (717 before the packed optimizer, 471 before the one-dispatch bias gradients,
/// the copy-free γ/β gradient halves, the packed AdaGN scale-shift and the conv weights'
/// two layouts in one dispatch, 369 before every block's time projection in one matmul, 338
/// before the one-dispatch group-norm forward and input gradient);
/// docs/experiments.md, "Dispatches per step" and "Fewer dispatches".
const MAIN_JOB_DISPATCHES_PER_STEP: f64 = 300.0;

#[test]
fn the_main_job_step_stays_under_its_dispatch_budget() {
    let out = scratch("dispatches");
    // The main job's defaults (model, batch, data), two steps, a one-step grid and no eval.
    let args = strings(&[
        "train",
        "--out-dir",
        out.to_str().unwrap(),
        "--name",
        "d",
        "--steps",
        "2",
        "--log-every",
        "1",
        "--warmup",
        "1",
        "--sample-steps",
        "1",
        "--eval",
        "false",
    ]);
    ok(&args);
    let metrics = std::fs::read_to_string(out.join("d/metrics.jsonl")).unwrap();
    let per_step: Vec<f64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["dispatches_per_step"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(per_step.len(), 2, "{metrics}");
    assert_eq!(per_step[0], per_step[1], "the count is the same every step");
    assert!(
        per_step[0] > 50.0 && per_step[0] <= MAIN_JOB_DISPATCHES_PER_STEP,
        "{} dispatches per step (budget {MAIN_JOB_DISPATCHES_PER_STEP})",
        per_step[0]
    );
}

#[test]
fn kernels_dump_writes_every_source_as_compiled() {
    let dir = scratch("kernels");
    let out = ok(&strings(&["kernels", "--dump", dir.to_str().unwrap()]));
    let kernels = mtdiff_engine::ops::sources::all_kernels();
    assert!(
        out.contains(&format!("wrote {} kernel sources", kernels.len())),
        "{out}"
    );
    for k in &kernels {
        let sub = if k.generated { "generated" } else { "static" };
        let text = std::fs::read_to_string(dir.join(sub).join(&k.name)).unwrap();
        assert!(text.starts_with(mtdiff_engine::ops::PRELUDE), "{}", k.name);
        assert!(text.ends_with(&k.source), "{}", k.name);
    }
    let listing = ok(&strings(&["kernels"]));
    assert_eq!(listing.lines().count(), kernels.len(), "{listing}");
    assert!(
        listing.contains("generated  matmul_regblock.ta0tb1va1vb0.bias1.wgsl"),
        "{listing}"
    );
    // A path that cannot be a directory is a clear error naming it.
    let file = dir.join("static/norm.wgsl");
    let err = fails(&strings(&["kernels", "--dump", file.to_str().unwrap()]));
    assert!(err.contains("norm.wgsl"), "{err}");
}

#[test]
fn training_streams_an_image_folder_and_skips_unreadable_images() {
    let out = scratch("folder-stream");
    let folder = out.join("pictures");
    for (k, class) in ["circle", "square"].iter().enumerate() {
        std::fs::create_dir_all(folder.join(class)).unwrap();
        for i in 0..12u8 {
            let img = image::RgbImage::from_fn(10, 12, |x, y| {
                let on = if k == 0 { (x + y) % 3 == 0 } else { x > 3 };
                image::Rgb(if on {
                    [200, i * 9, 30]
                } else {
                    [10, 20, i * 7]
                })
            });
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            img.save(folder.join(class).join(format!("{i}.{ext}")))
                .unwrap();
            // As many corrupt files as good ones, so the batches surely draw some.
            std::fs::write(
                folder.join(class).join(format!("bad{i}.png")),
                b"\x89PNG junk",
            )
            .unwrap();
        }
    }
    let data = format!("folder:{}", folder.display());
    let args = set(
        set(tiny(&out, "f", "image-label", 4), "--data", &data),
        "--image-size",
        "8",
    );
    let run = bin()
        .args(&args)
        .args(["--data-workers", "2"])
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{so}\n{se}");
    assert!(
        se.contains("warning: skipped an unreadable image") && se.contains("bad"),
        "{se}"
    );
    // Past the limit the run stops, naming the files and the way out.
    let e = fails(&set(
        set(args.clone(), "--max-bad-images", "1"),
        "--name",
        "f2",
    ));
    assert!(
        e.contains("more than --max-bad-images 1") && e.contains("raise --max-bad-images"),
        "{e}"
    );
    // The pipeline alone.
    let so = ok(&strings(&[
        "data",
        "--data",
        &data,
        "--image-size",
        "8",
        "--batch",
        "16",
        "--batches",
        "5",
        "--workers",
        "2",
    ]));
    assert!(
        so.contains("80 images in") && so.contains("images/s") && so.contains("peak memory"),
        "{so}"
    );
    assert!(so.contains("2 classes, decoded to 3×8×8"), "{so}");
}

#[test]
fn two_devices_train_like_one_and_resume_exactly() {
    let out = scratch("devices");
    let steps = 12;
    // The label embedding too: its hidden-label cross-entropy is normalised over the global batch.
    let extra = [
        "--eval",
        "false",
        "--label-embedding",
        "true",
        "--label-drop",
        "0.5",
    ];
    let run = |name: &str, devices: &str, steps: u64, more: &[&str]| {
        let mut a = tiny(&out, name, "image-label", steps);
        a.extend(strings(&extra));
        if !devices.is_empty() {
            a.extend(strings(&["--devices", devices]));
        }
        a.extend(strings(more));
        ok(&a)
    };
    run("one", "1", steps, &[]);
    // Two devices named by adapter number (both on this machine's one adapter).
    run("two", "", steps, &["--adapters", "0,0"]);
    run("three", "3", steps, &[]);
    let one = losses(&out.join("one"));
    for name in ["two", "three"] {
        let other = losses(&out.join(name));
        assert_eq!(one.len(), other.len());
        // The same arithmetic but for the order of f32 sums (per-device means, then their sum;
        // the gradient summed over devices): 12 steps of AdamW keep the losses within 1e-4.
        for (a, b) in one.iter().zip(&other) {
            assert_eq!(a.0, b.0);
            assert!(
                (a.1 - b.1).abs() <= 1e-4 * a.1.abs() && (a.2 - b.2).abs() <= 1e-4 * a.2.abs(),
                "{name}: {a:?} vs {b:?}"
            );
        }
    }
    // The all-reduce is measured in metrics.jsonl: every device's flat gradient down and up.
    let line = std::fs::read_to_string(out.join("two/metrics.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert!(
        v["all_reduce_ms_per_step"].as_f64().unwrap() > 0.0,
        "{line}"
    );
    let bytes = v["all_reduce_bytes_per_step"].as_f64().unwrap();
    assert!(bytes > 0.0 && bytes % 16.0 == 0.0, "{line}");
    assert!(!std::fs::read_to_string(out.join("one/metrics.jsonl"))
        .unwrap()
        .contains("all_reduce"));
    // Stopped at step 8 and resumed on two devices: exactly the uninterrupted two-device run
    // (the replicas start from the checkpoint's state, which every replica shared). A constant
    // learning rate, so that the first part's shorter --steps does not change its schedule.
    let constant = ["--lr-schedule", "constant"];
    run("whole", "2", steps, &constant);
    run("split", "2", 8, &constant);
    let stdout = run(
        "split",
        "2",
        steps,
        &["--resume", "--lr-schedule", "constant"],
    );
    assert!(stdout.contains("resumed from"), "{stdout}");
    assert_eq!(losses(&out.join("whole")), losses(&out.join("split")));
    // More devices than samples per batch is refused with the way out.
    let mut a = tiny(&out, "many", "image-label", steps);
    a.extend(strings(&["--devices", "5"]));
    let e = fails(&a);
    assert!(
        e.contains("--devices 5 must be between 1 and --batch (4)"),
        "{e}"
    );
}

#[test]
fn export_writes_the_weights_as_f16_or_f32_safetensors() {
    let out = scratch("export");
    let mut a = tiny(&out, "e", "image-label", 4);
    a.extend(strings(&["--eval", "false"]));
    ok(&a);
    let run = out.join("e");
    let ckpt = mtdiff::checkpoint::load(&mtdiff::checkpoint::list(&run).pop().unwrap().1).unwrap();
    for (dtype, no_ema) in [("f16", false), ("f32", false), ("f16", true)] {
        let file = out.join(format!("w-{dtype}-{no_ema}.safetensors"));
        let mut args = strings(&["export", "--ckpt", run.to_str().unwrap(), "--dtype", dtype]);
        args.extend(strings(&["--out", file.to_str().unwrap()]));
        if no_ema {
            args.push("--no-ema".into());
        }
        let said = ok(&args);
        let prefix = if no_ema { "param." } else { "ema." };
        assert!(
            said.contains(if no_ema { "raw weights" } else { "ema weights" }),
            "{said}"
        );
        let bytes = std::fs::read(&file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut want: Vec<&String> = ckpt
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix))
            .collect();
        want.sort();
        let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
        names.sort();
        assert_eq!(
            names,
            want.iter()
                .map(|k| k[prefix.len()..].to_string())
                .collect::<Vec<_>>()
        );
        for k in want {
            let t = st.tensor(&k[prefix.len()..]).unwrap();
            let host = &ckpt.tensors[k];
            assert_eq!(t.shape(), &host.shape[..]);
            match dtype {
                "f32" => {
                    assert_eq!(t.dtype(), safetensors::Dtype::F32);
                    assert_eq!(mtdiff::checkpoint::f32_values(&t), host.values, "{k}");
                }
                _ => {
                    assert_eq!(t.dtype(), safetensors::Dtype::F16);
                    let got: Vec<u16> = t
                        .data()
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    let rne: Vec<u16> = host
                        .values
                        .iter()
                        .map(|&v| half::f16::from_f32(v).to_bits())
                        .collect();
                    assert_eq!(got, rne, "{k}");
                }
            }
        }
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["format"], "mtdiff-weights-v1");
        assert_eq!(meta["dtype"], dtype);
        assert!(meta["model"].contains("\"schedule\""));
    }
    let e = fails(&strings(&[
        "export",
        "--ckpt",
        run.to_str().unwrap(),
        "--dtype",
        "bf16",
        "--out",
        "x",
    ]));
    assert!(e.contains("--dtype \"bf16\": use f32 or f16"), "{e}");
}

/// A tiny image-label run `name` of `steps` steps at a constant learning rate, no eval, with
/// the flags `more`; returns its stdout.
fn train_constant_lr(out: &Path, name: &str, steps: u64, more: &[&str]) -> String {
    let mut a = tiny(out, name, "image-label", steps);
    a.extend(strings(&["--eval", "false", "--lr-schedule", "constant"]));
    a.extend(strings(more));
    ok(&a)
}

#[test]
fn loss_scaling_keeps_the_losses_records_its_state_and_resumes_exactly() {
    let out = scratch("loss-scale");
    let steps = 8;
    let run = |name: &str, steps: u64, more: &[&str]| train_constant_lr(&out, name, steps, more);
    run("plain", steps, &[]);
    run("scaled", steps, &["--loss-scale", "true"]);
    // A power-of-two scale multiplies every gradient exactly and AdamW divides it out: the
    // same losses to the last bit while nothing overflows.
    assert_eq!(losses(&out.join("plain")), losses(&out.join("scaled")));
    let metrics = std::fs::read_to_string(out.join("scaled/metrics.jsonl")).unwrap();
    for l in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["loss_scale"].as_f64(), Some(65536.0), "{l}");
        assert_eq!(v["skipped_steps"].as_u64(), Some(0), "{l}");
    }
    assert!(!std::fs::read_to_string(out.join("plain/metrics.jsonl"))
        .unwrap()
        .contains("loss_scale"));
    // The scaler's state is in the checkpoint, and a resumed run continues exactly.
    let ckpt = mtdiff::checkpoint::load(
        &mtdiff::checkpoint::list(&out.join("scaled"))
            .pop()
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(ckpt.meta.loss_scale, Some([65536.0, 8.0, 0.0, 0.0]));
    run("split", 4, &["--loss-scale", "true"]);
    let said = run("split", steps, &["--loss-scale", "true", "--resume"]);
    assert!(said.contains("resumed from"), "{said}");
    assert_eq!(losses(&out.join("scaled")), losses(&out.join("split")));
    // On two devices (each with its own scaler, moved alike by the summed gradient): the
    // one-device run's losses up to the order of f32 sums, and the same scaler state.
    run("two", steps, &["--loss-scale", "true", "--devices", "2"]);
    for (a, b) in losses(&out.join("scaled"))
        .iter()
        .zip(&losses(&out.join("two")))
    {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() <= 1e-4 * a.1.abs(), "{a:?} vs {b:?}");
    }
    let two =
        mtdiff::checkpoint::load(&mtdiff::checkpoint::list(&out.join("two")).pop().unwrap().1)
            .unwrap();
    assert_eq!(two.meta.loss_scale, Some([65536.0, 8.0, 0.0, 0.0]));
}

#[test]
fn mixed_precision_trains_close_to_f32_with_less_memory_and_samples_in_f16() {
    let out = scratch("f16-mixed");
    let steps = 8;
    let run = |name: &str, steps: u64, more: &[&str]| train_constant_lr(&out, name, steps, more);
    run("f32", steps, &[]);
    run("mixed", steps, &["--precision", "f16-mixed"]);
    // f16 inputs round the convolutions' and matmuls' operands (2⁻¹¹ relative): the losses
    // move a little, never much.
    let (full, mixed) = (losses(&out.join("f32")), losses(&out.join("mixed")));
    assert_ne!(full, mixed, "f16-mixed computed exactly what f32 did");
    for (a, b) in full.iter().zip(&mixed) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() <= 2e-2 * a.1.abs(), "{a:?} vs {b:?}");
    }
    let last = |run: &str| -> serde_json::Value {
        let m = std::fs::read_to_string(out.join(run).join("metrics.jsonl")).unwrap();
        serde_json::from_str(m.lines().last().unwrap()).unwrap()
    };
    let (lf, lm) = (last("f32"), last("mixed"));
    // Mixed precision turns the loss scaler on by itself.
    assert_eq!(lm["loss_scale"].as_f64(), Some(65536.0), "{lm}");
    assert!(lf.get("loss_scale").is_none(), "{lf}");
    // The f32 activations the convolutions read are freed once cast; their f16 copies are kept.
    let (pf, pm) = (
        lf["peak_memory_mib"].as_f64().unwrap(),
        lm["peak_memory_mib"].as_f64().unwrap(),
    );
    assert!(
        pm > 0.0 && pm < pf,
        "peak memory f16-mixed {pm} MiB, f32 {pf} MiB"
    );

    // Resume continues a mixed-precision run exactly (the scaler's state is in the checkpoint).
    run("split", 4, &["--precision", "f16-mixed"]);
    let said = run("split", steps, &["--precision", "f16-mixed", "--resume"]);
    assert!(said.contains("resumed from"), "{said}");
    assert_eq!(losses(&out.join("mixed")), losses(&out.join("split")));

    // Sampling in f16 from the same checkpoint: close to f32, not identical.
    let sample = |precision: &str| -> Vec<f32> {
        let raw = out.join(format!("raw-{precision}.safetensors"));
        ok(&strings(&[
            "sample",
            "--ckpt",
            out.join("mixed").to_str().unwrap(),
            "--n",
            "6",
            "--steps",
            "6",
            "--given",
            "label=2",
            "--out",
            out.join(format!("s-{precision}.png")).to_str().unwrap(),
            "--raw",
            raw.to_str().unwrap(),
            "--precision",
            precision,
        ]));
        let file = std::fs::read(&raw).unwrap();
        let st = safetensors::SafeTensors::deserialize(&file).unwrap();
        bytemuck::pod_collect_to_vec(st.tensor("image").unwrap().data())
    };
    let (s32, s16) = (sample("f32"), sample("f16"));
    // `eval` samples in f16 too (its classifier stays f32).
    let table = ok(&strings(&[
        "eval",
        "--ckpt",
        out.join("mixed").to_str().unwrap(),
        "--n",
        "4",
        "--steps",
        "3",
        "--classifier-steps",
        "10",
        "--precision",
        "f16",
    ]));
    assert!(table.contains("class accuracy"), "{table}");
    assert_ne!(s32, s16);
    let worst = s32
        .iter()
        .zip(&s16)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 0.1, "f16 samples differ from f32 by up to {worst}");
    let e = fails(&strings(&[
        "sample",
        "--ckpt",
        out.join("mixed").to_str().unwrap(),
        "--precision",
        "bf16",
    ]));
    assert!(e.contains("--precision \"bf16\": use f32 or f16"), "{e}");
    let mut bad = tiny(&out, "bad", "image-label", 2);
    bad.extend(strings(&["--precision", "f16"]));
    let e = fails(&bad);
    assert!(e.contains("use f32 or f16-mixed"), "{e}");
}
