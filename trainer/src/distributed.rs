//! Data parallelism across processes: the MPI world `mtdiff train` runs in when an MPI launcher
//! (`mpirun -n K`, `srun --mpi=pmix`) starts it, through rsmpi (cargo feature `mpi`; the default
//! build has no MPI and runs as a world of one).
//!
//! Rank r of K with N devices each trains on shards r·N … r·N + N − 1 of the K·N shards of every
//! global batch; the flat gradients are summed on each rank's host, then across ranks with one
//! `MPI_Allreduce` (sum) of the flat f32 buffer. Rank 0 alone writes logs, metrics, samples and
//! checkpoints and broadcasts its starting state (fresh or resumed), so every rank starts from
//! the same parameters; their equality is checked (a hash per rank) before every checkpoint.
//! An MPI error aborts the world (MPI's default error handler), so the collectives return nothing
//! to check.

use crate::error::{Error, Result};

/// The processes of one training run.
pub struct World {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<(
        mpi::environment::Universe,
        mpi::topology::SimpleCommunicator,
    )>,
}

/// The number of processes an MPI launcher started, from its environment (Open MPI's
/// `mpirun`, MPICH's Hydra, Slurm with PMIx); `None` outside a launcher.
pub fn launched_size() -> Option<usize> {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    var("OMPI_COMM_WORLD_SIZE")
        .or_else(|| var("PMI_SIZE"))
        .or_else(|| std::env::var_os("PMIX_RANK").and_then(|_| var("SLURM_NTASKS")))
}

impl World {
    /// A world of one process (no MPI).
    pub fn single() -> World {
        World {
            rank: 0,
            size: 1,
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// The world this process belongs to: MPI's when a launcher started more than one process,
    /// else a world of one. An error when a launcher started several but this build has no MPI.
    #[cfg_attr(feature = "mpi", allow(unused_variables))]
    pub fn detect() -> Result<World> {
        let Some(size) = launched_size().filter(|&n| n > 1) else {
            return Ok(World::single());
        };
        #[cfg(feature = "mpi")]
        {
            use mpi::traits::Communicator;
            let universe = mpi::initialize().ok_or_else(|| {
                Error::Usage("MPI was already initialised in this process".into())
            })?;
            let comm = universe.world();
            Ok(World {
                rank: comm.rank() as usize,
                size: comm.size() as usize,
                mpi: Some((universe, comm)),
            })
        }
        #[cfg(not(feature = "mpi"))]
        Err(Error::Usage(format!(
            "an MPI launcher started {size} mtdiff processes, but this mtdiff was built without \
             MPI: build it with `cargo build --release -p mtdiff --features mpi` (needs an MPI \
             library and libclang, e.g. Debian's libopenmpi-dev and libclang-dev), or run one \
             process (with --devices N for several devices)"
        )))
    }

    /// This process's rank, 0 ≤ rank < size.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this process writes the run's files (rank 0).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Replaces `values` on every rank by their element-wise sum over the ranks.
    #[cfg_attr(not(feature = "mpi"), allow(unused_variables))]
    pub fn sum(&self, values: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if let Some((_, comm)) = &self.mpi {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            for chunk in values.chunks_mut(MAX_COUNT) {
                let send = chunk.to_vec();
                comm.all_reduce_into(&send[..], chunk, SystemOperation::sum());
            }
        }
    }

    /// Replaces `values` on every rank by rank 0's (the same length everywhere).
    #[cfg_attr(not(feature = "mpi"), allow(unused_variables))]
    pub fn broadcast(&self, values: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if let Some((_, comm)) = &self.mpi {
            use mpi::traits::{Communicator, Root};
            let root = comm.process_at_rank(0);
            for chunk in values.chunks_mut(MAX_COUNT) {
                root.broadcast_into(chunk);
            }
        }
    }

    /// Replaces `value` on every rank by rank 0's.
    #[cfg_attr(not(feature = "mpi"), allow(unused_variables))]
    pub fn broadcast_u64(&self, value: &mut u64) {
        #[cfg(feature = "mpi")]
        if let Some((_, comm)) = &self.mpi {
            use mpi::traits::{Communicator, Root};
            comm.process_at_rank(0).broadcast_into(value);
        }
    }

    /// Whether every rank passed the same `value`.
    #[cfg_attr(not(feature = "mpi"), allow(unused_variables))]
    pub fn all_equal(&self, value: u64) -> bool {
        #[cfg(feature = "mpi")]
        if let Some((_, comm)) = &self.mpi {
            use mpi::collective::CommunicatorCollectives;
            let mut all = vec![0u64; self.size];
            comm.all_gather_into(&value, &mut all[..]);
            return all.iter().all(|&v| v == value);
        }
        true
    }

    /// Ends every process of the world (MPI_Abort) after this one failed, so that none waits
    /// forever in a collective; returns in a world of one.
    pub fn abort_others(&self) {
        #[cfg(feature = "mpi")]
        if let Some((_, comm)) = &self.mpi {
            use mpi::traits::Communicator;
            comm.abort(1);
        }
    }

    /// "rank r of K: " in a world of several, else nothing (a prefix for messages).
    pub fn prefix(&self) -> String {
        if self.size > 1 {
            format!("rank {} of {}: ", self.rank, self.size)
        } else {
            String::new()
        }
    }
}

/// Elements per MPI call (its counts are C ints).
#[cfg(feature = "mpi")]
const MAX_COUNT: usize = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_of_one_sums_and_broadcasts_to_itself() {
        let w = World::single();
        let mut v = vec![1.0, 2.5];
        w.sum(&mut v);
        w.broadcast(&mut v);
        assert_eq!(v, [1.0, 2.5]);
        assert!(w.all_equal(7) && w.is_root() && w.prefix().is_empty());
    }
}
