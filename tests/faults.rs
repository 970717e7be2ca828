//! The faults of real machines, on the `mtdiff` command line: a device lost in the middle of
//! training or sampling, and a checkpoint write that hits a file-size limit (as a full disk
//! does, on a small tmpfs). Each stops with a clear error naming what happened and what is safe, leaves no torn or
//! temporary file, and the run continues with `--resume` afterwards. The device loss is simulated
//! by destroying the device (`MTDIFF_FAULT=lose-device[:N]`, see `mtdiff::faults`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{set, tiny_run};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtdiff-cli"))
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tiny image+label run of `steps` steps, a checkpoint every 4.
fn tiny(out: &Path, steps: u64) -> Vec<String> {
    set(tiny_run(out, "r", steps), "--eval", "false")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let (so, se) = text(&out);
    assert!(out.status.success(), "{cmd:?} failed:\n{so}\n{se}");
    so
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let (so, se) = text(&out);
    assert!(!out.status.success(), "{cmd:?} should fail:\n{so}\n{se}");
    se
}

/// Every checkpoint in `run` loads, and no temporary file is left beside them.
fn all_checkpoints_load(run: &Path) -> Vec<u64> {
    for e in std::fs::read_dir(run).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(!name.contains(".tmp"), "a temporary file was left: {name}");
    }
    mtdiff::checkpoint::list(run)
        .into_iter()
        .map(|(step, path)| {
            let c = mtdiff::checkpoint::load(&path)
                .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
            assert_eq!(c.meta.step, step);
            step
        })
        .collect()
}

#[test]
fn a_device_lost_in_training_names_the_last_good_checkpoint_and_the_run_resumes() {
    let out = scratch("lost-train");
    let run = out.join("r");
    // Lost before the 7th step: the checkpoint of step 4 is the last good one.
    let e = fails(
        bin()
            .args(tiny(&out, 12))
            .env("MTDIFF_FAULT", "lose-device:7"),
    );
    assert!(
        e.contains("the GPU device was lost")
            && e.contains("the last good checkpoint is")
            && e.contains("ckpt_00000004.safetensors")
            && e.contains("--resume"),
        "{e}"
    );
    assert_eq!(all_checkpoints_load(&run), vec![4]);
    let mut resume = tiny(&out, 12);
    resume.push("--resume".into());
    let so = succeeds(bin().args(&resume));
    assert!(so.contains("resumed from"), "{so}");
    assert_eq!(all_checkpoints_load(&run), vec![4, 8, 12]);

    // Lost before any checkpoint: said so, and the way on is to start again.
    let e = fails(
        bin()
            .args(tiny(&out, 12))
            .arg("--overwrite")
            .env("MTDIFF_FAULT", "lose-device:2"),
    );
    assert!(
        e.contains("no checkpoint was written yet") && e.contains("--overwrite"),
        "{e}"
    );
}

#[test]
fn a_device_lost_in_sampling_writes_nothing_and_names_the_checkpoint() {
    let out = scratch("lost-sample");
    succeeds(bin().args(tiny(&out, 4)));
    let png = out.join("s.png");
    let sample = |cmd: &mut Command| {
        cmd.args(["sample", "--ckpt"])
            .arg(out.join("r"))
            .args(["--n", "4", "--steps", "3", "--out"])
            .arg(&png);
    };
    let mut cmd = bin();
    sample(&mut cmd);
    let e = fails(cmd.env("MTDIFF_FAULT", "lose-device"));
    assert!(
        e.contains("the GPU device was lost")
            && e.contains("nothing was written")
            && e.contains("ckpt_00000004.safetensors"),
        "{e}"
    );
    assert!(!png.exists() && !png.with_extension("json").exists());
    let mut cmd = bin();
    sample(&mut cmd);
    succeeds(&mut cmd);
    assert!(png.exists());
}

