//! The Cityweb import simulator as a program, for a demo or a docker-compose service:
//! `cityweb-sim IMPORT_DIR OUT_DIR` watches IMPORT_DIR, validates each file against the
//! Cityweb schema (`CITYWEB_XSD`, else the repository's `schemas/cityweb/etatcivil.xsd`), moves it to OUT_DIR/done or OUT_DIR/error and logs to OUT_DIR/import.log,
//! until interrupted.

use std::path::PathBuf;

use aiguillage_tests::cityweb_sim::CitywebSim;
use clap::Parser;

/// Simulates an état-civil software's Cityweb import: watches IMPORT_DIR, validates each
/// file against the Cityweb schema (CITYWEB_XSD, else schemas/cityweb/etatcivil.xsd),
/// moves it to OUT_DIR/done or OUT_DIR/error and logs to OUT_DIR/import.log, until
/// interrupted (Ctrl-C).
#[derive(Debug, Parser)]
#[command(name = "cityweb-sim", version)]
struct Args {
    /// The import directory the gateway's état-civil connector writes into.
    import_dir: PathBuf,
    /// Where imported files go (done/, error/, import.log).
    out_dir: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Args {
        import_dir: import,
        out_dir: out,
    } = Args::parse();
    let sim = CitywebSim::start(&import, &out);
    eprintln!(
        "cityweb-sim: importing from {} into {}/done and {}/error (log: {})",
        import.display(),
        out.display(),
        out.display(),
        sim.log_file.display()
    );
    sim.report_until_interrupted().await;
    Ok(())
}
