//! The `[publik]` section as the gateway loads it from its configuration file: every
//! problem named by its key, triggers and portals read as written.

use std::collections::HashMap;

use aiguillage_connector_file_drop::FileDropConfig;
use aiguillage_gateway::config::Config;
use aiguillage_gateway::registry::Registry;
use aiguillage_publik::config::{summary, webhook_keys, PublikConfig, Trigger};

/// The kinds these configurations use (the file-drop connector only).
fn registry() -> Registry {
    Registry::default().with::<FileDropConfig>()
}

fn problems(publik: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[[connectors]]\nname = \"a\"\nkind = \"file-drop\"\ndirectory = \"{}\"\n\n[[routes]]\ncommune = \"44043\"\nforms = [\"x\"]\nconnector = \"a\"\n\n{publik}",
            dir.path().display()
        ),
    )
    .unwrap();
    match Config::load_with_env(&path, &HashMap::new(), &registry()) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems()
            .iter()
            .map(|p| (p.key.clone(), p.message.clone()))
            .collect(),
    }
}

#[test]
fn a_valid_publik_section_loads_and_is_off_by_default() {
    assert!(problems("").is_empty());
    assert_eq!(summary(&PublikConfig::default()), None);
    assert!(problems(
        "[publik.intake]\nenabled = true\n\n[[publik.portals]]\nname = \"csm\"\norig = \"csm\"\nsecret = \"k\"\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"44043\"\n"
    )
    .is_empty());
}

fn load(publik: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[[connectors]]\nname = \"a\"\nkind = \"file-drop\"\ndirectory = \"{}\"\n\n[[routes]]\ncommune = \"44043\"\nforms = [\"x\"]\nconnector = \"a\"\n\n{publik}",
            dir.path().display()
        ),
    )
    .unwrap();
    Config::load_with_env(&path, &HashMap::new(), &registry()).unwrap()
}

const PORTAL: &str =
    "[[publik.portals]]\nname = \"csm\"\nurl = \"https://p.invalid/\"\nsecret = \"k\"\n";

#[test]
fn a_trigger_is_a_jump_by_default_or_a_global_hook() {
    let config = load(&format!(
        "{PORTAL}orig = \"csm\"\n\n[publik.portals.notify]\nenabled = true\ntriggers = {{ delivered = \"transmis\", rejected = {{ hook = \"refus\" }}, dead = {{ jump = \"echec\" }} }}\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"44043\"\n"
    ));
    let triggers = &config.publik.portals[0].forms["f"].triggers;
    assert_eq!(triggers.get("delivered"), Some(&Trigger::jump("transmis")));
    assert_eq!(triggers.get("rejected"), Some(&Trigger::hook("refus")));
    assert_eq!(triggers.get("dead"), Some(&Trigger::jump("echec")));
    for (written, expected) in [
        (
            "{ hok = \"refus\" }",
            "clé inconnue `hok` dans un déclencheur",
        ),
        (
            "{ hook = \"a\", jump = \"b\" }",
            "`jump` ou `hook`, pas les deux",
        ),
        ("{}", "déclencheur vide"),
    ] {
        let found = problems(&format!(
            "{PORTAL}orig = \"csm\"\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"44043\"\ntriggers = {{ rejected = {written} }}\n"
        ));
        assert!(
            found.iter().any(|(_, message)| message.contains(expected)),
            "{written}: {found:?}"
        );
    }
}

#[test]
fn a_portal_may_sign_its_webhooks_with_several_origs() {
    let config = load(&format!(
        "{PORTAL}orig = [\"portail.agglo.invalid\", \"wcs.agglo.invalid\"]\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"44043\"\n"
    ));
    assert_eq!(
        config.publik.portals[0].origs,
        ["portail.agglo.invalid", "wcs.agglo.invalid"]
    );
    let keys = webhook_keys(&config.publik.portals);
    assert!(keys.contains_key("portail.agglo.invalid") && keys.contains_key("wcs.agglo.invalid"));
    let empty = problems(&format!(
        "{PORTAL}orig = []\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"44043\"\n"
    ));
    assert!(
        empty.iter().any(|(key, _)| key == "publik.portals[0].orig"),
        "{empty:?}"
    );
    let twice = problems(&format!(
        "{PORTAL}orig = [\"a.invalid\", \"a.invalid\"]\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"44043\"\n"
    ));
    assert!(
        twice
            .iter()
            .any(|(key, message)| key == "publik.portals[0].orig"
                && message.contains("`a.invalid` est donné deux fois")),
        "{twice:?}"
    );
}

#[test]
fn each_problem_of_the_publik_section_names_its_key() {
    let found = problems(
        "[publik.intake]\nenabled = true\nlisten = \"nowhere\"\n\n[[publik.portals]]\nname = \"Clisson Sèvre\"\norig = \"csm\"\ntimezone = \"Mars/Olympus\"\n\n[publik.portals.notify]\nenabled = true\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = \"Clisson\"\n\n[[publik.portals.forms]]\nslug = \"g\"\ncommune = \"44043\"\ncommune_field = \"commune\"\n",
    );
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "publik.intake.listen",
        "publik.portals[0].name",
        "publik.portals[0].secret",
        "publik.portals[0].timezone",
        "publik.portals[0].url",
        "publik.portals[0].forms[0].commune",
        "publik.portals[0].forms[1].commune",
    ] {
        assert!(keys.contains(&key), "{key} not in {found:?}");
    }
}

#[test]
fn a_form_commune_written_as_a_number_gets_one_quoting_hint() {
    let found = problems(
        "[[publik.portals]]\nname = \"csm\"\norig = \"csm\"\nsecret = \"k\"\n\n[[publik.portals.forms]]\nslug = \"f\"\ncommune = 44043\n",
    );
    let commune: Vec<&(String, String)> = found
        .iter()
        .filter(|(key, _)| key == "publik.portals[0].forms[0].commune")
        .collect();
    assert_eq!(commune.len(), 1, "{found:?}");
    assert!(commune[0].1.contains("commune = \"44043\""), "{found:?}");
}
