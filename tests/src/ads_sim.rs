//! A simulator of an instruction service (service ADS) taking in urbanisme dossier packages,
//! as the `urbanisme/dossier` connector delivers them (docs/connectors/urbanisme.md).
//!
//! It watches its inbox for packages: `<dossier>.zip`, or a directory `<dossier>/` once it
//! holds `manifest.json` (written last: without it the directory is incomplete and left
//! alone). Optionally it also watches a mail spool, a directory of raw `.eml` messages:
//! each `.zip` attachment of a message is a package (a message without one — the summary
//! of a package too large to attach, which is dropped in the inbox instead — is set aside).
//! Hidden entries and `*.tmp` are being written and skipped.
//!
//! Each package is checked as a service that imports it would check it, every problem
//! listed (not only the first):
//!
//! - it opens (a zip whose entries are all STORED, at most [`MAX_ENTRIES`] entries of at
//!   most [`MAX_ENTRY_BYTES`] each, no path leaving the package such as `../x`);
//! - `manifest.json` (the last entry of a zip) lists exactly the other files, each with
//!   its size and SHA-512;
//! - `dossier.json` parses, names the same dossier as the package and the manifest, and
//!   the dossier identifier is `{commune}-{type_dossier}-{12 hex of SHA-256(identifiant)}`;
//!   `dossier.xml` is well-formed XML whose root is `dossier`;
//! - the cadastral parcels are well-formed and their 14-character references agree with
//!   their parts; every pièce points to a file of the package with the same hash, its
//!   media type is PDF, JPEG or PNG and its bytes look like it;
//! - the pièces required for the dossier type are there: the simulator's own table
//!   ([`required_pieces`]), written from the bordereaux des pièces of the CERFA notices,
//!   not taken from the connector.
//!
//! It answers in `reponses/` inside the inbox: `ACCEPTE_<dossier>.json`
//! (`{"dossier", "numero_enregistrement", "recu_le"}`, the number in the national format
//! `DP 044 043 26 00001`: type, département and commune on 3 characters each, the year of
//! deposit on 2 digits, then a 5-digit sequence per type, commune and year) or
//! `REJET_<dossier>.json` (`{"dossier", "motifs": [...]}`, every reason in French). The
//! numbers given are recorded in `.ads-sim/registre.tsv` inside the inbox (synced before
//! the answer is written), so a restarted simulator goes on with the sequence, and a
//! dossier received again (same dossier identifier) keeps its number: it is answered
//! again with it and counted as a duplicate. A package answered is moved to
//! `.ads-sim/traites/` of the directory it came from.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::import_sim::{write_answer, Checks, ImportSim, Journal};
use crate::watch::being_written;

/// The directory, inside the inbox (and the mail spool), where the simulator keeps its
/// state and the packages it answered.
pub const STATE_DIR: &str = ".ads-sim";
/// The directory, inside the inbox, where the answers go.
pub const REPONSES_DIR: &str = "reponses";
/// Most entries a package may hold (a zip bomb of empty entries stops here).
pub const MAX_ENTRIES: usize = 1_000;
/// Largest entry read, in bytes (a zip entry lying about its size stops here too).
pub const MAX_ENTRY_BYTES: u64 = 128 * 1024 * 1024;
/// Largest package (zip file, directory or `.eml` message), in bytes.
pub const MAX_PACKAGE_BYTES: u64 = 512 * 1024 * 1024;
/// Largest `dossier.json`, `dossier.xml` or `manifest.json` kept in memory to be parsed.
const MAX_DESCRIPTION_BYTES: u64 = 16 * 1024 * 1024;

/// The value of `format` in `manifest.json` and `dossier.json`.
pub const FORMAT: &str = "aiguillage/urbanisme-dossier";
/// The namespace of `dossier.xml`.
pub const XML_NAMESPACE: &str = "urn:aiguillage:urbanisme:dossier:1";

