// Over 600 lines: the mapping language's compiler and evaluator in one place; to split compile/evaluate in phase B.
//! Mappings: from a Publik démarche to the document a connector delivers, with no code.
//!
//! A mapping is a TOML file (see docs/mappings.md): a `[document]` whose fields are
//! literals or templates in the Django/Jinja syntax of w.c.s. (`{{ fields.nom|upper }}`),
//! with types, code tables, required fields and defaults; plus the attachments to hand
//! over. It is checked when the gateway starts (every error names the file, the line, the
//! field and the fix); applied to a démarche, a failure is permanent and names the field,
//! the value and the file, so that an operator can fix the mapping and replay.
//!
//! Without a mapping, the document is the whole envelope ([`identity`]).

mod filters;
mod json;
mod native;
mod scope;
pub mod types;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aiguillage_connector::{Attachment, Document};
use base64::Engine as _;
use minijinja::Environment;
use serde_json::{Map, Value};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use aiguillage_bus::envelope::Envelope;
use filters::Tables;
use scope::{Frame, Scope, Slots, VarPath};
use types::{FieldType, TypeError};

/// The variables a template can use.
pub const ROOTS: [&str; 5] = ["envelope", "fields", "form", "user", "workflow"];

/// A mapped démarche, ready for its connector.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The document to deliver.
    pub document: Document,
    /// The démarche's files.
    pub attachments: Vec<Attachment>,
}

/// A démarche this mapping cannot turn into a document: a permanent failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A field cannot be produced from this démarche.
    #[error("mapping {file} : champ `{field}` : {message}")]
    Field {
        /// The mapping file.
        file: String,
        /// The output field, dotted (`demandeur.nom`).
        field: String,
        /// What is wrong, with the value.
        message: String,
    },
    /// An attachment is missing, too large, of a refused type or not decodable.
    #[error("{}champ fichier `{field}` : {message}", file.as_ref().map(|f| format!("mapping {f} : ")).unwrap_or_default())]
    Attachment {
        /// The mapping file, if a mapping is in use.
        file: Option<String>,
        /// The form's file field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A mapping file that cannot be used: refused when the gateway starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MappingFileError {
    /// The file.
    pub file: String,
    /// The line (1-based; 0 when the file could not be read).
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What to hand over of one file field.
#[derive(Debug, Clone)]
struct AttachmentSpec {
    field: String,
    name: Option<String>,
    required: bool,
    content_types: Vec<String>,
    max_bytes: usize,
}

/// Largest attachment accepted unless the mapping says otherwise.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;

/// How a field's value is produced.
#[derive(Debug, Clone)]
enum Source {
    /// Fixed text.
    Literal(String),
    /// A plain variable path (`{{ fields.nom }}`), resolved without the template engine.
    Path(VarPath),
    /// A template, by its name in the environment.
    Template(String),
    /// A simple template evaluated natively, with the engine's template as fallback.
    Native {
        pipeline: native::Native,
        fallback: String,
    },
}

#[derive(Debug, Clone)]
struct FieldSpec {
    name: String,
    source: Source,
    field_type: Option<FieldType>,
    max_length: Option<usize>,
    table: Option<String>,
    required: bool,
    default: Option<Value>,
    when: Option<Source>,
}

#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    Field(Box<FieldSpec>),
    /// An object, left out when its `when` condition is false or when nothing in it has a
    /// value.
    Object {
        name: String,
        entries: Vec<(String, Node)>,
        when: Option<Source>,
    },
    List(Vec<Node>),
    Each {
        name: String,
        path: VarPath,
        alias: String,
        item: Box<Node>,
        required: bool,
    },
}

