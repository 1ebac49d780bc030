//! `aiguillage check`: every kind of configuration error is refused with a message that
//! names the file (with the line and column, or the environment variable), the key and the
//! fix, in French: the operator reads them.

use std::path::PathBuf;
use std::process::Command;

struct Checked {
    code: i32,
    stdout: String,
    stderr: String,
    file: PathBuf,
}

fn check(toml: &str, env: &[(&str, &str)]) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, toml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_aiguillage"));
    command.arg("check").arg("--config").arg(&file);
    for (key, _) in std::env::vars() {
        if key.starts_with("AIGUILLAGE") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    // Keep the directory alive until the command has run.
    drop(dir);
    Checked {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        file,
    }
}

const VALID: &str = r#"
[bus]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"

[store]
url = "sqlite://aiguillage.db"

[[connectors]]
name = "clisson-famille"
kind = "rest"
url = "http://127.0.0.1:8081/factures"

[[routes]]
commune = "44043"
forms = ["inscription-*"]
connector = "clisson-famille"
"#;

fn assert_refused(checked: &Checked, key: &str, fix: &str) {
    assert_eq!(checked.code, 1, "exit code; stderr: {}", checked.stderr);
    let line = checked
        .stderr
        .lines()
        .find(|line| line.contains(&format!("`{key}`")))
        .unwrap_or_else(|| panic!("no line names `{key}`:\n{}", checked.stderr));
    assert!(
        line.contains(&checked.file.display().to_string()),
        "the line names the file: {line}"
    );
    assert!(line.contains(fix), "the line says `{fix}`: {line}");
}

