//! Every message of a mapping that the operator or a commune agent reads is French: the
//! errors of a mapping file (`aiguillage check`, `aiguillage map`, the gateway's start), the
//! refusals of a démarche by its mapping (a dead letter's reason, a status event's
//! `error`), and the store's failures that reach a reason. A catalogue of broken mappings
//! and démarches goes through `assert_french`, so that a new English message fails here.

use aiguillage_bus::Envelope;
use aiguillage_connector::holding::{Held, Holding};
use aiguillage_connector::numbering::Numbering;
use aiguillage_connector::testkit::assert_french;
use aiguillage_gateway::mapping::{self, Mapping, DEFAULT_MAX_ATTACHMENT_BYTES};
use aiguillage_gateway::pipeline::holding::StoreHolding;
use aiguillage_gateway::pipeline::numbering::StoreNumbering;
use aiguillage_gateway::store::{Store, StoreError};
use base64::Engine as _;
use serde_json::{json, Value};

/// Broken mapping files, one mistake each, covering every refusal of the loader.
const BROKEN: &[&str] = &[
    // The file itself.
    "[document]\nx = 1\n[document",
    "[document]\nx = \"a\"\nx = \"b\"",
    "[mapping]\ndescription = \"x\"\n",
    "[document]\nx = 1\n[extra]\n",
    "mapping = 3\n[document]\nx = 1",
    "[mapping]\ndescrption = \"x\"\n[document]\nx = 1",
    "[mapping]\nattachments = \"aucune\"\n[document]\nx = \"a\"",
    "[mapping]\nattachments = \"none\"\n[document]\nx = \"a\"\n[[attachments]]\nfield = \"f\"",
    "document = 3",
    // Code tables.
    "tables = 3\n[document]\nx = 1",
    "[tables]\nnature = 3\n[document]\nx = 1",
    "[tables.nature]\n\"Copie intégrale\" = true\n[document]\nx = 1",
    // Fields.
    "[document]\nn = 99999999999999999999",
    "[document]\nnom = { template = \"{{ fields.nom\" }",
    "[document]\nnom = { template = \"{{ champs.nom }}\" }",
    "[document]\nnom = { template = \"{{ fields.nom }} {{ autre }}\" }",
    "[document]\nnom = { template = 3 }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", type = 3 }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", type = \"texte\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", max_length = -1 }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", max_length = \"dix\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", type = \"enum\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", values = [\"a\"] }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", type = \"enum\", values = \"a\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", type = \"enum\", values = [1] }",
    "[document]\nnature = { template = \"{{ fields.n }}\", table = \"natures\" }",
    "[tables.nature]\n\"a\" = \"A\"\n[document]\nnature = { template = \"{{ fields.n }}\", table = \"natures\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", required = \"oui\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", default = [1] }",
    "[document]\nn = { template = \"{{ fields.n }}\", type = \"integer\", default = \"un\" }",
    "[document]\nd = { template = \"{{ fields.d }}\", type = \"date\", default = \"demain\" }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", when = 3 }",
    "[document]\nnom = { template = \"{{ fields.nom }}\", requis = true }",
    // Filters, tests and functions, in any branch.
    "[document]\nnom = \"{{ fields.nom|uper }}\"",
    "[document]\nnom = \"{% if fields.a is not defind %}x{% endif %}\"",
    "[document]\nnom = \"{{ fields.nom|zzzz }}\"",
    "[document]\nnom = \"{{ fields.a|code('natures') }}\"",
    "[tables.nature]\n\"a\" = \"A\"\n[document]\nnom = \"{% if fields.a %}{{ fields.a|code('natures') }}{% endif %}\"",
    "[document]\nnom = \"{{ inconnue() }}\"",
    // Objects and lists.
    "[document.d]\nwhen = 3\nx = \"a\"",
    "[document.d]\nwhen = \"{{ fields.a|uper }}\"\nx = \"a\"",
    "[document]\nl = { for_each = \"fields.enfants\", as = \"enfant\" }",
    "[document]\nl = { for_each = \"fields.enfants\", as = \"fields\", item = { p = \"x\" } }",
    "[document]\nl = { for_each = \"fields.enfants\", as = \"enfant\", item = { p = \"x\" }, trie = true }",
    "[document]\nl = { for_each = \"fields..enfants\", as = \"enfant\", item = { p = \"x\" } }",
    "[document]\nl = { for_each = \"champs.enfants\", as = \"enfant\", item = { p = \"x\" } }",
    "[document]\nl = { for_each = \"fields.enfants\", as = \"enfant\", item = { p = \"{{ enfnt.nom }}\" } }",
    // Attachments.
    "attachments = 3\n[document]\nx = 1",
    "attachments = [3]\n[document]\nx = 1",
    "[document]\nx = 1\n[[attachments]]\nnom = \"f\"",
    "[document]\nx = 1\n[[attachments]]\nrequired = true",
    "[document]\nx = 1\n[[attachments]]\nfield = \"f\"\nmax_bytes = -3",
    "[document]\nx = 1\n[[attachments]]\nfield = \"f\"\ncontent_types = [\"pdf\"]",
];