/// A checked mapping, ready to apply.
pub struct Mapping {
    file: String,
    description: Option<String>,
    env: Environment<'static>,
    tables: Tables,
    document: Node,
    attachments: Vec<AttachmentSpec>,
    /// `[mapping] attachments = "none"`: no file is handed over, even without
    /// `[[attachments]]` blocks (which otherwise means every file field).
    no_attachments: bool,
    slots: Slots,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Mapping {
    /// Reads and checks a mapping file; `display` is how messages name it.
    ///
    /// # Errors
    ///
    /// [`MappingFileError`] naming the line, the field and the fix.
    pub fn load(path: &Path, display: &str) -> Result<Self, MappingFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| MappingFileError {
            file: display.to_owned(),
            line: 0,
            message: format!("impossible de lire le mapping : {error}"),
        })?;
        Self::parse(&text, display)
    }

    /// Checks a mapping given as text.
    ///
    /// # Errors
    ///
    /// [`MappingFileError`] naming the line, the field and the fix.
    pub fn parse(text: &str, display: &str) -> Result<Self, MappingFileError> {
        Parser::new(text, display).parse()
    }

    /// The file, as messages name it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The mapping's own description, if it gives one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Applies the mapping to a démarche.
    ///
    /// # Errors
    ///
    /// [`MappingError`] naming the field, the value and the mapping file.
    pub fn apply(&self, envelope: &Envelope) -> Result<Mapped, MappingError> {
        let frame = Frame::new(envelope, &self.slots);
        let scope = frame.scope();
        let document = self
            .render(&self.document, &scope)?
            .unwrap_or_else(|| Value::Object(Map::new()));
        Ok(Mapped {
            document,
            attachments: self.attachments(envelope)?,
        })
    }

    fn render(&self, node: &Node, scope: &Scope<'_>) -> Result<Option<Value>, MappingError> {
        match node {
            Node::Literal(value) => Ok(Some(value.clone())),
            Node::Field(spec) => self.render_field(spec, scope),
            Node::Object {
                name,
                entries,
                when,
            } => {
                if let Some(when) = when {
                    if is_false(&self.text(&format!("{name} (when)"), when, scope)?) {
                        return Ok(None);
                    }
                }
                let mut object = Map::new();
                for (key, child) in entries {
                    if let Some(value) = self.render(child, scope)? {
                        object.insert(key.clone(), value);
                    }
                }
                // An object with nothing in it is left out (a spouse on a birth request).
                Ok((!object.is_empty()).then_some(Value::Object(object)))
            }
            Node::List(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(value) = self.render(item, scope)? {
                        list.push(value);
                    }
                }
                Ok((!list.is_empty()).then_some(Value::Array(list)))
            }
            Node::Each {
                name,
                path,
                alias,
                item,
                required,
            } => {
                let empty = || {
                    if *required {
                        Err(self.field_error(
                            name,
                            format!(
                                "obligatoire, mais `{}` n'a aucun élément pour cette démarche",
                                path.text()
                            ),
                        ))
                    } else {
                        Ok(None)
                    }
                };
                let items = match scope.resolve(path) {
                    None | Some(Value::Null) => return empty(),
                    Some(Value::Array(items)) => items,
                    Some(other) => {
                        return Err(self.field_error(
                            name,
                            format!(
                                "`for_each = \"{}\"` n'est pas une liste ici ({})",
                                path.text(),
                                json_kind(other)
                            ),
                        ))
                    }
                };
                let mut list = Vec::with_capacity(items.len());
                for (index, value) in items.iter().enumerate() {
                    let inner = scope.with(alias, value);
                    // Name the item at fault: `terrain.parcelles[1].numero`.
                    let rendered = self.render(item, &inner).map_err(|error| match error {
                        MappingError::Field {
                            file,
                            field,
                            message,
                        } => MappingError::Field {
                            file,
                            field: field.replacen(
                                &format!("{name}[]"),
                                &format!("{name}[{index}]"),
                                1,
                            ),
                            message,
                        },
                        other => other,
                    })?;
                    if let Some(rendered) = rendered {
                        list.push(rendered);
                    }
                }
                if list.is_empty() {
                    return empty();
                }
                Ok(Some(Value::Array(list)))
            }
        }
    }

    fn render_field(
        &self,
        spec: &FieldSpec,
        scope: &Scope<'_>,
    ) -> Result<Option<Value>, MappingError> {
        if let Some(when) = &spec.when {
            if is_false(&self.text(&spec.name, when, scope)?) {
                return Ok(None);
            }
        }
        // A plain path to a list or an object without a type passes it as it is.
        if let (Source::Path(path), None) = (&spec.source, &spec.field_type) {
            if let Some(value @ (Value::Array(_) | Value::Object(_))) = scope.resolve(path) {
                return Ok(Some(value.clone()));
            }
        }
        let text = self.text(&spec.name, &spec.source, scope)?;
        let text = text.trim();
        if text.is_empty() {
            return match (&spec.default, spec.required) {
                (Some(default), _) => Ok(Some(default.clone())),
                (None, true) => Err(self.field_error(
                    &spec.name,
                    format!(
                        "obligatoire, mais {} ne donne rien pour cette démarche",
                        describe(&spec.source)
                    ),
                )),
                (None, false) => Ok(None),
            };
        }
        let coded;
        let text = match &spec.table {
            Some(table) => {
                let codes = self.tables.get(table).map(|codes| (codes.get(text), codes));
                match codes {
                    Some((Some(code), _)) => {
                        coded = code.clone();
                        coded.as_str()
                    }
                    Some((None, codes)) => {
                        return Err(self.field_error(
                            &spec.name,
                            format!(
                                "`{}` n'est pas dans la table de codes `{table}` (connus : {}) : l'ajouter à [tables.{table}]",
                                types::shorten(text),
                                filters::known(codes)
                            ),
                        ))
                    }
                    None => unreachable_table(table),
                }
            }
            None => text,
        };
        let field_type = spec.field_type.as_ref().unwrap_or(&FieldType::String);
        types::convert(text, field_type, spec.max_length)
            .map(Some)
            .map_err(|TypeError(message)| self.field_error(&spec.name, message))
    }

    fn text<'s>(
        &'s self,
        field: &str,
        source: &'s Source,
        scope: &Scope<'s>,
    ) -> Result<Cow<'s, str>, MappingError> {
        match source {
            Source::Literal(text) => Ok(Cow::Borrowed(text)),
            Source::Path(path) => Ok(match scope.resolve(path) {
                None | Some(Value::Null) => Cow::Borrowed(""),
                Some(Value::String(text)) => Cow::Borrowed(text),
                Some(Value::Bool(b)) => Cow::Owned(b.to_string()),
                Some(Value::Number(n)) => Cow::Owned(n.to_string()),
                Some(other) => Cow::Owned(other.to_string()),
            }),
            Source::Native { pipeline, fallback } => {
                match pipeline.eval(&|path: &VarPath| scope.resolve(path), &self.tables) {
                    Ok(Some(text)) => Ok(Cow::Owned(text)),
                    Ok(None) => self.render_template(field, fallback, scope).map(Cow::Owned),
                    Err(error) => Err(self.field_error(field, refusal_message(&error))),
                }
            }
            Source::Template(name) => self.render_template(field, name, scope).map(Cow::Owned),
        }
    }

    fn render_template(
        &self,
        field: &str,
        name: &str,
        scope: &Scope<'_>,
    ) -> Result<String, MappingError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|error| self.field_error(field, refusal_message(&error)))?;
        template
            .render(scope.context())
            .map_err(|error| self.field_error(field, refusal_message(&error)))
    }

    fn field_error(&self, field: &str, message: String) -> MappingError {
        MappingError::Field {
            file: self.file.clone(),
            field: field.to_owned(),
            message,
        }
    }

    fn attachments(&self, envelope: &Envelope) -> Result<Vec<Attachment>, MappingError> {
        if self.no_attachments {
            return Ok(Vec::new());
        }
        if self.attachments.is_empty() {
            return attachments(envelope, Some(&self.file));
        }
        let fields = envelope.formdata.get("fields").and_then(Value::as_object);
        let mut out = Vec::with_capacity(self.attachments.len());
        for spec in &self.attachments {
            let error = |message: String| MappingError::Attachment {
                file: Some(self.file.clone()),
                field: spec.field.clone(),
                message,
            };
            let Some(file) = fields.and_then(|f| f.get(&spec.field)).and_then(file_field) else {
                if spec.required {
                    return Err(error(
                        "obligatoire, mais la démarche n'a pas ce fichier".into(),
                    ));
                }
                continue;
            };
            let attachment = decode(&spec.field, file, spec.name.as_deref(), Some(&self.file))?;
            if !spec.content_types.is_empty()
                && !spec.content_types.contains(&attachment.content_type)
            {
                return Err(error(format!(
                    "le type de contenu `{}` n'est pas accepté (acceptés : {})",
                    attachment.content_type,
                    spec.content_types.join(", ")
                )));
            }
            if attachment.content.len() > spec.max_bytes {
                return Err(error(format!(
                    "{} octets, plus que les {} acceptés",
                    attachment.content.len(),
                    spec.max_bytes
                )));
            }
            out.push(attachment);
        }
        Ok(out)
    }
}

