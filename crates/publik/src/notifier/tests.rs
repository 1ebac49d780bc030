use super::*;

#[test]
fn the_trigger_url_is_the_wcs_api_of_the_demarche() {
    let base = url::Url::parse("https://demarches.example.invalid/").unwrap();
    assert_eq!(
        trigger_url(&base, "demande-acte-naissance", "42", &Trigger::jump("transmis-logiciel-metier")),
        "https://demarches.example.invalid/api/forms/demande-acte-naissance/42/jump/trigger/transmis-logiciel-metier/"
    );
    let base = url::Url::parse("https://x.invalid/wcs").unwrap();
    assert_eq!(
        trigger_url(&base, "f", "1 2", &Trigger::jump("a/b")),
        "https://x.invalid/wcs/api/forms/f/1%202/jump/trigger/a%2Fb/"
    );
    assert_eq!(
        trigger_url(&base, "f", "7", &Trigger::hook("refus")),
        "https://x.invalid/wcs/api/forms/f/7/hooks/refus/",
        "a global action's trigger works whatever the status"
    );
}

#[test]
fn only_the_processing_403_is_tried_again() {
    let url = "https://p.invalid/api/forms/f/1/jump/trigger/t/";
    assert!(matches!(
        classify(403, "Formdata currently processing actions.", url),
        Answer::Later(_)
    ));
    for refusal in [
        "Unsufficient roles.",
        "Insufficient roles.",
        "invalid signature",
        "",
    ] {
        match classify(403, refusal, url) {
            Answer::Refused(reason) => assert!(reason.contains(refusal), "{reason}"),
            other => panic!("{refusal}: {other:?}"),
        }
    }
    assert!(matches!(classify(404, "", url), Answer::NotFound(_)));
    assert!(matches!(classify(503, "", url), Answer::Later(_)));
    assert!(matches!(classify(429, "", url), Answer::Later(_)));
    assert!(matches!(classify(400, "", url), Answer::Refused(_)));
    assert_eq!(classify(200, "", url), Answer::Taken);
}
