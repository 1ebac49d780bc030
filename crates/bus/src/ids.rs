//! The two identifiers every layer shares: a commune's INSEE code and a form's slug.
//!
//! Checked once where they enter (the envelope, the intake, the configuration), then
//! carried as types, so that a layer that receives one needs not check it again.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

/// True for a commune INSEE code: 5 characters, digits, or `2A`/`2B` then 3 digits (Corsica).
pub fn is_insee_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() != 5 {
        return false;
    }
    let corsica = bytes[0] == b'2' && matches!(bytes[1], b'A' | b'B');
    bytes
        .iter()
        .enumerate()
        .all(|(i, b)| b.is_ascii_digit() || (i == 1 && corsica))
}

/// True for a form slug as w.c.s. makes them: lowercase letters, digits, `-` and `_`.
pub fn is_form_slug(form: &str) -> bool {
    !form.is_empty()
        && form.len() <= 200
        && form
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value when `raw` is valid, `None` otherwise.
            pub fn parse(raw: impl Into<String>) -> Option<Self> {
                let raw = raw.into();
                $check(&raw).then_some(Self(raw))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl From<&$name> for String {
            fn from(value: &$name) -> String {
                value.0.clone()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

checked_text!(
    /// A commune's INSEE code (see [`is_insee_code`]).
    InseeCode,
    is_insee_code
);

checked_text!(
    /// A form's slug (see [`is_form_slug`]).
    FormSlug,
    is_form_slug
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insee_codes_include_corsica_and_nothing_else() {
        assert!(InseeCode::parse("44109").is_some());
        assert!(InseeCode::parse("2A004").is_some());
        assert!(InseeCode::parse("2C004").is_none());
        assert!(InseeCode::parse("4410").is_none());
        assert!(InseeCode::parse("A4410").is_none());
    }

    #[test]
    fn insee_codes() {
        assert!(is_insee_code("44043"));
        assert!(is_insee_code("2A004"));
        assert!(!is_insee_code("4404"));
        assert!(!is_insee_code("44O43"));
        assert!(!is_insee_code("2C004"));
        assert!(!is_insee_code("A2004"));
    }

    #[test]
    fn form_slugs_are_lowercase_words() {
        assert_eq!(FormSlug::parse("acte-naissance").unwrap(), "acte-naissance");
        assert!(FormSlug::parse("Acte").is_none());
        assert!(FormSlug::parse("").is_none());
        assert!(FormSlug::parse("a.b").is_none());
    }
}
