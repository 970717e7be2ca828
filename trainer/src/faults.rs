//! Fault injection for the crash tests (the kill -9 soak, the lost-device test): with
//! `MTDIFF_FAULT=NAME[:N]` in the environment, the N-th time (default: the first) the process
//! reaches the point NAME, the fault happens there. Without the variable nothing happens (one
//! environment look-up per point reached: checkpoint writes and training steps).
//!
//! Points:
//! - `kill-in-checkpoint-write`: SIGKILL with half of a checkpoint's temporary file written;
//! - `kill-before-checkpoint-rename`: SIGKILL with the temporary file written and synced, before
//!   it is renamed over the checkpoint's name;
//! - `kill-after-checkpoint-rename`: SIGKILL right after the rename, before the directory is
//!   synced and older checkpoints are pruned;
//! - `lose-device`: the device is destroyed before training step N (N counts the steps this
//!   process takes), or before `mtdiff sample` generates, as when a driver resets or a GPU falls
//!   off the bus;
//! - `kill-at-step`: SIGKILL before training step N (N counts the steps this process takes).
//!
//! `MTDIFF_FAULT_RANK=R` limits the fault to rank R of an MPI run (the rank the launcher puts in
//! the environment), as when one process of a distributed run dies.

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a fault.
pub const ENV: &str = "MTDIFF_FAULT";

/// The environment variable that limits the fault to one MPI rank.
pub const RANK_ENV: &str = "MTDIFF_FAULT_RANK";

/// How many times the armed point was reached so far.
static REACHED: AtomicU64 = AtomicU64::new(0);

/// True when `name` is the armed point and this is its N-th arrival.
pub fn hit(name: &str) -> bool {
    let Ok(spec) = std::env::var(ENV) else {
        return false;
    };
    let (point, n) = match spec.split_once(':') {
        Some((p, n)) => (p, n.parse::<u64>().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    if let Ok(want) = std::env::var(RANK_ENV) {
        let rank = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
            .iter()
            .find_map(|k| std::env::var(k).ok())
            .unwrap_or_else(|| "0".into());
        if rank != want {
            return false;
        }
    }
    point == name && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == n
}

/// Kills this process with SIGKILL (no destructor, no flush: as `kill -9` from outside) when
/// `name` is hit.
pub fn kill_point(name: &str) {
    if hit(name) {
        kill_self();
    }
}

#[cfg(unix)]
fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid with a signal that cannot be caught.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL returned");
}

#[cfg(not(unix))]
fn kill_self() -> ! {
    std::process::abort()
}
