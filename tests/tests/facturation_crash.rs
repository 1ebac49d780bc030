//! Totals and numbering of the facturation connector over thousands of random bills, with
//! the gateway's real store (SQLite) and crashes at random instants: after the bordereau
//! number is durable, after both numbers are, after the file is written but before the
//! outcome is recorded. After each crash the store is closed and reopened and a new
//! connector takes over the same directory, as a restarted gateway would; every démarche
//! not recorded as delivered is delivered again. In the end every bill is exactly one
//! schema-valid file; per exercice `IdBord` and `IdPce` are 1, 2, … with none reused and
//! none missing (a crash after numbering keeps the numbers for the retry); each file's
//! `MtBordHt` is its bill's total and `NbrPce` is 1.
//!
//! Grouped (`grouping = { titres = N }`), the same with crashes after the titre number,
//! after the hold (the message not acknowledged) and inside the flush (after the file,
//! before the batch is marked written): every titre in exactly one bordereau, bordereau
//! numbers 1, 2, … per exercice, each `MtBordHt` the sum of its titres' bills.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aiguillage_connector::holding::{FlushContext, Holding};
use aiguillage_connector::numbering::Numbering;
use aiguillage_connector::{async_trait, Connector, ConnectorError, Context, Setup};
use aiguillage_connector_facturation::{Cents, Grouping, PesConfig, PesConnector};
use aiguillage_gateway::pipeline::holding::StoreHolding;
use aiguillage_gateway::pipeline::numbering::StoreNumbering;
use aiguillage_gateway::store::Store;
use aiguillage_tests::pes_sim::values_of;
use aiguillage_tests::xmllint::Schema;
use proptest::prelude::*;
use serde_json::{json, Value};

const SIRET: &str = "21440043800005";

/// Where a delivery crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    None,
    /// After the bordereau number is committed, before the titre number.
    AfterBordereauNumber,
    /// After both numbers are committed, before the file.
    AfterTitreNumber,
    /// After the file is written, before the gateway records the outcome.
    AfterFile,
}

/// The store's numbering, dying (as the process would) after `numbers_left` numbers.
#[derive(Debug)]
struct Dying {
    inner: StoreNumbering,
    numbers_left: AtomicU32,
}

#[async_trait]
impl Numbering for Dying {
    async fn number(&self, sequence: &str, owner: &str) -> Result<u64, ConnectorError> {
        let number = self.inner.number(sequence, owner).await?;
        if self.numbers_left.load(Ordering::SeqCst) == 0 {
            return Err(ConnectorError::transient("simulated crash"));
        }
        self.numbers_left.fetch_sub(1, Ordering::SeqCst);
        Ok(number)
    }
}

/// A gateway's parts that a crash loses: the store connection and the connector.
struct Gateway {
    store: Store,
    connector: PesConnector,
}

async fn start(store_url: &str, import: &Path) -> Gateway {
    let store = Store::open(store_url, 2).await.expect("the store");
    let connector = PesConnector::new(
        PesConfig::new(import, SIRET, "043", "00", "044012"),
        &Setup::new("clisson-finances", "/"),
    )
    .expect("the connector");
    Gateway { store, connector }
}

fn bill() -> impl Strategy<Value = (Value, u64)> {
    (
        prop::collection::vec(1u64..=5_000_000, 1..4),
        "[A-Z][A-Za-zÀ-ÿ' -]{0,20}",
        prop::sample::select(vec![2025u16, 2026]),
        1u8..=12,
        1u8..=28,
    )
        .prop_map(|(lines, nom, year, month, day)| {
            let total = lines.iter().sum();
            let lignes: Vec<Value> = lines
                .iter()
                .map(|&c| {
                    json!({"libelle": "Prestation", "quantite": "1", "prix_unitaire": Cents(c).to_string(), "montant_ht": Cents(c).to_string()})
                })
                .collect();
            let doc = json!({
                "reference": "",
                "service": "cantine",
                "objet": "Restauration scolaire",
                "date_emission": format!("{year:04}-{month:02}-{day:02}"),
                "imputation": {"nature": "7067", "code_produit": "CANT"},
                "debiteur": {
                    "civilite": "MME", "nom": nom, "prenom": "CLAIRE",
                    "adresse": {"ligne": "1 RUE DE NANTES", "code_postal": "44190", "ville": "CLISSON"}
                },
                "lignes": lignes
            });
            (doc, total)
        })
}

