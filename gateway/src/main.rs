//! The `aiguillage` binary: see `aiguillage --help`.

fn main() -> std::process::ExitCode {
    aiguillage_gateway::cli::main()
}
