//! The w.c.s. simulator as a program, for a demo or a docker-compose service.
//!
//! - `wcs-sim serve LISTEN CALLER_ORIG CALLER_KEY`: receives the gateway's signed trigger
//!   calls (`/api/forms/<form>/<number>/jump/trigger/<trigger>/`) and prints each one;
//! - `wcs-sim send INTAKE_URL ORIG KEY FORM NUMBER COMMUNE`: sends one démarche to the
//!   intake as a w.c.s. webhook action does, and prints the answer.

use aiguillage_tests::import_sim::until_interrupted;
use aiguillage_tests::wcs_sim::WcsSim;
use clap::{Parser, Subcommand};

/// Simulates w.c.s., Publik's form engine: receives the gateway's signed trigger calls, or
/// sends one démarche to the gateway's intake as a webhook action does.
#[derive(Debug, Parser)]
#[command(name = "wcs-sim", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive the gateway's signed trigger calls and print each one, until Ctrl-C.
    Serve {
        /// Address to listen on (e.g. 127.0.0.1:8090).
        listen: String,
        /// The `orig` the gateway signs its calls with.
        caller_orig: String,
        /// The key the gateway signs its calls with.
        caller_key: String,
    },
    /// Send one démarche to the intake and print the answer (exit 1 unless accepted).
    Send {
        /// The gateway's intake URL.
        intake_url: String,
        /// The `orig` to sign with.
        orig: String,
        /// The key to sign with.
        key: String,
        /// The form slug.
        form: String,
        /// The démarche's number.
        number: u64,
        /// The commune (INSEE code).
        commune: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Serve {
            listen,
            caller_orig: orig,
            caller_key: key,
        } => {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            let sim = WcsSim::serve(listener, "unused", "unused", &orig, &key);
            sim.accept_unknown();
            eprintln!(
                "wcs-sim: trigger calls signed as `{orig}` accepted on {}",
                sim.base_url()
            );
            let mut seen = 0;
            until_interrupted(|| {
                let calls = sim.calls();
                for call in &calls[seen..] {
                    println!(
                        "trigger {} on {}/{}: {}",
                        call.trigger, call.form, call.number, call.body
                    );
                }
                seen = calls.len();
                for reason in sim.refused() {
                    eprintln!("refused: {reason}");
                }
            })
            .await;
            Ok(())
        }
        Command::Send {
            intake_url: intake,
            orig,
            key,
            form,
            number,
            commune,
        } => {
            let sim = WcsSim::serve(
                tokio::net::TcpListener::bind("127.0.0.1:0").await?,
                &orig,
                &key,
                "unused",
                "unused",
            );
            let (status, _, answer) = sim
                .send_webhook(&intake, &sim.formdata(&form, number, &commune))
                .await;
            println!("{status} {answer}");
            anyhow::ensure!(status == 202, "the intake did not accept the démarche");
            Ok(())
        }
    }
}
