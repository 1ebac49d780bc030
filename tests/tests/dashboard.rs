//! The operator's face of a running gateway, end to end on the real RabbitMQ: the JSON admin
//! API (search, dead letters, replay, discard), its authentication and the dashboard's CSRF
//! tokens, and the dashboard itself in a real headless Chromium, where an operator logs
//! in, clicks "Renvoyer" on a dead letter and sees the démarche delivered.

use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::webdriver::Browser;
use aiguillage_tests::{count_status, envelope, gateway_bin, Scenario, StoreKind};
use serde_json::{json, Value};

const CLISSON: &str = "44043";
const TOKEN: &str = "0123456789abcdef0123";

/// A scenario whose connector fails at once into the dead letters while the target is
/// down (one attempt, no breaker), with the admin token set.
async fn scenario_with_a_switch(target: &RestTarget, store: StoreKind) -> Scenario {
    let mut scenario = Scenario::new(store).await;
    scenario
        .rest("etat-civil", &target.url("switch/etat-civil"), "reference_pointer = \"/numero\"\nretry = { max_attempts = 1 }\nbreaker = { failures = 0 }")
        .route(CLISSON, &["demande-acte-*"], "etat-civil")
        .admin_key(&format!("token = \"{TOKEN}\""));
    scenario
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// An admin server request: the status and the body.
async fn call(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("the admin server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn get_json(base: &str, path: &str) -> Value {
    let (status, body) = call(client().get(format!("{base}{path}")).bearer_auth(TOKEN)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
}

async fn post_json(base: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = call(
        client()
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body),
    )
    .await;
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {path} is not JSON ({e}): {text}"));
    (status, value)
}

/// Runs `aiguillage <args…> --config <the scenario's configuration>`.
async fn cli(scenario: &Scenario, args: &[&str]) -> std::process::Output {
    scenario.cli(gateway_bin!(), args, &[]).await
}

/// The CSRF token of a dashboard page.
fn csrf_of(page: &str) -> String {
    let marker = "data-csrf=\"";
    let start = page.find(marker).expect("the page has its CSRF token") + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_needs_the_token_and_every_form_its_csrf_token() {
    let target = RestTarget::start().await;
    let scenario = scenario_with_a_switch(&target, StoreKind::Sqlite).await;
    let running = scenario.start().await;
    let base = format!("http://{}", running.admin_addr().unwrap());
    let http = client();

    let gets = [
        "/readyz",
        "/metrics",
        "/api/deliveries?q=x",
        "/api/overview",
        "/api/dead-letters",
        "/",
        "/search?q=x",
    ];
    let posts = [
        "/api/dead-letters/replay",
        "/api/dead-letters/discard",
        "/dead-letters/replay",
        "/dead-letters/discard",
        "/logout",
    ];
    for path in gets {
        let url = format!("{base}{path}");
        assert_eq!(
            call(http.get(&url)).await.0,
            401,
            "GET {path} without token"
        );
        assert_eq!(
            call(http.get(&url).bearer_auth("0123456789abcdef0124"))
                .await
                .0,
            401,
            "GET {path} with a wrong token"
        );
        assert_eq!(
            call(http.get(&url).header("cookie", "aiguillage_session=forged"))
                .await
                .0,
            401,
            "GET {path} with a forged session"
        );
        assert_eq!(
            call(http.get(&url).bearer_auth(TOKEN)).await.0,
            200,
            "GET {path} with the token"
        );
    }
    for path in posts {
        let url = format!("{base}{path}");
        assert_eq!(
            call(http.post(&url).json(&json!({"all": true}))).await.0,
            401,
            "POST {path} without token"
        );
    }
    assert_eq!(call(http.get(format!("{base}/healthz"))).await.0, 200);
    // A browser without a session gets the login form, with its 401.
    let (status, page) = call(http.get(format!("{base}/"))).await;
    assert_eq!(status, 401);
    assert!(page.contains("name=\"token\""), "{page}");

    // The dashboard's forms need the CSRF token of the page, even with the bearer token.
    let form = [("connector", "etat-civil"), ("id", "nothing-here")];
    let replay = format!("{base}/dead-letters/replay");
    assert_eq!(
        call(http.post(&replay).bearer_auth(TOKEN).form(&form))
            .await
            .0,
        403,
        "no CSRF token"
    );
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "0000"));
    assert_eq!(
        call(http.post(&replay).bearer_auth(TOKEN).form(&wrong))
            .await
            .0,
        403,
        "a wrong CSRF token"
    );
    let (_, page) = call(http.get(format!("{base}/")).bearer_auth(TOKEN)).await;
    let server_csrf = csrf_of(&page);
    let mut right = form.to_vec();
    right.push(("csrf", &server_csrf));
    let (status, _) = call(http.post(&replay).bearer_auth(TOKEN).form(&right)).await;
    assert_eq!(status, 303, "the page's CSRF token is accepted");

    // Logging in: a wrong token is refused, the right one opens an HttpOnly session.
    let login = format!("{base}/login");
    assert_eq!(
        call(
            http.post(&login)
                .form(&[("token", "wrong-token-wrong-token")])
        )
        .await
        .0,
        401
    );
    let response = http
        .post(&login)
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (status, page) = call(http.get(format!("{base}/")).header("cookie", &cookie)).await;
    assert_eq!(status, 200, "the session opens the dashboard");
    let session_csrf = csrf_of(&page);
    assert_ne!(
        session_csrf, server_csrf,
        "each session has its own CSRF token"
    );
    // With the session, only the session's CSRF token is accepted.
    let (status, _) = call(http.post(&replay).header("cookie", &cookie).form(&form)).await;
    assert_eq!(status, 403);
    let (status, _) = call(http.post(&replay).header("cookie", &cookie).form(&right)).await;
    assert_eq!(status, 403, "another page's CSRF token is refused");
    let mut with_session = form.to_vec();
    with_session.push(("csrf", &session_csrf));
    let (status, _) = call(
        http.post(&replay)
            .header("cookie", &cookie)
            .form(&with_session),
    )
    .await;
    assert_eq!(status, 303);
    // Logging out closes the session.
    let (status, _) = call(
        http.post(format!("{base}/logout"))
            .header("cookie", &cookie)
            .form(&[("csrf", session_csrf.as_str())]),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        call(
            http.get(format!("{base}/api/overview"))
                .header("cookie", &cookie)
        )
        .await
        .0,
        401
    );

    scenario.finish(running).await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_dashboard_is_open_on_loopback_but_its_forms_still_need_the_csrf_token()
{
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .rest("etat-civil", &target.url("accept/etat-civil"), "")
        .route(CLISSON, &["demande-acte-*"], "etat-civil");
    let running = scenario.start().await;
    let base = format!("http://{}", running.admin_addr().unwrap());
    let http = client();

    let (status, page) = call(http.get(format!("{base}/"))).await;
    assert_eq!(status, 200);
    assert!(page.contains("Aucune lettre morte"), "{page}");
    // No sign-in form to show: /login leads to the dashboard.
    assert_eq!(call(http.get(format!("{base}/login"))).await.0, 303);
    // A page of another site posting to the local dashboard lacks the page's token.
    let replay = format!("{base}/dead-letters/replay");
    let form = [("connector", "etat-civil"), ("id", "nothing-here")];
    assert_eq!(call(http.post(&replay).form(&form)).await.0, 403);
    let mut with_token = form.to_vec();
    let csrf = csrf_of(&page);
    with_token.push(("csrf", &csrf));
    assert_eq!(call(http.post(&replay).form(&with_token)).await.0, 303);

    scenario.finish(running).await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_finds_a_demarche_by_number_and_replays_or_discards_its_dead_letter() {
    let target = RestTarget::start().await;
    target.set_failing(true);
    let scenario = scenario_with_a_switch(&target, StoreKind::Postgres).await;
    let (mut events, running) = scenario.launch().await;
    let base = format!("http://{}", running.admin_addr().unwrap());

    let first = envelope(&scenario.prefix, CLISSON, "demande-acte-naissance", 1);
    let second = envelope(&scenario.prefix, CLISSON, "demande-acte-deces", 2);
    let (first_id, second_id) = (
        first["id"].as_str().unwrap().to_owned(),
        second["id"].as_str().unwrap().to_owned(),
    );
    scenario.publish(&[first, second]).await;
    events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "dead") >= 2
        })
        .await;
    let dead_queue = scenario.bus().dead_queue("etat-civil");
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 2, Duration::from_secs(10))
            .await
    );

    // By number (display_id), the whole history.
    let found = get_json(&base, "/api/deliveries?q=12-1").await;
    let deliveries = found["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{found}");
    let delivery = &deliveries[0];
    assert_eq!(delivery["envelope_id"], first_id.as_str());
    assert_eq!(delivery["display_id"], "12-1");
    assert_eq!(delivery["connector"], "etat-civil");
    assert_eq!(delivery["status"], "dead");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["errors"].as_array().unwrap().len(), 1);
    assert!(
        delivery["last_error"].as_str().unwrap().contains("503"),
        "{delivery}"
    );
    // By envelope id, the same.
    let by_id = get_json(&base, &format!("/api/deliveries?q={first_id}")).await;
    assert_eq!(by_id["deliveries"], found["deliveries"]);
    let nothing = get_json(&base, "/api/deliveries?q=12-999").await;
    assert_eq!(nothing["deliveries"], json!([]));
    let (status, _) = call(
        client()
            .get(format!("{base}/api/deliveries"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 400, "a search needs something to look for");

    // The dead letters, left in place by listing them.
    let listed = get_json(&base, "/api/dead-letters?connector=etat-civil").await;
    let mut ids: Vec<&str> = listed["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = [first_id.as_str(), second_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    // Left in place: back in the queue's count once the broker has taken them back (the
    // listing held them unacknowledged for an instant).
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 2, Duration::from_secs(10))
            .await,
        "listing the dead letters took them out of their queue"
    );
    let (status, body) = call(
        client()
            .get(format!("{base}/api/dead-letters?connector=cityweb"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("connecteur `cityweb` inconnu"), "{body}");

    // The same rules as `aiguillage dead`: a selection is required, and a reason to discard.
    let (status, answer) = post_json(&base, "/api/dead-letters/replay", json!({})).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("--all"),
        "{answer}"
    );
    let (status, answer) = post_json(
        &base,
        "/api/dead-letters/discard",
        json!({ "id": second_id }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("reason"),
        "{answer}"
    );
    // JSON only: a form posted by another site's page is refused.
    let (status, _) = call(
        client()
            .post(format!("{base}/api/dead-letters/replay"))
            .bearer_auth(TOKEN)
            .form(&[("all", "true")]),
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 2, Duration::from_secs(10))
            .await,
        "a refused request took dead letters out of their queue"
    );

    // Replay the first once the target is back: delivered, its history kept.
    target.set_failing(false);
    let (status, report) =
        post_json(&base, "/api/dead-letters/replay", json!({ "id": first_id })).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["done"][0]["id"], first_id.as_str());
    events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") >= 1
        })
        .await;
    let found = get_json(&base, "/api/deliveries?q=12-1").await;
    let delivery = &found["deliveries"][0];
    assert_eq!(delivery["status"], "delivered", "{found}");
    assert!(delivery["reference"].as_str().unwrap().starts_with("REF-"));
    assert_eq!(
        delivery["errors"].as_array().unwrap().len(),
        1,
        "the failure before the replay stays in the history"
    );

    // Discard the second, with the reason and who. (The replay read it too and handed it
    // back when it closed its channel: a quorum queue counts it again a moment later, and a
    // dead-letter operation only reads what the queue counts when it starts.)
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 1, Duration::from_secs(10))
            .await
    );
    let (status, report) = post_json(
        &base,
        "/api/dead-letters/discard",
        json!({ "id": second_id, "reason": "doublon de la 12-1", "by": "mlebreton" }),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"].as_array().unwrap().len(), 1, "{report}");
    let found = get_json(&base, "/api/deliveries?q=12-2").await;
    let discards = &found["deliveries"][0]["discards"];
    assert_eq!(
        discards,
        &json!([{ "reason": "doublon de la 12-1", "by": "mlebreton", "at": discards[0]["at"] }])
    );
    let listed = get_json(&base, "/api/dead-letters").await;
    assert_eq!(listed["dead_letters"], json!([]));
    assert_eq!(scenario.queue_depth(&dead_queue).await, 0);

    // `aiguillage history` reads the same function: the same answer as the API.
    for term in ["12-1", "12-2"] {
        let output = cli(&scenario, &["history", term, "--json"]).await;
        assert!(output.status.success(), "{output:?}");
        let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(
            printed,
            get_json(&base, &format!("/api/deliveries?q={term}")).await
        );
    }
    let output = cli(&scenario, &["history", &first_id]).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("(n° 12-1) → etat-civil : livrée après 1 tentative, référence REF-"),
        "{text}"
    );
    assert!(text.contains("tentative 1 échouée : "), "{text}");
    let output = cli(&scenario, &["history", "12-999"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "nothing found is an error for a script"
    );

    // The overview counts what happened today.
    let overview = get_json(&base, "/api/overview").await;
    let line = &overview["lines"][0];
    assert_eq!(line["commune"], CLISSON);
    assert_eq!(line["connector"], "etat-civil");
    assert_eq!(line["delivered_today"], 1, "{overview}");
    assert_eq!(line["failed_today"], 1, "{overview}");
    assert!(line["last_success"].is_string());
    assert_eq!(line["last_errors"].as_array().unwrap().len(), 2);
    assert_eq!(target.effect_count(), 1);

    scenario.finish(running).await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_replays_a_dead_letter_from_the_dashboard_in_a_real_browser() {
    let target = RestTarget::start().await;
    target.set_failing(true);
    let scenario = scenario_with_a_switch(&target, StoreKind::Sqlite).await;
    let (mut events, running) = scenario.launch().await;
    let base = format!("http://{}", running.admin_addr().unwrap());

    let demarche = envelope(&scenario.prefix, CLISSON, "demande-acte-naissance", 7);
    let id = demarche["id"].as_str().unwrap().to_owned();
    scenario.publish(&[demarche]).await;
    events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "dead") >= 1
        })
        .await;
    let dead_queue = scenario.bus().dead_queue("etat-civil");
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 1, Duration::from_secs(10))
            .await
    );
    // The commune's software is back.
    target.set_failing(false);

    let browser = Browser::start().await;
    // The token is configured: the browser is asked to log in.
    browser.goto(&format!("{base}/")).await;
    let token = browser.element("#token").await;
    browser.type_into(&token, TOKEN).await;
    browser.click(&browser.element("#login").await).await;

    // The dashboard: Clisson's line says what went wrong, in French, and counts the dead letter.
    let line = browser
        .wait_for_text(
            "tr[data-commune=\"44043\"][data-connector=\"etat-civil\"]",
            Duration::from_secs(10),
        )
        .await;
    assert!(line.contains("en panne ou en maintenance"), "{line}");
    assert!(line.contains("503"), "{line}");
    let row = format!("#dead-letters tr[data-id=\"{id}\"]");
    let letter = browser.text(&row).await;
    assert!(
        letter.contains("abandonnée après plusieurs essais"),
        "{letter}"
    );

    browser
        .click(&browser.element(&format!("{row} button.replay")).await)
        .await;
    let notice = browser
        .wait_for_text("#notice", Duration::from_secs(10))
        .await;
    assert!(
        notice.contains(&id) && notice.contains("renvoyée"),
        "{notice}"
    );

    // The démarche is delivered, and its page says so with the software's reference.
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") >= 1
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 1);
    let search = browser.element("#search").await;
    browser.type_into(&search, "12-7").await;
    browser
        .click(&browser.element("#search-button").await)
        .await;
    let mut section = String::new();
    for _ in 0..50 {
        section = browser
            .text("section.delivery[data-status=\"delivered\"]")
            .await;
        if !section.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.goto(&format!("{base}/search?q=12-7")).await;
    }
    assert!(section.contains("livrée"), "{section}");
    assert!(section.contains("REF-"), "{section}");
    assert!(section.contains("essai 1 en échec"), "{section}");

    // Back on the dashboard: no dead letter left.
    browser.goto(&format!("{base}/")).await;
    assert!(browser.find("#no-dead-letters").await.is_some());
    assert_eq!(scenario.queue_depth(&dead_queue).await, 0);
    assert_eq!(target.effect_count(), 1);

    browser.quit().await;
    scenario.finish(running).await;
    target.stop().await;
}