/// The pièces a dossier of type `type_dossier` must hold whatever the project, with their
/// labels; `None` for an unknown type.
///
/// Written from the "pièces obligatoires pour tous les dossiers" of the bordereau des
/// pièces of each CERFA notice (the other pièces depend on the project and cannot be
/// required blindly): 13404 (DP), 13703 (DPMI), 13409 (PC, PA), 13406 (PCMI), 13405 (PD)
/// and 13410 (CUa, CUb).
pub fn required_pieces(type_dossier: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const SITUATION: &str = "plan de situation du terrain";
    Some(match type_dossier {
        "DP" => &[("DP1", SITUATION)],
        "DPMI" => &[
            ("DP1", SITUATION),
            (
                "DP2",
                "plan de masse des constructions à édifier ou à modifier",
            ),
        ],
        "PC" => &[
            ("PC1", SITUATION),
            (
                "PC2",
                "plan de masse des constructions à édifier ou à modifier",
            ),
            ("PC3", "plan en coupe du terrain et de la construction"),
            ("PC4", "notice décrivant le terrain et présentant le projet"),
            ("PC5", "plan des façades et des toitures"),
            ("PC6", "document graphique d'insertion du projet"),
            ("PC7", "photographie du terrain dans l'environnement proche"),
            ("PC8", "photographie du terrain dans le paysage lointain"),
        ],
        "PCMI" => &[
            ("PCMI1", SITUATION),
            (
                "PCMI2",
                "plan de masse des constructions à édifier ou à modifier",
            ),
            ("PCMI3", "plan en coupe du terrain et de la construction"),
            (
                "PCMI4",
                "notice décrivant le terrain et présentant le projet",
            ),
            ("PCMI5", "plan des façades et des toitures"),
            ("PCMI6", "document graphique d'insertion du projet"),
            (
                "PCMI7",
                "photographie du terrain dans l'environnement proche",
            ),
            ("PCMI8", "photographie du terrain dans le paysage lointain"),
        ],
        "PA" => &[
            ("PA1", SITUATION),
            (
                "PA2",
                "notice décrivant le terrain et le projet d'aménagement",
            ),
            ("PA3", "plan de l'état actuel du terrain à aménager"),
            ("PA4", "plan de composition d'ensemble du projet"),
        ],
        "PD" => &[
            ("PD1", SITUATION),
            (
                "PD2",
                "plan de masse des constructions à démolir ou à conserver",
            ),
            ("PD3", "photographie du ou des bâtiments à démolir"),
        ],
        "CUa" => &[("CU1", SITUATION)],
        "CUb" => &[
            ("CU1", SITUATION),
            ("CU2", "note descriptive succincte du projet"),
        ],
        _ => return None,
    })
}

/// The dossier types the simulator knows.
pub const TYPES: [&str; 8] = ["DP", "DPMI", "PC", "PCMI", "PA", "PD", "CUa", "CUb"];

/// The simulator's answer to one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reponse {
    /// Where the package came from: `inbox/<name>` or `mail/<message>.eml`.
    pub source: String,
    /// The dossier identifier (the package's name, made safe for a file name).
    pub dossier: String,
    /// Whether it was accepted (registered, or registered before).
    pub accepted: bool,
    /// The registration number of an accepted dossier (`DP 044 043 26 00001`).
    pub numero: Option<String>,
    /// Whether the dossier had been registered before (same number given again).
    pub duplicate: bool,
    /// Every reason of a rejection, in French (empty when accepted).
    pub motifs: Vec<String>,
    /// The answer file written in `reponses/`.
    pub file: PathBuf,
}

/// A running instruction service; it stops when dropped.
pub struct AdsSim {
    /// The directory it takes packages from.
    pub inbox: PathBuf,
    /// Where it answers (`reponses/` inside the inbox).
    pub reponses: PathBuf,
    /// The mail spool it reads `.eml` messages from, if any.
    pub spool: Option<PathBuf>,
    core: ImportSim<Reponse>,
}

impl AdsSim {
    /// Watches `inbox` (created if missing) and, if given, the mail spool `spool`; polls
    /// every 100 ms. Panics when the inbox cannot be created or the registry read (a test
    /// or demo setup problem, not input).
    pub fn start(inbox: &Path, spool: Option<&Path>) -> Self {
        let reponses = inbox.join(REPONSES_DIR);
        std::fs::create_dir_all(&reponses).expect("the inbox and its reponses/");
        std::fs::create_dir_all(inbox.join(STATE_DIR).join("traites")).expect("the state");
        if let Some(spool) = spool {
            std::fs::create_dir_all(spool.join(STATE_DIR).join("traites")).expect("the mail spool");
        }
        let registry = Registry::load(&inbox.join(STATE_DIR).join("registre.tsv"))
            .expect("the simulator's registry of dossiers");
        let daemon = Daemon {
            inbox: inbox.to_path_buf(),
            reponses: reponses.clone(),
            spool: spool.map(Path::to_path_buf),
            registry,
        };
        Self {
            inbox: inbox.to_path_buf(),
            reponses,
            spool: spool.map(Path::to_path_buf),
            core: ImportSim::start(daemon),
        }
    }

    /// Every answer given since it started, in order.
    pub fn answers(&self) -> Vec<Reponse> {
        self.core.answers()
    }

    /// How many packages it received (answered) since it started.
    pub fn received(&self) -> usize {
        self.answers().len()
    }

    /// The dossiers it registered since it started (accepted for the first time).
    pub fn accepted(&self) -> Vec<Reponse> {
        self.answers()
            .into_iter()
            .filter(|answer| answer.accepted && !answer.duplicate)
            .collect()
    }

    /// The packages it rejected since it started.
    pub fn rejected(&self) -> Vec<Reponse> {
        self.answers()
            .into_iter()
            .filter(|answer| !answer.accepted)
            .collect()
    }

    /// How many packages were dossiers it had registered before.
    pub fn duplicates(&self) -> usize {
        self.answers()
            .iter()
            .filter(|answer| answer.duplicate)
            .count()
    }

    /// The messages of the spool set aside without a package (`mail/<message>.eml`: not
    /// a MIME message, or no `.zip` attachment).
    pub fn ignored(&self) -> Vec<String> {
        self.core.ignored()
    }