/// How a `when` condition reads as false: the engine's falsy values, and the words a
/// w.c.s. form writes for an unticked box.
fn is_false(text: &str) -> bool {
    matches!(text.trim(), "" | "false" | "False" | "0" | "non" | "none")
}

fn unreachable_table(table: &str) -> ! {
    // Tables named by fields are checked when the mapping is loaded.
    panic!("code table `{table}` vanished after the mapping was checked")
}

fn describe(source: &Source) -> String {
    match source {
        Source::Literal(text) => format!("la valeur fixe `{text}`"),
        Source::Path(path) => format!("`{{{{ {} }}}}`", path.text()),
        Source::Template(_) | Source::Native { .. } => "son modèle".into(),
    }
}

/// A template refused when the mapping is loaded: the engine's own words (English) are
/// quoted as they are, so that the operator tells them from ours.
fn template_message(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("erreur dans le modèle : « {detail} »"),
        None => format!("erreur dans le modèle : « {} »", error.kind()),
    }
}

/// A template that fails on a démarche: the reason a commune agent reads, in French. The
/// mapping filters' own refusals are French already; the engine's words are quoted as
/// they are.
fn refusal_message(error: &minijinja::Error) -> String {
    let ours =
        std::error::Error::source(error).is_some_and(|source| source.is::<filters::Refusal>());
    match (error.detail(), error.kind()) {
        (Some(detail), _) if ours => format!("erreur du modèle : {detail}"),
        (_, minijinja::ErrorKind::OutOfFuel) => {
            "erreur du modèle : trop de calculs pour une démarche (une boucle sans fin ?)".into()
        }
        (Some(detail), _) => format!("erreur du modèle : « {detail} »"),
        (None, kind) => format!("erreur du modèle : « {kind} »"),
    }
}

/// The TOML parser's message: in French for the usual mistakes (the same words as for the
/// configuration file), else quoted as the parser words it.
fn toml_message(message: &str) -> String {
    let message = message.trim();
    let french = crate::config::source::syntax_fr(message);
    if french == message {
        format!("« {message} »")
    } else {
        french
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "rien",
        Value::Bool(_) => "un booléen",
        Value::Number(_) => "un nombre",
        Value::String(_) => "un texte",
        Value::Array(_) => "une liste",
        Value::Object(_) => "un objet",
    }
}

/// The identity mapping: the document is the envelope as published, and every file field
/// is handed over.
///
/// The form data is moved into the document, not copied (it is the bulk of a message):
/// `envelope.formdata` is left empty.
///
/// # Errors
///
/// [`MappingError`] when a file field cannot be decoded.
pub fn identity(envelope: &mut Envelope) -> Result<Mapped, MappingError> {
    let attachments = attachments(envelope, None)?;
    Ok(Mapped {
        document: envelope.take_value(),
        attachments,
    })
}

