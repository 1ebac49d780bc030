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

/// Issue #17: what `aiguillage history` and `aiguillage dead` tell the operator is French.
#[test]
fn history_and_dead_words_are_french() {
    use aiguillage_connector::testkit::assert_french;
    use aiguillage_gateway::operator::history::{AttemptError, Delivery, DiscardRecord};
    let delivery = |connector: &str, status: &str| Delivery {
        envelope_id: "env-1".into(),
        display_id: Some("00042".into()),
        connector: connector.into(),
        commune: "75056".into(),
        form: "acte-naissance".into(),
        status: status.into(),
        attempts: 3,
        reference: Some("REF-9".into()),
        last_error: Some("le serveur ne répond pas".into()),
        first_seen_at: "2026-01-02T03:04:05Z".into(),
        updated_at: "2026-01-02T04:04:05Z".into(),
        errors: vec![AttemptError {
            attempt: 1,
            error: "le serveur ne répond pas".into(),
            at: "2026-01-02T03:04:05Z".into(),
        }],
        discards: vec![DiscardRecord {
            reason: "doublon".into(),
            by: "agent".into(),
            at: "2026-01-02T05:04:05Z".into(),
        }],
    };
    let text = render_history(&[
        delivery("etat-civil", "dead"),
        delivery(dead::UNROUTED, "unrouted"),
    ]);
    for line in text.lines() {
        assert_french(line);
    }
    assert!(
        text.contains("tentative 1 échouée : le serveur ne répond pas"),
        "{text}"
    );
    assert!(text.contains("abandonnée par agent : doublon"), "{text}");
    assert!(
        text.contains("après 3 tentatives, référence REF-9"),
        "{text}"
    );

    let words = Words::of(Held::DeadLetters);
    assert_french(words.none);
    for n in [0, 1, 3] {
        let line = format!(
            "{} {}{}",
            (words.count)(n),
            words.replayed,
            (words.skipped)(n)
        );
        assert_french(&line);
        assert_french(&format!(
            "{} {} agent",
            (words.count)(n),
            words.discarded_by
        ));
    }
    assert_eq!((words.count)(1), "1 lettre morte");
    assert_eq!((words.count)(2), "2 lettres mortes");
    assert_french(&(words.missing)("aiguillage.dead"));
    assert_french(&(words.unknown_id)("abc"));
    let letter = dead::DeadLetter {
        id: "abc".into(),
        commune: "75056".into(),
        form: "acte-naissance".into(),
        connector: "etat-civil".into(),
        status: "dead".into(),
        reason: "le serveur ne répond pas".into(),
        attempts: 1,
        dead_at: None,
        age: None,
        age_seconds: None,
        errors: Vec::new(),
        routing_key: "demarche.75056.acte-naissance".into(),
        readable: true,
    };
    assert_french(&progress_line(words.replayed_each, Progress::Done(&letter)));
    assert_french(&progress_line(
        words.discarded,
        Progress::Skipped(&letter, "déjà livrée"),
    ));
    assert_french(&(words.table)(std::slice::from_ref(&letter)));
}