/// A tmpfs of `bytes` mounted at `dir` (as root; None where mounting is not allowed), unmounted
/// when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_checkpoint_write_on_a_full_disk_keeps_the_earlier_checkpoints() {
    let out = scratch("full-disk");
    succeeds(bin().args(tiny(&out, 8)));
    let ckpt = std::fs::metadata(mtdiff::checkpoint::path_for(&out.join("r"), 8))
        .unwrap()
        .len();
    // A disk with room for the run's two checkpoints, its plots and 400 kB more: the
    // checkpoint of step 12 does not fit.
    let disk_dir = out.join("disk");
    let Some(_disk) = SmallDisk::mount(&disk_dir, 2 * ckpt + 400_000) else {
        eprintln!("cannot mount a tmpfs (not root?): the full-disk test is skipped");
        return;
    };
    let run = disk_dir.join("r");
    std::fs::create_dir_all(&run).unwrap();
    for e in std::fs::read_dir(out.join("r")).unwrap().flatten() {
        std::fs::copy(e.path(), run.join(e.file_name())).unwrap();
    }
    let mut resume = tiny(&disk_dir, 16);
    resume.push("--resume".into());
    let e = fails(bin().args(&resume));
    assert!(
        e.contains("ckpt_00000012.safetensors: not written")
            && e.contains("No space left on device")
            && e.contains("The disk is full")
            && e.contains("the earlier checkpoints are intact (newest:")
            && e.contains("ckpt_00000008.safetensors")
            && e.contains("--resume"),
        "{e}"
    );
    assert_eq!(all_checkpoints_load(&run), vec![4, 8]);
    // With space freed (the oldest checkpoint deleted by hand) the run goes on from step 8 to
    // 12 (a new checkpoint is written whole before an old one is pruned: room for one more).
    std::fs::remove_file(mtdiff::checkpoint::path_for(&run, 4)).unwrap();
    let mut resume = tiny(&disk_dir, 12);
    resume.push("--resume".into());
    let so = succeeds(bin().args(&resume));
    assert!(so.contains("at step 8"), "{so}");
    assert_eq!(all_checkpoints_load(&run), vec![8, 12]);
}

#[test]
fn inputs_that_cannot_fit_fail_with_the_way_out_before_any_long_work() {
    let out = scratch("too-large");
    // A batch whose step does not fit the device's memory budget (300 MiB here).
    let start = std::time::Instant::now();
    let e = fails(
        bin()
            .args(set(
                set(tiny(&out, 2), "--batch", "1024"),
                "--data",
                "glyphs:16",
            ))
            .env("MTDIFF_MEMORY_BUDGET_MB", "300"),
    );
    assert!(
        e.contains("out of GPU memory") && e.contains("lower --batch (now 1024)"),
        "{e}"
    );
    // A model whose parameters cannot exist (10¹¹ floats in one conv): refused before the host
    // makes their initial values.
    let e = fails(bin().args(set(tiny(&out, 2), "--unet-channels", "100000,100000")));
    assert!(
        e.contains("out of GPU memory") && e.contains("--unet-channels 100000,100000"),
        "{e}"
    );
    // More samples than the host can hold: refused before sampling. (Sampling runs in chunks
    // of 64, so the device never holds more than a chunk.)
    succeeds(bin().args(tiny(&out, 2)).arg("--overwrite"));
    let e = fails(
        bin()
            .args(["sample", "--ckpt"])
            .arg(out.join("r"))
            .args(["--n", "1000000000000", "--steps", "2", "--out"])
            .arg(out.join("s.png")),
    );
    assert!(
        e.contains("--n 1000000000000") && e.contains("lower --n"),
        "{e}"
    );
    // A folder whose batches in flight, at the size asked for, cannot fit in memory: refused
    // before any step (the pipeline streams the folder, so only its queue must fit).
    let folder = out.join("folder");
    for class in ["a", "b"] {
        std::fs::create_dir_all(folder.join(class)).unwrap();
        for i in 0..12 {
            image::RgbImage::from_pixel(4, 4, image::Rgb([i * 20, 20, 200]))
                .save(folder.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let data = format!("folder:{}", folder.display());
    let e = fails(
        bin()
            .args(set(
                set(tiny(&out, 2), "--data", &data),
                "--batch",
                "100000",
            ))
            .args(["--overwrite", "--image-size", "4096"]),
    );
    assert!(
        e.contains("the data pipeline holds up to")
            && e.contains("MiB as f32")
            && e.contains("lower --image-size"),
        "{e}"
    );
    let e = fails(bin().args(set(tiny(&out, 2), "--data", &data)).args([
        "--overwrite",
        "--image-size",
        "60000",
    ]));
    assert!(e.contains("--image-size must be in 4..=4096"), "{e}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(120),
        "the refusals came late: {:?}",
        start.elapsed()
    );
}
