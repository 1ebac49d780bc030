//! Writing an XML file for a business software (feature `xml`): the declaration with the
//! file's encoding, elements in the order the caller writes them (a schema's
//! `xs:sequence`), every text and attribute value checked, converted to the file's
//! character set ([`charset`](crate::charset)) and escaped.
//!
//! A document is written by [`document`], and each element with children by
//! [`XmlWriter::element`], both taking the element's content as a closure: an element is
//! closed when its closure returns, so a document cannot be left unbalanced. An element
//! whose content fails is taken out whole, so a caller who goes on after an error still
//! gets a well-formed document.
//!
//! A text that cannot be written is an [`XmlError`] naming the element (its path from the
//! root) and the character: a control character that XML 1.0 cannot carry, or, in
//! ISO-8859-1, a character outside it when transliteration is off (`œ` becomes `oe` when
//! it is on) or that has no equivalent at all (an emoji).
//!
//! ```
//! use aiguillage_connector::xml::{self, Encoding, XmlError, XmlOptions};
//!
//! let nom = "D'Œuvre & fils";
//! let courriel: Option<&str> = None;
//! let options = XmlOptions::new(Encoding::Latin1).transliterate(true);
//! let bytes = xml::document(options, "demande", &[("version", "1.0")], |w| {
//!     w.element("personne", |w| {
//!         w.text_element("nom", nom)?;
//!         w.optional_text_element("courriel", courriel)
//!     })?;
//!     w.empty_element("urgent", &[("valeur", "non")])
//! })?;
//! assert_eq!(
//!     bytes,
//!     b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>
//! <demande version=\"1.0\">
//!   <personne>
//!     <nom>D&apos;OEuvre &amp; fils</nom>
//!   </personne>
//!   <urgent valeur=\"non\"/>
//! </demande>
//! "
//! );
//! # Ok::<(), XmlError>(())
//! ```

use std::borrow::Cow;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use crate::charset::{self, Refused};

pub use crate::charset::Encoding;

/// How a document is written: its encoding, whether characters outside ISO-8859-1 are
/// transliterated, and its indentation.
///
/// ```
/// use aiguillage_connector::xml::{Encoding, XmlOptions};
///
/// // UTF-8, no transliteration (it only applies to ISO-8859-1), two spaces per level.
/// let utf8 = XmlOptions::new(Encoding::Utf8);
/// // ISO-8859-1 with `œ` → `oe`, everything on one line.
/// let latin1 = XmlOptions::new(Encoding::Latin1).transliterate(true).indent(None);
/// assert_ne!(utf8, latin1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlOptions {
    encoding: Encoding,
    transliterate: bool,
    indent: Option<usize>,
}

impl XmlOptions {
    /// Options for a file in `encoding`: no transliteration, indented by two spaces per
    /// level.
    pub fn new(encoding: Encoding) -> Self {
        Self {
            encoding,
            transliterate: false,
            indent: Some(2),
        }
    }

    /// In ISO-8859-1, replaces a character outside it by its closest Latin letters
    /// (`œ` → `oe`, `ł` → `l`, `’` → `'`) when `on`, or refuses the text
    /// ([`Refused::NotInLatin1`]) when off. No effect in UTF-8.
    pub fn transliterate(mut self, on: bool) -> Self {
        self.transliterate = on;
        self
    }

    /// Each element on its own line, indented by `spaces` per level (`Some(2)`, the
    /// default), or the whole document on one line (`None`).
    pub fn indent(mut self, spaces: Option<usize>) -> Self {
        self.indent = spaces;
        self
    }

    /// The file's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
}

