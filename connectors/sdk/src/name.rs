//! File names built from the `file_name` template and the démarche's data, and the checks
//! that keep every name inside the drop directory.
//!
//! The values come from messages, so none of them is trusted: each is reduced to
//! `[A-Za-z0-9._-]`, never starts with a dot and is bounded in length. A value that had to
//! be altered gets a hash of the original appended, so that two different values never
//! end up as the same name (`a:b` and `a/b` both become `a_b`, but with different hashes).

use std::fmt::Write as _;
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

/// Longest text one placeholder renders to, in bytes.
pub const MAX_VALUE_BYTES: usize = 200;

/// Longest path component the connector writes, in bytes.
///
/// Filesystems allow 255; the temporary file's name adds a dot, a random part and `.tmp`
/// to the final name and must fit too.
pub const MAX_COMPONENT_BYTES: usize = 224;

/// Hex digits of the hash appended to an altered value: 64 bits, so accidental collisions
/// need billions of altered ids.
const HASH_HEX_DIGITS: usize = 16;

/// `-` and the hash.
const HASH_SUFFIX_BYTES: usize = 1 + HASH_HEX_DIGITS;

/// Smallest room a placeholder may get in a component: a few characters beside its hash,
/// so that a truncated name still tells the operator what it was.
const MIN_VALUE_BYTES: usize = HASH_SUFFIX_BYTES + 8;

/// The data a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{id}`: the envelope id.
    Id,
    /// `{commune}`: the commune's INSEE code.
    Commune,
    /// `{form}`: the form slug.
    Form,
    /// `{connector}`: the connector instance's name.
    Connector,
}

impl Placeholder {
    const ALL: [Self; 4] = [Self::Id, Self::Commune, Self::Form, Self::Connector];

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Commune => "commune",
            Self::Form => "form",
            Self::Connector => "connector",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|placeholder| placeholder.name() == name)
    }
}

/// The values of the placeholders for one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    /// The envelope id.
    pub id: &'a str,
    /// The commune's INSEE code.
    pub commune: &'a str,
    /// The form slug.
    pub form: &'a str,
    /// The connector instance's name.
    pub connector: &'a str,
}

impl Values<'_> {
    fn get(&self, placeholder: Placeholder) -> &str {
        match placeholder {
            Placeholder::Id => self.id,
            Placeholder::Commune => self.commune,
            Placeholder::Form => self.form,
            Placeholder::Connector => self.connector,
        }
    }
}

/// Why a `file_name` template is refused; the message follows the key's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("le modèle est vide : indiquer un nom tel que `{{id}}.json`")]
    /// The template is empty.
    Empty,
    #[error(
        "`{{attempt}}` est interdit : un nouvel essai doit écrire le même nom de fichier \
         (variables connues : {{id}}, {{commune}}, {{form}}, {{connector}})"
    )]
    /// `{attempt}` would give each retry a new file.
    Attempt,
    #[error("variable `{{{0}}}` inconnue (variables connues : {{id}}, {{commune}}, {{form}}, {{connector}})")]
    /// A placeholder that does not exist.
    UnknownPlaceholder(String),
    #[error("`{{` à l'octet {0} n'est pas refermée : une variable s'écrit `{{id}}`, et les accolades ne sont permises nulle part ailleurs")]
    /// A `{` without its `}`.
    Unclosed(usize),
    #[error(
        "`}}` à l'octet {0} ne ferme aucune variable : les accolades ne sont permises qu'autour d'une variable"
    )]
    /// A `}` without its `{`.
    Unopened(usize),
    #[error(
        "le modèle doit contenir `{{id}}`, pour que deux démarches ne partagent jamais un fichier"
    )]
    /// No `{id}`: two démarches could share a file.
    MissingId,
    #[error(
        "`/` créerait des sous-répertoires : régler `create_subdirectories = true` pour le permettre, \
         ou retirer le `/`"
    )]
    /// A `/` while sub-directories are not allowed.
    Subdirectory,
    #[error("élément de chemin vide (un `/` au début, à la fin ou doublé)")]
    /// An empty path component.
    EmptyComponent,
    #[error("l'élément de chemin `{0}` est interdit")]
    /// A `.` or `..` component.
    DotComponent(String),
    #[error("`{0}` commence par `.` : les noms cachés sont réservés aux fichiers temporaires du connecteur")]
    /// A component starting with `.`.
    Hidden(String),
    #[error(
        "le caractère {0:?} est interdit dans un nom de fichier (les caractères de contrôle et `\\` sont refusés)"
    )]
    /// A control character or `\\`.
    ForbiddenChar(char),
    #[error(
        "`{0}` est trop long : un nom fait au plus {MAX_COMPONENT_BYTES} octets et chaque variable \
         en demande au moins {MIN_VALUE_BYTES} ; raccourcir le texte fixe ou le découper avec `/`"
    )]
    /// A component too long for a file name.
    TooLong(String),
}