#[test]
fn every_error_of_a_mapping_file_is_french() {
    for text in BROKEN {
        let error = match Mapping::parse(text, "mappings/exemple.toml") {
            Ok(_) => panic!("accepted, but broken:\n{text}"),
            Err(error) => error.to_string(),
        };
        // The location stays first, as compilers and `aiguillage check` write it.
        assert!(
            error.starts_with("mappings/exemple.toml:"),
            "{error}\n(from {text})"
        );
        assert_french(&error);
    }
    let unreadable = Mapping::load(
        std::path::Path::new("/nonexistent/mapping.toml"),
        "mapping.toml",
    )
    .unwrap_err();
    assert_french(&unreadable.to_string());
}

fn envelope(fields: Value) -> Envelope {
    let body = json!({
        "id": "clisson:demande-acte-naissance:42", "commune": "44043", "form": "demande-acte-naissance",
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {"display_id": "12-42", "fields": fields}
    });
    Envelope::parse(body.to_string().as_bytes(), 64 << 20).expect("valid envelope")
}

const MAPPING: &str = r#"
[tables.nature]
"Copie intégrale" = "CPI"

[document]
nom = { template = "{{ fields.nom|upper }}", required = true, max_length = 10 }
nature = { template = "{{ fields.nature }}", table = "nature" }
montant = { template = "{{ fields.montant }}", type = "decimal" }
date = { template = "{{ fields.date }}", type = "date" }
insee = "{{ fields.insee|insee }}"
objet = "{% if fields.objet %}{{ fields.objet|code('nature') }}{% endif %}"
calcul = "{% if fields.q %}{{ fields.q|multiply(fields.p) }}{% endif %}"
boucle = "{% if fields.boucle %}{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}{% endif %}"
moteur = "{% if fields.moteur %}{{ fields.moteur + 1 }}{% endif %}"
enfants = { for_each = "fields.enfants", as = "enfant", item = { age = { template = "{{ enfant.age }}", type = "integer" } } }

[[attachments]]
field = "justificatif"
content_types = ["application/pdf"]
max_bytes = 4
"#;

#[test]
fn every_refusal_of_a_demarche_by_its_mapping_is_french() {
    let mapping =
        Mapping::parse(MAPPING, "mappings/exemple.toml").unwrap_or_else(|e| panic!("{e}"));
    let base = json!({"nom": "Durand", "nature": "Copie intégrale"});
    let with = |extra: Value| {
        let mut fields = base.clone();
        for (key, value) in extra.as_object().unwrap() {
            fields[key] = value.clone();
        }
        fields
    };
    let pdf = |content: &str, content_type: &str| {
        json!({"filename": "f.pdf", "content_type": content_type,
               "content": base64::engine::general_purpose::STANDARD.encode(content)})
    };
    let cases = [
        json!({"nature": "Copie intégrale"}),
        with(json!({"nom": "Abcdefghijkl"})),
        with(json!({"nature": "Copie"})),
        with(json!({"montant": "douze"})),
        with(json!({"montant": "12.345"})),
        with(json!({"date": "31/02/1990"})),
        with(json!({"insee": "4404"})),
        with(json!({"objet": "Extrait"})),
        with(json!({"q": "deux", "p": "1"})),
        with(json!({"boucle": "oui"})),
        with(json!({"moteur": "x"})),
        with(json!({"enfants": "aucun"})),
        with(json!({"enfants": [{"age": "dix"}]})),
        with(json!({"justificatif": pdf("abc", "image/png")})),
        with(json!({"justificatif": pdf("abcdef", "application/pdf")})),
        with(
            json!({"justificatif": {"filename": "f.pdf", "content_type": "application/pdf", "content": "pas du base64 !"}}),
        ),
    ];
    for fields in cases {
        let error = match mapping.apply(&envelope(fields.clone())) {
            Ok(mapped) => panic!(
                "mapped, but must be refused: {fields}\n{:?}",
                mapped.document
            ),
            Err(error) => error.to_string(),
        };
        assert!(
            error.starts_with("mapping mappings/exemple.toml : "),
            "{error}"
        );
        assert_french(&error);
    }
}

