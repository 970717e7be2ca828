//! The kill -9 soak: a tiny training run is killed with SIGKILL again and again — at random
//! moments, and inside a checkpoint's write, just before its rename and just after it (the fault
//! points of `mtdiff::faults`) — and resumed each time. After every kill each checkpoint on disk
//! must load; at the end the run's losses must equal an uninterrupted run's, bit for bit.
//!
//! `MTDIFF_SOAK_KILLS` sets the number of kills (default 20), `MTDIFF_SOAK_SEED` replays a seed
//! (every round prints its seed and what it did). The table of kills, corrupt files and steps lost
//! per kill is printed at the end: `cargo test --release --test soak -- --nocapture`.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{set, strings, tiny_run};

/// The soak run's length while it is being killed: more than 20 rounds can reach. With a
/// constant learning rate nothing depends on it, so the run is finished with `--steps` set to a
/// little past where the kills left it, and the uninterrupted run has that length.
const LONG: u64 = 1_000_000;
const CKPT_EVERY: u64 = 4;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtdiff-cli"))
}

fn args(out: &Path, name: &str, steps: u64) -> Vec<String> {
    let mut a = set(
        tiny_run(out, name, steps),
        "--ckpt-every",
        &CKPT_EVERY.to_string(),
    );
    a.extend(strings(&[
        "--keep",
        "3",
        "--warmup",
        "2",
        "--lr-schedule",
        "constant",
        "--eval",
        "false",
    ]));
    a
}

/// The (step, loss, eps) of each metrics line, as written (JSON numbers compared exactly).
fn losses(run: &Path) -> Vec<(u64, String, String)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["loss"].to_string(),
                v["eps"].to_string(),
            )
        })
        .collect()
}

/// A 64-bit LCG step (Knuth's MMIX constants); the high bits are the draw.
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// How a round ends.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// SIGKILL from outside, this long after the start.
    After(Duration),
    /// SIGKILL from inside at a fault point, the N-th time it is reached.
    At(&'static str, u64),
}