/// Why an XML document cannot be written. Each variant names the element by its path
/// from the root (`demande/personne/nom`, `…/nom/@valeur` for an attribute).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// A text or attribute value holds a character the file cannot carry.
    #[error("dans `{path}` : {}", refusal(.refused))]
    Character {
        /// The element, or attribute, whose value it is.
        path: String,
        /// The character and why it is refused.
        refused: Refused,
    },
    /// An element or attribute name that is not an XML name: a mistake in the
    /// connector's code, not in the data.
    #[error("dans `{path}` : {}", bad_name(.name))]
    Name {
        /// Where the name was to be written (its parent element).
        path: String,
        /// The name.
        name: String,
    },
    /// The writer failed. Writing into memory does not fail; kept rather than a panic.
    #[error("dans `{path}` : le XML ne peut pas être écrit : {source}")]
    Write {
        /// The element being written.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl XmlError {
    /// The element, or attribute, the error is about: its path from the root.
    pub fn path(&self) -> &str {
        match self {
            Self::Character { path, .. } | Self::Name { path, .. } | Self::Write { path, .. } => {
                path
            }
        }
    }

    /// What is wrong and what would fix it, without the path: for a caller that names
    /// the culprit its own way (the field of the démarche the text came from).
    pub fn reason(&self) -> String {
        match self {
            Self::Character { refused, .. } => refusal(refused),
            Self::Name { name, .. } => bad_name(name),
            Self::Write { source, .. } => format!("le XML ne peut pas être écrit : {source}"),
        }
    }
}

fn refusal(refused: &Refused) -> String {
    match *refused {
        Refused::Control(c) => format!(
            "contient le caractère de contrôle U+{:04X}, qu'un fichier XML ne peut pas porter : le retirer de la démarche",
            u32::from(c)
        ),
        Refused::NoEquivalent(c) => format!(
            "le caractère {c:?} (U+{:04X}) n'a pas d'équivalent en ISO-8859-1, l'encodage du fichier : corriger la démarche, ou régler `encoding = \"utf-8\"` si le logiciel le lit",
            u32::from(c)
        ),
        Refused::NotInLatin1(c) => format!(
            "le caractère {c:?} (U+{:04X}) n'est pas en ISO-8859-1, l'encodage du fichier, et `transliterate` est désactivé : corriger la démarche, ou régler `transliterate = true`",
            u32::from(c)
        ),
    }
}

fn bad_name(name: &str) -> String {
    format!(
        "`{}` n'est pas un nom XML (une lettre ou `_` d'abord, puis des lettres, chiffres, `_`, `-`, `.`, `:`)",
        name.escape_debug()
    )
}

/// Writes a whole document: the XML declaration naming `options`' encoding, the root
/// element `root` with its `attributes`, the content written by `body`, and a final line
/// break. Returns the file's bytes in its encoding.
///
/// `body`'s error type is the caller's own, as long as an [`XmlError`] converts into it:
/// a connector returns the error it reports, naming the field a refused text came from.
///
/// ```
/// use aiguillage_connector::xml::{self, Encoding, XmlError, XmlOptions};
///
/// let bytes = xml::document(XmlOptions::new(Encoding::Utf8).indent(None), "note", &[], |w| {
///     w.text_element("à", "5 < 6 & \"vrai\"")
/// })?;
/// assert_eq!(
///     String::from_utf8(bytes).unwrap(),
///     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><note><à>5 &lt; 6 &amp; &quot;vrai&quot;</à></note>\n"
/// );
/// # Ok::<(), XmlError>(())
/// ```
///
/// # Errors
///
/// The first error of `body`, or an [`XmlError`] for the root element (a name that is
/// not an XML name, an attribute value that cannot be written).
pub fn document<E: From<XmlError>>(
    options: XmlOptions,
    root: &str,
    attributes: &[(&str, &str)],
    body: impl FnOnce(&mut XmlWriter) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let mut w = XmlWriter {
        writer: match options.indent {
            Some(spaces) => Writer::new_with_indent(Vec::new(), b' ', spaces),
            None => Writer::new(Vec::new()),
        },
        options,
        path: String::new(),
        after_text: false,
    };
    w.event(Event::Decl(BytesDecl::new(
        "1.0",
        Some(options.encoding.xml_name()),
        None,
    )))?;
    w.element_with(root, attributes, body)?;
    let mut text = w.writer.into_inner();
    text.push(b'\n');
    Ok(options.encoding.bytes(text))
}