/// A rendered name that failed the final check; never expected, since the template and
/// the sanitised values are checked beforehand, but nothing is written if it happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nom de fichier dangereux refusé, « {} » : {reason}", name.escape_debug())]
pub struct UnsafeName {
    name: String,
    reason: &'static str,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Value(Placeholder),
}

/// One path component of the template, with the room each of its placeholders gets.
#[derive(Debug, Clone)]
struct Segment {
    parts: Vec<Part>,
    value_budget: usize,
}

/// A checked `file_name` template.
#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses and checks `text`; `/` is refused unless `allow_subdirectories`.
    pub fn parse(text: &str, allow_subdirectories: bool) -> Result<Self, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        if text.contains('/') && !allow_subdirectories {
            return Err(TemplateError::Subdirectory);
        }
        let mut segments = Vec::new();
        let mut offset = 0;
        for component in text.split('/') {
            segments.push(parse_segment(component, offset)?);
            offset += component.len() + 1;
        }
        let has_id = segments
            .iter()
            .flat_map(|segment| &segment.parts)
            .any(|part| matches!(part, Part::Value(Placeholder::Id)));
        if !has_id {
            return Err(TemplateError::MissingId);
        }
        Ok(Self { segments })
    }

    /// The relative path (components joined by `/`) for `values`.
    ///
    /// # Errors
    ///
    /// [`UnsafeName`] when the result is not a plain relative path; the sanitising makes
    /// that impossible, the check is there so that a mistake in it cannot write elsewhere.
    pub fn render(&self, values: &Values<'_>) -> Result<String, UnsafeName> {
        let mut out = String::new();
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                out.push('/');
            }
            for part in &segment.parts {
                match part {
                    Part::Literal(text) => out.push_str(text),
                    Part::Value(placeholder) => {
                        out.push_str(&sanitize(values.get(*placeholder), segment.value_budget));
                    }
                }
            }
        }
        check_relative(&out)?;
        Ok(out)
    }
}

fn parse_segment(component: &str, offset: usize) -> Result<Segment, TemplateError> {
    if component.is_empty() {
        return Err(TemplateError::EmptyComponent);
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = component.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '{' => {
                let rest = &component[index + 1..];
                let Some(end) = rest
                    .find(['{', '}'])
                    .filter(|&end| rest[end..].starts_with('}'))
                else {
                    return Err(TemplateError::Unclosed(offset + index));
                };
                let name = &rest[..end];
                let placeholder = match Placeholder::parse(name) {
                    Some(placeholder) => placeholder,
                    None if name == "attempt" => return Err(TemplateError::Attempt),
                    None => return Err(TemplateError::UnknownPlaceholder(name.to_owned())),
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Value(placeholder));
                // The iterator still stands on the name: move it past the closing brace.
                for _ in rest[..=end].chars() {
                    chars.next();
                }
            }
            '}' => return Err(TemplateError::Unopened(offset + index)),
            '\\' => return Err(TemplateError::ForbiddenChar(c)),
            c if c.is_control() => return Err(TemplateError::ForbiddenChar(c)),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }

    if component == "." || component == ".." {
        return Err(TemplateError::DotComponent(component.to_owned()));
    }
    if matches!(parts.first(), Some(Part::Literal(text)) if text.starts_with('.')) {
        return Err(TemplateError::Hidden(component.to_owned()));
    }

    let literal_bytes: usize = parts
        .iter()
        .map(|part| match part {
            Part::Literal(text) => text.len(),
            Part::Value(_) => 0,
        })
        .sum();
    let values = parts
        .iter()
        .filter(|part| matches!(part, Part::Value(_)))
        .count();
    let room = MAX_COMPONENT_BYTES.checked_sub(literal_bytes);
    let value_budget = match (room, values) {
        (Some(_), 0) => 0,
        (Some(room), values) if room / values >= MIN_VALUE_BYTES => {
            (room / values).min(MAX_VALUE_BYTES)
        }
        _ => return Err(TemplateError::TooLong(component.to_owned())),
    };
    Ok(Segment {
        parts,
        value_budget,
    })
}