const POINTS: [&str; 3] = [
    "kill-in-checkpoint-write",
    "kill-before-checkpoint-rename",
    "kill-after-checkpoint-rename",
];

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn kill_9_soak_never_corrupts_a_checkpoint_and_resumes_bit_exactly() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let kills: usize = std::env::var("MTDIFF_SOAK_KILLS")
        .ok()
        .map(|v| v.parse().expect("MTDIFF_SOAK_KILLS is a count"))
        .unwrap_or(20);
    let seed: u64 = match std::env::var("MTDIFF_SOAK_SEED") {
        Ok(v) => v.parse().expect("MTDIFF_SOAK_SEED is an unsigned integer"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("soak: seed {seed} (replay with MTDIFF_SOAK_SEED={seed}), {kills} kills");

    let run: PathBuf = out.join("soak");
    let mut state = seed;
    let mut rows = Vec::new();
    let (mut corrupt, mut finished_early) = (0, 0);
    for round in 0..kills {
        let round_seed = state;
        // Half the kills at a random moment (start-up, a step, a log, a checkpoint), half at a
        // fault point in one of the process's first three checkpoint writes.
        let kill = if next(&mut state).is_multiple_of(2) {
            Kill::After(Duration::from_millis(200 + next(&mut state) % 1800))
        } else {
            let point = POINTS[(next(&mut state) % 3) as usize];
            Kill::At(point, 1 + next(&mut state) % 3)
        };
        let mut a = args(&out, "soak", LONG);
        a.push(if mtdiff::checkpoint::list(&run).is_empty() {
            "--overwrite".into()
        } else {
            "--resume".into()
        });
        let mut cmd = bin();
        cmd.args(&a).stdout(Stdio::null()).stderr(Stdio::null());
        if let Kill::At(point, n) = kill {
            cmd.env(mtdiff::faults::ENV, format!("{point}:{n}"));
        }
        let mut child = cmd.spawn().unwrap();
        let status = match kill {
            Kill::After(delay) => {
                let status = wait_with_timeout(&mut child, delay);
                if status.is_none() {
                    child.kill().unwrap(); // SIGKILL
                }
                status.unwrap_or_else(|| child.wait().unwrap())
            }
            Kill::At(..) => wait_with_timeout(&mut child, Duration::from_secs(300))
                .unwrap_or_else(|| panic!("round {round} (seed {seed}): no kill in 300 s")),
        };
        let killed = status.signal() == Some(9);
        if !killed {
            assert!(status.success(), "round {round} (seed {seed}): {status}");
            finished_early += 1;
        }
        // Every checkpoint on disk loads; the steps logged past the newest one are lost.
        let ckpts = mtdiff::checkpoint::list(&run);
        for (step, path) in &ckpts {
            match mtdiff::checkpoint::load(path) {
                Ok(c) if c.meta.step == *step => {}
                Ok(c) => panic!("{}: step {} inside", path.display(), c.meta.step),
                Err(e) => {
                    corrupt += 1;
                    eprintln!("soak: round {round}: CORRUPT {}: {e}", path.display());
                }
            }
        }
        let newest = ckpts.last().map_or(0, |c| c.0);
        let logged = losses(&run).last().map_or(0, |l| l.0);
        let lost = logged.saturating_sub(newest);
        eprintln!(
            "soak: round {round:2} seed {round_seed:20}: {kill:?} -> {}, checkpoints {:?}, \
             logged to step {logged}, lost {lost}",
            if killed { "killed" } else { "finished" },
            ckpts.iter().map(|c| c.0).collect::<Vec<_>>()
        );
        rows.push((kill, killed, lost));
        if !killed {
            break;
        }
    }

    // Resumed to a little past the newest checkpoint, the losses are those of an uninterrupted
    // run of that length to the last bit.
    let end = mtdiff::checkpoint::list(&run).last().map_or(0, |c| c.0) + 2 * CKPT_EVERY;
    for (name, resume) in [("soak", true), ("reference", false)] {
        let mut a = args(&out, name, end);
        if resume {
            a.push("--resume".into());
        }
        let done = bin().args(&a).stdout(Stdio::null()).output().unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    let (want, got) = (losses(&out.join("reference")), losses(&run));

    let killed: Vec<_> = rows.iter().filter(|r| r.1).collect();
    let max_lost = killed.iter().map(|r| r.2).max().unwrap_or(0);
    let mean_lost = killed.iter().map(|r| r.2 as f64).sum::<f64>() / killed.len().max(1) as f64;
    let by_kind = |f: &dyn Fn(&Kill) -> bool| killed.iter().filter(|r| f(&r.0)).count();
    eprintln!("soak: seed {seed}");
    eprintln!(
        "| kills | at random moments | in a checkpoint write | before its rename | after it | \
         corrupt files | logged steps lost per kill (mean / max) | losses equal |"
    );
    eprintln!(
        "| {} | {} | {} | {} | {} | {corrupt} | {mean_lost:.1} / {max_lost} (interval {CKPT_EVERY}) | {} |",
        killed.len(),
        by_kind(&|k| matches!(k, Kill::After(_))),
        by_kind(&|k| matches!(k, Kill::At(p, _) if *p == POINTS[0])),
        by_kind(&|k| matches!(k, Kill::At(p, _) if *p == POINTS[1])),
        by_kind(&|k| matches!(k, Kill::At(p, _) if *p == POINTS[2])),
        want == got
    );
    assert_eq!(corrupt, 0, "seed {seed}: corrupt checkpoints");
    assert_eq!(
        finished_early, 0,
        "seed {seed}: the run ended before its kills"
    );
    assert!(
        max_lost <= CKPT_EVERY,
        "seed {seed}: a kill lost {max_lost} steps, more than one checkpoint interval"
    );
    assert_eq!(want.len(), (end / 2) as usize);
    assert_eq!(
        want, got,
        "seed {seed}: the resumed run's losses differ from the uninterrupted run's"
    );
}
