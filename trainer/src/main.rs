//! `mtdiff`: the command line of the multi-task diffusion trainer (see `mtdiff::cli`).

fn main() -> std::process::ExitCode {
    mtdiff::cli::main()
}