/// Writes the content of one element of a [`document`]; it is lent to the closures that
/// write each element's content.
pub struct XmlWriter {
    writer: Writer<Vec<u8>>,
    options: XmlOptions,
    /// The open elements, `/`-separated, for errors.
    path: String,
    /// The last thing written is text: the next element must not start a new line (in
    /// mixed content, the line break would be text too).
    after_text: bool,
}

impl XmlWriter {
    /// `<name>…</name>`, its content written by `body`.
    ///
    /// # Errors
    ///
    /// The error of `body`, or an [`XmlError`] when `name` is not an XML name. The element
    /// is then taken out whole: nothing of it stays in the document.
    pub fn element<E: From<XmlError>>(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.element_with(name, &[], body)
    }

    /// `<name a="…">…</name>`: an element with attributes, its content written by `body`.
    ///
    /// ```
    /// use aiguillage_connector::xml::{self, Encoding, XmlError, XmlOptions};
    ///
    /// let bytes = xml::document(XmlOptions::new(Encoding::Utf8).indent(None), "pj", &[], |w| {
    ///     w.element_with("fichier", &[("type", "application/pdf")], |w| w.text("JVBERi0="))
    /// })?;
    /// assert!(bytes.ends_with(b"<pj><fichier type=\"application/pdf\">JVBERi0=</fichier></pj>\n"));
    /// # Ok::<(), XmlError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The error of `body`, or an [`XmlError`] for a name that is not an XML name or an
    /// attribute value that cannot be written. The element is then taken out whole.
    pub fn element_with<E: From<XmlError>>(
        &mut self,
        name: &str,
        attributes: &[(&str, &str)],
        body: impl FnOnce(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.start(name, attributes)?;
        let (before_path, before_len, after_text) = (
            self.path.len(),
            self.writer.get_ref().len(),
            self.after_text,
        );
        self.event(Event::Start(start))?;
        if !self.path.is_empty() {
            self.path.push('/');
        }
        self.path.push_str(name);
        let result = body(self);
        // Closed whatever happened: the indentation level comes back with it.
        let closed = self.event(Event::End(BytesEnd::new(name)));
        self.path.truncate(before_path);
        if result.is_err() || closed.is_err() {
            // Taken out whole, so that a caller who ignores the error gets a well-formed
            // document; an empty text puts back the writer's "no line break" state.
            self.writer.get_mut().truncate(before_len);
            if after_text {
                self.text_event("")?;
            }
        }
        result?;
        Ok(closed?)
    }

    /// `<name>text</name>`: `text` converted to the file's character set and escaped.
    ///
    /// # Errors
    ///
    /// An [`XmlError`] naming the element when the text holds a character the file cannot
    /// carry, or when `name` is not an XML name; nothing is written then.
    pub fn text_element(&mut self, name: &str, text: &str) -> Result<(), XmlError> {
        let start = self.start(name, &[])?;
        let text = self.prepare(text, false, || self.child_path(name))?;
        self.event(Event::Start(start))?;
        self.text_event(&text)?;
        self.event(Event::End(BytesEnd::new(name)))
    }

    /// `<name>text</name>` when there is a text, nothing when it is `None`: an optional
    /// element of the schema.
    ///
    /// # Errors
    ///
    /// As [`XmlWriter::text_element`].
    pub fn optional_text_element(
        &mut self,
        name: &str,
        text: Option<&str>,
    ) -> Result<(), XmlError> {
        match text {
            Some(text) => self.text_element(name, text),
            None => Ok(()),
        }
    }

    /// `<name a="…"/>`: an empty element, with attributes or none (`&[]`).
    ///
    /// ```
    /// use aiguillage_connector::xml::{self, Encoding, XmlError, XmlOptions};
    ///
    /// let bytes = xml::document(XmlOptions::new(Encoding::Utf8).indent(None), "t", &[], |w| {
    ///     w.empty_element("vide", &[])?;
    ///     w.empty_element("Nom", &[("V", "L'\"Étude\"\n<B>")])
    /// })?;
    /// assert!(bytes.ends_with(
    ///     "<t><vide/><Nom V=\"L&apos;&quot;Étude&quot;&#10;&lt;B&gt;\"/></t>\n".as_bytes()
    /// ));
    /// # Ok::<(), XmlError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// An [`XmlError`] naming the attribute when its value holds a character the file
    /// cannot carry, or when a name is not an XML name; nothing is written then.
    pub fn empty_element(
        &mut self,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> Result<(), XmlError> {
        let element = self.start(name, attributes)?;
        self.event(Event::Empty(element))
    }

    /// Text inside the current element (the content of an element with attributes, or
    /// mixed content), converted and escaped.
    ///
    /// # Errors
    ///
    /// An [`XmlError`] naming the current element when the text holds a character the
    /// file cannot carry; nothing is written then.
    pub fn text(&mut self, text: &str) -> Result<(), XmlError> {
        let text = self.prepare(text, false, || self.path.clone())?;
        self.text_event(&text)
    }

    /// `text` as it will be written, before escaping: converted to the file's character
    /// set. For a caller that checks what it writes (a length limit counted in the
    /// file's characters) before writing it.
    ///
    /// ```
    /// use aiguillage_connector::xml::{self, Encoding, XmlError, XmlOptions};
    ///
    /// let options = XmlOptions::new(Encoding::Latin1).transliterate(true);
    /// xml::document(options, "t", &[], |w| {
    ///     assert_eq!(w.convert("Œuvre")?, "OEuvre");
    ///     Ok::<(), XmlError>(())
    /// })?;
    /// # Ok::<(), XmlError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// An [`XmlError`] naming the current element when the text holds a character the
    /// file cannot carry.
    pub fn convert<'a>(&self, text: &'a str) -> Result<Cow<'a, str>, XmlError> {
        self.convert_at(text, || self.path.clone())
    }

