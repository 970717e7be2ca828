//! The `mtdiff` command line built inside the root package, so the integration tests in
//! `tests/` can run it as a process (`CARGO_BIN_EXE_mtdiff-cli`); identical to `trainer`'s
//! `mtdiff` binary.

fn main() -> std::process::ExitCode {
    mtdiff::cli::main()
}