fn crash() -> impl Strategy<Value = Crash> {
    prop_oneof![
        6 => Just(Crash::None),
        1 => Just(Crash::AfterBordereauNumber),
        1 => Just(Crash::AfterTitreNumber),
        1 => Just(Crash::AfterFile),
    ]
}

/// Delivers every bill, crashing where told, restarting after each crash, until every
/// one is recorded as delivered. Returns the directory's PES files.
async fn run(bills: &[(Value, u64, Crash)], store_url: &str, import: &Path) -> Vec<PathBuf> {
    let mut gateway = start(store_url, import).await;
    // What the gateway's store records as delivered (it survives a crash).
    let mut delivered: HashSet<String> = HashSet::new();
    let mut crashed = vec![false; bills.len()];
    while delivered.len() < bills.len() {
        for (index, (doc, _, crash)) in bills.iter().enumerate() {
            let id = doc["reference"].as_str().unwrap().to_owned();
            if delivered.contains(&id) {
                continue;
            }
            // A démarche crashes once; its redelivery after the restart goes through.
            let crash = if crashed[index] { Crash::None } else { *crash };
            let numbers_left = match crash {
                Crash::AfterBordereauNumber => 0,
                Crash::AfterTitreNumber => 1,
                _ => u32::MAX,
            };
            let numbering = Arc::new(Dying {
                inner: StoreNumbering::new(gateway.store.clone()),
                numbers_left: AtomicU32::new(numbers_left),
            });
            let ctx = Context::new(&id, "44043", "inscription-cantine", "clisson-finances")
                .with_attempt(if crashed[index] { 2 } else { 1 })
                .with_numbering(numbering);
            let result = gateway.connector.deliver(doc, &ctx).await;
            match (crash, result) {
                (Crash::None, Ok(_)) => {
                    delivered.insert(id);
                }
                (Crash::AfterFile, Ok(_))
                | (Crash::AfterBordereauNumber | Crash::AfterTitreNumber, Err(_)) => {
                    crashed[index] = true;
                    // The process dies: store connection and connector gone; a new
                    // gateway starts on the same database and directory.
                    gateway.store.close().await;
                    gateway = start(store_url, import).await;
                }
                (crash, result) => panic!("{id}: {crash:?} gave {result:?}"),
            }
        }
    }
    gateway.store.close().await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(import)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// A run's place (a temporary directory with the import folder `pes/` and an SQLite
/// store) and its bills, each with the reference the portal gives it.
#[allow(clippy::type_complexity)]
fn prepare(
    bills: Vec<((Value, u64), Crash)>,
) -> (tempfile::TempDir, PathBuf, String, Vec<(Value, u64, Crash)>) {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("pes");
    std::fs::create_dir_all(&import).unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let bills = bills
        .into_iter()
        .enumerate()
        .map(|(n, ((mut doc, total), crash))| {
            doc["reference"] = json!(format!("portail:inscription-cantine:{n}"));
            (doc, total, crash)
        })
        .collect();
    (dir, import, store_url, bills)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..ProptestConfig::default() })]

    /// 5 runs of 400 to 500 bills: about 2,250 bills, a third of which crash once (6:1:1:1).
    #[test]
    fn numbering_and_totals_hold_over_random_bills_and_crashes(
        bills in prop::collection::vec((bill(), crash()), 400..=500)
    ) {
        let (_dir, import, store_url, bills) = prepare(bills);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let files = runtime.block_on(run(&bills, &store_url, &import));

        prop_assert_eq!(files.len(), bills.len(), "one file per bill, whatever the crashes");
        let linted = Schema::PesAller.validate(&files);
        prop_assert!(linted.is_ok(), "{:?}", linted);

        let totals: BTreeMap<String, u64> = bills
            .iter()
            .map(|(doc, total, _)| (doc["reference"].as_str().unwrap().to_owned(), *total))
            .collect();
        // Per exercice: the bordereau and titre numbers seen.
        let mut numbers: BTreeMap<String, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
        let mut sum = 0u64;
        for file in &files {
            let xml: String = std::fs::read(file).unwrap().iter().map(|&b| char::from(b)).collect();
            let exer = values_of(&xml, "Exer").remove(0);
            let entry = numbers.entry(exer).or_default();
            entry.0.push(values_of(&xml, "IdBord")[0].parse().unwrap());
            entry.1.push(values_of(&xml, "IdPce")[0].parse().unwrap());
            prop_assert_eq!(values_of(&xml, "NbrPce"), ["1"]);
            let mt: u64 = values_of(&xml, "MtBordHt")[0].replace('.', "").parse().unwrap();
            // The file's name carries the envelope id (`:` made safe): find its bill.
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let number = name
                .rsplit("inscription-cantine_")
                .next()
                .and_then(|rest| rest.split(['-', '.']).next())
                .unwrap();
            let expected = totals[&format!("portail:inscription-cantine:{number}")];
            prop_assert_eq!(mt, expected, "{}", name);
            sum += mt;
        }
        prop_assert_eq!(sum, totals.values().sum::<u64>());
        for (exer, (mut bordereaux, mut titres)) in numbers {
            bordereaux.sort_unstable();
            titres.sort_unstable();
            let expected: Vec<u64> = (1..=bordereaux.len() as u64).collect();
            prop_assert_eq!(&bordereaux, &expected, "IdBord of {}", exer);
            prop_assert_eq!(&titres, &expected, "IdPce of {}", exer);
        }
    }
}