/// The file fields of the démarche (`formdata.fields.<name>` objects with `filename`,
/// `content_type` and `content`), decoded.
///
/// # Errors
///
/// [`MappingError::Attachment`] naming the field whose content is not base64.
pub fn attachments(
    envelope: &Envelope,
    file: Option<&str>,
) -> Result<Vec<Attachment>, MappingError> {
    let Some(Value::Object(fields)) = envelope.formdata.get("fields") else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for (name, value) in fields {
        if let Some(file_value) = file_field(value) {
            let attachment = decode(name, file_value, None, file)?;
            if attachment.content.len() > DEFAULT_MAX_ATTACHMENT_BYTES {
                return Err(MappingError::Attachment {
                    file: file.map(str::to_owned),
                    field: name.clone(),
                    message: format!(
                        "{} octets, plus que les {DEFAULT_MAX_ATTACHMENT_BYTES} acceptés par défaut (un mapping peut fixer `max_bytes`)",
                        attachment.content.len()
                    ),
                });
            }
            files.push(attachment);
        }
    }
    Ok(files)
}

/// A w.c.s. file field: an object with `filename` and `content`.
fn file_field(value: &Value) -> Option<&Map<String, Value>> {
    let file = value.as_object()?;
    (file.get("filename").is_some_and(Value::is_string)
        && file.get("content").is_some_and(Value::is_string))
    .then_some(file)
}

fn decode(
    field: &str,
    file: &Map<String, Value>,
    name: Option<&str>,
    mapping: Option<&str>,
) -> Result<Attachment, MappingError> {
    let filename = file
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let content = file
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let content_type = file
        .get("content_type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream");
    // w.c.s. may wrap long base64 lines.
    let compact: String = content
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|error| MappingError::Attachment {
            file: mapping.map(str::to_owned),
            field: field.to_owned(),
            message: format!("le contenu n'est pas du base64 valide (« {error} »)"),
        })?;
    Ok(Attachment::new(
        name.unwrap_or(field),
        filename,
        content_type,
        bytes,
    ))
}

/// Builds a [`Mapping`] from the spanned TOML tree, with line numbers in every error.
struct Parser<'t> {
    text: &'t str,
    file: String,
    env: Environment<'static>,
    tables: BTreeMap<String, BTreeMap<String, String>>,
    templates: usize,
    slots: Slots,
}

type Spanned2<'i> = Spanned<DeValue<'i>>;

