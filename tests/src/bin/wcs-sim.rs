//! The w.c.s. simulator as a program, for a demo or a docker-compose service.
//!
//! - `wcs-sim serve LISTEN CALLER_ORIG CALLER_KEY`: receives the gateway's signed trigger
//!   calls (`/api/forms/<form>/<number>/jump/trigger/<trigger>/`) and prints each one;
//! - `wcs-sim send INTAKE_URL ORIG KEY FORM NUMBER COMMUNE`: sends one démarche to the
//!   intake as a w.c.s. webhook action does, and prints the answer.

use std::time::Duration;

use aiguillage_tests::wcs_sim::WcsSim;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["serve", listen, orig, key] => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            let sim = WcsSim::serve(listener, "unused", "unused", orig, key);
            sim.accept_unknown();
            eprintln!("wcs-sim: trigger calls signed as `{orig}` accepted on {}", sim.base_url());
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
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
            }
            Ok(())
        }
        ["send", intake, orig, key, form, number, commune] => {
            let sim = WcsSim::serve(
                tokio::net::TcpListener::bind("127.0.0.1:0").await?,
                orig,
                key,
                "unused",
                "unused",
            );
            let number: u64 = number.parse()?;
            let (status, _, answer) = sim
                .send_webhook(intake, &sim.formdata(form, number, commune))
                .await;
            println!("{status} {answer}");
            anyhow::ensure!(status == 202, "the intake did not accept the démarche");
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: wcs-sim serve LISTEN CALLER_ORIG CALLER_KEY | wcs-sim send INTAKE_URL ORIG KEY FORM NUMBER COMMUNE"
        ),
    }
}
