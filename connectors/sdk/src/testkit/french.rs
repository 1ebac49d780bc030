//! A guard for the connectors' refusal tests: what a commune agent or the operator reads
//! (a dead-letter reason, a status event's `error`, `aiguillage check`) must be French.
//!
//! The check is deliberately simple: it looks for English function words and phrases
//! that a French sentence never contains. What is quoted is not checked: identifiers,
//! configuration keys and values in backticks, and a server's own reply in « … » or
//! "…", are kept as they are on purpose.

/// English words and phrases that give away an English sentence. Matched on the
/// lower-cased text with its quoted parts removed, with a space (or the start or end)
/// on either side of each entry.
const ENGLISH: &[&str] = &[
    "the",
    "cannot",
    "can't",
    "is not",
    "isn't",
    "must",
    "did not",
    "does not",
    "has no",
    "could not",
    "missing field",
    "unknown field",
    "unknown variant",
    "invalid type",
    "took longer",
    "failed to",
    "please",
    "should",
    "expected",
];

/// Words that a French reason almost always contains at least one of (besides an accented
/// letter or the typographic ` : `); a reason made only of quoted text and numbers says
/// nothing.
const FRENCH: &[&str] = &[
    "le",
    "la",
    "les",
    "l'",
    "de",
    "du",
    "des",
    "d'",
    "un",
    "une",
    "est",
    "n'",
    "pas",
    "à",
    "au",
    "aux",
    "en",
    "ou",
    "et",
    "ne",
    "a",
    "été",
    "sur",
    "par",
    "pour",
    "dans",
    "champ",
    "manquant",
    "inconnu",
    "inconnue",
    "invalide",
    "vide",
    "interdit",
    "attendu",
    "attendue",
    "impossible",
    "aucun",
    "aucune",
];

/// Why `reason` is not French, or `None` when it reads as French.
pub fn english_in(reason: &str) -> Option<String> {
    let unquoted = unquoted(reason).to_lowercase();
    // Words separated by spaces and punctuation; the apostrophe is kept inside a word
    // (`can't`) and also split after French elisions (`l'`, `d'`, `n'`).
    let words: Vec<&str> = unquoted
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|word| !word.is_empty())
        .collect();
    let padded = format!(" {} ", words.join(" "));
    for english in ENGLISH {
        if padded.contains(&format!(" {english} ")) {
            return Some(format!("« {english} » is English in: {reason}"));
        }
    }
    let french = words.iter().any(|word| {
        FRENCH.contains(word)
            || FRENCH
                .iter()
                .filter(|elision| elision.ends_with('\''))
                .any(|elision| word.starts_with(elision))
    });
    let accented = unquoted.chars().any(|c| "éèêëàâîïôûùüç".contains(c));
    if !french && !accented && !unquoted.contains(" : ") {
        return Some(format!("no French word outside quotes in: {reason}"));
    }
    None
}

/// Panics, with the reason and the English found, unless `reason` reads as French.
///
/// # Panics
///
/// When `reason` contains an English marker outside its quoted parts, or no French word.
#[track_caller]
pub fn assert_french(reason: &str) {
    if let Some(why) = english_in(reason) {
        panic!("a reason the operator reads is not in French: {why}");
    }
}

/// `text` without what is between backticks, « », or double quotes.
fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    for c in text.chars() {
        match closing {
            Some(end) if c == end => {
                closing = None;
                out.push(' ');
            }
            Some(_) => {}
            None => match c {
                '`' => closing = Some('`'),
                '«' => closing = Some('»'),
                '"' => closing = Some('"'),
                '“' => closing = Some('”'),
                _ => out.push(c),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{assert_french, english_in};

    #[test]
    fn english_sentences_fail() {
        for english in [
            "the SMTP server smtp://h:587 refused the mail: 550 no such user",
            "cannot write the file: no space left on device",
            "`x` is not an e-mail address",
            "missing field `nom`",
            "sending a mail through smtp://h:587 took longer than 1s (`mail.timeout`)",
            "must be longer than zero",
            "the numbering lock is poisoned",
            "Cannot read /etc/key",
            "batch `2026-01` is sealed: hold the item in a later one",
        ] {
            assert!(english_in(english).is_some(), "accepted: {english}");
            let caught = std::panic::catch_unwind(|| assert_french(english));
            assert!(caught.is_err(), "assert_french accepted: {english}");
        }
    }

    #[test]
    fn french_sentences_pass() {
        for french in [
            "le serveur SMTP smtp://h:587 a refusé le mail : « 550 5.1.1 <x@y>: the user does not exist »",
            "impossible de lire le fichier secret /etc/aiguillage/pw : Permission denied (os error 13)",
            "`to@` n'est pas une adresse électronique",
            "champ `nom` manquant",
            "l'envoi du mail par smtp://h:587 a pris plus de 1s (`mail.timeout`)",
            "le délai doit être supérieur à zéro, par exemple \"30s\"",
            "Le lot `2026-01` est scellé : mettre l'élément dans un lot suivant",
            "`every` vaut 10s : un bordereau par minute au plus (par exemple \"1d\")",
        ] {
            assert_eq!(english_in(french), None, "{french}");
            assert_french(french);
        }
    }

    #[test]
    fn what_is_quoted_is_not_checked_but_a_reason_must_say_something() {
        // A server's reply, quoted, keeps its English.
        assert_french("le serveur a répondu « the mailbox is full »");
        // An unquoted reply does not.
        assert!(english_in("le serveur a répondu the mailbox is full").is_some());
        // Only quoted text and numbers: nothing in French.
        assert!(english_in("`x` 42").is_some());
    }
}
