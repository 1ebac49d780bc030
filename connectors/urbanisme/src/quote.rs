//! Values quoted in refusal reasons. A leaf module: the validation and the cadastre
//! checks both quote what they refuse, and neither imports the other for it.

/// `value` quoted for a message: escaped, and cut when long (a hostile value must not
/// fill the dead letters).
pub(crate) fn quote(value: &str) -> String {
    const MAX: usize = 80;
    let escaped: String = value.escape_debug().collect();
    if escaped.chars().count() > MAX {
        let cut: String = escaped.chars().take(MAX).collect();
        format!("`{cut}…`")
    } else {
        format!("`{escaped}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote("a\u{0}b"), "`a\\0b`");
        assert!(quote(&"x".repeat(1000)).chars().count() < 90);
    }
}
