//! The instruction-service simulator registers a complete, intact dossier package with a
//! number in the national format, rejects one that a real service could not trust (a pièce
//! that is not what the manifest says, a required pièce missing, a file the manifest does
//! not list, a malformed parcel, garbage) naming what is wrong, registers a dossier
//! received twice once, waits for a directory package's manifest, takes packages attached
//! to e-mails, and keeps its numbering across a restart.
//!
//! The packages are built here by hand, as docs/connectors/urbanisme.md describes them, not
//! by the connector: the simulator is the connector's judge, not its mirror.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use aiguillage_tests::ads_sim::{is_registration_number, AdsSim, Reponse, MAX_ENTRIES};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0xFF, 0xD9,
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deposit to package: the fixture `dp-sci-ravalement` (a DP with DP1, DP4, DP7), which
/// a test changes before building.
struct Deposit {
    document: Value,
    pieces: Vec<(String, &'static str, Vec<u8>)>,
}

impl Deposit {
    fn dp() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/urbanisme/dp-sci-ravalement.expected.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        Self {
            document: serde_json::from_str(&text).unwrap(),
            pieces: vec![
                ("DP1".into(), "application/pdf", PDF.to_vec()),
                ("DP4".into(), "application/pdf", PDF.to_vec()),
                ("DP7".into(), "image/jpeg", JPEG.to_vec()),
            ],
        }
    }

    /// The same deposit as another envelope (another dossier identifier).
    fn with_identifiant(mut self, identifiant: &str) -> Self {
        self.document["identifiant"] = json!(identifiant);
        self
    }

    fn without_piece(mut self, code: &str) -> Self {
        self.pieces.retain(|(c, _, _)| c != code);
        let list = self.document["pieces"].as_array_mut().unwrap();
        list.retain(|p| p["code"] != code);
        self
    }

    /// `{commune}-{type_dossier}-{12 hex of SHA-256(identifiant)}`.
    fn dossier(&self) -> String {
        let identifiant = self.document["identifiant"].as_str().unwrap();
        format!(
            "{}-{}-{}",
            self.document["commune"].as_str().unwrap(),
            self.document["type_dossier"].as_str().unwrap(),
            &hex(&Sha256::digest(identifiant.as_bytes()))[..12]
        )
    }

    /// The package's files in order: dossier.json, dossier.xml, the pièces, then
    /// manifest.json listing the others.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let dossier = self.dossier();
        let mut document = self.document.clone();
        document["format"] = json!("aiguillage/urbanisme-dossier");
        document["version"] = json!(1);
        document["dossier"] = json!(dossier);
        let commune = document["terrain"]["commune_insee"]
            .as_str()
            .unwrap()
            .to_owned();
        for parcelle in document["terrain"]["parcelles"].as_array_mut().unwrap() {
            let reference = format!(
                "{commune}{:0>3}{:0>2}{:04}",
                parcelle["prefixe"].as_str().unwrap(),
                parcelle["section"].as_str().unwrap(),
                parcelle["numero"].as_u64().unwrap_or(0)
            );
            parcelle["reference"] = json!(reference);
        }
        let mut pieces_files = Vec::new();
        for piece in document["pieces"].as_array_mut().unwrap() {
            let code = piece["code"].as_str().unwrap().to_owned();
            let (_, media, bytes) = self
                .pieces
                .iter()
                .find(|(c, _, _)| *c == code)
                .expect("a file for every pièce");
            let extension = match *media {
                "application/pdf" => "pdf",
                "image/jpeg" => "jpg",
                _ => "png",
            };
            let chemin = format!("pieces/{code}.{extension}");
            piece["chemin"] = json!(chemin);
            piece["type_media"] = json!(media);
            piece["taille"] = json!(bytes.len());
            piece["sha512"] = json!(hex(&Sha512::digest(bytes)));
            pieces_files.push((chemin, bytes.clone()));
        }
        let mut files = vec![
            (
                "dossier.json".to_owned(),
                serde_json::to_vec_pretty(&document).unwrap(),
            ),
            (
                "dossier.xml".to_owned(),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dossier xmlns=\"urn:aiguillage:urbanisme:dossier:1\">\n  <identifiant>{}</identifiant>\n  <dossier>{dossier}</dossier>\n</dossier>\n",
                    self.document["identifiant"].as_str().unwrap()
                )
                .into_bytes(),
            ),
        ];
        files.extend(pieces_files);
        let manifest = manifest(&dossier, &self.document["identifiant"], &files);
        files.push(("manifest.json".to_owned(), manifest));
        files
    }

    fn zip(&self) -> Vec<u8> {
        zip_of(&self.files())
    }
}

