//! Texts for files in a software's character set: XML 1.0's forbidden characters refused,
//! and ISO-8859-1 (Latin-1) for software that reads nothing else, with French-friendly
//! transliteration (`œ` → `oe`, `’` → `'`). Shared by the connectors that write files, so
//! that a name is written the same way whatever the software.
//!
//! ```
//! use aiguillage_connector::charset::{convert, Encoding, Refused};
//!
//! assert_eq!(convert("Cœur", Encoding::Latin1, true).unwrap(), "Coeur");
//! assert_eq!(convert("Cœur", Encoding::Utf8, true).unwrap(), "Cœur");
//! assert_eq!(convert("Cœur", Encoding::Latin1, false), Err(Refused::NotInLatin1('œ')));
//! assert_eq!(convert("a\u{1}b", Encoding::Utf8, true), Err(Refused::Control('\u{1}')));
//! ```

use std::borrow::Cow;

use serde::Deserialize;

/// The character encoding of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Encoding {
    /// UTF-8: every character is written as is.
    #[serde(rename = "utf-8", alias = "UTF-8")]
    Utf8,
    /// ISO-8859-1 (Latin-1), for software that reads nothing else.
    #[serde(rename = "iso-8859-1", alias = "ISO-8859-1", alias = "latin-1")]
    Latin1,
}

impl Encoding {
    /// The name in an XML declaration.
    pub fn xml_name(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Latin1 => "ISO-8859-1",
        }
    }

    /// UTF-8 text, all of whose characters went through [`convert`] for this encoding, as
    /// the file's bytes.
    pub fn bytes(self, utf8: Vec<u8>) -> Vec<u8> {
        match self {
            Self::Utf8 => utf8,
            Self::Latin1 => {
                let mut latin1 = Vec::with_capacity(utf8.len());
                for chunk in utf8.utf8_chunks() {
                    let mut rest = chunk.valid();
                    while !rest.is_empty() {
                        // Markup and most text are ASCII, the same bytes in both: copied
                        // by runs.
                        let ascii = rest.bytes().position(|b| !b.is_ascii());
                        let (run, tail) = rest.split_at(ascii.unwrap_or(rest.len()));
                        latin1.extend_from_slice(run.as_bytes());
                        let mut chars = tail.chars();
                        if let Some(c) = chars.next() {
                            // Below U+0100 after `convert`.
                            latin1.push(u8::try_from(u32::from(c)).unwrap_or(b'?'));
                        }
                        rest = chars.as_str();
                    }
                    if !chunk.invalid().is_empty() {
                        latin1.push(b'?');
                    }
                }
                latin1
            }
        }
    }
}

/// Why a text cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A character that XML 1.0 cannot carry (a C0 control other than tab and line breaks,
    /// U+FFFE, U+FFFF), or a C1 control (never meant in a name: the trace of a mis-decoded
    /// text).
    Control(char),
    /// A character outside ISO-8859-1 without any equivalent (an emoji).
    NoEquivalent(char),
    /// A character outside ISO-8859-1, and transliteration is off.
    NotInLatin1(char),
}

/// `value` as it can be written in `encoding`: refused if it holds a control character;
/// in Latin-1, a character outside it is transliterated when `transliterate` is on, or
/// refused.
///
/// # Errors
///
/// [`Refused`] with the first character that cannot be written.
pub fn convert(
    value: &str,
    encoding: Encoding,
    transliterate: bool,
) -> Result<Cow<'_, str>, Refused> {
    // In ISO-8859-1, one pass for both questions: a file is mostly made of such texts.
    let mut latin1 = true;
    for c in value.chars() {
        if !is_writable(c) {
            return Err(Refused::Control(c));
        }
        latin1 &= encoding == Encoding::Utf8 || is_latin1(c);
    }
    if latin1 {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len());
    let mut dropped = None;
    for c in value.chars() {
        if is_latin1(c) {
            out.push(c);
        } else if !transliterate {
            return Err(Refused::NotInLatin1(c));
        } else {
            let equivalent = to_latin1(c).ok_or(Refused::NoEquivalent(c))?;
            if equivalent.is_empty() {
                dropped.get_or_insert(c);
            }
            out.push_str(&equivalent);
        }
    }
    // A text made only of characters that transliterate to nothing (a byte-order mark, a
    // zero-width space) would be written blank: a required value would vanish silently.
    if let Some(c) = dropped.filter(|_| out.trim().is_empty()) {
        return Err(Refused::NoEquivalent(c));
    }
    Ok(Cow::Owned(out))
}