    /// Waits until it answered `count` packages, at most `timeout`; returns its answers.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Reponse> {
        self.core.wait_for(count, timeout).await
    }

    /// The program's loop: prints each answer and each message set aside until interrupted.
    pub async fn report_until_interrupted(&self) {
        let report = |answer: &Reponse| match (&answer.numero, answer.duplicate) {
            (Some(numero), false) => {
                format!(
                    "accepted {} from {}: {numero}",
                    answer.dossier, answer.source
                )
            }
            (Some(numero), true) => format!(
                "duplicate {} from {}: already {numero}",
                answer.dossier, answer.source
            ),
            (None, _) => format!(
                "rejected {} from {}: {}",
                answer.dossier,
                answer.source,
                answer.motifs.join("; ")
            ),
        };
        let ignored = |message: &str| format!("set aside {message}: no package attached");
        self.core.report_until_interrupted(report, ignored).await;
    }

    /// The answer file of `dossier` as JSON (`ACCEPTE_` first, else `REJET_`), if any.
    pub fn answer_file(&self, dossier: &str) -> Option<Value> {
        ["ACCEPTE_", "REJET_"].iter().find_map(|prefix| {
            let bytes = std::fs::read(self.reponses.join(format!("{prefix}{dossier}.json")));
            serde_json::from_slice(&bytes.ok()?).ok()
        })
    }
}

/// Whether `numero` is a registration number in the national format
/// (`DP 044 043 26 00001`).
pub fn is_registration_number(numero: &str) -> bool {
    let parts: Vec<&str> = numero.split(' ').collect();
    let [kind, departement, commune, year, sequence] = parts[..] else {
        return false;
    };
    ["DP", "PC", "PA", "PD", "CU"].contains(&kind)
        && departement.len() == 3
        && (departement.bytes().all(|b| b.is_ascii_digit())
            || departement == "02A"
            || departement == "02B")
        && commune.len() == 3
        && commune.bytes().all(|b| b.is_ascii_digit())
        && year.len() == 2
        && year.bytes().all(|b| b.is_ascii_digit())
        && sequence.len() == 5
        && sequence.bytes().all(|b| b.is_ascii_digit())
        && sequence != "00000"
}

/// The registration numbers given so far: dossier → (number, first receipt), and the last
/// sequence of each series (type, département, commune, year).
struct Registry {
    path: PathBuf,
    dossiers: HashMap<String, (String, String)>,
    last: HashMap<String, u32>,
}

