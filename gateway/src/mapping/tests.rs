use super::*;

fn envelope(fields: Value) -> Envelope {
    let body = serde_json::json!({
        "id": "clisson:demande-acte-naissance:42", "commune": "44043", "form": "demande-acte-naissance",
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {
            "display_id": "12-42",
            "user": {"name": "Camille Durand", "email": "camille@example.invalid"},
            "fields": fields
        }
    });
    Envelope::parse(body.to_string().as_bytes(), 1 << 20).expect("valid envelope")
}

const MAPPING: &str = r#"
[mapping]
description = "test"

[tables.nature]
"Copie intégrale" = "CPI"
"Extrait avec filiation" = "EXTAF"

[document]
identifiant = "{{ envelope.id }}"
origine = "internet"
version = 2
nature = { template = "{{ fields.nature }}", table = "nature", required = true }
exemplaires = { template = "{{ fields.nombre }}", type = "integer", default = 1 }
montant = { template = "{{ fields.montant }}", type = "decimal" }
nom = { template = "{{ fields.nom|upper }}", max_length = 10, required = true }
demandeur_email = "{{ user.email }}"

[document.evenement]
date = { template = "{{ fields.date }}", type = "partial-date" }
lieu = "{{ fields.lieu }}"

[document.conjoint]
nom = "{{ fields.conjoint_nom }}"

[document.enfants]
for_each = "fields.enfants"
as = "enfant"
item = { prenom = "{{ enfant.prenom }}", age = { template = "{{ enfant.age }}", type = "integer" } }
"#;

