//! The Cityweb import simulator as a program, for a demo or a docker-compose service:
//! `cityweb-sim IMPORT_DIR OUT_DIR` watches IMPORT_DIR, validates each file against the
//! Cityweb schema (`CITYWEB_XSD`, else the repository's `schemas/cityweb/etatcivil.xsd`), moves it to OUT_DIR/done or OUT_DIR/error and logs to OUT_DIR/import.log,
//! until interrupted.

use std::path::PathBuf;
use std::time::Duration;

use aiguillage_tests::cityweb_sim::CitywebSim;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(import), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: cityweb-sim IMPORT_DIR OUT_DIR");
    };
    let (import, out) = (PathBuf::from(import), PathBuf::from(out));
    let sim = CitywebSim::start(&import, &out);
    eprintln!(
        "cityweb-sim: importing from {} into {}/done and {}/error (log: {})",
        import.display(),
        out.display(),
        out.display(),
        sim.log_file.display()
    );
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let imported = sim.imported();
        for file in &imported[seen..] {
            if file.accepted {
                eprintln!("done {}", file.file);
            } else {
                eprintln!("error {}: {}", file.file, file.error);
            }
        }
        seen = imported.len();
    }
    Ok(())
}