/// Whether XML 1.0 can carry `c` and a connector accepts it in a text: not a C0 control
/// but tab and line breaks, not DEL nor a C1 control (XML 1.0 allows them, but they are
/// Windows-1252 or UTF-8 bytes gone astray and business software chokes on them), not
/// U+FFFE/U+FFFF. The XML writer refuses the rest, so a connector that validates a
/// document before writing it uses this same rule.
pub fn is_writable(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => true,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' => false,
        _ => true,
    }
}

fn is_latin1(c: char) -> bool {
    u32::from(c) <= 0xff
}

/// The Latin-1 text standing for `c`, if any.
fn to_latin1(c: char) -> Option<Cow<'static, str>> {
    // French typography first: deunicode would turn `œ` into `oe` too, but quotes and
    // dashes deserve their plain equivalents.
    let fixed = match c {
        'œ' => "oe",
        'Œ' => "OE",
        'Ÿ' => "Y",
        '‘' | '’' | '‚' | '′' => "'",
        '“' | '”' | '„' | '″' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' => "-",
        '…' => "...",
        '€' => "EUR",
        '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' => " ",
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' => "",
        _ => {
            let text = deunicode::deunicode_char(c)?;
            let text = text.trim_end();
            if text.is_empty() || text.contains("[?]") || !text.is_ascii() {
                return None;
            }
            return Some(Cow::Owned(text.to_owned()));
        }
    };
    Some(Cow::Borrowed(fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_that_transliterates_to_nothing_is_refused_not_blanked() {
        assert_eq!(
            convert("\u{feff}", Encoding::Latin1, true),
            Err(Refused::NoEquivalent('\u{feff}'))
        );
        assert_eq!(
            convert(" \u{200b} ", Encoding::Latin1, true),
            Err(Refused::NoEquivalent('\u{200b}'))
        );
        // Beside other characters it simply disappears; in UTF-8 it is written as is.
        assert_eq!(
            convert("Jean\u{200b}", Encoding::Latin1, true).unwrap(),
            "Jean"
        );
        assert_eq!(
            convert("\u{feff}", Encoding::Utf8, true).unwrap(),
            "\u{feff}"
        );
    }

    #[test]
    fn transliteration_keeps_french_names_readable() {
        assert_eq!(to_latin1('œ').unwrap(), "oe");
        assert_eq!(to_latin1('’').unwrap(), "'");
        assert_eq!(to_latin1('ł').unwrap(), "l");
        assert_eq!(to_latin1('Ș').unwrap(), "S");
        assert!(to_latin1('\u{1F600}').is_none() || to_latin1('\u{1F600}').unwrap().is_ascii());
    }

    #[test]
    fn writable_characters() {
        for c in ['\t', '\n', '\r', 'a', 'é', '中', '\u{10000}'] {
            assert!(is_writable(c), "{c:?}");
        }
        for c in [
            '\0', '\u{1}', '\u{b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{fffe}',
        ] {
            assert!(!is_writable(c), "{c:?}");
        }
    }

    proptest::proptest! {
        /// The bytes are those of the character-by-character conversion, whatever the
        /// input, invalid UTF-8 included (each invalid sequence is one `?`).
        #[test]
        fn latin1_bytes_are_those_of_each_character(utf8 in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b'<', b'\n', 0xc3, 0xa9, 0xc5, 0x93, 0xe2, 0x80, 0x99, 0xff, 0x7f]),
            0..40,
        )) {
            let expected: Vec<u8> = String::from_utf8_lossy(&utf8)
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect();
            proptest::prop_assert_eq!(Encoding::Latin1.bytes(utf8.clone()), expected);
            proptest::prop_assert_eq!(Encoding::Utf8.bytes(utf8.clone()), utf8);
        }
    }

    #[test]
    fn latin1_bytes_are_one_per_character() {
        let text = convert("Élodie", Encoding::Latin1, true).unwrap();
        assert_eq!(
            Encoding::Latin1.bytes(text.as_bytes().to_vec()),
            b"\xc9lodie"
        );
    }
}