async fn start_grouped(store_url: &str, import: &Path, grouping: Grouping) -> Gateway {
    let store = Store::open(store_url, 2).await.expect("the store");
    let connector = PesConnector::new(
        PesConfig::new(import, SIRET, "043", "00", "044012").with_grouping(grouping),
        &Setup::new("clisson-finances", "/"),
    )
    .expect("the connector");
    Gateway { store, connector }
}

/// Flushes; with `crash`, dies after the files are written, before anything is marked.
async fn flush(gateway: &Gateway, crash: bool) {
    // The restarted gateway is the same instance: it takes its leases back.
    let holding = Arc::new(StoreHolding::for_instance(
        gateway.store.clone(),
        "clisson-finances",
        "the-gateway",
    ));
    let ctx = FlushContext::new(
        "clisson-finances",
        holding.clone(),
        Arc::new(StoreNumbering::new(gateway.store.clone())),
    );
    let batches = gateway
        .connector
        .batching()
        .expect("a grouping connector batches")
        .flush(&ctx)
        .await
        .expect("flush");
    if !crash {
        for batch in batches {
            holding.written(&batch.batch).await.unwrap();
        }
    }
}

/// Holds every bill (crashing where told), flushing every `flush_every` bills (crashing
/// the flush when told), then drains what is held. Returns the PES files.
async fn run_grouped(
    bills: &[(Value, u64, Crash)],
    flushes: &[bool],
    titres: u32,
    store_url: &str,
    import: &Path,
) -> Vec<PathBuf> {
    let grouping = Grouping::titres(titres);
    let mut gateway = start_grouped(store_url, import, grouping.clone()).await;
    let mut acked: HashSet<String> = HashSet::new();
    let mut crashed = vec![false; bills.len()];
    let mut flush_number = 0;
    while acked.len() < bills.len() {
        for (index, (doc, _, crash)) in bills.iter().enumerate() {
            let id = doc["reference"].as_str().unwrap().to_owned();
            if acked.contains(&id) {
                continue;
            }
            let crash = if crashed[index] { Crash::None } else { *crash };
            let numbering = Arc::new(Dying {
                inner: StoreNumbering::new(gateway.store.clone()),
                numbers_left: AtomicU32::new(match crash {
                    Crash::AfterBordereauNumber | Crash::AfterTitreNumber => 0,
                    _ => u32::MAX,
                }),
            });
            let holding = Arc::new(StoreHolding::new(gateway.store.clone(), "clisson-finances"));
            let ctx = Context::new(&id, "44043", "inscription-cantine", "clisson-finances")
                .with_numbering(numbering)
                .with_holding(holding);
            let result = gateway.connector.deliver(doc, &ctx).await;
            match (crash, result) {
                (Crash::None, Ok(receipt)) => {
                    assert!(receipt.held);
                    acked.insert(id);
                }
                (Crash::AfterFile, Ok(_))
                | (Crash::AfterBordereauNumber | Crash::AfterTitreNumber, Err(_)) => {
                    crashed[index] = true;
                    gateway.store.close().await;
                    gateway = start_grouped(store_url, import, grouping.clone()).await;
                }
                (crash, result) => panic!("{id}: {crash:?} gave {result:?}"),
            }
            if index % 37 == 0 {
                let crash_flush = flushes[flush_number % flushes.len()];
                flush_number += 1;
                flush(&gateway, crash_flush).await;
                if crash_flush {
                    gateway.store.close().await;
                    gateway = start_grouped(store_url, import, grouping.clone()).await;
                }
            }
        }
    }
    // The last bordereaux, not full: written once their titres waited long enough.
    gateway.store.close().await;
    let mut drain = grouping;
    drain.max_wait = Some(std::time::Duration::ZERO);
    let gateway = start_grouped(store_url, import, drain).await;
    flush(&gateway, false).await;
    let holding = StoreHolding::new(gateway.store.clone(), "clisson-finances");
    assert!(
        holding.pending().await.unwrap().is_empty(),
        "everything written"
    );
    gateway.store.close().await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(import)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// 4 runs of 250 to 350 grouped bills, bordereaux of 1 to 20 titres.
    #[test]
    fn grouped_numbering_and_totals_hold_over_random_bills_and_crashes(
        bills in prop::collection::vec((bill(), crash()), 250..=350),
        flushes in prop::collection::vec(prop::bool::weighted(0.3), 1..8),
        titres in 1u32..=20,
    ) {
        let (_dir, import, store_url, bills) = prepare(bills);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let files = runtime.block_on(run_grouped(&bills, &flushes, titres, &store_url, &import));

        let linted = Schema::PesAller.validate(&files);
        prop_assert!(linted.is_ok(), "{:?}", linted);

        // Each bill's titre number, as the store gave it.
        let (titre_of, totals) = runtime.block_on(async {
            let store = Store::open(&store_url, 1).await.unwrap();
            let mut titre_of = BTreeMap::new();
            let mut totals = BTreeMap::new();
            for (doc, total, _) in &bills {
                let exer = &doc["date_emission"].as_str().unwrap()[..4];
                let owner = doc["reference"].as_str().unwrap();
                let id_pce = store
                    .number(&format!("pes/titre/{SIRET}/00/{exer}"), owner)
                    .await
                    .unwrap();
                titre_of.insert(owner.to_owned(), (exer.to_owned(), id_pce));
                totals.insert((exer.to_owned(), id_pce), *total);
            }
            store.close().await;
            (titre_of, totals)
        });
        prop_assert_eq!(titre_of.len(), bills.len());
        let mut seen: BTreeMap<(String, u64), usize> = BTreeMap::new();
        let mut bordereaux: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for file in &files {
            let xml: String = std::fs::read(file).unwrap().iter().map(|&b| char::from(b)).collect();
            let exer = values_of(&xml, "Exer").remove(0);
            bordereaux.entry(exer.clone()).or_default().push(values_of(&xml, "IdBord")[0].parse().unwrap());
            let pieces: Vec<u64> = values_of(&xml, "IdPce").iter().map(|v| v.parse().unwrap()).collect();
            prop_assert!(pieces.len() <= titres as usize);
            prop_assert_eq!(values_of(&xml, "NbrPce"), [pieces.len().to_string()]);
            let mt: u64 = values_of(&xml, "MtBordHt")[0].replace('.', "").parse().unwrap();
            let mut expected = 0;
            for id_pce in pieces {
                *seen.entry((exer.clone(), id_pce)).or_default() += 1;
                expected += totals.get(&(exer.clone(), id_pce)).copied().unwrap_or(0);
            }
            prop_assert_eq!(mt, expected, "{}", file.display());
        }
        prop_assert_eq!(seen.len(), bills.len(), "every titre written");
        prop_assert!(seen.values().all(|&n| n == 1), "a titre in two bordereaux");
        for (exer, mut numbers) in bordereaux {
            numbers.sort_unstable();
            let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
            prop_assert_eq!(&numbers, &expected, "IdBord of {}", exer);
        }
    }
}
