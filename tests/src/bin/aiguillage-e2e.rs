//! The gateway's command line, for the end-to-end tests (see Cargo.toml).

fn main() -> std::process::ExitCode {
    aiguillage::Gateway::builtin().main()
}