fn manifest(dossier: &str, identifiant: &Value, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let fichiers: Vec<Value> = files
        .iter()
        .map(|(chemin, bytes)| {
            let media = match chemin.rsplit('.').next() {
                Some("json") => "application/json",
                Some("xml") => "application/xml",
                Some("pdf") => "application/pdf",
                Some("jpg") => "image/jpeg",
                _ => "image/png",
            };
            json!({
                "chemin": chemin,
                "taille": bytes.len(),
                "type_media": media,
                "sha512": hex(&Sha512::digest(bytes)),
            })
        })
        .collect();
    serde_json::to_vec_pretty(&json!({
        "format": "aiguillage/urbanisme-dossier",
        "version": 1,
        "dossier": dossier,
        "identifiant": identifiant,
        "fichiers": fichiers,
    }))
    .unwrap()
}

/// A zip as the spec makes it: every entry STORED, dated the deposit date, in order.
fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::from_date_and_time(2026, 11, 27, 14, 31, 9).unwrap());
    for (name, bytes) in files {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Drops a file as the connector does: hidden temporary name, then renamed.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let temporary = dir.join(format!(".{name}.x1y2.tmp"));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, dir.join(name)).unwrap();
}

/// The answers once there are `count`, failing after 20 s.
async fn answers(sim: &AdsSim, count: usize) -> Vec<Reponse> {
    let answers = sim.wait_for(count, Duration::from_secs(20)).await;
    assert!(
        answers.len() >= count,
        "{} answers, expected {count}: {answers:#?}",
        answers.len()
    );
    answers
}

fn assert_motif(answer: &Reponse, expected: &str) {
    assert!(!answer.accepted, "accepted: {answer:#?}");
    assert!(
        answer.motifs.iter().any(|m| m.contains(expected)),
        "no motif containing {expected:?} in {:#?}",
        answer.motifs
    );
}

