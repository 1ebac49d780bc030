//! Publik's signed URLs: the gateway's signer and verifier against vectors computed
//! independently by Python's standard library (`tests/publik/wcs_signature.py`, which
//! follows w.c.s.'s `api_utils.py`), and one test per refusal.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aiguillage_publik::signature::{Algo, SignatureError, Signer, Verifier};
use secrecy::SecretString;
use time::macros::datetime;
use time::OffsetDateTime;

const KEY: &str = "8b1f0c2e-clé-partagée-with-the-portal";
const ORIG: &str = "demarches.clisson-sevre-maine.invalid";
const AT: OffsetDateTime = datetime!(2026-11-28 09:12:00 UTC);
const AT_TEXT: &str = "2026-11-28T09:12:00Z";

/// Runs the Python reference (python3 must be on the machine, as on CI).
fn python(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/publik/wcs_signature.py");
    let output = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs the reference signer (install python3)");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim_end()
        .to_owned()
}

fn python_sign(key: &str, query: &str, orig: &str, algo: &str, nonce: &str) -> String {
    python(&["sign", key, query, orig, algo, AT_TEXT, nonce])
}

fn verifier() -> Verifier {
    Verifier::new(
        HashMap::from([(ORIG.to_owned(), SecretString::from(KEY.to_owned()))]),
        Duration::from_secs(30),
        1000,
    )
}

fn key() -> SecretString {
    SecretString::from(KEY.to_owned())
}

#[test]
fn queries_signed_by_python_are_accepted() {
    let verifier = verifier();
    // Queries with what a w.c.s. webhook URL may carry: nothing, plain parameters, spaces,
    // accents, reserved characters; sha256 (Publik's) and sha512.
    let cases = [
        ("", "sha256"),
        ("format=json", "sha256"),
        (
            "email=camille.durand%40example.invalid&NameID=a1b2c3",
            "sha256",
        ),
        ("nom=Fran%C3%A7oise+L%27H%C3%B4te&x=a%2Fb%3Dc", "sha256"),
        ("format=json", "sha512"),
    ];
    for (n, (query, algo)) in cases.iter().enumerate() {
        let nonce = format!("{:032x}", 0xfeed_0000_u64 + n as u64);
        let signed = python_sign(KEY, query, ORIG, algo, &nonce);
        let verified = verifier
            .check_at(&signed, AT + Duration::from_secs(3))
            .unwrap_or_else(|error| panic!("{signed}: {error}"));
        assert_eq!(verified.orig, ORIG);
        assert_eq!(verified.nonce, nonce);
    }
}

#[test]
fn the_gateway_signs_byte_for_byte_as_python_does_and_python_accepts_it() {
    let key = key();
    for (query, orig, algo) in [
        ("", Some(ORIG), Algo::Sha256),
        (
            "format=json&email=a%40b.invalid",
            Some("aiguillage"),
            Algo::Sha256,
        ),
        ("a=1", None, Algo::Sha256),
        ("a=1", Some("aiguillage"), Algo::Sha512),
    ] {
        let signer = Signer {
            orig,
            key: &key,
            algo,
        };
        let ours = signer.sign_query_at(query, AT, "0123456789abcdef");
        let theirs = python_sign(
            KEY,
            query,
            orig.unwrap_or(""),
            algo.name(),
            "0123456789abcdef",
        );
        assert_eq!(ours, theirs, "parameter order, encoding or HMAC differ");
        assert_eq!(python(&["check", KEY, &ours]), "valid");
        assert_eq!(python(&["check", "another key", &ours]), "invalid");
    }
    // A signature with `+`, `/` or `=` in its base64 is quoted as Python quotes it.
    let signed = Signer {
        orig: Some(ORIG),
        key: &key,
        algo: Algo::Sha256,
    }
    .sign_query_at("", AT, "n");
    assert!(signed.ends_with("%3D"), "{signed}");
}

