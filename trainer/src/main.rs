//! `mtdiff`: the command line of the multi-task diffusion trainer.
//! Until the model lands, `demo` runs the engine's own end-to-end demo.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use mtdiff_engine::{Device, DeviceOptions, MatmulStrategy};

/// Multi-task diffusion models on any wgpu adapter.
#[derive(Parser, Debug)]
#[command(name = "mtdiff", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the adapter, backend, limits and features the engine would use.
    Info,
    /// Train a 2-layer MLP on a toy 2-class problem with the engine and print its accuracy.
    Demo {
        /// Training steps.
        #[arg(long, default_value_t = 400)]
        steps: usize,
        /// Hidden units.
        #[arg(long, default_value_t = 32)]
        hidden: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Errors of the `mtdiff` binary.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// An engine call failed.
    #[error(transparent)]
    Engine(#[from] mtdiff_engine::Error),
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Info => {
            let dev = Device::new(DeviceOptions::default())?;
            println!("{}", dev.info());
            let family = match dev.matmul_strategy() {
                MatmulStrategy::RegisterBlocked => "register-blocked (CPU adapter)",
                MatmulStrategy::Tiled => "workgroup-tiled (GPU adapter)",
            };
            println!("matmul kernels: {family}");
        }
        Command::Demo {
            steps,
            hidden,
            seed,
        } => {
            let dev = Device::new(DeviceOptions::default())?;
            println!("adapter: {} ({:?})", dev.info().name, dev.info().backend);
            let t = Instant::now();
            let report =
                mtdiff_engine::demo::train_mlp(&dev, hidden, steps, seed, |step, loss| {
                    println!("step {step:>5}  loss {loss:.4}");
                })?;
            println!(
                "two-moons MLP: test accuracy {:.1} % after {} steps ({:.1} s)",
                100.0 * report.test_accuracy,
                report.steps,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
