//! The finance-software import simulator as a program, for a demo or a docker-compose
//! service: `pes-sim IMPORT_DIR` watches IMPORT_DIR, checks each PES V2 file as Hélios's
//! acceptance would (schema `PES_XSD`, else the repository's
//! `schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd`; sums, counts, numbering, encoding) and writes `ACK_<file>` or
//! `NACK_<file>` next to it, until interrupted. Its state is in IMPORT_DIR/.pes-sim.

use std::path::PathBuf;

use aiguillage_tests::pes_sim::PesSim;
use clap::Parser;

/// Simulates a finance software's PES V2 import (Hélios's acceptance): checks each file
/// dropped in IMPORT_DIR (schema PES_XSD, else schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd;
/// sums, counts, numbering, encoding) and writes ACK_<file> or NACK_<file> beside it,
/// until interrupted (Ctrl-C). Its state is in IMPORT_DIR/.pes-sim.
#[derive(Debug, Parser)]
#[command(name = "pes-sim", version)]
struct Args {
    /// The import directory the gateway's facturation connector writes into.
    import_dir: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Args { import_dir: import } = Args::parse();
    let sim = PesSim::start(&import);
    eprintln!(
        "pes-sim: importing PES files from {} (answers ACK_/NACK_ beside them)",
        import.display()
    );
    sim.report_until_interrupted().await;
    Ok(())
}
