//! Data parallelism over MPI, on this machine's one adapter: `mpirun -n 2 mtdiff train` against
//! one process with `--devices 2` and `--devices 1`; a rank killed mid-run, then `--resume`; a
//! rank that fails takes the world down naming itself. Built only with `--features mpi` (needs an
//! MPI library and `mpirun` on the PATH: Debian's libopenmpi-dev and openmpi-bin, as `.ci/run`
//! installs): `cargo test --release --features mpi --test mpi`.
#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{losses, strings, tiny_run};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mtdiff-cli")
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mpi-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tiny run named `name` of `steps` steps (label embedding on, constant learning rate so that
/// a shorter first part does not change the schedule).
fn tiny(out: &Path, name: &str, steps: u64) -> Vec<String> {
    let mut a = tiny_run(out, name, steps);
    a.extend(strings(&[
        "--warmup",
        "2",
        "--lr-schedule",
        "constant",
        "--label-embedding",
        "true",
        "--label-drop",
        "0.5",
        "--eval",
        "false",
    ]));
    a
}

/// `mpirun -n ranks` of the CLI (as root where CI runs; oversubscribed on a 2-core machine).
fn mpirun(ranks: usize, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("mpirun");
    c.args([
        "-n",
        &ranks.to_string(),
        "--oversubscribe",
        "--mca",
        "mpi_yield_when_idle",
        "1",
    ])
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    for (k, v) in env {
        c.args(["-x", &format!("{k}={v}")]);
    }
    c.arg(bin())
        .args(args)
        .output()
        .expect("mpirun on the PATH (openmpi-bin)")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn single(args: &[String]) {
    let o = Command::new(bin()).args(args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn two_ranks_train_like_two_devices_and_survive_a_killed_rank() {
    let out = scratch("world");
    let steps = 12;
    single(&tiny(&out, "one", steps));
    let mut two = tiny(&out, "two", steps);
    two.extend(["--devices".to_string(), "2".to_string()]);
    single(&two);
    let o = mpirun(2, &tiny(&out, "ranks", steps), &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Rank 0 alone wrote the run: one metrics file, one line per log interval.
    let ranks = losses(&out.join("ranks"));
    assert_eq!(ranks.len(), steps as usize / 2);
    // Two ranks sum the same two shards' gradients as two devices do (a + b either way):
    // the same losses to the bit; against one device, f32 sums in another order.
    assert_eq!(ranks, losses(&out.join("two")));
    for (a, b) in losses(&out.join("one")).iter().zip(&ranks) {
        assert!((a.1 - b.1).abs() <= 1e-4 * a.1.abs(), "{a:?} vs {b:?}");
    }
    // Two ranks of two devices each: four shards.
    let mut four = tiny(&out, "four", steps);
    four.extend(["--devices".to_string(), "2".to_string()]);
    let o = mpirun(2, &four, &[]);
    assert!(o.status.success(), "{}", text(&o));
    for (a, b) in losses(&out.join("one"))
        .iter()
        .zip(&losses(&out.join("four")))
    {
        assert!((a.1 - b.1).abs() <= 1e-4 * a.1.abs(), "{a:?} vs {b:?}");
    }

    // Rank 1 killed (SIGKILL) before its 7th step: the world goes down, the checkpoint of step 4
    // is intact, and --resume on two ranks finishes with the uninterrupted run's losses.
    let o = mpirun(
        2,
        &tiny(&out, "killed", steps),
        &[
            ("MTDIFF_FAULT", "kill-at-step:7"),
            ("MTDIFF_FAULT_RANK", "1"),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let run = out.join("killed");
    let saved: Vec<u64> = mtdiff::checkpoint::list(&run).iter().map(|c| c.0).collect();
    assert_eq!(saved, [4], "{}", text(&o));
    mtdiff::checkpoint::load(&mtdiff::checkpoint::list(&run)[0].1).unwrap();
    let mut resume = tiny(&out, "killed", steps);
    resume.push("--resume".into());
    let o = mpirun(2, &resume, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed from"), "{}", text(&o));
    assert_eq!(losses(&run), ranks);

    // A rank that fails with an error names itself and ends the world.
    let o = mpirun(
        2,
        &tiny(&out, "lost", steps),
        &[
            ("MTDIFF_FAULT", "lose-device:3"),
            ("MTDIFF_FAULT_RANK", "1"),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("rank 1 of 2:"), "{}", text(&o));
}

#[test]
fn more_shards_than_samples_is_refused_on_every_rank() {
    let out = scratch("shards");
    let mut args = tiny(&out, "wide", 4);
    args.extend(["--devices".to_string(), "3".to_string()]);
    let o = mpirun(2, &args, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("2 processes × --devices 3 take more shards than --batch 4"),
        "{}",
        text(&o)
    );
}
