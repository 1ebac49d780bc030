//! The `aiguillage` binary: the built-in connector kinds and the standard CLI
//! (`aiguillage --help`).

fn main() -> std::process::ExitCode {
    aiguillage::Gateway::builtin().main()
}