#[test]
fn a_valid_configuration_passes() {
    let checked = check(VALID, &[]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert!(
        checked.stdout.contains("valide (1 connecteur, 1 route)"),
        "{}",
        checked.stdout
    );
}

#[test]
fn an_unknown_connector_kind_lists_the_known_ones() {
    let checked = check(&VALID.replace("kind = \"rest\"", "kind = \"soap\""), &[]);
    assert_refused(
        &checked,
        "connectors[0].kind",
        "type de connecteur inconnu `soap` (connus : etat-civil/cityweb, facturation/pes, file-drop, rest, urbanisme/dossier, webhook)",
    );
}

#[test]
fn a_route_to_an_unknown_connector_names_the_defined_ones() {
    let checked = check(
        &VALID.replace(
            "connector = \"clisson-famille\"",
            "connector = \"clisson-familles\"",
        ),
        &[],
    );
    assert_refused(
        &checked,
        "routes[0].connector",
        "aucun connecteur nommé `clisson-familles` (définis : clisson-famille)",
    );
}

#[test]
fn a_bad_target_url_is_refused() {
    let checked = check(
        &VALID.replace("http://127.0.0.1:8081/factures", "htp//127.0.0.1/factures"),
        &[],
    );
    assert_refused(&checked, "connectors[0].url", "http");
}

#[test]
fn a_bad_bus_url_shows_the_expected_shape() {
    let checked = check(
        &VALID.replace(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "http://127.0.0.1:5672",
        ),
        &[],
    );
    assert_refused(&checked, "bus.url", "amqp://user:password@host:5672/%2f");
}

#[test]
fn a_missing_secret_says_how_to_give_it() {
    let toml = VALID.replace(
        "url = \"http://127.0.0.1:8081/factures\"",
        "url = \"http://127.0.0.1:8081/factures\"\nauth = { type = \"bearer\" }",
    );
    let checked = check(&toml, &[]);
    assert_refused(&checked, "connectors[0].auth.token", "token_file");
}

#[test]
fn an_unreadable_secret_file_names_the_path() {
    let toml = VALID.replace(
        "url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"",
        "url = \"amqp://guest@127.0.0.1:5672/%2f\"\npassword_file = \"/nonexistent/rabbitmq-password\"",
    );
    let checked = check(&toml, &[]);
    assert_refused(
        &checked,
        "bus.password_file",
        "/nonexistent/rabbitmq-password",
    );
}

#[test]
fn a_misspelt_key_is_refused() {
    let checked = check(
        &VALID
            .replace("prefetch", "x")
            .replace("[bus]", "[bus]\nprefech = 10"),
        &[],
    );
    assert_eq!(checked.code, 1);
    assert!(
        checked
            .stderr
            .contains("clé inconnue `prefech` dans [bus] ; vouliez-vous dire `prefetch` ?"),
        "{}",
        checked.stderr
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = VALID
        .replace("kind = \"rest\"", "kind = \"soap\"")
        .replace("\"44043\"", "\"Clisson\"");
    let checked = check(&toml, &[]);
    assert!(
        checked.stderr.contains("a 2 problèmes"),
        "{}",
        checked.stderr
    );
    assert_refused(&checked, "routes[0].commune", "INSEE");
}

#[test]
fn the_environment_overrides_keys_and_is_checked_too() {
    let checked = check(VALID, &[("AIGUILLAGE__BUS__PREFETCH", "0")]);
    assert_refused(&checked, "bus.prefetch", "au moins 1");
    let checked = check(
        VALID,
        &[("AIGUILLAGE__CONNECTORS__CLISSON_FAMILLE__URL", "ftp://x")],
    );
    assert_refused(&checked, "connectors[0].url", "http");
    let checked = check(VALID, &[("AIGUILLAGE__CONNECTORS__0__CONCURRENCY", "8")]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    // Digits stay text where the file has text (an INSEE code), and secrets stay text.
    let checked = check(VALID, &[("AIGUILLAGE__ROUTES__0__COMMUNE", "44064")]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let with_auth = VALID.replace(
        "url = \"http://127.0.0.1:8081/factures\"",
        "url = \"http://127.0.0.1:8081/factures\"\nauth = { type = \"bearer\" }",
    );
    let checked = check(
        &with_auth,
        &[("AIGUILLAGE__CONNECTORS__0__AUTH__TOKEN", "123456")],
    );
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let checked = check(VALID, &[("AIGUILLAGE__CONNECTORS__NOPE__URL", "http://x")]);
    assert_refused(
        &checked,
        "AIGUILLAGE__CONNECTORS__NOPE__URL",
        "aucune entrée [[connectors]] `NOPE`",
    );
}

#[test]
fn a_missing_file_says_how_to_give_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_aiguillage"))
        .args(["check", "--config", "/nonexistent/gateway.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/gateway.toml") && stderr.contains("--config"),
        "{stderr}"
    );
}

#[test]
fn an_admin_server_open_to_the_network_needs_a_token() {
    let open = format!("{VALID}\n[admin]\nlisten = \"0.0.0.0:9464\"\n");
    let checked = check(&open, &[]);
    assert_refused(&checked, "admin.listen", "n'est pas une adresse locale");
    assert_refused(&checked, "admin.listen", "définissez `admin.token_file`");

    let with_token = format!("{open}token = \"0123456789abcdef0123456789abcdef\"\n");
    let checked = check(&with_token, &[]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);

    // The environment can open it too, and is checked the same way.
    let checked = check(VALID, &[("AIGUILLAGE__ADMIN__LISTEN", "0.0.0.0:9464")]);
    assert_refused(&checked, "admin.listen", "n'est pas une adresse locale");

    let loopback = format!("{VALID}\n[admin]\nlisten = \"[::1]:9464\"\n");
    assert_eq!(check(&loopback, &[]).code, 0);
}

#[test]
fn admin_keys_are_checked() {
    let checked = check(
        &format!("{VALID}\n[admin]\nlisten = \"localhost:9464\"\n"),
        &[],
    );
    assert_refused(&checked, "admin.listen", "écrivez IP:port");
    let checked = check(&format!("{VALID}\n[admin]\ntoken = \"s3cr3t\"\n"), &[]);
    assert_refused(&checked, "admin.token", "au moins 16 caractères");
    assert!(!checked.stderr.contains("s3cr3t"), "{}", checked.stderr);
    let checked = check(
        &format!("{VALID}\n[admin]\ntoken_file = \"/nonexistent/admin-token\"\n"),
        &[],
    );
    assert_refused(&checked, "admin.token_file", "/nonexistent/admin-token");
    let checked = check(&format!("{VALID}\n[admin]\ntoken = 1234567890123\n"), &[]);
    assert_refused(&checked, "admin.token", "non affichée : c'est un secret");
    assert!(
        !checked.stderr.contains("1234567890123"),
        "{}",
        checked.stderr
    );
}

#[test]
fn a_secret_written_as_a_number_is_not_quoted() {
    let toml = VALID.replace(
        "url = \"http://127.0.0.1:8081/factures\"",
        "url = \"http://127.0.0.1:8081/factures\"\nauth = { type = \"bearer\", token = 987654321 }",
    );
    let checked = check(&toml, &[]);
    assert_eq!(checked.code, 1);
    assert!(!checked.stderr.contains("987654321"), "{}", checked.stderr);
    assert!(
        checked.stderr.contains("non affichée : c'est un secret"),
        "{}",
        checked.stderr
    );
}

/// The line of stderr about `key`.
fn line_of<'a>(checked: &'a Checked, key: &str) -> &'a str {
    checked
        .stderr
        .lines()
        .find(|line| line.contains(&format!("`{key}`")))
        .unwrap_or_else(|| panic!("no line names `{key}`:\n{}", checked.stderr))
}

/// Asserts that the problem of `key` is located at `line:column` of the file and says `fix`.
fn assert_at(checked: &Checked, key: &str, line: usize, column: usize, fix: &str) {
    let found = line_of(checked, key);
    let at = format!("{}:{line}:{column}: `{key}`", checked.file.display());
    assert!(found.contains(&at), "`{at}` expected in: {found}");
    assert!(found.contains(fix), "`{fix}` expected in: {found}");
}

#[test]
fn every_problem_of_every_section_is_located_in_one_pass() {
    // Line numbers matter: each problem is asserted at its line and column.
    let toml = r#"[bus]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
prefech = 10

[store]
max_connections = "huit"

[[connectors]]
name = "clisson-famille"
kind = "rest"
url = "http://127.0.0.1:8081/factures"
concurency = 4
timout = "5s"

[[connectors]]
name = "gorges-etat-civil"
kind = "soap"

[[connectors]]
name = "gorges-famille"
kind = "rest"
url = "http://127.0.0.1:8082/factures"
retry = { max_atempts = 3 }

[[routes]]
commune = 44043
forms = ["inscription-*"]
connector = "clisson-famille"

[[routes]]
commune = "44064"
forms = ["inscription-*"]
connector = "gorges-familles"

[[routes]]
commune = "44064"
forms = ["inscription-*"]
connector = "gorges-famille"
"#;
    let checked = check(toml, &[]);
    assert_eq!(checked.code, 1, "{}", checked.stderr);
    assert!(
        checked.stderr.contains("a 8 problèmes"),
        "{}",
        checked.stderr
    );
    assert_at(
        &checked,
        "bus.prefech",
        3,
        1,
        "clé inconnue `prefech` dans [bus] ; vouliez-vous dire `prefetch` ?",
    );
    assert_at(
        &checked,
        "store.max_connections",
        6,
        19,
        "type incorrect : le texte \"huit\", alors qu'il faut un nombre entier positif",
    );
    assert_at(
        &checked,
        "connectors[0].concurency",
        12,
        1,
        "clé inconnue `concurency` dans [[connectors]] `clisson-famille` ; vouliez-vous dire `concurrency` ?",
    );
    // The second misspelt key of the same connector is found in the same pass.
    assert_at(
        &checked,
        "connectors[0].timout",
        13,
        1,
        "vouliez-vous dire `timeout` ?",
    );
    assert_at(
        &checked,
        "connectors[1].kind",
        17,
        8,
        "type de connecteur inconnu `soap`",
    );
    assert_at(
        &checked,
        "connectors[2].retry.max_atempts",
        23,
        11,
        "clé inconnue `max_atempts` dans [connectors.retry] ; vouliez-vous dire `max_attempts` ?",
    );
    assert_at(
        &checked,
        "routes[0].commune",
        26,
        11,
        "mettez le code INSEE entre guillemets",
    );
    let commune = line_of(&checked, "routes[0].commune");
    assert!(commune.contains("commune = \"44043\""), "{commune}");
    assert!(
        commune.contains("\"01001\" perdrait son zéro initial"),
        "{commune}"
    );
    assert_at(
        &checked,
        "routes[1].connector",
        33,
        13,
        "aucun connecteur nommé `gorges-familles`",
    );
}

#[test]
fn a_key_far_from_any_known_one_lists_the_known_ones() {
    let checked = check(&format!("{VALID}\n[shutdown]\ncouleur = \"bleu\"\n"), &[]);
    let line = line_of(&checked, "shutdown.couleur");
    assert!(
        line.contains("clé inconnue `couleur` dans [shutdown] (clés possibles : grace)"),
        "{line}"
    );
    assert!(!line.contains("vouliez-vous dire"), "{line}");
    let checked = check(&format!("[buss]\nprefetch = 1\n{VALID}"), &[]);
    assert_at(
        &checked,
        "buss",
        1,
        1,
        "section inconnue `buss` ; vouliez-vous dire `bus` ?",
    );
}

#[test]
fn a_value_from_the_environment_names_its_variable() {
    let checked = check(VALID, &[("AIGUILLAGE__BUS__PREFETCH", "0")]);
    let line = line_of(&checked, "bus.prefetch");
    assert!(
        line.contains("(variable d'environnement AIGUILLAGE__BUS__PREFETCH): `bus.prefetch` : doit valoir au moins 1"),
        "{line}"
    );
    let checked = check(
        VALID,
        &[("AIGUILLAGE__CONNECTORS__CLISSON_FAMILLE__URL", "ftp://x")],
    );
    let line = line_of(&checked, "connectors[0].url");
    assert!(
        line.contains("(variable d'environnement AIGUILLAGE__CONNECTORS__CLISSON_FAMILLE__URL)"),
        "{line}"
    );
    // The same key from the file is located in the file.
    let checked = check(
        &VALID.replace("http://127.0.0.1:8081/factures", "ftp://x"),
        &[],
    );
    let line = line_of(&checked, "connectors[0].url");
    assert!(!line.contains("variable d'environnement"), "{line}");
    assert!(
        line.contains(&format!("{}:11:7:", checked.file.display())),
        "{line}"
    );
}

#[test]
fn a_toml_syntax_error_shows_the_line_and_the_place() {
    let toml = VALID.replace("forms = [\"inscription-*\"]", "forms = [\"inscription-*\"");
    let checked = check(&toml, &[]);
    assert_eq!(checked.code, 1, "{}", checked.stderr);
    assert!(
        checked.stderr.contains("n'est pas du TOML valide"),
        "{}",
        checked.stderr
    );
    assert!(
        checked.stderr.contains(&format!(
            "{}:16:1: syntaxe TOML invalide : virgule manquante entre deux éléments de la liste",
            checked.file.display()
        )),
        "{}",
        checked.stderr
    );
    assert!(
        checked
            .stderr
            .contains("n'est pas du TOML valide (1 erreur)")
            && checked
                .stderr
                .contains("16 | connector = \"clisson-famille\""),
        "{}",
        checked.stderr
    );
}

#[test]
fn an_unquoted_corsican_code_is_a_syntax_error_with_the_quoting_hint() {
    let toml = VALID.replace("commune = \"44043\"", "commune = 2A004");
    let checked = check(&toml, &[]);
    assert_eq!(checked.code, 1, "{}", checked.stderr);
    assert!(
        checked
            .stderr
            .contains(&format!("{}:14:11:", checked.file.display())),
        "{}",
        checked.stderr
    );
    assert!(
        checked.stderr.contains("14 | commune = 2A004"),
        "{}",
        checked.stderr
    );
    assert!(
        checked
            .stderr
            .contains("mettez le code INSEE entre guillemets, un code INSEE est un texte")
            && checked.stderr.contains("commune = \"2A004\""),
        "{}",
        checked.stderr
    );
}

#[test]
fn a_misspelt_key_in_a_table_of_a_connector_kind_is_suggested() {
    let toml = r#"[[connectors]]
name = "clisson-depot"
kind = "file-drop"
directory = "/srv/import"
sftp = { hots = "sftp.clisson.fr", user = "aiguillage" }

[[routes]]
commune = "44043"
forms = ["inscription-*"]
connector = "clisson-depot"
"#;
    let checked = check(toml, &[]);
    assert_at(
        &checked,
        "connectors[0].sftp.hots",
        5,
        10,
        "clé inconnue `hots` dans [connectors.sftp] ; vouliez-vous dire `host` ?",
    );
}