    /// The path of the current element from the root, `/`-separated.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `text` as written in an element (`attribute` false) or an attribute value:
    /// converted, then escaped.
    fn prepare<'a>(
        &self,
        text: &'a str,
        attribute: bool,
        path: impl FnOnce() -> String,
    ) -> Result<Cow<'a, str>, XmlError> {
        // Most values (codes, numbers, dates, plain names) need neither: one pass to know.
        let plain = if attribute {
            &PLAIN_IN_ATTRIBUTE
        } else {
            &PLAIN_IN_TEXT
        };
        if text.bytes().all(|b| plain[usize::from(b)]) {
            return Ok(Cow::Borrowed(text));
        }
        Ok(match self.convert_at(text, path)? {
            Cow::Borrowed(text) => escape(text, attribute),
            Cow::Owned(text) => Cow::Owned(escape(&text, attribute).into_owned()),
        })
    }

    fn convert_at<'a>(
        &self,
        text: &'a str,
        path: impl FnOnce() -> String,
    ) -> Result<Cow<'a, str>, XmlError> {
        let options = &self.options;
        charset::convert(text, options.encoding, options.transliterate).map_err(|refused| {
            XmlError::Character {
                path: path(),
                refused,
            }
        })
    }

    /// The start tag of `name` with its attributes, names checked and values converted
    /// and escaped; nothing written yet.
    fn start<'n>(
        &self,
        name: &'n str,
        attributes: &[(&str, &str)],
    ) -> Result<BytesStart<'n>, XmlError> {
        if !is_name(name) {
            return Err(XmlError::Name {
                path: self.path.clone(),
                name: name.to_owned(),
            });
        }
        let mut start = BytesStart::new(name);
        for &(key, value) in attributes {
            if !is_name(key) {
                return Err(XmlError::Name {
                    path: self.child_path(name),
                    name: key.to_owned(),
                });
            }
            let value =
                self.prepare(value, true, || format!("{}/@{key}", self.child_path(name)))?;
            // Built from its fields: `From<(&str, &str)>` would escape the value a second
            // time (`prepare` escaped it, with the SDK's own rules).
            start.push_attribute(Attribute {
                key: QName(key),
                value: Cow::Borrowed(value.as_ref()),
            });
        }
        Ok(start)
    }

    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.path)
        }
    }

    /// Escaped text.
    #[inline]
    fn text_event(&mut self, escaped: &str) -> Result<(), XmlError> {
        self.event(Event::Text(BytesText::from_escaped(escaped)))?;
        self.after_text = true;
        Ok(())
    }

    // Inlined where each kind of event is written, so that quick-xml's writing of it is
    // specialised too (measured with callgrind: 2 to 4 % fewer instructions per file).
    #[inline]
    fn event(&mut self, event: Event<'_>) -> Result<(), XmlError> {
        self.after_text = false;
        self.writer
            .write_event(event)
            .map_err(|source| XmlError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// Escapes a converted text: markup characters and quotes become entities, and so does a
/// carriage return (a parser would turn a raw one into a line feed); in an attribute
/// value, tabs and line feeds too (a parser would turn them into spaces).
fn escape(text: &str, attribute: bool) -> Cow<'_, str> {
    let special = |b: u8| {
        matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'\r')
            || (attribute && matches!(b, b'\t' | b'\n'))
    };
    if !text.bytes().any(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    // Every special character is ASCII: cut at its byte, copy the run before it.
    while let Some(at) = rest.bytes().position(special) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            b'\r' => "&#13;",
            b'\t' => "&#9;",
            _ => "&#10;",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The bytes written as they are in a text, or in an attribute value: printable ASCII
/// but markup characters and quotes, and in a text tab and line feed.
static PLAIN_IN_TEXT: [bool; 256] = plain(false);
static PLAIN_IN_ATTRIBUTE: [bool; 256] = plain(true);

const fn plain(attribute: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        table[b as usize] = !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'');
        b += 1;
    }
    if !attribute {
        table[b'\t' as usize] = true;
        table[b'\n' as usize] = true;
    }
    table
}