#[test]
fn a_wrong_key_is_refused() {
    let signed = python_sign("not the shared key", "format=json", ORIG, "sha256", "n1");
    assert_eq!(
        verifier().check_at(&signed, AT),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn an_altered_query_is_refused() {
    let signed = python_sign(KEY, "email=camille%40example.invalid", ORIG, "sha256", "n2");
    for altered in [
        signed.replace("camille", "dominique"),
        format!("x=1&{signed}"),
        signed.replace("nonce=n2", "nonce=n3"),
        signed.replace(
            "timestamp=2026-11-28T09%3A12%3A00Z",
            "timestamp=2026-11-28T09%3A12%3A01Z",
        ),
    ] {
        assert_eq!(
            verifier().check_at(&altered, AT),
            Err(SignatureError::Mismatch),
            "{altered}"
        );
    }
    // A parameter slipped after the signature is refused too.
    assert_eq!(
        verifier().check_at(&format!("{signed}&email=x"), AT),
        Err(SignatureError::SignatureNotLast)
    );
}

#[test]
fn an_expired_timestamp_is_refused() {
    let signed = python_sign(KEY, "", ORIG, "sha256", "n4");
    assert!(verifier()
        .check_at(&signed, AT + Duration::from_secs(30))
        .is_ok());
    assert_eq!(
        verifier().check_at(&signed, AT + Duration::from_secs(31)),
        Err(SignatureError::Expired {
            late: 31,
            window: 30
        })
    );
}

#[test]
fn a_timestamp_from_the_future_is_refused() {
    let signed = python_sign(KEY, "", ORIG, "sha256", "n5");
    assert!(verifier()
        .check_at(&signed, AT - Duration::from_secs(30))
        .is_ok());
    assert_eq!(
        verifier().check_at(&signed, AT - Duration::from_secs(31)),
        Err(SignatureError::Future {
            early: 31,
            window: 30
        })
    );
}

#[test]
fn a_replayed_nonce_is_refused() {
    let verifier = verifier();
    let signed = python_sign(KEY, "", ORIG, "sha256", "n6");
    assert!(verifier.check_at(&signed, AT).is_ok());
    assert_eq!(
        verifier.check_at(&signed, AT + Duration::from_secs(1)),
        Err(SignatureError::Replayed)
    );
    // The same nonce in another, validly signed query is a replay as well.
    let other = python_sign(KEY, "format=json", ORIG, "sha256", "n6");
    assert_eq!(
        verifier.check_at(&other, AT + Duration::from_secs(2)),
        Err(SignatureError::Replayed)
    );
}

#[test]
fn a_missing_parameter_is_refused() {
    let at = AT_TEXT.replace(':', "%3A");
    // Each parameter left out (the signature's value does not matter: absence is checked first).
    for (query, missing) in [
        (format!("algo=sha256&timestamp={at}&nonce=n7"), "orig"),
        (format!("orig={ORIG}&timestamp={at}&nonce=n7"), "algo"),
        (format!("orig={ORIG}&algo=sha256&nonce=n7"), "timestamp"),
        (format!("orig={ORIG}&algo=sha256&timestamp={at}"), "nonce"),
        (
            format!("orig={ORIG}&algo=sha256&timestamp={at}&nonce="),
            "nonce",
        ),
    ] {
        let signed = format!("{query}&signature=AAAA");
        assert_eq!(
            verifier().check_at(&signed, AT),
            Err(SignatureError::Missing(missing)),
            "{signed}"
        );
    }
    let unsigned = format!("orig={ORIG}&algo=sha256&timestamp={at}&nonce=n7");
    assert_eq!(
        verifier().check_at(&unsigned, AT),
        Err(SignatureError::Missing("signature"))
    );
    assert_eq!(
        verifier().check_at("", AT),
        Err(SignatureError::Missing("signature"))
    );
}

#[test]
fn an_unknown_orig_is_refused() {
    let signed = python_sign(KEY, "", "someone-else.invalid", "sha256", "n8");
    assert_eq!(
        verifier().check_at(&signed, AT),
        Err(SignatureError::UnknownOrig("someone-else.invalid".into()))
    );
}

#[test]
fn an_unsupported_algo_and_a_malformed_timestamp_are_refused() {
    let signed = python_sign(KEY, "", ORIG, "md5", "n9");
    assert_eq!(
        verifier().check_at(&signed, AT),
        Err(SignatureError::UnsupportedAlgo("md5".into()))
    );
    let signed = python(&["sign", KEY, "", ORIG, "sha256", "28/11/2026 10:12", "n10"]);
    assert_eq!(
        verifier().check_at(&signed, AT),
        Err(SignatureError::InvalidTimestamp("28/11/2026 10:12".into()))
    );
    // A parameter given twice, both inside the signed part, is refused.
    let signed = python_sign(KEY, "algo=sha256", ORIG, "sha256", "n11");
    assert_eq!(
        verifier().check_at(&signed, AT),
        Err(SignatureError::Repeated("algo"))
    );
}
