//! The instruction-service (service ADS) simulator as a program, for a demo or a
//! docker-compose service: `ads-sim INBOX [MAIL_SPOOL]` takes the urbanisme dossier
//! packages dropped in INBOX (`<dossier>.zip`, or `<dossier>/` once its manifest.json is
//! there) and, if given, the `.eml` messages of MAIL_SPOOL (their `.zip` attachments),
//! checks each and answers in INBOX/reponses (`ACCEPTE_<dossier>.json` with a registration
//! number, or `REJET_<dossier>.json` with the reasons), until interrupted. Its state (the
//! numbers given) is in INBOX/.ads-sim.

use std::path::PathBuf;

use aiguillage_tests::ads_sim::AdsSim;
use clap::Parser;

/// Simulates an instruction service (service ADS): checks the urbanisme dossier packages
/// dropped in INBOX (and the .zip attachments of the .eml messages of MAIL_SPOOL) and
/// answers in INBOX/reponses (ACCEPTE_<dossier>.json or REJET_<dossier>.json), until
/// interrupted (Ctrl-C). Its state is in INBOX/.ads-sim.
#[derive(Debug, Parser)]
#[command(name = "ads-sim", version)]
struct Args {
    /// Where the gateway's urbanisme connector drops the packages.
    inbox: PathBuf,
    /// A mail spool of .eml messages (the connector's e-mail delivery), if any.
    mail_spool: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Args {
        inbox,
        mail_spool: spool,
    } = Args::parse();
    let sim = AdsSim::start(&inbox, spool.as_deref());
    eprintln!(
        "ads-sim: taking dossier packages from {}{} (answers in {})",
        inbox.display(),
        spool
            .as_ref()
            .map(|spool| format!(" and the messages of {}", spool.display()))
            .unwrap_or_default(),
        sim.reponses.display()
    );
    sim.report_until_interrupted().await;
    Ok(())
}
