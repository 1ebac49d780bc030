//! The finance-software import simulator as a program, for a demo or a docker-compose
//! service: `pes-sim IMPORT_DIR` watches IMPORT_DIR, checks each PES V2 file as Hélios's
//! acceptance would (schema `PES_XSD`, else the repository's
//! `schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd`; sums, counts, numbering, encoding) and writes `ACK_<file>` or
//! `NACK_<file>` next to it, until interrupted. Its state is in IMPORT_DIR/.pes-sim.

use std::path::PathBuf;
use std::time::Duration;

use aiguillage_tests::pes_sim::PesSim;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(import) = args.next() else {
        anyhow::bail!("usage: pes-sim IMPORT_DIR");
    };
    let import = PathBuf::from(import);
    let sim = PesSim::start(&import);
    eprintln!(
        "pes-sim: importing PES files from {} (answers ACK_/NACK_ beside them)",
        import.display()
    );
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let answers = sim.answers();
        for answer in &answers[seen..] {
            if answer.accepted {
                eprintln!("accepted {} ({:?})", answer.file, answer.bordereaux);
            } else {
                eprintln!(
                    "rejected {}: {} {}",
                    answer.file,
                    answer.anomaly.as_deref().unwrap_or(""),
                    answer.reason
                );
            }
        }
        seen = answers.len();
    }
    Ok(())
}
