use super::*;

#[test]
fn only_close_names_are_suggested() {
    let known: Vec<String> = ["concurrency", "url", "prefetch"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        closest("concurency", &known).as_deref(),
        Some("concurrency")
    );
    assert_eq!(closest("prefech", &known).as_deref(), Some("prefetch"));
    assert_eq!(closest("uri", &known).as_deref(), Some("url"));
    assert_eq!(closest("timeout", &known), None);
    assert_eq!(closest("hots", &["host".into()]).as_deref(), Some("host"));
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn keys_are_located_at_their_line_and_column() {
    let text = "[bus]\nprefetch = 0\n\n[[routes]]\ncommune = 44043\nforms = [\"a\", 3]\n";
    let sources = Sources::parse(text).unwrap();
    let at = |line, column| Some(Location::File { line, column });
    assert_eq!(sources.locate("bus.prefetch", false), at(2, 12));
    assert_eq!(sources.locate("bus.prefetch", true), at(2, 1));
    assert_eq!(sources.locate("routes[0].commune", false), at(5, 11));
    assert_eq!(sources.locate("routes[0].forms[1]", false), at(6, 15));
    // A key the file does not write: the nearest table holding it.
    assert_eq!(sources.locate("routes[0].connector", false), at(4, 1));
    assert_eq!(sources.locate("store.url", false), None);
}

#[test]
fn an_environment_variable_is_named_instead_of_the_file() {
    let mut sources = Sources::parse("[bus]\nprefetch = 4\n").unwrap();
    sources.record_env("bus.prefetch".into(), "AIGUILLAGE__BUS__PREFETCH".into());
    assert_eq!(
        sources.locate("bus.prefetch", false),
        Some(Location::Env("AIGUILLAGE__BUS__PREFETCH".into()))
    );
}

#[test]
fn an_unquoted_corsican_code_is_a_syntax_error_with_the_hint() {
    let errors = Sources::parse("[[routes]]\ncommune = 2A004\n").unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 2);
    assert_eq!(errors[0].excerpt, "commune = 2A004");
    assert!(
        errors[0]
            .message
            .starts_with("un texte doit être entre guillemets"),
        "{errors:?}"
    );
    let hint = errors[0].hint.as_deref().unwrap();
    assert!(hint.contains("commune = \"2A004\""), "{hint}");
    assert!(hint.contains("un code INSEE est un texte"), "{hint}");
    let errors = Sources::parse("communes = [44043, 2A004]\n").unwrap_err();
    let hint = errors[0].hint.as_deref().unwrap();
    assert!(hint.contains("communes = [\"44043\", \"2A004\"]"), "{hint}");
}

#[test]
fn serde_messages_are_told_in_french_with_the_fix() {
    assert_eq!(
        explain(
            "connectors[0].concurency",
            "dans [[connectors]] `clisson-famille`",
            "unknown field `concurency`, expected one of `url`, `method`",
            &["concurrency"],
        ),
        "clé inconnue `concurency` dans [[connectors]] `clisson-famille` ; vouliez-vous dire `concurrency` ?"
    );
    let far = explain(
        "bus.zzz",
        "dans [bus]",
        "unknown field `zzz`, expected `url` or `prefetch`",
        &[],
    );
    assert_eq!(
        far,
        "clé inconnue `zzz` dans [bus] (clés possibles : prefetch, url)"
    );
    let commune = explain(
        "routes[0].commune",
        "",
        "invalid type: integer `44043`, expected a string",
        &[],
    );
    assert!(commune.contains("commune = \"44043\""), "{commune}");
    assert!(commune.contains("zéro initial"), "{commune}");
    let list = explain(
        "routes[0].communes[1]",
        "",
        "invalid type: integer `44043`, expected a string",
        &[],
    );
    assert!(list.contains("les codes INSEE"), "{list}");
    let secret = explain(
        "admin.token",
        "",
        "invalid type: integer `1234`, expected a string",
        &[],
    );
    assert!(!secret.contains("1234"), "{secret}");
    assert_eq!(
        explain(
            "store.max_connections",
            "",
            "invalid type: string \"huit\", expected u32",
            &[]
        ),
        "type incorrect : le texte \"huit\", alors qu'il faut un nombre entier positif"
    );
}

#[test]
fn each_bad_key_of_a_table_is_reported() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Table {
        name: String,
        #[serde(default)]
        size: u32,
    }
    let mut problems = Vec::new();
    let value = serde_json::json!({"name": "a", "size": "big", "sise": 1, "colour": 2});
    let table: Option<Table> = deserialize_each(value, "t[0]", "dans [[t]]", &mut problems);
    let table = table.unwrap();
    assert_eq!((table.name.as_str(), table.size), ("a", 0));
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys.len(), 3, "{problems:?}");
    for key in ["t[0].size", "t[0].sise", "t[0].colour"] {
        assert!(keys.contains(&key), "{key} in {problems:?}");
    }
    // A required key with a wrong value: told once, not again as missing.
    let mut problems = Vec::new();
    let table: Option<Table> =
        deserialize_each(serde_json::json!({"name": 3}), "t[0]", "", &mut problems);
    assert!(table.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
}
