//! A simulator of a commune's finance software importing PES V2 `PES_Aller` files, as
//! Hélios's acceptance checks (the "guichet XML") would answer them.
//!
//! Like the import daemon of a finance software it watches its import directory (and its
//! sub-directories), takes each new PES file and checks it in this order, stopping at the
//! first anomaly:
//!
//! 1. not empty (`ERREUR_FLUX_VIDE`);
//! 2. the declared encoding is honoured (`ERREUR_ENCODING`): `ISO-8859-1` or `UTF-8` only;
//!    UTF-8 bytes must be valid UTF-8, and ISO-8859-1 bytes must not be UTF-8 in disguise
//!    (a multi-byte UTF-8 sequence such as `Ã©` for `é`) nor C1 control characters;
//! 3. the schema, `xmllint --noout --nonet --schema …/PES_V2/Rev0/PES_Aller.xsd`
//!    (`ERREUR_SCHEMA_INCOMPLET`, with xmllint's complaint);
//! 4. what the schema does not check, for each `Bordereau` of `PES_RecetteAller`:
//!    `NbrPce` = the number of `Piece`s (`ERREUR_AUTRE`), `MtBordHt` = the sum of the `MtHT`
//!    of every line (`ERREUR_CUMUL_MONTANTS`), `IdPce` unique within the bordereau
//!    (`ERREUR_DOUBLON_PIECE`), `IdBord` unique within the file and across every file
//!    already accepted for the same `IdColl`, `CodBud` and `Exer`
//!    (`ERREUR_DOUBLON_BORDEREAU`), every `PJRef` pointing to a `PES_PJ/PJ` of the file
//!    and every `PJ` `IdUnique` once (`ERREUR_PJ`, `ERREUR_DOUBLON_PJ`).
//!
//! It answers next to the file with an acquittement shaped like Hélios's `PES_ACQUIT`
//! (`PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd` of the DGFiP set, vendored in
//! `schemas/pes-v2/`; the answer is not validated against it yet): `ACK_<file>` when the file is
//! accepted (one `ElementACQUIT` per bordereau, `EtatAck` 1), `NACK_<file>` when it is
//! rejected (one `ElementACQUIT`, `EtatAck` 0, the DGFiP's anomaly code in `NumAnoAck` and
//! the reason in `LibelleAnoAck`). A rejected file is rejected as a whole: none of its
//! bordereaux counts as received. See docs/connectors/facturation.md.
//!
//! The bordereaux accepted are recorded in `.pes-sim/bordereaux.tsv` inside the import
//! directory (synced before the answer is written), so a restarted simulator still refuses
//! a bordereau number it accepted before. A file that already has its answer is not read
//! again. Hidden files and `*.tmp` files are skipped: they are being written.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::import_sim::{write_answer, Checks, ImportSim, Journal};
use crate::watch::files_under;
use crate::xmllint::{self, Schema};

/// The PES V2 schema: `PES_XSD`, else the copy vendored in the repository
/// (`schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd`).
pub fn pes_schema() -> PathBuf {
    Schema::PesAller.path()
}

/// The directory, inside the import directory, where the simulator keeps its state.
pub const STATE_DIR: &str = ".pes-sim";

/// The answer to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquit {
    /// The PES file, relative to the import directory.
    pub file: String,
    /// The answer file written next to it (`ACK_…` or `NACK_…`), relative.
    pub answer: String,
    /// Whether the file was accepted.
    pub accepted: bool,
    /// The DGFiP anomaly code of a rejected file (`ERREUR_CUMUL_MONTANTS`…).
    pub anomaly: Option<String>,
    /// Why it was rejected (empty when accepted).
    pub reason: String,
    /// The bordereaux of an accepted file: (`Exer`, `IdBord`, number of titres).
    pub bordereaux: Vec<(u32, u64, usize)>,
}

/// A running finance-software import; it stops when dropped.
pub struct PesSim {
    /// The directory it imports from.
    pub import: PathBuf,
    core: ImportSim<Acquit>,
}

impl PesSim {
    /// Watches `import` (created if missing), polling every 100 ms.
    pub fn start(import: &Path) -> Self {
        let schema = Schema::PesAller.existing();
        xmllint::require();
        std::fs::create_dir_all(import.join(STATE_DIR)).expect("the import directory");
        let registry = Registry::load(&import.join(STATE_DIR).join("bordereaux.tsv"))
            .expect("the simulator's registry of bordereaux");
        let daemon = Daemon {
            import: import.to_path_buf(),
            schema,
            registry,
        };
        Self {
            import: import.to_path_buf(),
            core: ImportSim::start(daemon),
        }
    }