fn mapping() -> Mapping {
    Mapping::parse(MAPPING, "mappings/test.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_mapping_builds_the_document() {
    let mapped = mapping()
        .apply(&envelope(serde_json::json!({
            "nature": "Copie intégrale", "nombre": "2", "montant": "12,5", "nom": "Durand",
            "date": "04/1990", "lieu": "Clisson",
            "enfants": [{"prenom": "Léa", "age": "7"}, {"prenom": "Hugo", "age": 4}]
        })))
        .unwrap();
    assert_eq!(
        mapped.document,
        serde_json::json!({
            "identifiant": "clisson:demande-acte-naissance:42",
            "origine": "internet",
            "version": 2,
            "nature": "CPI",
            "exemplaires": 2,
            "montant": "12.50",
            "nom": "DURAND",
            "demandeur_email": "camille@example.invalid",
            "evenement": {"date": "1990-04", "lieu": "Clisson"},
            "enfants": [{"prenom": "Léa", "age": 7}, {"prenom": "Hugo", "age": 4}]
        })
    );
}

#[test]
fn defaults_and_empty_objects() {
    let mapped = mapping()
        .apply(&envelope(
            serde_json::json!({"nature": "Extrait avec filiation", "nom": "Martin"}),
        ))
        .unwrap();
    assert_eq!(mapped.document["exemplaires"], 1, "default");
    assert!(
        mapped.document.get("conjoint").is_none(),
        "an empty object is left out"
    );
    assert!(
        mapped.document.get("montant").is_none(),
        "an empty optional field is left out"
    );
    assert!(mapped.document.get("enfants").is_none());
}

fn apply_error(fields: Value) -> String {
    mapping().apply(&envelope(fields)).unwrap_err().to_string()
}

#[test]
fn each_run_time_error_names_the_file_the_field_and_the_value() {
    assert_eq!(
        apply_error(serde_json::json!({"nature": "Copie intégrale"})),
        "mapping mappings/test.toml : champ `nom` : obligatoire, mais `{{ fields.nom|upper }}`… ne donne rien pour cette démarche"
            .replace("`{{ fields.nom|upper }}`…", "son modèle")
    );
    assert_eq!(
        apply_error(serde_json::json!({"nature": "Copie", "nom": "X"})),
        "mapping mappings/test.toml : champ `nature` : `Copie` n'est pas dans la table de codes `nature` (connus : Copie intégrale, Extrait avec filiation) : l'ajouter à [tables.nature]"
    );
    assert_eq!(
        apply_error(serde_json::json!({"nature": "Copie intégrale", "nom": "X", "date": "31/02/1990"})),
        "mapping mappings/test.toml : champ `evenement.date` : `31/02/1990` n'est ni une date, ni un mois, ni une année (écrire 12/04/1990, 04/1990 ou 1990)"
    );
    assert_eq!(
        apply_error(serde_json::json!({"nature": "Copie intégrale", "nom": "X", "montant": "douze"})),
        "mapping mappings/test.toml : champ `montant` : `douze` n'est pas un montant (écrire 12,50 ou 12.50)"
    );
    assert_eq!(
        apply_error(serde_json::json!({"nature": "Copie intégrale", "nom": "Abcdefghijkl"})),
        "mapping mappings/test.toml : champ `nom` : `ABCDEFGHIJKL` a 12 caractères, plus que les 10 permis (le raccourcir avec `|truncate_chars(10)` si couper est acceptable)"
    );
    assert_eq!(
        apply_error(serde_json::json!({"nature": "Copie intégrale", "nom": "X", "enfants": "aucun"})),
        "mapping mappings/test.toml : champ `enfants` : `for_each = \"fields.enfants\"` n'est pas une liste ici (un texte)"
    );
}

fn load_error(text: &str) -> String {
    Mapping::parse(text, "m.toml").unwrap_err().to_string()
}

#[test]
fn each_load_error_names_the_line_and_the_fix() {
    assert_eq!(
        load_error("[document]\nx = 1\n[document"),
        "m.toml:3: syntaxe TOML invalide : en-tête de table non fermé"
    );
    assert_eq!(
        load_error("[document]\n\nnom = { template = \"{{ fields.nom\" }"),
        "m.toml:3: champ `nom` : erreur dans le modèle : « unexpected end of input, expected end of variable block »"
    );
    assert_eq!(
        load_error("[document]\nnom = { template = \"{{ champs.nom }}\" }"),
        "m.toml:2: champ `nom` : variable inconnue `champs` (variables possibles : envelope, fields, form, user, workflow)"
    );
    assert_eq!(
        load_error("[document]\nnom = { template = \"{{ fields.nom }}\", type = \"texte\" }"),
        "m.toml:2: champ `nom` : type inconnu `texte` (types possibles : string, integer, decimal, date, partial-date, datetime, boolean, enum)"
    );
    assert_eq!(
        load_error("[document]\nnature = { template = \"{{ fields.n }}\", table = \"natures\" }"),
        "m.toml:2: champ `nature` : pas de table de codes `natures` (définies : aucune) : ajouter [tables.natures]"
    );
    assert_eq!(
        load_error("[document]\nnom = { template = \"{{ fields.nom }}\", requis = true }"),
        "m.toml:2: champ `nom` : clé inconnue `requis` (clés possibles : template, type, max_length, places, values, table, required, default, when)"
    );
    assert_eq!(
        load_error("[mapping]\ndescription = \"x\"\n"),
        "m.toml:1: pas de section [document] : elle donne les champs du document produit"
    );
    assert_eq!(
        load_error("[document]\nx = 1\n[extra]\n"),
        "m.toml:3: section inconnue `extra` (sections possibles : mapping, tables, document, attachments)"
    );
    assert_eq!(
        load_error("[document]\nn = { template = \"{{ fields.n }}\", type = \"integer\", default = \"un\" }"),
        "m.toml:2: champ `n` : la valeur par défaut ne convient pas au type : `un` n'est pas un nombre entier"
    );
    assert_eq!(
        load_error("[document]\nn = { template = \"{{ fields.n|upper }} {{ autre }}\" }"),
        "m.toml:2: champ `n` : variable inconnue `autre` dans le modèle (variables possibles : envelope, fields, form, user, workflow)"
    );
}

#[test]
fn templates_use_the_wcs_syntax() {
    let text = r#"
[document]
nom_complet = "{{ fields.prenom }} {{ fields.nom|upper }}"
civilite = "{% if fields.sexe == 'F' %}Mme{% else %}M.{% endif %}"
jours = "{{ fields.jours|join(', ') }}"
reference = "{{ form.display_id }}"
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap();
    let mapped = mapping
        .apply(&envelope(serde_json::json!({"prenom": "Léa", "nom": "Durand", "sexe": "F", "jours": ["lundi", "mardi"]})))
        .unwrap();
    assert_eq!(mapped.document["nom_complet"], "Léa DURAND");
    assert_eq!(mapped.document["civilite"], "Mme");
    assert_eq!(mapped.document["jours"], "lundi, mardi");
    assert_eq!(mapped.document["reference"], "12-42");
}

#[test]
fn attachments_are_checked() {
    let text = r#"
[document]
x = "1"

[[attachments]]
field = "plan"
name = "PCMI1"
required = true
content_types = ["application/pdf"]
max_bytes = 4
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap();
    let pdf = |content: &str, content_type: &str| serde_json::json!({"plan": {"filename": "plan.pdf", "content_type": content_type, "content": content}});
    let mapped = mapping
        .apply(&envelope(pdf("JVBE", "application/pdf")))
        .unwrap();
    assert_eq!(mapped.attachments.len(), 1);
    assert_eq!(mapped.attachments[0].field, "PCMI1");
    assert_eq!(mapped.attachments[0].content, b"%PD");
    let error = mapping
        .apply(&envelope(pdf("JVBE", "image/gif")))
        .unwrap_err()
        .to_string();
    assert_eq!(error, "mapping m.toml : champ fichier `plan` : le type de contenu `image/gif` n'est pas accepté (acceptés : application/pdf)");
    let error = mapping
        .apply(&envelope(pdf("JVBERi0x", "application/pdf")))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping m.toml : champ fichier `plan` : 6 octets, plus que les 4 acceptés"
    );
    let error = mapping
        .apply(&envelope(serde_json::json!({})))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping m.toml : champ fichier `plan` : obligatoire, mais la démarche n'a pas ce fichier"
    );
    let error = mapping
        .apply(&envelope(pdf("@@", "application/pdf")))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "mapping m.toml : champ fichier `plan` : le contenu n'est pas du base64 valide"
        ),
        "{error}"
    );
}