#[tokio::test]
async fn a_complete_dp_is_registered_with_a_national_number() {
    let dir = tempfile::tempdir().unwrap();
    let sim = AdsSim::start(dir.path(), None);
    let deposit = Deposit::dp();
    let dossier = deposit.dossier();
    drop_file(dir.path(), &format!("{dossier}.zip"), &deposit.zip());

    let answer = answers(&sim, 1).await.remove(0);
    assert!(answer.accepted, "{answer:#?}");
    assert_eq!(answer.dossier, dossier);
    assert_eq!(answer.numero.as_deref(), Some("DP 044 043 26 00001"));
    assert!(is_registration_number("DP 044 043 26 00001"));
    let file = sim.answer_file(&dossier).expect("ACCEPTE_ answer");
    assert_eq!(file["dossier"], dossier.as_str());
    assert_eq!(file["numero_enregistrement"], "DP 044 043 26 00001");
    let recu_le = file["recu_le"].as_str().unwrap();
    time::OffsetDateTime::parse(recu_le, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|error| panic!("recu_le {recu_le}: {error}"));
    assert!(sim
        .reponses
        .join(format!("ACCEPTE_{dossier}.json"))
        .is_file());
    assert!(
        !dir.path().join(format!("{dossier}.zip")).exists(),
        "the package is set aside once answered"
    );
    assert_eq!(
        (sim.received(), sim.accepted().len(), sim.duplicates()),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_package_a_service_cannot_trust_is_rejected_with_every_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sim = AdsSim::start(dir.path(), None);

    // A pièce changed after the manifest was made.
    let tampered = Deposit::dp().with_identifiant("t:depot-declaration-prealable:1");
    let mut files = tampered.files();
    let at = files
        .iter()
        .position(|(p, _)| p == "pieces/DP4.pdf")
        .unwrap();
    files[at].1 = b"%PDF-1.4 another drawing\n".to_vec();
    drop_file(
        dir.path(),
        &format!("{}.zip", tampered.dossier()),
        &zip_of(&files),
    );

    // DP1, the plan de situation, missing (manifest and dossier.json agree without it).
    let incomplete = Deposit::dp()
        .with_identifiant("t:depot-declaration-prealable:2")
        .without_piece("DP1");
    drop_file(
        dir.path(),
        &format!("{}.zip", incomplete.dossier()),
        &incomplete.zip(),
    );

    // A file slipped in that the manifest does not list.
    let extra = Deposit::dp().with_identifiant("t:depot-declaration-prealable:3");
    let mut files = extra.files();
    let manifest = files.pop().unwrap();
    files.push(("pieces/DP8.jpg".to_owned(), JPEG.to_vec()));
    files.push(manifest);
    drop_file(
        dir.path(),
        &format!("{}.zip", extra.dossier()),
        &zip_of(&files),
    );

    // A parcel whose section is not a cadastral section, and a number out of range.
    let mut parcel = Deposit::dp().with_identifiant("t:depot-declaration-prealable:4");
    parcel.document["terrain"]["parcelles"][0]["section"] = json!("A-");
    parcel.document["terrain"]["parcelles"][0]["numero"] = json!(12345);
    drop_file(
        dir.path(),
        &format!("{}.zip", parcel.dossier()),
        &parcel.zip(),
    );

    let all = answers(&sim, 4).await;
    let of = |deposit: &Deposit| {
        all.iter()
            .find(|a| a.dossier == deposit.dossier())
            .unwrap_or_else(|| panic!("no answer for {}: {all:#?}", deposit.dossier()))
    };
    assert_motif(
        of(&tampered),
        "hash de pieces/DP4.pdf différent du manifeste",
    );
    assert_motif(
        of(&tampered),
        "taille de pieces/DP4.pdf différente du manifeste",
    );
    assert_eq!(
        of(&incomplete).motifs,
        ["pièce DP1 manquante (plan de situation du terrain)"]
    );
    assert_motif(
        of(&extra),
        "pieces/DP8.jpg présent dans le paquet mais absent du manifeste",
    );
    assert_motif(of(&parcel), "parcelle 1 : section \"A-\" mal formée");
    assert_motif(of(&parcel), "parcelle 1 : numéro 12345 hors de 1 à 9999");
    for deposit in [&tampered, &incomplete, &extra, &parcel] {
        let file = sim.answer_file(&deposit.dossier()).expect("REJET_ answer");
        assert!(sim
            .reponses
            .join(format!("REJET_{}.json", deposit.dossier()))
            .is_file());
        assert_eq!(file["motifs"], json!(of(deposit).motifs));
    }
    assert_eq!((sim.received(), sim.accepted().len()), (4, 0));
}

#[tokio::test]
async fn a_dossier_received_twice_is_registered_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = AdsSim::start(dir.path(), None);
    let deposit = Deposit::dp();
    let name = format!("{}.zip", deposit.dossier());
    drop_file(dir.path(), &name, &deposit.zip());
    answers(&sim, 1).await;
    // Dropped again after the first was taken in (a redelivery).
    drop_file(dir.path(), &name, &deposit.zip());
    let other = Deposit::dp().with_identifiant("t:depot-declaration-prealable:9");
    drop_file(
        dir.path(),
        &format!("{}.zip", other.dossier()),
        &other.zip(),
    );

    let all = answers(&sim, 3).await;
    let numbers: Vec<_> = all.iter().map(|a| a.numero.clone().unwrap()).collect();
    assert_eq!(numbers[0], "DP 044 043 26 00001");
    let again = all.iter().find(|a| a.duplicate).expect("a duplicate");
    assert_eq!(again.dossier, deposit.dossier());
    assert_eq!(again.numero.as_deref(), Some("DP 044 043 26 00001"));
    let next = all.iter().find(|a| a.dossier == other.dossier()).unwrap();
    assert_eq!(next.numero.as_deref(), Some("DP 044 043 26 00002"));
    assert_eq!(sim.received(), 3);
    assert_eq!(sim.accepted().len(), 2);
    assert_eq!(sim.duplicates(), 1);
}

#[tokio::test]
async fn a_directory_package_waits_for_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let sim = AdsSim::start(dir.path(), None);
    let deposit = Deposit::dp();
    let package = dir.path().join(deposit.dossier());
    std::fs::create_dir_all(package.join("pieces")).unwrap();
    let files = deposit.files();
    let (manifest, others) = files.split_last().unwrap();
    for (path, bytes) in others {
        std::fs::write(package.join(path), bytes).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sim.received(),
        0,
        "a directory without manifest.json is incomplete"
    );

    let temporary = package.join(".manifest.json.x1y2.tmp");
    std::fs::write(&temporary, &manifest.1).unwrap();
    std::fs::rename(&temporary, package.join("manifest.json")).unwrap();
    let answer = answers(&sim, 1).await.remove(0);
    assert!(answer.accepted, "{answer:#?}");
    assert_eq!(answer.source, format!("inbox/{}", deposit.dossier()));
    assert_eq!(answer.numero.as_deref(), Some("DP 044 043 26 00001"));
}