#[test]
fn the_engine_s_own_words_are_quoted_and_the_filters_are_not() {
    let mapping = Mapping::parse(MAPPING, "m.toml").unwrap_or_else(|e| panic!("{e}"));
    let base = json!({"nom": "Durand"});
    let refusal = |key: &str, value: Value| {
        let mut fields = base.clone();
        fields[key] = value;
        mapping.apply(&envelope(fields)).unwrap_err().to_string()
    };
    assert_eq!(
        refusal("insee", json!("4404")),
        "mapping m.toml : champ `insee` : erreur du modèle : `4404` n'est pas un code commune INSEE (5 caractères, par exemple 44043)"
    );
    let engine = refusal("moteur", json!("x"));
    assert!(
        engine.starts_with("mapping m.toml : champ `moteur` : erreur du modèle : « ")
            && engine.ends_with(" »"),
        "{engine}"
    );
    assert_eq!(
        refusal("boucle", json!("oui")),
        "mapping m.toml : champ `boucle` : erreur du modèle : trop de calculs pour une démarche (une boucle sans fin ?)"
    );
}

#[test]
fn an_attachment_over_the_default_size_is_refused_in_french() {
    let content =
        base64::engine::general_purpose::STANDARD
            .encode(vec![0u8; DEFAULT_MAX_ATTACHMENT_BYTES + 1]);
    let mut envelope = envelope(json!({
        "justificatif": {"filename": "f.pdf", "content_type": "application/pdf", "content": content}
    }));
    let error = mapping::identity(&mut envelope).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "champ fichier `justificatif` : {} octets, plus que les {DEFAULT_MAX_ATTACHMENT_BYTES} acceptés par défaut (un mapping peut fixer `max_bytes`)",
            DEFAULT_MAX_ATTACHMENT_BYTES + 1
        )
    );
    assert_french(&error);
}

#[tokio::test]
async fn the_store_s_failures_that_reach_a_reason_are_french() {
    for error in [
        StoreError::Corrupt("statut inconnu `perdu`".into()),
        StoreError::Unavailable("la base est fermée".into()),
        StoreError::Database(sqlx::Error::PoolClosed),
    ] {
        assert_french(&error.to_string());
    }
    // A closed store: what the numbering and the holding give a connector, which ends
    // up in a reason once the retries run out.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("store.db").display());
    let store = Store::open(&url, 1).await.unwrap();
    store.close().await;
    let numbered = StoreNumbering::new(store.clone())
        .number("titres-2026", "portail:cantine:1")
        .await
        .unwrap_err();
    assert!(
        numbered.to_string().starts_with("numérotation : "),
        "{numbered}"
    );
    assert_french(&numbered.report());
    let held = StoreHolding::new(store, "finances")
        .hold(
            "2026-01",
            &Held {
                owner: "portail:cantine:1".into(),
                commune: "44043".into(),
                form: "cantine".into(),
                item: json!({"montant": "12.50"}),
            },
        )
        .await
        .unwrap_err();
    assert!(held.to_string().starts_with("mise en attente : "), "{held}");
    assert_french(&held.report());
}

/// Issue #17: the dead-letter operator's refusals (the CLI and the dashboard's API show
/// them) and the bus failures that reach `/readyz` and systemd's STATUS= are French.
#[test]
fn the_operator_s_refusals_and_the_bus_failures_are_french() {
    use aiguillage_bus::publisher::BusError;
    use aiguillage_gateway::operator::dead::DeadError;
    for error in [
        DeadError::NoReplaySelector,
        DeadError::NoDiscardSelector,
        DeadError::NoReason,
        DeadError::UnknownConnector {
            name: "cityweb".into(),
            known: "`clisson-cityweb`".into(),
        },
        DeadError::ConnectorOnUnrouted,
        DeadError::Bus(BusError::Nacked("demarches".into())),
        DeadError::Bus(BusError::Returned("demarches".into())),
    ] {
        assert_french(&error.to_string());
    }
}