fn is_kept(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// True when `text` ends like an altered value (`-` and the hash's hex digits).
///
/// Such a value is altered again even when clean, so that a crafted id cannot take the
/// name that another id was given.
fn ends_like_a_hash(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= HASH_SUFFIX_BYTES
        && bytes[bytes.len() - HASH_SUFFIX_BYTES] == b'-'
        && bytes[bytes.len() - HASH_HEX_DIGITS..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(HASH_HEX_DIGITS);
    for byte in &digest[..HASH_HEX_DIGITS / 2] {
        // Writing into a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Makes `value` safe as part of a file name, in at most `budget` bytes.
///
/// The result only has `[A-Za-z0-9._-]`, is not empty and does not start with a dot. A
/// clean value is kept as is; any other gets a hash of the original appended, so the
/// mapping is one-to-one except for hash collisions.
pub fn sanitize(value: &str, budget: usize) -> String {
    let mut out: String = value
        .chars()
        .map(|c| if is_kept(c) { c } else { '_' })
        .collect();
    let mut altered = out != value;
    if out.starts_with('.') {
        // `..` and hidden names must never come out of a value.
        out = format!("_{}", out.trim_start_matches('.'));
        altered = true;
    }
    if !altered && !out.is_empty() && out.len() <= budget && !ends_like_a_hash(&out) {
        return out;
    }
    // Only ASCII is left, so any byte index is a char boundary.
    out.truncate(budget.saturating_sub(HASH_SUFFIX_BYTES));
    if out.is_empty() {
        out.push('_');
    }
    out.push('-');
    out.push_str(&short_hash(value));
    out
}

/// Checks that `path` is a plain relative path: only normal, visible components, no NUL.
///
/// # Errors
///
/// [`UnsafeName`] saying what is wrong.
pub fn check_relative(path: &str) -> Result<(), UnsafeName> {
    let refuse = |reason| {
        Err(UnsafeName {
            name: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return refuse("le nom est vide");
    }
    if path.contains('\0') {
        return refuse("il contient un octet NUL");
    }
    if path.contains('\\') {
        return refuse("il contient une barre oblique inverse");
    }
    if path.starts_with('/') {
        return refuse("c'est un chemin absolu");
    }
    for component in path.split('/') {
        if component.is_empty() {
            return refuse("un de ses éléments est vide");
        }
        if component == "." || component == ".." {
            return refuse("un de ses éléments est `.` ou `..`");
        }
        if component.starts_with('.') {
            return refuse("un de ses éléments est caché (commence par `.`)");
        }
        if component.len() > MAX_COMPONENT_BYTES {
            return refuse("un de ses éléments est trop long");
        }
    }
    // The platform's own reading must agree (prefixes like `C:` on Windows).
    if !Path::new(path)
        .components()
        .all(|component| matches!(component, Component::Normal(_)))
    {
        return refuse("ce n'est pas un simple chemin relatif");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(id: &str) -> Values<'_> {
        Values {
            id,
            commune: "44043",
            form: "demande-acte-naissance",
            connector: "etat-civil",
        }
    }

    #[test]
    fn clean_values_are_kept() {
        assert_eq!(sanitize("abc-42_x.y", 200), "abc-42_x.y");
        let template = Template::parse("{commune}_{form}_{id}.json", false).unwrap();
        assert_eq!(
            template.render(&values("42")).unwrap(),
            "44043_demande-acte-naissance_42.json"
        );
    }

    #[test]
    fn altered_values_get_a_hash_of_the_original() {
        let colon = sanitize("a:b", 200);
        let slash = sanitize("a/b", 200);
        assert!(colon.starts_with("a_b-"), "{colon}");
        assert!(slash.starts_with("a_b-"), "{slash}");
        assert_ne!(colon, slash);
        assert_eq!(colon, sanitize("a:b", 200), "the hash is stable");
        assert_eq!(colon.len(), 3 + HASH_SUFFIX_BYTES);
    }

    #[test]
    fn dots_cannot_make_a_parent_or_hidden_name() {
        for value in ["..", ".", "...", ".hidden", "../x"] {
            let out = sanitize(value, 200);
            assert!(!out.starts_with('.'), "{value:?} gave {out:?}");
            assert_ne!(out, "..");
        }
        assert_ne!(sanitize("..", 200), sanitize(".", 200));
    }

    #[test]
    fn empty_and_long_values_are_bounded_and_distinct() {
        let empty = sanitize("", 200);
        assert!(empty.starts_with("_-"), "{empty}");
        let long_a = "a".repeat(1000);
        let long_b = format!("{}b", "a".repeat(999));
        let (a, b) = (sanitize(&long_a, 200), sanitize(&long_b, 200));
        assert_eq!(a.len(), 200);
        assert_eq!(b.len(), 200);
        assert_ne!(a, b);
    }

    #[test]
    fn a_clean_value_cannot_take_an_altered_value_s_name() {
        let altered = sanitize("a:b", 200);
        let lookalike = sanitize(&altered, 200);
        assert_ne!(lookalike, altered);
    }

    #[test]
    fn templates_are_checked() {
        let refused = |text: &str, subdirectories| {
            Template::parse(text, subdirectories)
                .err()
                .unwrap_or_else(|| panic!("{text:?} should be refused"))
        };
        assert_eq!(
            refused("{attempt}-{id}.json", false),
            TemplateError::Attempt
        );
        assert_eq!(
            refused("{id}-{date}.json", false),
            TemplateError::UnknownPlaceholder("date".into())
        );
        assert_eq!(refused("{id.json", false), TemplateError::Unclosed(0));
        assert_eq!(refused("{id{form}}", false), TemplateError::Unclosed(0));
        assert_eq!(refused("id}.json", false), TemplateError::Unopened(2));
        assert_eq!(refused("out.json", false), TemplateError::MissingId);
        assert_eq!(refused("", false), TemplateError::Empty);
        assert_eq!(refused("{form}/{id}", false), TemplateError::Subdirectory);
        assert_eq!(refused("/{id}", true), TemplateError::EmptyComponent);
        assert_eq!(refused("a//{id}", true), TemplateError::EmptyComponent);
        assert_eq!(refused("{id}/", true), TemplateError::EmptyComponent);
        assert_eq!(
            refused("../{id}", true),
            TemplateError::DotComponent("..".into())
        );
        assert_eq!(
            refused(".{id}.json", false),
            TemplateError::Hidden(".{id}.json".into())
        );
        assert_eq!(
            refused("a\\{id}", false),
            TemplateError::ForbiddenChar('\\')
        );
        assert_eq!(
            refused("a\0{id}", false),
            TemplateError::ForbiddenChar('\0')
        );
        let long = format!("{}{{id}}", "x".repeat(MAX_COMPONENT_BYTES));
        assert!(matches!(refused(&long, false), TemplateError::TooLong(_)));
        let crowded = format!("{}{{id}}{{form}}", "x".repeat(180));
        assert!(matches!(
            refused(&crowded, false),
            TemplateError::TooLong(_)
        ));
    }

    #[test]
    fn template_errors_name_the_known_placeholders() {
        let error = Template::parse("{date}.json", false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "variable `{date}` inconnue (variables connues : {id}, {commune}, {form}, {connector})"
        );
    }

    #[test]
    fn unicode_literals_are_allowed_and_counted_in_bytes() {
        let template = Template::parse("démarche-{id}.json", false).unwrap();
        assert_eq!(
            template.render(&values("été")).unwrap(),
            format!("démarche-{}.json", sanitize("été", 200))
        );
        let id = "é".repeat(300);
        let name = template.render(&values(&id)).unwrap();
        assert!(name.len() <= MAX_COMPONENT_BYTES, "{}", name.len());
    }

    #[test]
    fn subdirectories_render_with_slashes() {
        let template = Template::parse("{commune}/{form}/{id}.json", true).unwrap();
        assert_eq!(
            template.render(&values("7")).unwrap(),
            "44043/demande-acte-naissance/7.json"
        );
        let hostile = Values {
            commune: "..",
            form: "/",
            ..values("../../etc/passwd")
        };
        let name = template.render(&hostile).unwrap();
        assert_eq!(name.split('/').count(), 3, "{name}");
    }

    #[test]
    fn the_final_check_refuses_escapes() {
        for path in [
            "", "/abs", "a/../b", "..", ".", "a//b", "a/", "a\0b", "a\\b", ".hidden", "a/./b",
        ] {
            assert!(check_relative(path).is_err(), "{path:?} accepted");
        }
        assert!(check_relative("a/b.json").is_ok());
        let error = check_relative("../x").unwrap_err();
        assert!(error.to_string().contains("« ../x »"), "{error}");
    }

    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[./\\\\\0:a _-]{0,40}",
            "[.]{0,5}[/]?[.]{0,5}",
            "[a-f0-9-]{0,300}",
            proptest::collection::vec(any::<char>(), 150..400)
                .prop_map(|chars| chars.into_iter().collect()),
        ]
    }

    proptest! {
        #[test]
        fn rendered_names_stay_a_single_safe_component(
            id in hostile_text(),
            commune in hostile_text(),
            form in hostile_text(),
            connector in hostile_text(),
        ) {
            let template =
                Template::parse("{commune}_{form}_{connector}_{id}.json", false).unwrap();
            let values = Values { id: &id, commune: &commune, form: &form, connector: &connector };
            let name = template.render(&values).unwrap();
            prop_assert!(check_relative(&name).is_ok());
            prop_assert!(!name.contains('/'));
            prop_assert!(name.len() <= MAX_COMPONENT_BYTES);
            let mut components = Path::new(&name).components();
            prop_assert!(matches!(components.next(), Some(Component::Normal(_))));
            prop_assert!(components.next().is_none());
            let inside = Path::new("/srv/drop").join(&name);
            prop_assert_eq!(inside.parent(), Some(Path::new("/srv/drop")));
        }

        #[test]
        fn rendered_paths_keep_their_shape(id in hostile_text(), form in hostile_text()) {
            let template = Template::parse("{form}/{id}", true).unwrap();
            let name = template.render(&values(&id)).unwrap();
            prop_assert!(check_relative(&name).is_ok());
            let with_form = Values { form: &form, ..values(&id) };
            let name = template.render(&with_form).unwrap();
            prop_assert_eq!(name.split('/').count(), 2);
            prop_assert!(Path::new(&name)
                .components()
                .all(|component| matches!(component, Component::Normal(_))));
        }

        #[test]
        fn distinct_values_give_distinct_names(a in hostile_text(), b in hostile_text()) {
            prop_assume!(a != b);
            prop_assert_ne!(sanitize(&a, 200), sanitize(&b, 200));
            prop_assert_ne!(sanitize(&a, MIN_VALUE_BYTES), sanitize(&b, MIN_VALUE_BYTES));
        }

        #[test]
        fn sanitized_values_are_plain(value in hostile_text(), budget in MIN_VALUE_BYTES..=MAX_VALUE_BYTES) {
            let out = sanitize(&value, budget);
            prop_assert!(!out.is_empty());
            prop_assert!(out.len() <= budget);
            prop_assert!(!out.starts_with('.'));
            prop_assert!(out.chars().all(is_kept));
        }
    }
}