impl<'t> Parser<'t> {
    fn new(text: &'t str, file: &str) -> Self {
        Self {
            text,
            file: file.to_owned(),
            env: Environment::new(),
            tables: BTreeMap::new(),
            templates: 0,
            slots: Slots::default(),
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> MappingFileError {
        let line = self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        MappingFileError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    fn parse(mut self) -> Result<Mapping, MappingFileError> {
        let root = DeTable::parse(self.text).map_err(|error| {
            let offset = error.span().map(|s| s.start).unwrap_or(0);
            self.error(
                offset,
                format!("syntaxe TOML invalide : {}", toml_message(error.message())),
            )
        })?;
        let root = root.into_inner();
        let mut description = None;
        let mut document = None;
        let mut attachments = Vec::new();
        let mut no_attachments = None;
        // Tables first: fields refer to them.
        if let Some((key, value)) = root.get_key_value("tables") {
            self.parse_tables(key.span().start, value)?;
        }
        let tables: Tables = Arc::new(std::mem::take(&mut self.tables));
        self.env = filters::environment(tables.clone());
        self.tables = (*tables).clone();
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "tables" => {}
                "mapping" => {
                    let DeValue::Table(table) = value.get_ref() else {
                        return Err(self.error(
                            value.span().start,
                            "[mapping] doit être une table (description = \"…\")",
                        ));
                    };
                    for (k, v) in table.iter() {
                        match (k.get_ref().as_ref(), v.get_ref()) {
                            ("description", DeValue::String(text)) => {
                                description = Some(text.to_string())
                            }
                            ("attachments", DeValue::String(text))
                                if matches!(text.as_ref(), "none" | "all") =>
                            {
                                no_attachments = Some((text == "none", v.span().start));
                            }
                            ("attachments", _) => {
                                return Err(self.error(
                                    v.span().start,
                                    "`attachments` dans [mapping] vaut \"all\" (tous les champs fichier, le défaut sans blocs [[attachments]]) ou \"none\" (aucun fichier n'est transmis)",
                                ))
                            }
                            (other, _) => {
                                return Err(self.error(
                                    k.span().start,
                                    format!(
                                        "clé inconnue `{other}` dans [mapping] (clés possibles : description, attachments)"
                                    ),
                                ))
                            }
                        }
                    }
                }
                "document" => {
                    let DeValue::Table(_) = value.get_ref() else {
                        return Err(self.error(
                            value.span().start,
                            "[document] doit être une table des champs du document produit",
                        ));
                    };
                    document = Some(self.parse_node("", value, &[])?);
                }
                "attachments" => attachments = self.parse_attachments(value)?,
                other => {
                    return Err(self.error(
                        key.span().start,
                        format!(
                        "section inconnue `{other}` (sections possibles : mapping, tables, document, attachments)"
                    ),
                    ))
                }
            }
        }
        let Some(document) = document else {
            return Err(self.error(
                0,
                "pas de section [document] : elle donne les champs du document produit",
            ));
        };
        if let (Some((true, at)), false) = (no_attachments, attachments.is_empty()) {
            return Err(self.error(
                at,
                "`attachments = \"none\"` dans [mapping], mais des blocs [[attachments]] donnent des fichiers : garder l'un ou l'autre",
            ));
        }
        Ok(Mapping {
            no_attachments: no_attachments.is_some_and(|(none, _)| none),
            file: self.file,
            description,
            env: self.env,
            tables,
            document,
            attachments,
            slots: self.slots,
        })
    }

    fn parse_tables(
        &mut self,
        offset: usize,
        value: &Spanned2<'_>,
    ) -> Result<(), MappingFileError> {
        let DeValue::Table(tables) = value.get_ref() else {
            return Err(self.error(
                offset,
                "[tables] doit contenir une table par table de codes ([tables.nature_document])",
            ));
        };
        for (name, table) in tables.iter() {
            let DeValue::Table(entries) = table.get_ref() else {
                return Err(self.error(
                    name.span().start,
                    format!(
                        "la table de codes `{}` doit être une table de \"valeur du portail\" = \"code\"",
                        name.get_ref()
                    ),
                ));
            };
            let mut codes = BTreeMap::new();
            for (key, code) in entries.iter() {
                let code = match code.get_ref() {
                    DeValue::String(text) => text.to_string(),
                    DeValue::Integer(n) => n.as_str().to_owned(),
                    _ => {
                        return Err(self.error(
                            code.span().start,
                            format!(
                            "table de codes `{}` : le code de `{}` doit être un texte (\"CPI\") ou un nombre",
                            name.get_ref(),
                            key.get_ref()
                        ),
                        ))
                    }
                };
                codes.insert(key.get_ref().to_string(), code);
            }
            self.tables.insert(name.get_ref().to_string(), codes);
        }
        Ok(())
    }

    fn parse_node(
        &mut self,
        name: &str,
        value: &Spanned2<'_>,
        aliases: &[String],
    ) -> Result<Node, MappingFileError> {
        let offset = value.span().start;
        match value.get_ref() {
            DeValue::String(text) => Ok(Node::Field(Box::new(FieldSpec {
                name: name.to_owned(),
                source: self.source(name, text, offset, aliases)?,
                field_type: None,
                max_length: None,
                table: None,
                required: false,
                default: None,
                when: None,
            }))),
            DeValue::Integer(n) => n
                .as_str()
                .parse::<i64>()
                .map(|n| Node::Literal(Value::from(n)))
                .map_err(|_| {
                    self.error(
                        offset,
                        format!("champ `{name}` : nombre entier hors limites"),
                    )
                }),
            DeValue::Float(f) => Ok(Node::Literal(
                f.as_str()
                    .parse::<f64>()
                    .ok()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            )),
            DeValue::Boolean(b) => Ok(Node::Literal(Value::Bool(*b))),
            DeValue::Datetime(d) => Ok(Node::Literal(Value::String(d.to_string()))),
            DeValue::Array(items) => {
                let mut nodes = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    nodes.push(self.parse_node(&format!("{name}[{index}]"), item, aliases)?);
                }
                Ok(Node::List(nodes))
            }
            DeValue::Table(table) => {
                if table.contains_key("template") {
                    self.parse_field(name, offset, table, aliases)
                } else if table.contains_key("for_each") {
                    self.parse_each(name, offset, table, aliases)
                } else {
                    let mut entries = Vec::with_capacity(table.len());
                    let mut when = None;
                    for (key, child) in table.iter() {
                        let key_text = key.get_ref().to_string();
                        let child_name = if name.is_empty() {
                            key_text.clone()
                        } else {
                            format!("{name}.{key_text}")
                        };
                        // `when` in an object is the object's condition, as in a field.
                        if key_text == "when" {
                            let DeValue::String(condition) = child.get_ref() else {
                                return Err(self.error(
                                    child.span().start,
                                    format!("objet `{name}` : `when` est la condition qui garde l'objet, un modèle tel que \"{{{{ fields.conjoint_nom }}}}\""),
                                ));
                            };
                            when = Some(self.source(
                                &format!("{name} (when)"),
                                condition,
                                child.span().start,
                                aliases,
                            )?);
                            continue;
                        }
                        entries.push((key_text, self.parse_node(&child_name, child, aliases)?));
                    }
                    Ok(Node::Object {
                        name: name.to_owned(),
                        entries,
                        when,
                    })
                }
            }
        }
    }