    /// The answers it gave since it started, in order.
    pub fn answers(&self) -> Vec<Acquit> {
        self.core.answers()
    }

    /// Waits until it answered `count` files, at most `timeout`; returns its answers.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Acquit> {
        self.core.wait_for(count, timeout).await
    }

    /// The program's loop: prints each answer until interrupted.
    pub async fn report_until_interrupted(&self) {
        let report = |answer: &Acquit| {
            if answer.accepted {
                format!("accepted {} ({:?})", answer.file, answer.bordereaux)
            } else {
                format!(
                    "rejected {}: {} {}",
                    answer.file,
                    answer.anomaly.as_deref().unwrap_or(""),
                    answer.reason
                )
            }
        };
        self.core
            .report_until_interrupted(report, str::to_owned)
            .await;
    }
}

/// The bordereaux accepted so far: (`IdColl`, `CodBud`, `Exer`, `IdBord`) → file.
struct Registry {
    path: PathBuf,
    accepted: HashMap<(String, String, u32, u64), String>,
}

impl Registry {
    fn load(path: &Path) -> std::io::Result<Self> {
        let mut accepted = HashMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    let fields: Vec<&str> = line.split('\t').collect();
                    // A line cut by a crash has fewer fields: it was never acknowledged.
                    if let [coll, bud, exer, bord, file] = fields[..] {
                        if let (Ok(exer), Ok(bord)) = (exer.parse(), bord.parse()) {
                            accepted.insert(
                                (coll.to_owned(), bud.to_owned(), exer, bord),
                                file.to_owned(),
                            );
                        }
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        Ok(Self {
            path: path.to_path_buf(),
            accepted,
        })
    }

    /// The file that already holds this bordereau, if another one does.
    fn holder(&self, key: &(String, String, u32, u64), file: &str) -> Option<&str> {
        self.accepted
            .get(key)
            .map(String::as_str)
            .filter(|holder| *holder != file)
    }

    /// Records the bordereaux of `file`, synced to disk before it returns.
    fn record(&mut self, keys: &[(String, String, u32, u64)], file: &str) -> std::io::Result<()> {
        let mut text = String::new();
        for key in keys {
            if self.accepted.contains_key(key) {
                continue;
            }
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{file}\n",
                key.0, key.1, key.2, key.3
            ));
        }
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        for key in keys {
            self.accepted.insert(key.clone(), file.to_owned());
        }
        Ok(())
    }
}

struct Daemon {
    import: PathBuf,
    schema: PathBuf,
    registry: Registry,
}

/// A rejection: the DGFiP anomaly code, the domain (`DomaineAck`) and the reason.
struct Anomaly {
    code: &'static str,
    domaine: &'static str,
    reason: String,
}

impl Anomaly {
    fn technique(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            domaine: DOMAINE_TECHNIQUE,
            reason: reason.into(),
        }
    }

    fn recette(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            domaine: DOMAINE_RECETTE,
            reason: reason.into(),
        }
    }
}

/// `DomaineAck` of a technical anomaly (encoding, schema).
const DOMAINE_TECHNIQUE: &str = "1";
/// `DomaineAck` of the PJ domain.
const DOMAINE_PJ: &str = "4";
/// `DomaineAck` of the Recette domain.
const DOMAINE_RECETTE: &str = "6";

impl Checks for Daemon {
    type Answer = Acquit;

    fn sweep(&mut self, journal: &Journal<Acquit>) {
        for relative in pes_files(&self.import) {
            let (dir, name) = match relative.rsplit_once('/') {
                Some((dir, name)) => (format!("{dir}/"), name),
                None => (String::new(), relative.as_str()),
            };
            let answered = ["ACK_", "NACK_"]
                .iter()
                .any(|prefix| self.import.join(format!("{dir}{prefix}{name}")).exists());
            if answered {
                continue;
            }
            let Ok(bytes) = std::fs::read(self.import.join(&relative)) else {
                continue;
            };
            let outcome = self.check(&relative, &bytes);
            let header = header_of(&bytes);
            let (accepted, answer_name, body, anomaly, reason, bordereaux) = match outcome {
                Ok(file) => {
                    let keys: Vec<_> = file
                        .bordereaux
                        .iter()
                        .map(|b| {
                            (
                                file.id_coll.clone(),
                                file.cod_bud.clone(),
                                b.exer,
                                b.id_bord,
                            )
                        })
                        .collect();
                    if self.registry.record(&keys, &relative).is_err() {
                        // Not recorded, not answered: tried again at the next sweep.
                        continue;
                    }
                    let body = acquit(name, &header, &file.bordereaux, None);
                    let list = file
                        .bordereaux
                        .iter()
                        .map(|b| (b.exer, b.id_bord, b.pieces.len()))
                        .collect();
                    (true, format!("ACK_{name}"), body, None, String::new(), list)
                }
                Err(anomaly) => {
                    let body = acquit(name, &header, &[], Some(&anomaly));
                    (
                        false,
                        format!("NACK_{name}"),
                        body,
                        Some(anomaly.code.to_owned()),
                        anomaly.reason,
                        Vec::new(),
                    )
                }
            };
            if write_answer(&self.import.join(&dir), &answer_name, &latin1(&body)).is_err() {
                continue;
            }
            journal.answer(Acquit {
                file: relative.clone(),
                answer: format!("{dir}{answer_name}"),
                accepted,
                anomaly,
                reason,
                bordereaux,
            });
        }
    }
}

