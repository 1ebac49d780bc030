use super::*;

#[test]
fn reasons_are_said_in_plain_french() {
    let cases = [
        (
            "the target cityweb.example answered 503 Service Unavailable: maintenance",
            "en panne",
        ),
        (
            "the target x answered 422 Unprocessable Entity: le champ nom est obligatoire",
            "refusé les données",
        ),
        ("the target x answered 401 Unauthorized", "identifiants"),
        ("the request to x timed out after 30s", "à temps"),
        ("the request to x failed: connection refused", "injoignable"),
        (
            "mapping mappings/etat-civil.toml: field `nature`: unknown code",
            "mapping",
        ),
        (
            "invalid envelope: body is not valid JSON",
            "pas une démarche valide",
        ),
        (
            "RabbitMQ dead-lettered it at the delivery limit",
            "développeurs",
        ),
        ("cannot write /srv/import: No space left on device", "plein"),
        ("something odd", "Erreur technique"),
        // A refusal quoted from the software is not a connection failure, and a
        // French reason naming the connector is not one either.
        (
            "the target x answered 400 Bad Request: request refused, field missing",
            "refusé les données",
        ),
        (
            "le connecteur `clisson-famille` n'est pas configuré pour ce formulaire",
            "Erreur technique",
        ),
        ("cannot connect to the target x", "injoignable"),
        // The same reasons as the connectors now write them.
        (
            "la cible cityweb.example a répondu 503 Service Unavailable : maintenance",
            "en panne",
        ),
        (
            "la cible x a répondu 422 Unprocessable Entity : le champ nom est obligatoire",
            "refusé les données",
        ),
        ("la cible x a répondu 401 Unauthorized (vérifier `auth`)", "identifiants"),
        ("la cible x a répondu 404 Not Found (vérifier `url`)", "adresse"),
        ("la cible x n'a pas répondu dans le délai de 30s", "à temps"),
        ("impossible de se connecter à la cible x", "injoignable"),
        ("enveloppe invalide : le corps n'est pas du JSON valide : EOF", "pas une démarche valide"),
        (
            "RabbitMQ l'a mise en lettre morte à la limite de livraisons (bus.delivery_limit) : …",
            "développeurs",
        ),
        (
            "la règle légale `filiation-naissance` refuse la demande de copie intégrale d'un acte de naissance faite par `autre` (toute autre personne) : …",
            "refusé le document avant de le livrer",
        ),
        (
            "le titre de recette ne peut pas être émis : champ `lignes[0].montant_ht` : `0.00` : le Trésor public ne prend aucun montant nul ou négatif (Base_Montant > 0)",
            "refusé le document avant de le livrer",
        ),
        (
            "mapping m.toml : champ fichier `plan` : 6 octets, plus que les 4 acceptés",
            "mapping",
        ),
    ];
    for (reason, expected) in cases {
        let plain = plain_french(reason);
        assert!(plain.contains(expected), "{reason} → {plain}");
    }
}

#[test]
fn times_are_shown_in_french_local_time() {
    assert_eq!(
        local_time("2026-11-29T09:12:05.123Z"),
        "29/11/2026 10:12:05"
    );
    assert_eq!(
        local_time("2026-07-14T09:00:00.000Z"),
        "14/07/2026 11:00:00"
    );
    assert_eq!(local_time("not a time"), "not a time");
}

#[test]
fn every_template_parses_and_escapes_what_it_shows() {
    for name in ["base.html", "login.html", "dashboard.html", "search.html"] {
        assert!(templates().get_template(name).is_ok(), "{name}");
    }
    let page = templates()
        .get_template("search.html")
        .unwrap()
        .render(context! { q => "<script>alert(1)</script>", deliveries => Vec::<String>::new(), csrf => "c" })
        .unwrap();
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
}