    fn parse_field(
        &mut self,
        name: &str,
        offset: usize,
        table: &DeTable<'_>,
        aliases: &[String],
    ) -> Result<Node, MappingFileError> {
        let mut spec = FieldSpec {
            name: name.to_owned(),
            source: Source::Literal(String::new()),
            field_type: None,
            max_length: None,
            table: None,
            required: false,
            default: None,
            when: None,
        };
        let mut type_name: Option<(String, usize)> = None;
        let mut places = 2u32;
        let mut values: Option<Vec<String>> = None;
        for (key, value) in table.iter() {
            let at = value.span().start;
            let text = |parser: &Self, what: &str| match value.get_ref() {
                DeValue::String(text) => Ok(text.to_string()),
                _ => Err(parser.error(
                    at,
                    format!("champ `{name}` : `{}` doit être {what}", key.get_ref()),
                )),
            };
            let number = |parser: &Self| match value.get_ref() {
                DeValue::Integer(n) => n.as_str().parse::<usize>().map_err(|_| {
                    parser.error(
                        at,
                        format!(
                            "champ `{name}` : `{}` doit être un nombre entier positif",
                            key.get_ref()
                        ),
                    )
                }),
                _ => Err(parser.error(
                    at,
                    format!(
                        "champ `{name}` : `{}` doit être un nombre entier positif",
                        key.get_ref()
                    ),
                )),
            };
            match key.get_ref().as_ref() {
                "template" => {
                    let template = text(self, "le texte d'un modèle (\"{{ fields.nom }}\")")?;
                    spec.source = self.source(name, &template, at, aliases)?;
                }
                "type" => type_name = Some((text(self, "un nom de type")?, at)),
                "max_length" => spec.max_length = Some(number(self)?),
                "places" => places = u32::try_from(number(self)?).unwrap_or(2).min(9),
                "values" => {
                    let DeValue::Array(items) = value.get_ref() else {
                        return Err(self.error(at, format!("champ `{name}` : `values` doit être une liste de textes")));
                    };
                    let mut list = Vec::new();
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(text) => list.push(text.to_string()),
                            _ => return Err(self.error(item.span().start, format!("champ `{name}` : `values` doit être une liste de textes"))),
                        }
                    }
                    values = Some(list);
                }
                "table" => {
                    let table_name = text(self, "le nom d'une table de codes")?;
                    if !self.tables.contains_key(&table_name) {
                        let known: Vec<&str> = self.tables.keys().map(String::as_str).collect();
                        return Err(self.error(at, format!(
                            "champ `{name}` : pas de table de codes `{table_name}` (définies : {}) : ajouter [tables.{table_name}]",
                            if known.is_empty() { "aucune".to_owned() } else { known.join(", ") }
                        )));
                    }
                    spec.table = Some(table_name);
                }
                "required" => match value.get_ref() {
                    DeValue::Boolean(b) => spec.required = *b,
                    _ => return Err(self.error(at, format!("champ `{name}` : `required` vaut true ou false"))),
                },
                "default" => {
                    spec.default = Some(match value.get_ref() {
                        DeValue::String(text) => Value::String(text.to_string()),
                        DeValue::Integer(n) => n.as_str().parse::<i64>().map(Value::from).unwrap_or(Value::Null),
                        DeValue::Boolean(b) => Value::Bool(*b),
                        DeValue::Float(f) => f.as_str().parse::<f64>().ok().map(Value::from).unwrap_or(Value::Null),
                        _ => return Err(self.error(at, format!("champ `{name}` : `default` doit être un texte, un nombre ou un booléen"))),
                    })
                }
                "when" => {
                    let condition = text(self, "un modèle (\"{{ fields.conjoint_nom }}\")")?;
                    spec.when = Some(self.source(&format!("{name} (when)"), &condition, at, aliases)?);
                }
                other => {
                    return Err(self.error(key.span().start, format!(
                        "champ `{name}` : clé inconnue `{other}` (clés possibles : template, type, max_length, places, values, table, required, default, when)"
                    )))
                }
            }
        }
        if let Some((type_name, at)) = type_name {
            spec.field_type = Some(match type_name.as_str() {
                "string" => FieldType::String,
                "integer" => FieldType::Integer,
                "decimal" => FieldType::Decimal { places },
                "date" => FieldType::Date,
                "partial-date" => FieldType::PartialDate,
                "datetime" => FieldType::DateTime,
                "boolean" => FieldType::Boolean,
                "enum" => match values.take() {
                    Some(values) if !values.is_empty() => FieldType::Enum(values),
                    _ => {
                        return Err(self.error(
                            at,
                            format!(
                                "champ `{name}` : le type `enum` demande `values = [\"…\", …]`"
                            ),
                        ))
                    }
                },
                other => {
                    return Err(self.error(
                        at,
                        format!(
                            "champ `{name}` : type inconnu `{other}` (types possibles : {})",
                            FieldType::NAMES.join(", ")
                        ),
                    ))
                }
            });
        }
        if values.is_some() {
            return Err(self.error(
                offset,
                format!("champ `{name}` : `values` ne va qu'avec `type = \"enum\"`"),
            ));
        }
        if let (Some(default), Some(field_type)) = (&spec.default, &spec.field_type) {
            let text = match default {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            spec.default = Some(types::convert(&text, field_type, spec.max_length).map_err(
                |TypeError(message)| {
                    self.error(
                        offset,
                        format!("champ `{name}` : la valeur par défaut ne convient pas au type : {message}"),
                    )
                },
            )?);
        }
        Ok(Node::Field(Box::new(spec)))
    }

    fn parse_each(
        &mut self,
        name: &str,
        offset: usize,
        table: &DeTable<'_>,
        aliases: &[String],
    ) -> Result<Node, MappingFileError> {
        let mut path = None;
        let mut alias = None;
        let mut item = None;
        let mut required = false;
        for (key, value) in table.iter() {
            let at = value.span().start;
            match (key.get_ref().as_ref(), value.get_ref()) {
                ("required", DeValue::Boolean(b)) => required = *b,
                ("for_each", DeValue::String(text)) => path = Some((text.to_string(), at)),
                ("as", DeValue::String(text)) => alias = Some(text.to_string()),
                ("item", DeValue::Table(_)) => item = Some(value),
                (other, _) => {
                    return Err(self.error(key.span().start, format!(
                        "liste `{name}` : `{other}` inattendu (une liste tirée de la démarche a `for_each = \"fields.enfants\"`, `as = \"enfant\"`, une table `item` et, si besoin, `required = true`)"
                    )))
                }
            }
        }
        let (Some((path_text, path_at)), Some(alias), Some(item)) = (path, alias, item) else {
            return Err(self.error(
                offset,
                format!("la liste `{name}` demande `for_each`, `as` et une table `item`"),
            ));
        };
        if !is_identifier(&alias) || ROOTS.contains(&alias.as_str()) {
            return Err(self.error(
                offset,
                format!(
                    "liste `{name}` : `as = \"{alias}\"` doit être un nom simple nouveau (aucun de {})",
                    ROOTS.join(", ")
                ),
            ));
        }
        let path = self.path(name, &path_text, path_at, aliases)?;
        let mut inner_aliases = aliases.to_vec();
        inner_aliases.push(alias.clone());
        let item = self.parse_node(&format!("{name}[]"), item, &inner_aliases)?;
        Ok(Node::Each {
            name: name.to_owned(),
            path,
            alias,
            item: Box::new(item),
            required,
        })
    }

    fn path(
        &mut self,
        name: &str,
        text: &str,
        at: usize,
        aliases: &[String],
    ) -> Result<VarPath, MappingFileError> {
        let parts: Vec<String> = text.trim().split('.').map(str::to_owned).collect();
        if parts
            .iter()
            .any(|p| !is_identifier(p) && p.parse::<usize>().is_err())
            || !is_identifier(&parts[0])
        {
            return Err(self.error(
                at,
                format!("champ `{name}` : `{text}` n'est pas un chemin de variable comme `fields.enfants`"),
            ));
        }
        let first = parts[0].clone();
        self.slots.path(parts, aliases).ok_or_else(|| {
            self.error(
                at,
                format!(
                    "champ `{name}` : variable inconnue `{first}` (variables possibles : {})",
                    ROOTS
                        .iter()
                        .map(|r| (*r).to_owned())
                        .chain(aliases.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// Classifies and checks a template: a literal, a plain variable path, or a template
    /// compiled now (syntax errors and unknown variables are refused here, not at run time).
    fn source(
        &mut self,
        name: &str,
        text: &str,
        at: usize,
        aliases: &[String],
    ) -> Result<Source, MappingFileError> {
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return Ok(Source::Literal(text.to_owned()));
        }
        let trimmed = text.trim();
        if let Some(inner) = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
        {
            let inner = inner.trim();
            if !inner.is_empty()
                && inner
                    .split('.')
                    .all(|p| is_identifier(p) || p.parse::<usize>().is_ok())
            {
                return self.path(name, inner, at, aliases).map(Source::Path);
            }
        }
        self.templates += 1;
        let template_name = format!("{}#{}", self.file, self.templates);
        self.env
            .add_template_owned(template_name.clone(), text.to_owned())
            .map_err(|error| {
                self.error(at, format!("champ `{name}` : {}", template_message(&error)))
            })?;
        let template = self.env.get_template(&template_name).map_err(|error| {
            self.error(at, format!("champ `{name}` : {}", template_message(&error)))
        })?;
        // Filters and tests are looked up when a template runs, so a misspelt `|uper` in a
        // branch that the sample démarche does not take would only fail on the démarches
        // that take it. Every name written after `|` or `is` is checked now.
        for (kind, word, argument) in filter_and_test_names(text) {
            if let (NameKind::Filter, "code", Some(table)) = (kind, word, argument) {
                if !self.tables.contains_key(table) {
                    return Err(self.error(
                        at,
                        format!(
                            "champ `{name}` : pas de table de codes `{table}` pour `|code('{table}')` (définies : {}) : ajouter [tables.{table}]",
                            if self.tables.is_empty() { "aucune".to_owned() } else { self.tables.keys().cloned().collect::<Vec<_>>().join(", ") }
                        ),
                    ));
                }
            }
            if !self.known_name(kind, word) {
                let hint = filters::closest(kind, word)
                    .map(|known| format!(" (vouliez-vous dire `{known}` ?)"))
                    .unwrap_or_default();
                return Err(self.error(
                    at,
                    format!(
                        "champ `{name}` : {kind} inconnu `{word}`{hint} ; les {kind}s sont listés dans docs/mappings.md"
                    ),
                ));
            }
        }
        // Functions and methods too are looked up when a template runs: try it once on an
        // empty démarche.
        if let Err(error) = template.render(minijinja::context! {}) {
            use minijinja::ErrorKind::{
                UnknownFilter, UnknownFunction, UnknownMethod, UnknownTest,
            };
            if matches!(
                error.kind(),
                UnknownFilter | UnknownFunction | UnknownMethod | UnknownTest
            ) {
                return Err(
                    self.error(at, format!("champ `{name}` : {}", template_message(&error)))
                );
            }
        }
        let known: HashSet<&str> = ROOTS
            .iter()
            .copied()
            .chain(aliases.iter().map(String::as_str))
            .collect();
        let mut unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !known.contains(v.as_str()) && !is_template_builtin(v))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            return Err(self.error(
                at,
                format!(
                    "champ `{name}` : variable inconnue `{}` dans le modèle (variables possibles : {})",
                    unknown.join("`, `"),
                    known
                        .iter()
                        .copied()
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let slots = &mut self.slots;
        Ok(
            match native::Native::parse(text, &mut |parts| slots.path(parts, aliases)) {
                Some(pipeline) => Source::Native {
                    pipeline,
                    fallback: template_name,
                },
                None => Source::Template(template_name),
            },
        )
    }

    /// Whether the environment has this filter or test: asked of the engine itself, with a
    /// one-tag template, so that the answer follows the engine's version.
    fn known_name(&self, kind: NameKind, word: &str) -> bool {
        let probe = match kind {
            NameKind::Filter => format!("{{{{ none|{word} }}}}"),
            NameKind::Test => format!("{{{{ none is {word} }}}}"),
        };
        match self.env.render_str(&probe, minijinja::context! {}) {
            Ok(_) => true,
            Err(error) => !matches!(
                error.kind(),
                minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
            ),
        }
    }

    fn parse_attachments(
        &self,
        value: &Spanned2<'_>,
    ) -> Result<Vec<AttachmentSpec>, MappingFileError> {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.error(
                value.span().start,
                "les pièces jointes s'écrivent [[attachments]] avec field = \"…\"",
            ));
        };
        let mut specs = Vec::new();
        for item in items.iter() {
            let DeValue::Table(table) = item.get_ref() else {
                return Err(self.error(
                    item.span().start,
                    "les pièces jointes s'écrivent [[attachments]] avec field = \"…\"",
                ));
            };
            let mut spec = AttachmentSpec {
                field: String::new(),
                name: None,
                required: false,
                content_types: Vec::new(),
                max_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            };
            for (key, value) in table.iter() {
                let at = value.span().start;
                match (key.get_ref().as_ref(), value.get_ref()) {
                    ("field", DeValue::String(text)) => spec.field = text.to_string(),
                    ("name", DeValue::String(text)) => spec.name = Some(text.to_string()),
                    ("required", DeValue::Boolean(b)) => spec.required = *b,
                    ("max_bytes", DeValue::Integer(n)) => {
                        spec.max_bytes = n.as_str().parse().map_err(|_| self.error(at, "`max_bytes` doit être un nombre entier positif"))?
                    }
                    ("content_types", DeValue::Array(types)) => {
                        for t in types.iter() {
                            match t.get_ref() {
                                DeValue::String(text) if text.contains('/') => spec.content_types.push(text.to_string()),
                                _ => return Err(self.error(t.span().start, "`content_types` donne des types MIME tels que \"application/pdf\"")),
                            }
                        }
                    }
                    (other, _) => {
                        return Err(self.error(key.span().start, format!(
                            "pièce jointe : `{other}` inattendu ou de la mauvaise sorte de valeur (clés possibles : field, name, required, content_types, max_bytes)"
                        )))
                    }
                }
            }
            if spec.field.is_empty() {
                return Err(self.error(
                    item.span().start,
                    "pièce jointe sans `field` : indiquer le champ fichier du formulaire",
                ));
            }
            specs.push(spec);
        }
        Ok(specs)
    }
}

/// What a name after `|` or `is` in a template stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameKind {
    Filter,
    Test,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Filter => "filtre",
            Self::Test => "test",
        })
    }
}