impl Daemon {
    fn check(&self, relative: &str, bytes: &[u8]) -> Result<PesFile, Anomaly> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Anomaly::technique("ERREUR_FLUX_VIDE", "the file is empty"));
        }
        let text = decode(bytes)?;
        let linted =
            xmllint::run(&self.schema, &[self.import.join(relative)]).map_err(|error| {
                Anomaly::technique("ERREUR_AUTRE", format!("cannot run xmllint: {error}"))
            })?;
        if let Err(complaint) = linted {
            let complaint = xmllint::one_line(&complaint, |line| {
                !line.contains("Schemas parser warning") && !line.starts_with("Skipping import")
            })
            .replace(&*self.import.to_string_lossy(), "");
            return Err(Anomaly::technique(
                "ERREUR_SCHEMA_INCOMPLET",
                format!("not valid against PES_Aller.xsd: {complaint}"),
            ));
        }
        let file = read_pes(&text)?;
        let mut seen_here = HashSet::new();
        for bordereau in &file.bordereaux {
            let at = format!("bordereau {} of {}", bordereau.id_bord, bordereau.exer);
            if bordereau.nbr_pce != bordereau.pieces.len() as u64 {
                return Err(Anomaly::recette(
                    "ERREUR_AUTRE",
                    format!(
                        "{at}: NbrPce is {} but the bordereau holds {} pieces",
                        bordereau.nbr_pce,
                        bordereau.pieces.len()
                    ),
                ));
            }
            if bordereau.mt_bord_ht != bordereau.sum_mt_ht {
                return Err(Anomaly::recette(
                    "ERREUR_CUMUL_MONTANTS",
                    format!(
                        "{at}: MtBordHt is {} but its lines add up to {}",
                        cents(bordereau.mt_bord_ht),
                        cents(bordereau.sum_mt_ht)
                    ),
                ));
            }
            let mut pieces = HashSet::new();
            for id in &bordereau.pieces {
                if !pieces.insert(id) {
                    return Err(Anomaly::recette(
                        "ERREUR_DOUBLON_PIECE",
                        format!("{at}: IdPce {id} appears twice"),
                    ));
                }
            }
            let key = (
                file.id_coll.clone(),
                file.cod_bud.clone(),
                bordereau.exer,
                bordereau.id_bord,
            );
            if !seen_here.insert(key.clone()) {
                return Err(Anomaly::recette(
                    "ERREUR_DOUBLON_BORDEREAU",
                    format!("{at}: IdBord appears twice in the file"),
                ));
            }
            if let Some(holder) = self.registry.holder(&key, relative) {
                return Err(Anomaly::recette(
                    "ERREUR_DOUBLON_BORDEREAU",
                    format!(
                        "{at}: IdBord already received for IdColl {} CodBud {} in {holder}",
                        file.id_coll, file.cod_bud
                    ),
                ));
            }
        }
        let mut pjs = HashSet::new();
        for id in &file.pj_ids {
            if !pjs.insert(id) {
                return Err(Anomaly {
                    code: "ERREUR_DOUBLON_PJ",
                    domaine: DOMAINE_PJ,
                    reason: format!("PES_PJ: IdUnique {id} appears twice"),
                });
            }
        }
        for reference in &file.pj_refs {
            if !pjs.contains(reference) {
                return Err(Anomaly {
                    code: "ERREUR_PJ",
                    domaine: DOMAINE_PJ,
                    reason: format!(
                        "PJRef IdUnique {reference} (electronic support) has no PJ in PES_PJ"
                    ),
                });
            }
        }
        Ok(file)
    }
}