impl Registry {
    fn load(path: &Path) -> std::io::Result<Self> {
        let mut registry = Self {
            path: path.to_path_buf(),
            dossiers: HashMap::new(),
            last: HashMap::new(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    // A line cut by a crash has fewer fields: its answer was never written.
                    if let [dossier, numero, recu_le] = line.split('\t').collect::<Vec<_>>()[..] {
                        if is_registration_number(numero) {
                            registry.remember(dossier, numero, recu_le);
                        }
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        Ok(registry)
    }

    fn remember(&mut self, dossier: &str, numero: &str, recu_le: &str) {
        if let Some((series, sequence)) = numero.rsplit_once(' ') {
            let sequence: u32 = sequence.parse().unwrap_or(0);
            let last = self.last.entry(series.to_owned()).or_insert(0);
            *last = (*last).max(sequence);
        }
        self.dossiers
            .insert(dossier.to_owned(), (numero.to_owned(), recu_le.to_owned()));
    }

    /// The number and first receipt of `dossier`, and whether it was registered before;
    /// a new number is synced to disk before it is returned.
    fn register(&mut self, dossier: &str, series: &str) -> std::io::Result<(String, String, bool)> {
        if let Some((numero, recu_le)) = self.dossiers.get(dossier) {
            return Ok((numero.clone(), recu_le.clone(), true));
        }
        let sequence = self.last.get(series).copied().unwrap_or(0) + 1;
        let numero = format!("{series} {sequence:05}");
        let recu_le = now_rfc3339();
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        out.write_all(format!("{dossier}\t{numero}\t{recu_le}\n").as_bytes())?;
        out.sync_all()?;
        self.remember(dossier, &numero, &recu_le);
        Ok((numero, recu_le, false))
    }
}

/// Now, UTC, to the second (as a registry stamps a receipt).
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

struct Daemon {
    inbox: PathBuf,
    reponses: PathBuf,
    spool: Option<PathBuf>,
    registry: Registry,
}

impl Checks for Daemon {
    type Answer = Reponse;

    fn sweep(&mut self, journal: &Journal<Reponse>) {
        for (name, path) in visible_entries(&self.inbox) {
            if name == REPONSES_DIR {
                continue;
            }
            let package = if path.is_dir() {
                if !path.join("manifest.json").is_file() {
                    continue; // still being written: manifest.json comes last
                }
                read_directory(&name, &path)
            } else if name.to_ascii_lowercase().ends_with(".zip") && path.is_file() {
                read_zip_file(&name, &path)
            } else {
                continue;
            };
            if self.answer(journal, &format!("inbox/{name}"), &package) {
                set_aside(&self.inbox, &name, &path);
            }
        }
        let Some(spool) = self.spool.clone() else {
            return;
        };
        for (name, path) in visible_entries(&spool) {
            if !name.to_ascii_lowercase().ends_with(".eml") || !path.is_file() {
                continue;
            }
            let source = format!("mail/{name}");
            let packages = read_mail(&path);
            let mut answered = true;
            for package in &packages {
                answered &= self.answer(journal, &source, package);
            }
            if !answered {
                continue; // tried again at the next sweep
            }
            if packages.is_empty() {
                journal.ignore(source);
            }
            set_aside(&spool, &name, &path);
        }
    }
}

impl Daemon {
    /// Checks `package`, registers it if it passes and writes the answer; false when the
    /// answer could not be written (the package is then tried again).
    fn answer(&mut self, journal: &Journal<Reponse>, source: &str, package: &Package) -> bool {
        let checked = check(package);
        let dossier = safe_name(&package.name);
        let (accepted, numero, duplicate, body, file) = match &checked {
            Ok(series) => {
                let Ok((numero, recu_le, duplicate)) = self.registry.register(&dossier, series)
                else {
                    return false;
                };
                let body = json!({
                    "dossier": dossier,
                    "numero_enregistrement": numero,
                    "recu_le": recu_le,
                });
                (
                    true,
                    Some(numero),
                    duplicate,
                    body,
                    format!("ACCEPTE_{dossier}.json"),
                )
            }
            Err(motifs) => (
                false,
                None,
                false,
                json!({ "dossier": dossier, "motifs": motifs }),
                format!("REJET_{dossier}.json"),
            ),
        };
        let text = serde_json::to_string_pretty(&body).unwrap_or_default();
        let Ok(target) = write_answer(&self.reponses, &file, text.as_bytes()) else {
            return false;
        };
        journal.answer(Reponse {
            source: source.to_owned(),
            dossier,
            accepted,
            numero,
            duplicate,
            motifs: checked.err().unwrap_or_default(),
            file: target,
        });
        true
    }
}

/// The entries of `dir` that are not being written, by name.
fn visible_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .filter(|(name, _)| !being_written(name))
        .collect();
    out.sort();
    out
}

/// Moves an answered package (or message) out of the way, into `.ads-sim/traites/`.
fn set_aside(dir: &Path, name: &str, path: &Path) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let target = dir
        .join(STATE_DIR)
        .join("traites")
        .join(format!("{nanos}-{name}"));
    let _ = std::fs::rename(path, target);
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_` (a package named
/// by a stranger still gets an answer file of its own, inside `reponses/`).
fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// What a package holds, read within the bounds: its files by path (except
/// `manifest.json`), the manifest's bytes, and what was wrong while reading.
#[derive(Default)]
struct Package {
    /// The package's name: the zip's or directory's name without `.zip`.
    name: String,
    files: BTreeMap<String, Entry>,
    manifest: Option<Vec<u8>>,
    motifs: Vec<String>,
}

struct Entry {
    size: u64,
    sha512: String,
    /// The first bytes, to see whether a pièce is what it claims.
    head: Vec<u8>,
    /// The bytes of `dossier.json` and `dossier.xml`, to parse them.
    body: Option<Vec<u8>>,
}

impl Package {
    fn named(name: &str) -> Self {
        let stem = if name.to_ascii_lowercase().ends_with(".zip") {
            &name[..name.len() - 4]
        } else {
            name
        };
        Self {
            name: stem.to_owned(),
            ..Self::default()
        }
    }

    /// Reads one file of the package from `reader`, hashing it as it goes.
    fn add(&mut self, path: String, reader: &mut dyn Read) {
        if self.files.contains_key(&path) || (path == "manifest.json" && self.manifest.is_some()) {
            self.motifs
                .push(format!("{path} figure deux fois dans le paquet"));
            return;
        }
        let keep = matches!(
            path.as_str(),
            "manifest.json" | "dossier.json" | "dossier.xml"
        );
        let mut hasher = Sha512::new();
        let mut head = Vec::new();
        let mut body = Vec::new();
        let mut size: u64 = 0;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut limited = reader.take(MAX_ENTRY_BYTES + 1);
        loop {
            let read = match limited.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) => {
                    self.motifs.push(format!("{path} illisible : {error}"));
                    return;
                }
            };
            let chunk = &buffer[..read];
            hasher.update(chunk);
            if head.len() < 8 {
                head.extend(chunk.iter().take(8 - head.len()));
            }
            if keep && size + (read as u64) <= MAX_DESCRIPTION_BYTES {
                body.extend_from_slice(chunk);
            }
            size += read as u64;
        }
        if size > MAX_ENTRY_BYTES {
            self.motifs.push(format!(
                "{path} dépasse {MAX_ENTRY_BYTES} octets : fichier refusé"
            ));
            return;
        }
        if keep && size > MAX_DESCRIPTION_BYTES {
            self.motifs.push(format!(
                "{path} dépasse {MAX_DESCRIPTION_BYTES} octets : fichier refusé"
            ));
            return;
        }
        if path == "manifest.json" {
            self.manifest = Some(body);
            return;
        }
        let sha512 = hex(&hasher.finalize());
        self.files.insert(
            path,
            Entry {
                size,
                sha512,
                head,
                body: keep.then_some(body),
            },
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A path of a zip entry or directory file that stays inside the package: relative,
/// `/`-separated, no `.`/`..`/empty component, no backslash or NUL.
fn inside(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn read_zip_file(name: &str, path: &Path) -> Package {
    let mut package = Package::named(name);
    match std::fs::File::open(path) {
        Ok(file) => {
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            if size > MAX_PACKAGE_BYTES {
                package.motifs.push(format!(
                    "paquet de {size} octets : plus de {MAX_PACKAGE_BYTES} octets, refusé"
                ));
            } else {
                read_zip(&mut package, std::io::BufReader::new(file));
            }
        }
        Err(error) => package.motifs.push(format!("paquet illisible : {error}")),
    }
    package
}

fn read_zip<R: Read + Seek>(package: &mut Package, reader: R) {
    let mut archive = match zip::ZipArchive::new(reader) {
        Ok(archive) => archive,
        Err(error) => {
            package.motifs.push(format!(
                "le paquet n'est pas une archive zip lisible ({error})"
            ));
            return;
        }
    };
    if archive.len() > MAX_ENTRIES {
        package.motifs.push(format!(
            "le paquet compte {} entrées : plus de {MAX_ENTRIES}, refusé",
            archive.len()
        ));
        return;
    }
    let mut total: u64 = 0;
    let mut last_file = None;
    for index in 0..archive.len() {
        let (entry_name, stored, is_dir) = match archive.by_index_raw(index) {
            Ok(entry) => (
                entry.name().to_owned(),
                entry.compression() == zip::CompressionMethod::Stored,
                entry.is_dir(),
            ),
            Err(error) => {
                package
                    .motifs
                    .push(format!("entrée n°{} illisible ({error})", index + 1));
                continue;
            }
        };
        let shown: String = entry_name.chars().take(200).collect();
        if is_dir {
            continue; // a directory entry (`pieces/`) holds nothing of its own
        }
        if !inside(&entry_name) {
            package.motifs.push(format!(
                "entrée « {shown} » : chemin hors du paquet, refusée"
            ));
            continue;
        }
        if !stored {
            package.motifs.push(format!(
                "entrée {shown} compressée : les entrées d'un paquet sont stockées sans compression (STORED)"
            ));
            continue;
        }
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(error) => {
                package
                    .motifs
                    .push(format!("entrée {shown} illisible ({error})"));
                continue;
            }
        };
        total = total.saturating_add(entry.size());
        if total > MAX_PACKAGE_BYTES {
            package.motifs.push(format!(
                "le contenu du paquet dépasse {MAX_PACKAGE_BYTES} octets : refusé"
            ));
            return;
        }
        package.add(entry_name.clone(), &mut entry);
        last_file = Some(entry_name);
    }
    if package.manifest.is_some() && last_file.as_deref() != Some("manifest.json") {
        package
            .motifs
            .push("manifest.json n'est pas la dernière entrée du paquet".to_owned());
    }
}

fn read_directory(name: &str, root: &Path) -> Package {
    let mut package = Package::named(name);
    let mut stack = vec![root.to_path_buf()];
    let mut count = 0;
    let mut total: u64 = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            package
                .motifs
                .push(format!("répertoire {} illisible", dir.display()));
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            count += 1;
            if count > MAX_ENTRIES {
                package.motifs.push(format!(
                    "le paquet compte plus de {MAX_ENTRIES} fichiers : refusé"
                ));
                return package;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(kind) if kind.is_file() => {
                    let Ok(mut file) = std::fs::File::open(&path) else {
                        package.motifs.push(format!("{relative} illisible"));
                        continue;
                    };
                    total = total.saturating_add(file.metadata().map(|m| m.len()).unwrap_or(0));
                    if total > MAX_PACKAGE_BYTES {
                        package.motifs.push(format!(
                            "le contenu du paquet dépasse {MAX_PACKAGE_BYTES} octets : refusé"
                        ));
                        return package;
                    }
                    package.add(relative, &mut file);
                }
                _ => package.motifs.push(format!(
                    "{relative} n'est pas un fichier ordinaire (lien symbolique ?) : refusé"
                )),
            }
        }
    }
    package
}

/// The packages attached to the message in `path`: each `.zip` attachment. Nothing when
/// the file is not a MIME message or carries no package.
fn read_mail(path: &Path) -> Vec<Package> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut raw = Vec::new();
    // Base64 makes a message a third larger than what it carries.
    if file
        .take(MAX_PACKAGE_BYTES * 4 / 3 + 1024 * 1024)
        .read_to_end(&mut raw)
        .is_err()
    {
        return Vec::new();
    }
    let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
        return Vec::new();
    };
    use mail_parser::MimeHeaders as _;
    message
        .attachments()
        .filter_map(|part| {
            let name = part.attachment_name()?;
            let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
            if !name.to_ascii_lowercase().ends_with(".zip") {
                return None;
            }
            let mut package = Package::named(name);
            read_zip(&mut package, std::io::Cursor::new(part.contents()));
            Some(package)
        })
        .collect()
}

/// Every problem of `package`, or the numbering series of an accepted one
/// (`DP 044 043 26`).
fn check(package: &Package) -> Result<String, Vec<String>> {
    let mut motifs = package.motifs.clone();
    let manifest = check_manifest(package, &mut motifs);
    let series = check_dossier(package, manifest.as_ref(), &mut motifs);
    check_xml(package, &mut motifs);
    match series {
        Some(series) if motifs.is_empty() => Ok(series),
        _ if motifs.is_empty() => Err(vec!["dossier incomplet".to_owned()]),
        _ => Err(motifs),
    }
}

/// Checks `manifest.json` against the files; returns it when it parses.
fn check_manifest(package: &Package, motifs: &mut Vec<String>) -> Option<Value> {
    let Some(bytes) = &package.manifest else {
        if !package.files.is_empty() {
            motifs.push("manifest.json absent du paquet".to_owned());
        } else if motifs.is_empty() {
            motifs.push("paquet vide".to_owned());
        }
        return None;
    };
    let manifest: Value = match serde_json::from_slice(bytes) {
        Ok(manifest) => manifest,
        Err(error) => {
            motifs.push(format!("manifest.json illisible : {error}"));
            return None;
        }
    };
    if manifest["format"] != FORMAT {
        motifs.push(format!(
            "manifest.json : format {} inconnu (attendu {FORMAT})",
            manifest["format"]
        ));
    }
    if manifest["version"] != 1 {
        motifs.push(format!(
            "manifest.json : version {} non prise en charge (attendu 1)",
            manifest["version"]
        ));
    }
    if manifest["dossier"] != package.name.as_str() {
        motifs.push(format!(
            "manifest.json annonce le dossier {} mais le paquet s'appelle {}",
            manifest["dossier"], package.name
        ));
    }
    let Some(listed) = manifest["fichiers"].as_array() else {
        motifs.push("manifest.json : liste « fichiers » absente".to_owned());
        return Some(manifest);
    };
    let mut seen = Vec::new();
    for (index, item) in listed.iter().enumerate() {
        let Some(chemin) = item["chemin"].as_str() else {
            motifs.push(format!(
                "manifest.json : fichier n°{} sans « chemin »",
                index + 1
            ));
            continue;
        };
        if seen.contains(&chemin) {
            motifs.push(format!("{chemin} listé deux fois dans le manifeste"));
            continue;
        }
        seen.push(chemin);
        if chemin == "manifest.json" {
            motifs.push("manifest.json ne doit pas se lister lui-même".to_owned());
            continue;
        }
        let Some(entry) = package.files.get(chemin) else {
            motifs.push(format!(
                "{chemin} listé dans le manifeste mais absent du paquet"
            ));
            continue;
        };
        match item["taille"].as_u64() {
            Some(taille) if taille == entry.size => {}
            Some(taille) => motifs.push(format!(
                "taille de {chemin} différente du manifeste (manifeste : {taille} octets, paquet : {} octets)",
                entry.size
            )),
            None => motifs.push(format!("manifest.json : {chemin} sans « taille »")),
        }
        match item["sha512"].as_str() {
            Some(sha512) if sha512 == entry.sha512 => {}
            Some(sha512)
                if sha512.len() == 128
                    && sha512
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                motifs.push(format!("hash de {chemin} différent du manifeste"))
            }
            _ => motifs.push(format!(
                "manifest.json : {chemin} sans « sha512 » (128 chiffres hexadécimaux minuscules)"
            )),
        }
        if item["type_media"].as_str().is_none() {
            motifs.push(format!("manifest.json : {chemin} sans « type_media »"));
        }
    }
    for path in package.files.keys() {
        if !seen.contains(&path.as_str()) {
            motifs.push(format!(
                "{path} présent dans le paquet mais absent du manifeste"
            ));
        }
    }
    Some(manifest)
}

/// Checks `dossier.json`; returns the numbering series when it has what numbering needs.
fn check_dossier(
    package: &Package,
    manifest: Option<&Value>,
    motifs: &mut Vec<String>,
) -> Option<String> {
    let Some(bytes) = package
        .files
        .get("dossier.json")
        .and_then(|entry| entry.body.as_ref())
    else {
        if package.manifest.is_some() {
            motifs.push("dossier.json absent du paquet".to_owned());
        }
        return None;
    };
    let dossier: Value = match serde_json::from_slice(bytes) {
        Ok(dossier @ Value::Object(_)) => dossier,
        Ok(_) => {
            motifs.push("dossier.json n'est pas un objet JSON".to_owned());
            return None;
        }
        Err(error) => {
            motifs.push(format!("dossier.json illisible : {error}"));
            return None;
        }
    };
    if dossier["format"] != FORMAT || dossier["version"] != 1 {
        motifs.push(format!(
            "dossier.json : format {} version {} inconnus (attendu {FORMAT} version 1)",
            dossier["format"], dossier["version"]
        ));
    }
    if dossier["dossier"] != package.name.as_str() {
        motifs.push(format!(
            "dossier.json annonce le dossier {} mais le paquet s'appelle {}",
            dossier["dossier"], package.name
        ));
    }
    let identifiant = dossier["identifiant"].as_str().unwrap_or_default();
    if identifiant.is_empty() {
        motifs.push("dossier.json : « identifiant » absent".to_owned());
    }
    if let Some(manifest) = manifest {
        if manifest["identifiant"] != identifiant {
            motifs.push(format!(
                "identifiant {} du manifeste différent de celui de dossier.json",
                manifest["identifiant"]
            ));
        }
    }
    let type_dossier = dossier["type_dossier"].as_str().unwrap_or_default();
    let required = required_pieces(type_dossier);
    if required.is_none() {
        motifs.push(format!(
            "type de dossier {} inconnu (connus : {})",
            dossier["type_dossier"],
            TYPES.join(", ")
        ));
    }
    let commune = dossier["commune"].as_str().unwrap_or_default();
    if !is_insee(commune) {
        motifs.push(format!(
            "commune {} : code INSEE mal formé",
            dossier["commune"]
        ));
    }
    if !identifiant.is_empty() && required.is_some() && is_insee(commune) {
        let expected = format!(
            "{commune}-{type_dossier}-{}",
            &hex(&Sha256::digest(identifiant.as_bytes()))[..12]
        );
        if package.name != expected {
            motifs.push(format!(
                "identifiant de dossier {} différent de celui que donne l'envoi ({expected})",
                package.name
            ));
        }
    }
    let year = match dossier["date_depot"].as_str().map(|text| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    }) {
        Some(Ok(date)) => Some(date.year().rem_euclid(100)),
        _ => {
            motifs.push(format!(
                "date_depot {} : date RFC 3339 attendue",
                dossier["date_depot"]
            ));
            None
        }
    };
    check_parcelles(&dossier["terrain"], motifs);
    check_pieces(package, &dossier, required.unwrap_or(&[]), motifs);
    let (departement, numero_commune) = split_insee(commune)?;
    let family = match type_dossier {
        "DP" | "DPMI" => "DP",
        "PC" | "PCMI" => "PC",
        "PA" => "PA",
        "PD" => "PD",
        "CUa" | "CUb" => "CU",
        _ => return None,
    };
    Some(format!(
        "{family} {departement} {numero_commune} {:02}",
        year?
    ))
}

/// A commune's INSEE code: 5 digits, or `2A`/`2B` and 3 digits (Corsica).
fn is_insee(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 5
        && (bytes[..2].iter().all(u8::is_ascii_digit)
            || code.starts_with("2A")
            || code.starts_with("2B"))
        && bytes[2..].iter().all(u8::is_ascii_digit)
}

/// The département and commune parts of the registration number, 3 characters each:
/// `44043` → `044`, `043`; `2A004` → `02A`, `004`; overseas `97105` → `971`, `105` (the
/// département has 3 digits there, and the commune the INSEE code's last 3).
fn split_insee(code: &str) -> Option<(String, String)> {
    if !is_insee(code) {
        return None;
    }
    let departement = if code.starts_with("97") {
        code[..3].to_owned()
    } else {
        format!("0{}", &code[..2])
    };
    Some((departement, code[2..].to_owned()))
}

fn check_parcelles(terrain: &Value, motifs: &mut Vec<String>) {
    let commune = terrain["commune_insee"].as_str().unwrap_or_default();
    if !is_insee(commune) {
        motifs.push(format!(
            "terrain : commune_insee {} mal formé (5 chiffres, ou 2A/2B et 3 chiffres)",
            terrain["commune_insee"]
        ));
    }
    let parcelles = terrain["parcelles"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if parcelles.is_empty() {
        motifs.push("aucune parcelle cadastrale".to_owned());
    }
    for (index, parcelle) in parcelles.iter().enumerate() {
        let at = format!("parcelle {}", index + 1);
        let prefixe = parcelle["prefixe"].as_str().unwrap_or_default();
        let prefixe_ok = !prefixe.is_empty()
            && prefixe.len() <= 3
            && prefixe.bytes().all(|b| b.is_ascii_digit());
        if !prefixe_ok {
            motifs.push(format!(
                "{at} : préfixe {} mal formé (1 à 3 chiffres)",
                parcelle["prefixe"]
            ));
        }
        let section = parcelle["section"].as_str().unwrap_or_default();
        let section_ok = (1..=2).contains(&section.len())
            && section
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && section != "00"
            && section != "0";
        if !section_ok {
            motifs.push(format!(
                "{at} : section {} mal formée (1 ou 2 caractères A-Z ou 0-9, pas 00)",
                parcelle["section"]
            ));
        }
        let numero = parcelle["numero"]
            .as_u64()
            .filter(|n| (1..=9999).contains(n));
        if numero.is_none() {
            motifs.push(format!(
                "{at} : numéro {} hors de 1 à 9999",
                parcelle["numero"]
            ));
        }
        let reference = parcelle["reference"].as_str().unwrap_or_default();
        match numero {
            Some(numero) if prefixe_ok && section_ok && is_insee(commune) => {
                let expected = format!("{commune}{prefixe:0>3}{section:0>2}{numero:04}");
                if reference != expected {
                    motifs.push(format!(
                        "{at} : référence cadastrale {} mal formée (attendu {expected})",
                        parcelle["reference"]
                    ));
                }
            }
            _ if reference.len() != 14 => motifs.push(format!(
                "{at} : référence cadastrale {} mal formée (14 caractères : INSEE 5, préfixe 3, section 2, numéro 4)",
                parcelle["reference"]
            )),
            _ => {}
        }
    }
}

fn check_pieces(
    package: &Package,
    dossier: &Value,
    required: &[(&str, &str)],
    motifs: &mut Vec<String>,
) {
    let pieces = dossier["pieces"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut codes: Vec<&str> = Vec::new();
    let mut chemins: Vec<&str> = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        let code = piece["code"].as_str().unwrap_or_default();
        let code_ok = !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !code_ok {
            motifs.push(format!(
                "pièce n°{} : code {} mal formé (lettres capitales et chiffres)",
                index + 1,
                piece["code"]
            ));
            continue;
        }
        if codes.contains(&code) {
            motifs.push(format!("pièce {code} jointe deux fois"));
            continue;
        }
        codes.push(code);
        let type_media = piece["type_media"].as_str().unwrap_or_default();
        let (extension, magic): (&str, &[u8]) = match type_media {
            "application/pdf" => ("pdf", b"%PDF-"),
            "image/jpeg" => ("jpg", &[0xFF, 0xD8, 0xFF]),
            "image/png" => ("png", &[0x89, b'P', b'N', b'G']),
            _ => {
                motifs.push(format!(
                    "pièce {code} : type {} refusé (PDF, JPEG ou PNG)",
                    piece["type_media"]
                ));
                ("", b"")
            }
        };
        let chemin = piece["chemin"].as_str().unwrap_or_default();
        chemins.push(chemin);
        if !extension.is_empty() && chemin != format!("pieces/{code}.{extension}") {
            motifs.push(format!(
                "pièce {code} : chemin {} inattendu (attendu pieces/{code}.{extension})",
                piece["chemin"]
            ));
        }
        let Some(entry) = package.files.get(chemin) else {
            motifs.push(format!(
                "pièce {code} : fichier {} absent du paquet",
                piece["chemin"]
            ));
            continue;
        };
        if piece["sha512"] != entry.sha512.as_str() {
            motifs.push(format!(
                "pièce {code} : hash de dossier.json différent de celui de {chemin}"
            ));
        }
        if piece["taille"].as_u64() != Some(entry.size) {
            motifs.push(format!(
                "pièce {code} : taille de dossier.json différente de celle de {chemin}"
            ));
        }
        if !magic.is_empty() && !entry.head.starts_with(magic) {
            motifs.push(format!(
                "{chemin} annoncé {type_media} mais son contenu n'en est pas"
            ));
        }
    }
    for (code, libelle) in required {
        if !codes.contains(code) {
            motifs.push(format!("pièce {code} manquante ({libelle})"));
        }
    }
    for path in package.files.keys() {
        if path.starts_with("pieces/") && !chemins.contains(&path.as_str()) {
            motifs.push(format!(
                "{path} ne correspond à aucune pièce de dossier.json"
            ));
        } else if !path.starts_with("pieces/") && path != "dossier.json" && path != "dossier.xml" {
            motifs.push(format!("{path} inattendu dans un paquet de dossier"));
        }
    }
}

/// `dossier.xml`: present, well-formed, root `dossier` in the package's namespace.
fn check_xml(package: &Package, motifs: &mut Vec<String>) {
    let Some(bytes) = package
        .files
        .get("dossier.xml")
        .and_then(|entry| entry.body.as_ref())
    else {
        if package.manifest.is_some() {
            motifs.push("dossier.xml absent du paquet".to_owned());
        }
        return;
    };
    let mut reader = quick_xml::NsReader::from_reader(bytes.as_slice());
    let mut buffer = Vec::new();
    let mut depth: usize = 0;
    let mut root_seen = false;
    loop {
        use quick_xml::events::Event;
        let (namespace, event) = match reader.read_resolved_event_into(&mut buffer) {
            Ok(resolved) => resolved,
            Err(error) => {
                motifs.push(format!("dossier.xml mal formé : {error}"));
                return;
            }
        };
        match &event {
            Event::Start(element) | Event::Empty(element) if depth == 0 => {
                if root_seen {
                    motifs.push("dossier.xml : plusieurs éléments racines".to_owned());
                    return;
                }
                root_seen = true;
                let ours = matches!(
                    namespace,
                    quick_xml::name::ResolveResult::Bound(ns) if ns.as_ref() == XML_NAMESPACE
                );
                if element.local_name().as_ref() != "dossier" || !ours {
                    motifs.push(format!(
                        "dossier.xml : racine {} inattendue (attendu dossier dans {XML_NAMESPACE})",
                        element.name().as_ref()
                    ));
                    return;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    if !root_seen {
        motifs.push("dossier.xml : aucun élément".to_owned());
    } else if depth != 0 {
        motifs.push("dossier.xml mal formé : élément non fermé".to_owned());
    }
}
