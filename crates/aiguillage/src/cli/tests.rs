use super::*;
use std::path::Path;

#[test]
fn check_and_run_read_the_installed_configuration_by_default() {
    // The test process must not carry the variable that would take precedence.
    if std::env::var_os("AIGUILLAGE_CONFIG").is_some() {
        return;
    }
    for verb in ["check", "run"] {
        let cli = Cli::try_parse_from(["aiguillage", verb]).expect("parses");
        let config = match cli.command {
            Command::Check { config } | Command::Run { config } => config,
            other => panic!("{other:?}"),
        };
        assert_eq!(config, PathBuf::from("/etc/aiguillage/gateway.toml"));
    }
    let cli = Cli::try_parse_from(["aiguillage", "check", "--config", "a.toml"]).expect("parses");
    assert!(matches!(cli.command, Command::Check { config } if config == Path::new("a.toml")));
}