/// The file's text, if its bytes honour its declared encoding.
fn decode(bytes: &[u8]) -> Result<String, Anomaly> {
    let declared = declared_encoding(bytes).unwrap_or_else(|| "UTF-8".to_owned());
    match declared.to_ascii_uppercase().as_str() {
        "UTF-8" => String::from_utf8(bytes.to_vec()).map_err(|error| {
            Anomaly::technique(
                "ERREUR_ENCODING",
                format!(
                    "declared UTF-8 but byte {} is not UTF-8",
                    error.utf8_error().valid_up_to()
                ),
            )
        }),
        "ISO-8859-1" | "ISO8859-1" | "LATIN1" => {
            if let Some(at) = bytes.iter().position(|&b| (0x80..0xA0).contains(&b)) {
                // 0x80–0x9F are C1 controls in ISO-8859-1: Windows-1252 or UTF-8 bytes.
                return Err(Anomaly::technique(
                    "ERREUR_ENCODING",
                    format!(
                        "declared ISO-8859-1 but byte {at} is 0x{:02X}, a control character there (Windows-1252 or UTF-8 bytes?)",
                        bytes[at]
                    ),
                ));
            }
            if bytes.iter().any(|&b| b >= 0x80) && std::str::from_utf8(bytes).is_ok() {
                return Err(Anomaly::technique(
                    "ERREUR_ENCODING",
                    "declared ISO-8859-1 but its accented letters are UTF-8 bytes (é would read Ã©)",
                ));
            }
            Ok(bytes.iter().map(|&b| char::from(b)).collect())
        }
        other => Err(Anomaly::technique(
            "ERREUR_ENCODING",
            format!("encoding {other} declared: the PES is ISO-8859-1 (or UTF-8)"),
        )),
    }
}

/// The `encoding` of the XML declaration, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head: String = bytes.iter().take(200).map(|&b| char::from(b)).collect();
    let declaration = head.strip_prefix("<?xml")?;
    let declaration = &declaration[..declaration.find("?>")?];
    let at = declaration.find("encoding")? + "encoding".len();
    let rest = declaration[at..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_owned())
}

/// What the checks need of a schema-valid PES file.
#[derive(Debug, Default)]
struct PesFile {
    id_coll: String,
    cod_bud: String,
    bordereaux: Vec<BordereauSeen>,
    pj_ids: Vec<String>,
    pj_refs: Vec<String>,
}

#[derive(Debug, Default)]
struct BordereauSeen {
    exer: u32,
    id_bord: u64,
    nbr_pce: u64,
    mt_bord_ht: u64,
    sum_mt_ht: u64,
    pieces: Vec<u64>,
}

/// Reads the values the checks need; the schema already checked the structure.
fn read_pes(text: &str) -> Result<PesFile, Anomaly> {
    let unreadable =
        |what: String| Anomaly::technique("ERREUR_AUTRE", format!("cannot read the file: {what}"));
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut file = PesFile::default();
    let mut support_electronique = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| unreadable(error.to_string()))?;
        let (element, empty) = match &event {
            Event::Start(element) => (element, false),
            Event::Empty(element) => (element, true),
            Event::End(_) => {
                path.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.local_name().as_ref().to_owned();
        let value = match element.try_get_attribute("V") {
            Ok(Some(attribute)) => attribute
                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                .map(|v| v.into_owned())
                .map_err(|error| unreadable(error.to_string()))?,
            _ => String::new(),
        };
        let parent = path.last().map(String::as_str).unwrap_or("");
        match (parent, name.as_str()) {
            ("EnTetePES", "IdColl") => file.id_coll = value,
            ("EnTetePES", "CodBud") => file.cod_bud = value,
            ("PES_RecetteAller", "Bordereau") => file.bordereaux.push(BordereauSeen::default()),
            ("BlocBordereau", field) => {
                if let Some(bordereau) = file.bordereaux.last_mut() {
                    match field {
                        "Exer" => bordereau.exer = value.trim().parse().unwrap_or(0),
                        "IdBord" => bordereau.id_bord = number(&value),
                        "NbrPce" => bordereau.nbr_pce = number(&value),
                        "MtBordHt" => bordereau.mt_bord_ht = parse_cents(&value),
                        _ => {}
                    }
                }
            }
            ("BlocPiece", "IdPce") => {
                if let Some(bordereau) = file.bordereaux.last_mut() {
                    bordereau.pieces.push(number(&value));
                }
            }
            ("InfoLignePiece", "MtHT") => {
                if let Some(bordereau) = file.bordereaux.last_mut() {
                    bordereau.sum_mt_ht += parse_cents(&value);
                }
            }
            ("PJRef", "Support") => support_electronique = value == "01",
            ("PJRef", "IdUnique") if support_electronique => file.pj_refs.push(value),
            ("PJ", "IdUnique") => file.pj_ids.push(value),
            _ => {}
        }
        if !empty {
            path.push(name);
        }
    }
    Ok(file)
}

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// An `xs:decimal` of at most 2 decimals in cents (the schema checked the format).
fn parse_cents(text: &str) -> u64 {
    let text = text.trim().trim_start_matches('+');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u64 = whole.parse().unwrap_or(0);
    let mut fraction: String = fraction.chars().take(2).collect();
    while fraction.len() < 2 {
        fraction.push('0');
    }
    whole * 100 + fraction.parse::<u64>().unwrap_or(0)
}

