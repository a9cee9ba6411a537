//! The `orch` command line: parse, run, map the outcome to an exit status.

fn main() -> std::process::ExitCode {
    orch::cli::main()
}