/// The filter names (after `|`, with a first argument written as a string literal) and
/// test names (after `is` or `is not`) written inside the tags of a template, string
/// literals skipped. A lexical scan, not a parse: the template has already been compiled,
/// so its tags are well formed.
fn filter_and_test_names(template: &str) -> Vec<(NameKind, &str, Option<&str>)> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{']) {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let inner = &after[1..];
        let mut at = 0;
        let bytes = inner.as_bytes();
        let mut end = inner.len();
        let mut previous_word = "";
        let mut before_previous = "";
        while at < inner.len() {
            let c = bytes[at];
            if c == b'\'' || c == b'"' {
                at = inner[at + 1..]
                    .find(c as char)
                    .map_or(inner.len(), |e| at + e + 2);
                previous_word = "";
                continue;
            }
            if inner[at..].starts_with(close) {
                end = at;
                break;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                let len = inner[at..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .unwrap_or(inner.len() - at);
                let word = &inner[at..at + len];
                let after_pipe = inner[..at].trim_end().ends_with('|');
                if after_pipe {
                    names.push((NameKind::Filter, word, literal_argument(&inner[at + len..])));
                } else if previous_word == "is" && word != "not"
                    || previous_word == "not" && before_previous == "is"
                {
                    names.push((NameKind::Test, word, None));
                }
                before_previous = previous_word;
                previous_word = word;
                at += len;
                continue;
            }
            if !c.is_ascii_whitespace() {
                previous_word = "";
                before_previous = "";
            }
            at += 1;
        }
        rest = inner.get(end + close.len()..).unwrap_or("");
    }
    names
}

/// `x` in `('x'…` or `("x"…`: a filter's first argument when it is a string literal.
fn literal_argument(text: &str) -> Option<&str> {
    let text = text.trim_start().strip_prefix('(')?.trim_start();
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &text[1..];
    body.find(quote).map(|end| &body[..end])
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names a template may use without defining them (loop variables are declared by the
/// template itself; these are the engine's globals).
fn is_template_builtin(name: &str) -> bool {
    matches!(
        name,
        "range" | "dict" | "namespace" | "loop" | "true" | "false" | "none" | "debug"
    )
}

#[cfg(test)]
mod tests;
