//! Refusal reasons in French. A reason ends up in a dead letter, a `rejected` status event
//! and the dashboard, where a commune agent reads it: serde's own messages ("missing field
//! `nom`") are put in French here, so that every connector that reads its document with
//! serde says the same thing the same way.

/// `error`'s message (serde's, from reading a document) in French: the usual cases
/// (missing, unknown or duplicate field, unknown value, wrong type) are rewritten, any
/// other message is kept as it is.
pub fn serde_reason(error: &impl std::fmt::Display) -> String {
    let message = error.to_string();
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("champ {rest} manquant");
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return format!("champ {rest} en double");
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return match rest.split_once(", ") {
            Some((field, expected)) => format!("champ {field} inconnu ({})", expected_fr(expected)),
            None => format!("champ {rest} inconnu"),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match rest.split_once(", ") {
            Some((value, expected)) => {
                format!("valeur {value} inconnue ({})", expected_fr(expected))
            }
            None => format!("valeur {rest} inconnue"),
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            return format!(
                "type invalide : {} au lieu {}",
                kind_fr(got),
                of_kind_fr(expected)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            return format!("longueur invalide {got} (attendu : {expected})");
        }
    }
    message
}

/// `expected one of `a`, `b`` → `attendu : `a`, `b``; `there are no fields` → `aucun champ n'est attendu`.
fn expected_fr(expected: &str) -> String {
    if let Some(list) = expected.strip_prefix("expected one of ") {
        format!("attendu : l'un de {list}")
    } else if let Some(one) = expected.strip_prefix("expected ") {
        format!("attendu : {one}")
    } else if expected == "there are no fields" || expected == "there are no variants" {
        "aucun n'est attendu ici".to_owned()
    } else {
        expected.to_owned()
    }
}

/// serde's name of what it got: `integer `3``, `string "x"`, `null`, `map`, `sequence`…
fn kind_fr(got: &str) -> String {
    let (kind, value) = got.split_once(' ').unwrap_or((got, ""));
    let kind = match kind {
        "integer" => "nombre entier",
        "floating" => "nombre décimal",
        "string" => "texte",
        "boolean" => "booléen",
        "null" => "valeur nulle (null)",
        "map" => "objet",
        "sequence" => "liste",
        "unit" => "valeur vide",
        other => other,
    };
    if value.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} {}", value.trim_start_matches("point "))
    }
}

/// serde's name of what was expected, after "au lieu": `a string` → `d'un texte`.
fn of_kind_fr(expected: &str) -> String {
    let french = match expected {
        "a string" => "d'un texte",
        "a sequence" => "d'une liste",
        "a map" => "d'un objet",
        "a boolean" => "d'un booléen",
        "a borrowed string" => "d'un texte",
        other if other.starts_with("struct ") => "d'un objet",
        other if other.starts_with('u') || other.starts_with('i') => "d'un nombre entier",
        other => return format!("de : {other}"),
    };
    french.to_owned()
}

#[cfg(test)]
mod tests {
    use super::serde_reason;

    #[test]
    fn serde_messages_are_put_in_french() {
        for (english, french) in [
            ("missing field `nom`", "champ `nom` manquant"),
            (
                "unknown field `nmo`, expected one of `nom`, `prenoms`",
                "champ `nmo` inconnu (attendu : l'un de `nom`, `prenoms`)",
            ),
            (
                "unknown variant `CPX`, expected one of `CPI`, `EXTAF`",
                "valeur `CPX` inconnue (attendu : l'un de `CPI`, `EXTAF`)",
            ),
            (
                "invalid type: integer `3`, expected a string",
                "type invalide : nombre entier `3` au lieu d'un texte",
            ),
            (
                "invalid type: null, expected struct Individu",
                "type invalide : valeur nulle (null) au lieu d'un objet",
            ),
            ("duplicate field `nom`", "champ `nom` en double"),
            ("something else", "something else"),
        ] {
            assert_eq!(serde_reason(&english), french, "{english}");
        }
    }
}