/// A raw message as an SMTP server spools it: text part and the package as base64.
fn message_with(dossier: &str, zip: Option<&[u8]>) -> Vec<u8> {
    let mut message = format!(
        "Return-Path: <aiguillage@agglo.example>\r\nFrom: Aiguillage <aiguillage@agglo.example>\r\nTo: ads@agglo.example\r\nSubject: =?utf-8?q?D=C3=A9p=C3=B4t_DP_{dossier}_=E2=80=94_Clisson?=\r\nMessage-ID: <{dossier}@aiguillage>\r\nDate: Fri, 27 Nov 2026 14:31:10 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"limite\"\r\n\r\n--limite\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDéclaration préalable déposée le 27/11/2026.\r\n"
    );
    if let Some(zip) = zip {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(zip);
        message.push_str(&format!(
            "--limite\r\nContent-Type: application/zip; name=\"{dossier}.zip\"\r\nContent-Disposition: attachment; filename=\"{dossier}.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        for line in encoded.as_bytes().chunks(76) {
            message.push_str(std::str::from_utf8(line).unwrap());
            message.push_str("\r\n");
        }
    }
    message.push_str("--limite--\r\n");
    message.into_bytes()
}

#[tokio::test]
async fn a_package_attached_to_an_email_is_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, spool) = (dir.path().join("inbox"), dir.path().join("spool"));
    let sim = AdsSim::start(&inbox, Some(&spool));
    let deposit = Deposit::dp();
    let dossier = deposit.dossier();
    // The summary of a package too large to attach comes without one: set aside.
    drop_file(&spool, "1-summary.eml", &message_with(&dossier, None));
    drop_file(
        &spool,
        "2-package.eml",
        &message_with(&dossier, Some(&deposit.zip())),
    );

    let answer = answers(&sim, 1).await.remove(0);
    assert!(answer.accepted, "{answer:#?}");
    assert_eq!(answer.source, "mail/2-package.eml");
    assert_eq!(answer.dossier, dossier);
    assert!(sim
        .reponses
        .join(format!("ACCEPTE_{dossier}.json"))
        .is_file());
    assert_eq!(sim.ignored(), ["mail/1-summary.eml"]);
    assert!(
        !spool.join("2-package.eml").exists(),
        "the message is set aside"
    );
}

#[tokio::test]
async fn garbage_is_rejected_without_stopping_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let sim = AdsSim::start(dir.path(), None);
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    drop_file(dir.path(), "random.zip", &random);

    let deposit = Deposit::dp();
    let mut files = deposit.files();
    files.insert(0, ("../evil.pdf".to_owned(), PDF.to_vec()));
    drop_file(dir.path(), "traversal.zip", &zip_of(&files));

    let many: Vec<(String, Vec<u8>)> = (0..=MAX_ENTRIES)
        .map(|i| (format!("pieces/X{i}.pdf"), Vec::new()))
        .collect();
    drop_file(dir.path(), "bomb.zip", &zip_of(&many));
    drop_file(dir.path(), "empty.zip", b"");

    let all = answers(&sim, 4).await;
    let of = |name: &str| all.iter().find(|a| a.dossier == name).unwrap();
    assert_motif(of("random"), "n'est pas une archive zip lisible");
    assert_motif(
        of("traversal"),
        "entrée « ../evil.pdf » : chemin hors du paquet",
    );
    assert!(!dir.path().parent().unwrap().join("evil.pdf").exists());
    assert_motif(of("bomb"), &format!("plus de {MAX_ENTRIES}"));
    assert_motif(of("empty"), "n'est pas une archive zip lisible");

    // Still at work.
    drop_file(
        dir.path(),
        &format!("{}.zip", deposit.dossier()),
        &deposit.zip(),
    );
    let all = answers(&sim, 5).await;
    assert!(all[4].accepted, "{:#?}", all[4]);
}

#[tokio::test]
async fn the_numbering_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Deposit::dp();
    {
        let sim = AdsSim::start(dir.path(), None);
        drop_file(
            dir.path(),
            &format!("{}.zip", first.dossier()),
            &first.zip(),
        );
        let answer = answers(&sim, 1).await.remove(0);
        assert_eq!(answer.numero.as_deref(), Some("DP 044 043 26 00001"));
    }
    let sim = AdsSim::start(dir.path(), None);
    let second = Deposit::dp().with_identifiant("t:depot-declaration-prealable:2");
    drop_file(
        dir.path(),
        &format!("{}.zip", second.dossier()),
        &second.zip(),
    );
    assert_eq!(
        answers(&sim, 1).await[0].numero.as_deref(),
        Some("DP 044 043 26 00002")
    );
    drop_file(
        dir.path(),
        &format!("{}.zip", first.dossier()),
        &first.zip(),
    );
    let again = answers(&sim, 2).await.remove(1);
    assert!(again.duplicate, "{again:#?}");
    assert_eq!(again.numero.as_deref(), Some("DP 044 043 26 00001"));
}