/// Whether `name` is an XML name (letters of any script, digits, `_`, `-`, `.`, `:`, not
/// starting with a digit, `-` or `.`).
fn is_name(name: &str) -> bool {
    match name.as_bytes() {
        [] => false,
        // ASCII names, the usual ones, by table; any other byte goes the slow way.
        [first, rest @ ..]
            if NAME_START[usize::from(*first)] && rest.iter().all(|&b| NAME[usize::from(b)]) =>
        {
            true
        }
        _ => {
            let mut chars = name.chars();
            chars.next().is_some_and(|first| {
                (first.is_alphabetic() || first == '_' || first == ':')
                    && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
            })
        }
    }
}

/// The ASCII bytes that may start an XML name, and those that may follow.
static NAME_START: [bool; 256] = name_bytes(true);
static NAME: [bool; 256] = name_bytes(false);

const fn name_bytes(start: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0u8;
    while b < 0x80 {
        table[b as usize] = b.is_ascii_alphabetic()
            || b == b'_'
            || b == b':'
            || (!start && (b.is_ascii_digit() || b == b'-' || b == b'.'));
        b += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(encoding: Encoding) -> XmlOptions {
        XmlOptions::new(encoding).indent(None)
    }

    /// The document's text after the XML declaration.
    fn body(bytes: &[u8]) -> &str {
        let text = std::str::from_utf8(bytes).unwrap();
        &text[text.find("?>").unwrap() + 2..]
    }

    #[test]
    fn markup_and_quotes_are_escaped_in_text_and_attributes() {
        let bytes = document(compact(Encoding::Utf8), "r", &[("a", "<&>\"'")], |w| {
            w.text_element("t", "<&>\"' x")?;
            w.empty_element("e", &[("v", "a<b & 'c' \"d\">")])
        })
        .unwrap();
        assert_eq!(
            body(&bytes),
            "<r a=\"&lt;&amp;&gt;&quot;&apos;\">\
             <t>&lt;&amp;&gt;&quot;&apos; x</t>\
             <e v=\"a&lt;b &amp; &apos;c&apos; &quot;d&quot;&gt;\"/></r>\n"
        );
    }

    #[test]
    fn line_breaks_survive_a_parser() {
        // In text a raw CR would be read as LF; in an attribute tab and LF as spaces.
        assert_eq!(escape("a\r\nb\tc", false), "a&#13;\nb\tc");
        assert_eq!(escape("a\r\nb\tc", true), "a&#13;&#10;b&#9;c");
        assert!(matches!(escape("Hélène", false), Cow::Borrowed(_)));
        assert!(matches!(escape("Hélène", true), Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_refused_with_the_element_path() {
        for c in [
            '\u{0}', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1f}', '\u{7f}', '\u{85}', '\u{fffe}',
            '\u{ffff}',
        ] {
            let text = format!("a{c}b");
            let error = document(compact(Encoding::Utf8), "r", &[], |w| {
                w.element("p", |w| w.text_element("nom", &text))
            })
            .unwrap_err();
            assert_eq!(error.path(), "r/p/nom", "{c:?}");
            assert!(
                matches!(error, XmlError::Character { refused: Refused::Control(bad), .. } if bad == c),
                "{c:?}: {error}"
            );
            assert!(error
                .to_string()
                .starts_with("dans `r/p/nom` : contient le caractère de contrôle U+"));
        }
        let error = document(compact(Encoding::Utf8), "r", &[], |w| {
            w.empty_element("e", &[("V", "\u{7}")])
        })
        .unwrap_err();
        assert_eq!(error.path(), "r/e/@V");
        let error = document(compact(Encoding::Utf8), "r", &[], |w| {
            w.element("p", |w| w.text("\u{1b}[31m"))
        })
        .unwrap_err();
        assert_eq!(error.path(), "r/p");
        assert_eq!(
            error.reason(),
            "contient le caractère de contrôle U+001B, qu'un fichier XML ne peut pas porter : le retirer de la démarche"
        );
    }

    #[test]
    fn tabs_and_line_breaks_are_allowed() {
        let bytes = document(compact(Encoding::Utf8), "r", &[], |w| w.text("a\tb\nc")).unwrap();
        assert_eq!(body(&bytes), "<r>a\tb\nc</r>\n");
    }

    #[test]
    fn latin1_documents_are_one_byte_per_character() {
        let options = compact(Encoding::Latin1).transliterate(true);
        let bytes = document(options, "r", &[("n", "Zoé")], |w| {
            w.text_element("t", "Élodie Œuvre ÿ ’")
        })
        .unwrap();
        assert_eq!(
            bytes,
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
              <r n=\"Zo\xe9\"><t>\xc9lodie OEuvre \xff &apos;</t></r>\n"
        );
        // The same text in UTF-8: two bytes for each accented letter, nothing changed.
        let bytes = document(compact(Encoding::Utf8), "r", &[], |w| {
            w.text_element("t", "Élodie Œ")
        })
        .unwrap();
        assert_eq!(body(&bytes), "<r><t>Élodie Œ</t></r>\n");
    }

    #[test]
    fn latin1_refuses_what_it_cannot_hold_naming_the_element() {
        let strict = compact(Encoding::Latin1);
        let error = document(strict, "r", &[], |w| w.text_element("nom", "Cœur")).unwrap_err();
        assert!(matches!(
            &error,
            XmlError::Character { path, refused: Refused::NotInLatin1('œ') } if path == "r/nom"
        ));
        assert!(
            error.to_string().contains("`transliterate` est désactivé"),
            "{error}"
        );
        let lenient = strict.transliterate(true);
        let error =
            document(lenient, "r", &[], |w| w.text_element("nom", "a \u{E000}")).unwrap_err();
        assert!(matches!(
            error,
            XmlError::Character {
                refused: Refused::NoEquivalent('\u{E000}'),
                ..
            }
        ));
    }

    #[test]
    fn optional_elements_are_skipped_when_absent() {
        let bytes = document(compact(Encoding::Utf8), "r", &[], |w| {
            w.optional_text_element("a", None)?;
            w.optional_text_element("b", Some(""))?;
            w.optional_text_element("c", Some("x"))
        })
        .unwrap();
        assert_eq!(body(&bytes), "<r><b></b><c>x</c></r>\n");
    }

    #[test]
    fn indentation_is_two_spaces_per_level_by_default() {
        let bytes = document(XmlOptions::new(Encoding::Utf8), "r", &[], |w| {
            w.element("a", |w| {
                w.text_element("b", "x")?;
                w.empty_element("c", &[])
            })
        })
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r>\n  <a>\n    <b>x</b>\n    <c/>\n  </a>\n</r>\n"
        );
    }

    #[test]
    fn a_failed_element_is_taken_out_whole_and_the_nesting_stays_balanced() {
        for options in [XmlOptions::new(Encoding::Utf8), compact(Encoding::Utf8)] {
            let bytes = document(options, "r", &[], |w| {
                w.text_element("avant", "1")?;
                // The caller ignores the error on purpose: the half-written element goes.
                let failed = w.element("a", |w| {
                    w.text_element("b", "ok")?;
                    w.element("c", |w| w.text_element("d", "\u{0}"))
                });
                assert_eq!(failed.unwrap_err().path(), "r/a/c/d");
                assert_eq!(w.path(), "r");
                w.text_element("apres", "2")
            })
            .unwrap();
            let expected = document(options, "r", &[], |w| {
                w.text_element("avant", "1")?;
                w.text_element("apres", "2")
            })
            .unwrap();
            assert_eq!(
                std::str::from_utf8(&bytes).unwrap(),
                std::str::from_utf8(&expected).unwrap()
            );
        }
        // In mixed content too: no line break appears where the element was.
        let bytes = document(XmlOptions::new(Encoding::Utf8), "r", &[], |w| {
            w.text("x")?;
            let _ = w.element("a", |w| w.text("\u{0}"));
            w.text_element("b", "y")
        })
        .unwrap();
        assert_eq!(body(&bytes), "\n<r>x<b>y</b>\n</r>\n");
    }

    #[test]
    fn the_callers_own_error_passes_through() {
        #[derive(Debug, PartialEq)]
        enum Mine {
            Field(&'static str),
            Xml(String),
        }
        impl From<XmlError> for Mine {
            fn from(error: XmlError) -> Self {
                Self::Xml(error.to_string())
            }
        }
        let result = document(compact(Encoding::Utf8), "r", &[], |w| {
            w.element("a", |_| Err(Mine::Field("montant")))
        });
        assert_eq!(result, Err(Mine::Field("montant")));
        let result = document(compact(Encoding::Utf8), "r", &[], |w| {
            w.element("a", |w| Ok::<(), Mine>(w.text_element("b", "\u{1}")?))
        });
        assert!(matches!(result, Err(Mine::Xml(message)) if message.starts_with("dans `r/a/b`")));
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "1a", "-a", "a b", "a<b", "a>", "a\"", "é\u{0}"] {
            let error = document(compact(Encoding::Utf8), "r", &[], |w| {
                w.empty_element(bad, &[])
            })
            .unwrap_err();
            assert!(
                matches!(&error, XmlError::Name { path, name } if path == "r" && name == bad),
                "{bad:?}"
            );
            let error = document(compact(Encoding::Utf8), "r", &[], |w| {
                w.empty_element("e", &[(bad, "v")])
            })
            .unwrap_err();
            assert!(
                matches!(&error, XmlError::Name { path, .. } if path == "r/e"),
                "{bad:?}"
            );
        }
        for good in ["a", "_a", "n:PES_Aller", "xmlns:n", "a-b.c1", "prénom"] {
            document(compact(Encoding::Utf8), good, &[(good, "v")], |w| {
                w.empty_element(good, &[])
            })
            .unwrap_or_else(|error| panic!("{good}: {error}"));
        }
    }
}