#[test]
fn identity_hands_over_every_file_field() {
    let mapped = identity(&mut envelope(serde_json::json!({
        "nom": "Durand",
        "justificatif": {"filename": "id.pdf", "content_type": "application/pdf", "content": "JVBE\nRi0x"}
    })))
    .unwrap();
    assert_eq!(mapped.attachments.len(), 1);
    assert_eq!(mapped.attachments[0].content, b"%PDF-1");
    assert_eq!(mapped.document["formdata"]["fields"]["nom"], "Durand");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value, a few levels deep, with the strings that break naive code.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            ".{0,40}".prop_map(Value::String),
            prop_oneof![
                Just("31/02/2026"),
                Just("12,505"),
                Just("{{ 7*7 }}"),
                Just("{% include 'x' %}"),
                Just("Copie intégrale"),
                Just("-"),
                Just("٣١/١٢/٢٠٢٦"),
                Just("\u{0}"),
                Just("1e400"),
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,10}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Field values drawn from what the test mapping reads, each any JSON.
    fn fields() -> impl Strategy<Value = Value> {
        let names = [
            "nature",
            "nombre",
            "montant",
            "nom",
            "date",
            "lieu",
            "conjoint_nom",
            "enfants",
        ];
        prop::collection::vec(json(), names.len()).prop_map(move |values| {
            Value::Object(names.iter().map(|n| (*n).to_owned()).zip(values).collect())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_mapping_never_panics_whatever_the_fields(fields in fields()) {
            let mapping = mapping();
            // Ok or a clear error: never a panic, and templates in the data are data.
            match mapping.apply(&envelope(fields.clone())) {
                Ok(mapped) => {
                    if let Some(Value::String(nom)) = fields.get("nom") {
                        if !nom.trim().is_empty() && nom.contains("{{") {
                            prop_assert!(mapped.document["nom"].as_str().unwrap_or_default().contains("{{"));
                        }
                    }
                }
                Err(error) => prop_assert!(error.to_string().starts_with("mapping mappings/test.toml : ")),
            }
        }

        #[test]
        fn templates_never_panic_whatever_the_fields(fields in json()) {
            let text = r#"
[document]
a = "{{ fields|length }} {{ fields.x|upper }} {{ fields.y|join(',') }} {{ fields.z|date_format('%d/%m/%Y') }}"
b = "{% for k in fields %}{{ k }}{% endfor %}"
c = { template = "{{ fields.n }}", type = "decimal" }
d = { for_each = "fields.items", as = "it", item = { v = "{{ it.v|strip_accents|truncate_chars(3) }}" } }
"#;
            let mapping = Mapping::parse(text, "p.toml").expect("valid");
            let fields = match fields { Value::Object(_) => fields, other => serde_json::json!({"x": other}) };
            let _ = mapping.apply(&envelope(fields));
        }
    }
}

#[test]
fn an_empty_field_through_a_filter_gives_nothing_not_none() {
    let text = r#"
[document]
nom = { template = "{{ fields.nom|upper }}", required = true }
ville = "{% if true %}{{ fields.ville|upper }}{% endif %}"
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap();
    for fields in [
        serde_json::json!({"nom": null, "ville": null}),
        serde_json::json!({}),
    ] {
        let error = mapping.apply(&envelope(fields)).unwrap_err().to_string();
        assert!(error.contains("champ `nom` : obligatoire"), "{error}");
    }
    let mapped = mapping
        .apply(&envelope(serde_json::json!({"nom": "x", "ville": null})))
        .unwrap();
    assert!(
        mapped.document.get("ville").is_none(),
        "{}",
        mapped.document
    );
}

#[test]
fn misspelt_filters_are_refused_at_load() {
    assert_eq!(
        load_error("[document]\n\nnom = \"{{ fields.nom|uper }}\""),
        "m.toml:3: champ `nom` : filtre inconnu `uper` (vouliez-vous dire `upper` ?) ; les filtres sont listés dans docs/mappings.md"
    );
}

#[test]
fn names_in_branches_a_sample_does_not_take_are_checked_too() {
    // An empty démarche takes none of these branches: trying the template would not see them.
    assert_eq!(
        load_error("[document]\nnom = \"{% if fields.a %}x{% elif fields.b %}{{ fields.b|strip_acents }}{% endif %}\""),
        "m.toml:2: champ `nom` : filtre inconnu `strip_acents` (vouliez-vous dire `strip_accents` ?) ; les filtres sont listés dans docs/mappings.md"
    );
    assert_eq!(
        load_error("[document]\nnom = \"{% if fields.a is not defind %}x{% endif %}\""),
        "m.toml:2: champ `nom` : test inconnu `defind` (vouliez-vous dire `defined` ?) ; les tests sont listés dans docs/mappings.md"
    );
    assert_eq!(
        load_error("[tables.nature]\n\"a\" = \"A\"\n[document]\nnom = \"{% if fields.a %}{{ fields.a|code('natures') }}{% endif %}\""),
        "m.toml:4: champ `nom` : pas de table de codes `natures` pour `|code('natures')` (définies : nature) : ajouter [tables.natures]"
    );
    // Names inside strings are text, and known names of every kind pass.
    Mapping::parse(
        "[tables.nature]\n\"a\" = \"A\"\n[document]\nnom = \"{{ 'a|uper is b' }}{% if fields.a is not none and fields.b is defined %}{{ fields.a|code(\\\"nature\\\")|lower|default('x') }}{% endif %}\"",
        "m.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn fields_are_produced_in_file_order() {
    // The first error reported is the first field of the file, not of the alphabet.
    let text = "[document]\nzone = { template = \"{{ fields.z }}\", required = true }\nabc = { template = \"{{ fields.a }}\", required = true }\n";
    let error = Mapping::parse(text, "m.toml")
        .unwrap()
        .apply(&envelope(serde_json::json!({})))
        .unwrap_err();
    assert!(error.to_string().contains("champ `zone`"), "{error}");
}

#[test]
fn lists_can_be_required_and_errors_name_the_item() {
    let text = r#"
[document.parcelles]
for_each = "fields.parcelles"
as = "p"
required = true
item = { section = "{{ p.section }}", numero = { template = "{{ p.numero }}", type = "integer" } }
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap();
    let error = mapping
        .apply(&envelope(serde_json::json!({"parcelles": []})))
        .unwrap_err()
        .to_string();
    assert_eq!(error, "mapping m.toml : champ `parcelles` : obligatoire, mais `fields.parcelles` n'a aucun élément pour cette démarche");
    let error = mapping
        .apply(&envelope(serde_json::json!({"parcelles": [{"section": "AB", "numero": "12"}, {"section": "AC", "numero": "12 et 13"}]})))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "mapping m.toml : champ `parcelles[1].numero` : `12 et 13` n'est pas un nombre entier"
    );
}

#[test]
fn nested_lists_see_their_own_item_and_the_items_around_them() {
    let text = r#"
[document.familles]
for_each = "fields.familles"
as = "famille"
item.nom = "{{ famille.nom|upper }}"
item.ville = "{{ fields.ville }}"
item.enfants = { for_each = "famille.enfants", as = "enfant", item = { prenom = "{{ enfant.prenom }}", famille = "{{ famille.nom }}", texte = "{{ enfant.prenom }} {{ famille.nom }}{% if fields.ville %} ({{ fields.ville }}){% endif %}" } }
# An inner alias of the same name hides the outer one, in native paths and templates alike.
item.memes = { for_each = "famille.enfants", as = "famille", item = { prenom = "{{ famille.prenom }}", texte = "{{ famille.prenom }}{% for x in [1] %}!{% endfor %}" } }
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap_or_else(|e| panic!("{e}"));
    let mapped = mapping
        .apply(&envelope(serde_json::json!({
            "ville": "Clisson",
            "familles": [
                {"nom": "Durand", "enfants": [{"prenom": "Léa"}, {"prenom": "Hugo"}]},
                {"nom": "Martin", "enfants": [{"prenom": "Inès"}]}
            ]
        })))
        .unwrap();
    assert_eq!(
        mapped.document,
        serde_json::json!({"familles": [
            {"nom": "DURAND", "ville": "Clisson",
             "enfants": [
                {"prenom": "Léa", "famille": "Durand", "texte": "Léa Durand (Clisson)"},
                {"prenom": "Hugo", "famille": "Durand", "texte": "Hugo Durand (Clisson)"}],
             "memes": [{"prenom": "Léa", "texte": "Léa!"}, {"prenom": "Hugo", "texte": "Hugo!"}]},
            {"nom": "MARTIN", "ville": "Clisson",
             "enfants": [{"prenom": "Inès", "famille": "Martin", "texte": "Inès Martin (Clisson)"}],
             "memes": [{"prenom": "Inès", "texte": "Inès!"}]}
        ]})
    );
}

#[test]
fn an_object_with_a_false_condition_is_left_out_and_its_required_fields_unchecked() {
    let text = r#"
[document.demandeur]
when = "{{ fields.qualite != 'titulaire' }}"
qualite = { template = "{{ fields.qualite }}", required = true }
individu.nom = { template = "{{ fields.demandeur_nom }}", required = true }
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap_or_else(|e| panic!("{e}"));
    let own = mapping
        .apply(&envelope(serde_json::json!({"qualite": "titulaire"})))
        .unwrap();
    assert_eq!(own.document, serde_json::json!({}));
    let other = mapping
        .apply(&envelope(
            serde_json::json!({"qualite": "pere", "demandeur_nom": "Durand"}),
        ))
        .unwrap();
    assert_eq!(
        other.document,
        serde_json::json!({"demandeur": {"qualite": "pere", "individu": {"nom": "Durand"}}})
    );
    let missing = mapping
        .apply(&envelope(serde_json::json!({"qualite": "pere"})))
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("champ `demandeur.individu.nom` : obligatoire"),
        "{missing}"
    );
    assert_eq!(
        load_error("[document.d]\nwhen = 3\nx = \"a\""),
        "m.toml:2: objet `d` : `when` est la condition qui garde l'objet, un modèle tel que \"{{ fields.conjoint_nom }}\""
    );
    assert_eq!(
        load_error("[document.d]\nwhen = \"{{ fields.a|uper }}\"\nx = \"a\""),
        "m.toml:2: champ `d (when)` : filtre inconnu `uper` (vouliez-vous dire `upper` ?) ; les filtres sont listés dans docs/mappings.md"
    );
}

#[test]
fn attachments_none_hands_over_no_file() {
    let fields = serde_json::json!({
        "nom": "Durand",
        "justificatif": {"filename": "id.pdf", "content_type": "application/pdf", "content": "JVBERi0x"}
    });
    let all = Mapping::parse("[document]\nnom = \"{{ fields.nom }}\"", "m.toml").unwrap();
    assert_eq!(
        all.apply(&envelope(fields.clone()))
            .unwrap()
            .attachments
            .len(),
        1
    );
    let none = Mapping::parse(
        "[mapping]\nattachments = \"none\"\n[document]\nnom = \"{{ fields.nom }}\"",
        "m.toml",
    )
    .unwrap();
    let mapped = none.apply(&envelope(fields)).unwrap();
    assert!(mapped.attachments.is_empty());
    assert_eq!(mapped.document, serde_json::json!({"nom": "Durand"}));
    assert_eq!(
        load_error("[mapping]\nattachments = \"aucune\"\n[document]\nx = \"a\""),
        "m.toml:2: `attachments` dans [mapping] vaut \"all\" (tous les champs fichier, le défaut sans blocs [[attachments]]) ou \"none\" (aucun fichier n'est transmis)"
    );
    assert_eq!(
        load_error("[mapping]\nattachments = \"none\"\n[document]\nx = \"a\"\n[[attachments]]\nfield = \"f\""),
        "m.toml:2: `attachments = \"none\"` dans [mapping], mais des blocs [[attachments]] donnent des fichiers : garder l'un ou l'autre"
    );
}

#[test]
fn amounts_are_multiplied_and_rounded_exactly() {
    let text = r#"
[document]
a = "{{ fields.q|multiply(fields.p) }}"
b = "{{ fields.q|multiply(fields.p)|round_decimal(2) }}"
c = "{{ fields.x|multiply(3)|round_decimal(2) }}"
d = "{{ fields.n|round_decimal(2) }}"
e = "{{ fields.h|round_decimal(1) }}"
"#;
    let mapping = Mapping::parse(text, "m.toml").unwrap_or_else(|e| panic!("{e}"));
    let mapped = mapping
        .apply(&envelope(serde_json::json!({
            "q": "1,5", "p": "12.33", "x": "0,10", "n": -2.005, "h": "0.05"
        })))
        .unwrap();
    // 0.10 × 3 is 0.30, not 0.30000000000000004; 18.495 rounds half away from zero.
    assert_eq!(
        mapped.document,
        serde_json::json!({"a": "18.495", "b": "18.50", "c": "0.30", "d": "-2.01", "e": "0.1"})
    );
    let error = mapping
        .apply(&envelope(
            serde_json::json!({"q": "deux", "p": "1", "x": "1", "n": "1", "h": "1"}),
        ))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("champ `a`") && error.contains("`deux` n'est pas un montant"),
        "{error}"
    );
}