fn cents(value: u64) -> String {
    format!("{}.{:02}", value / 100, value % 100)
}

/// `EnTetePES` of the file, read leniently (an invalid file gets its answer too).
fn header_of(bytes: &[u8]) -> Vec<(&'static str, String)> {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let Some(start) = text.find("<EnTetePES>") else {
        return Vec::new();
    };
    let Some(end) = text[start..].find("</EnTetePES>") else {
        return Vec::new();
    };
    let block = &text[start..start + end];
    ["IdPost", "IdColl", "CodCol", "CodBud"]
        .into_iter()
        .filter_map(|name| {
            let open = format!("<{name} V=\"");
            let at = block.find(&open)? + open.len();
            let value = &block[at..at + block[at..].find('"')?];
            Some((name, value.to_owned()))
        })
        .collect()
}

/// The `PES_ACQUIT` answer to the file `name`.
fn acquit(
    name: &str,
    header: &[(&'static str, String)],
    bordereaux: &[BordereauSeen],
    anomaly: Option<&Anomaly>,
) -> String {
    let escape = |text: &str| -> String {
        quick_xml::escape::escape(text)
            .chars()
            .map(|c| if u32::from(c) > 0xFF { '?' } else { c })
            .collect()
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n");
    xml.push_str(
        "<n:PES_ACQUIT xmlns:n=\"http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour\">\n",
    );
    xml.push_str("  <Enveloppe>\n    <Parametres>\n      <Version V=\"2\"/>\n      <TypFic V=\"PES_ACQUIT\"/>\n");
    xml.push_str(&format!(
        "      <NomFic V=\"{}\"/>\n    </Parametres>\n  </Enveloppe>\n",
        escape(name)
    ));
    xml.push_str(&format!("  <EnTetePES>\n    <DteStr V=\"{}\"/>\n", today()));
    for (element, value) in header {
        xml.push_str(&format!("    <{element} V=\"{}\"/>\n", escape(value)));
    }
    xml.push_str("  </EnTetePES>\n  <ACQUIT>\n    <EnTeteAcquit>\n      <IdVer V=\"2\"/>\n    </EnTeteAcquit>\n");
    match anomaly {
        None => {
            for bordereau in bordereaux {
                xml.push_str(&format!(
                    "    <ElementACQUIT>\n      <DomaineAck V=\"{DOMAINE_RECETTE}\"/>\n      <EtatAck V=\"1\"/>\n      <ExerciceBord V=\"{}\"/>\n      <NumBord V=\"{}\"/>\n    </ElementACQUIT>\n",
                    bordereau.exer, bordereau.id_bord
                ));
            }
        }
        Some(anomaly) => {
            let reason: String = anomaly.reason.chars().take(500).collect();
            xml.push_str(&format!(
                "    <ElementACQUIT>\n      <DomaineAck V=\"{}\"/>\n      <EtatAck V=\"0\"/>\n      <NumAnoAck V=\"{}\"/>\n      <LibelleAnoAck V=\"{}\"/>\n    </ElementACQUIT>\n",
                anomaly.domaine,
                anomaly.code,
                escape(&reason)
            ));
        }
    }
    xml.push_str("  </ACQUIT>\n</n:PES_ACQUIT>\n");
    xml
}

/// `text` in ISO-8859-1 (the caller replaced what it cannot hold).
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Today's date, UTC, `YYYY-MM-DD`.
fn today() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The PES files waiting under `root`, relative with `/`, sorted: files being written and
/// the simulator's own answers left out.
fn pes_files(root: &Path) -> Vec<String> {
    files_under(root, |name| {
        !name.starts_with("ACK_") && !name.starts_with("NACK_")
    })
}

/// The values of `element`'s `V` attributes in an answer or a PES file, in order.
pub fn values_of(xml: &str, element: &str) -> Vec<String> {
    let open = format!("<{element} V=\"");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        if let Some(end) = rest.find('"') {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

/// An answer file's text (ISO-8859-1).
pub fn read_answer(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| bytes.iter().map(|&b| char::from(b)).collect())
        .unwrap_or_default()
}
