//! The finance-software simulator rejects what Hélios would: a file invalid against the PES
//! V2 schema, a bordereau whose total or count is wrong, a titre number twice in a
//! bordereau, a bordereau number already received (also after the simulator restarts), a
//! declared encoding that the bytes do not honour, an empty file, a reference to a piece
//! justificative the file does not carry. It accepts the DGFiP's
//! example and answers each file with an `ACK_`/`NACK_` acquittement beside it.

use std::path::Path;
use std::time::Duration;

use aiguillage_tests::pes_sim::{read_answer, values_of, Acquit, PesSim};

/// The hand-written valid example of the schema bundle (UTF-8, bordereau 42, titre 318,
/// one line of 87.50).
fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/pes-v2/examples/titre-ordinaire.xml");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Drops a file as a connector does: hidden temporary name, then renamed.
fn drop_file(import: &Path, name: &str, bytes: &[u8]) {
    let temporary = import.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, import.join(name)).unwrap();
}

async fn answer_of(sim: &PesSim, file: &str) -> Acquit {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(answer) = sim.answers().into_iter().find(|a| a.file == file) {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer to {file}: {:#?}",
            sim.answers()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example with its one `Piece` twice, numbered `first` and `second`; `NbrPce` and
/// `MtBordHt` as given.
fn two_pieces(first: &str, second: &str, nbr_pce: &str, total: &str) -> String {
    let xml = example();
    let start = xml.find("      <Piece>").unwrap();
    let end = xml.find("      </Piece>").unwrap() + "      </Piece>\n".len();
    let piece = &xml[start..end];
    let pieces = format!(
        "{}{}",
        piece.replace("<IdPce V=\"318\"/>", &format!("<IdPce V=\"{first}\"/>")),
        piece.replace("<IdPce V=\"318\"/>", &format!("<IdPce V=\"{second}\"/>"))
    );
    format!("{}{pieces}{}", &xml[..start], &xml[end..])
        .replace("<NbrPce V=\"1\"/>", &format!("<NbrPce V=\"{nbr_pce}\"/>"))
        .replace(
            "<MtBordHt V=\"87.50\"/>",
            &format!("<MtBordHt V=\"{total}\"/>"),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_accepts_a_valid_flow_and_rejects_what_helios_would() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    let sim = PesSim::start(&import);

    // Accepted: the DGFiP example, and two titres whose lines add up.
    drop_file(&import, "a-valid.xml", example().as_bytes());
    let valid = answer_of(&sim, "a-valid.xml").await;
    assert!(valid.accepted, "{valid:#?}");
    assert_eq!(valid.bordereaux, [(2025, 42, 1)]);
    let ack = read_answer(&import.join("ACK_a-valid.xml"));
    assert!(ack.starts_with("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
    assert_eq!(values_of(&ack, "NomFic"), ["a-valid.xml"]);
    assert_eq!(values_of(&ack, "EtatAck"), ["1"]);
    assert_eq!(values_of(&ack, "NumBord"), ["42"]);
    assert_eq!(values_of(&ack, "IdColl"), ["21490999900017"]);
    let two = two_pieces("318", "319", "2", "175.00").replace("\"42\"", "\"43\"");
    drop_file(&import, "b-two-titres.xml", two.as_bytes());
    let answer = answer_of(&sim, "b-two-titres.xml").await;
    assert!(answer.accepted, "{answer:#?}");
    assert_eq!(answer.bordereaux, [(2025, 43, 2)]);

    // Rejected, each with the DGFiP's anomaly code.
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "c-bad-sum.xml",
            example()
                .replace("<MtBordHt V=\"87.50\"/>", "<MtBordHt V=\"90.00\"/>")
                .replace("\"42\"", "\"44\"")
                .into_bytes(),
            "ERREUR_CUMUL_MONTANTS",
            "MtBordHt is 90.00 but its lines add up to 87.50",
        ),
        (
            "d-same-bordereau.xml",
            example().into_bytes(),
            "ERREUR_DOUBLON_BORDEREAU",
            "bordereau 42 of 2025: IdBord already received for IdColl 21490999900017 CodBud 00 in a-valid.xml",
        ),
        (
            "e-schema.xml",
            example()
                .replace("<MtHT V=\"87.50\"/>", "<MtHT V=\"87,50\"/>")
                .into_bytes(),
            "ERREUR_SCHEMA_INCOMPLET",
            "MtHT",
        ),
        (
            "f-count.xml",
            example()
                .replace("<NbrPce V=\"1\"/>", "<NbrPce V=\"2\"/>")
                .replace("\"42\"", "\"45\"")
                .into_bytes(),
            "ERREUR_AUTRE",
            "NbrPce is 2 but the bordereau holds 1 pieces",
        ),
        (
            "g-same-titre.xml",
            two_pieces("318", "318", "2", "175.00")
                .replace("\"42\"", "\"46\"")
                .into_bytes(),
            "ERREUR_DOUBLON_PIECE",
            "IdPce 318 appears twice",
        ),
        (
            "h-utf8-declared-latin1.xml",
            example()
                .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
                .replace("SAINT-EXEMPLE\"/>\n    <IdColl", "SAINT-ÉXEMPLE\"/>\n    <IdColl")
                .into_bytes(),
            "ERREUR_ENCODING",
            "UTF-8 bytes",
        ),
        (
            "i-latin1-declared-utf8.xml",
            example()
                .replace("<Nom V=\"DURAND\"/>", "<Nom V=\"DUR\u{e9}\"/>")
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap())
                .collect(),
            "ERREUR_ENCODING",
            "declared UTF-8",
        ),
        ("j-empty.xml", Vec::new(), "ERREUR_FLUX_VIDE", "empty"),
        (
            "ja-pjref-without-pj.xml",
            example()
                .replace(
                    "<ObjPce V=\"RESTAURATION SCOLAIRE MARS 2025\"/>",
                    "<ObjPce V=\"RESTAURATION SCOLAIRE MARS 2025\"/><PJRef><Support V=\"01\"/><IdUnique V=\"FACTURE318\"/></PJRef>",
                )
                .replace("\"42\"", "\"47\"")
                .into_bytes(),
            "ERREUR_PJ",
            "PJRef IdUnique FACTURE318",
        ),
    ];
    for (name, bytes, _, _) in &cases {
        drop_file(&import, name, bytes);
    }
    for (name, _, code, reason) in &cases {
        let answer = answer_of(&sim, name).await;
        assert!(!answer.accepted, "{name} accepted: {answer:#?}");
        assert_eq!(
            answer.anomaly.as_deref(),
            Some(*code),
            "{name}: {answer:#?}"
        );
        assert!(answer.reason.contains(reason), "{name}: {}", answer.reason);
        let nack = read_answer(&import.join(format!("NACK_{name}")));
        assert_eq!(values_of(&nack, "NomFic"), [*name]);
        assert_eq!(values_of(&nack, "EtatAck"), ["0"]);
        assert_eq!(values_of(&nack, "NumAnoAck"), [*code]);
        assert!(!import.join(format!("ACK_{name}")).exists());
    }
    // A rejected file counts for nothing: its bordereau number is still free.
    drop_file(
        &import,
        "k-bordereau-44-again.xml",
        example().replace("\"42\"", "\"44\"").as_bytes(),
    );
    assert!(answer_of(&sim, "k-bordereau-44-again.xml").await.accepted);
    // Another budget has its own series.
    drop_file(
        &import,
        "l-other-budget.xml",
        example()
            .replace("<CodBud V=\"00\"/>", "<CodBud V=\"01\"/>")
            .as_bytes(),
    );
    assert!(answer_of(&sim, "l-other-budget.xml").await.accepted);
    assert_eq!(sim.answers().len(), 13, "each file answered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_simulator_still_refuses_a_bordereau_number_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    {
        let sim = PesSim::start(&import);
        drop_file(&import, "first.xml", example().as_bytes());
        assert!(answer_of(&sim, "first.xml").await.accepted);
    }
    let sim = PesSim::start(&import);
    drop_file(&import, "second.xml", example().as_bytes());
    let second = answer_of(&sim, "second.xml").await;
    assert_eq!(
        second.anomaly.as_deref(),
        Some("ERREUR_DOUBLON_BORDEREAU"),
        "{second:#?}"
    );
    assert!(second.reason.contains("first.xml"), "{}", second.reason);
    drop_file(
        &import,
        "third.xml",
        example().replace("\"42\"", "\"43\"").as_bytes(),
    );
    assert!(answer_of(&sim, "third.xml").await.accepted);
    // The file answered before the restart is not read again.
    let answered: Vec<String> = sim.answers().into_iter().map(|a| a.file).collect();
    assert_eq!(answered, ["second.xml", "third.xml"]);
}
