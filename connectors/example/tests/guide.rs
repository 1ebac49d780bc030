//! docs/connector-guide.md is followed word for word: the files it shows are this crate's
//! own, and, written into a fresh directory outside the workspace as the guide says, they
//! build a connector that passes the conformance kit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The guide's files: each code block preceded by `<!-- file: <path> -->`.
fn guide_files() -> Vec<(String, String)> {
    let guide = std::fs::read_to_string(workspace().join("docs/connector-guide.md"))
        .expect("docs/connector-guide.md exists");
    let mut files = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- file: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a code block follows the file marker");
        assert!(
            fence.starts_with("```"),
            "no code block after the marker of {path}"
        );
        let mut content = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            content.push_str(line);
            content.push('\n');
        }
        files.push((path.to_owned(), content));
    }
    files
}

#[test]
fn the_guide_shows_the_example_crates_own_files() {
    let files = guide_files();
    let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["Cargo.toml", "src/lib.rs", "tests/conformance.rs"]);
    for (path, content) in &files[1..] {
        let actual = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
            .expect("the example's file exists");
        assert!(
            *content == actual,
            "docs/connector-guide.md shows a {path} that is not connectors/example/{path}: \
             copy the file into the guide"
        );
    }
}

/// Builds the guide's crate in a fresh directory and runs its tests (the kit), offline,
/// with the workspace's dependency versions (its `Cargo.lock`, so that nothing needs the
/// network) and a target directory of its own under the workspace's.
#[test]
fn following_the_guide_in_a_fresh_directory_builds_a_connector_that_passes_the_kit() {
    let root = tempfile::tempdir().expect("a temporary directory");
    // "With a checkout of Aiguillage next to your crate (`../aiguillage`)".
    std::os::unix::fs::symlink(
        workspace().canonicalize().expect("the workspace"),
        root.path().join("aiguillage"),
    )
    .expect("a link to the checkout");
    let krate = root.path().join("aiguillage-connector-webhook");
    for (path, content) in guide_files() {
        let file = krate.join(&path);
        std::fs::create_dir_all(file.parent().expect("a file has a directory"))
            .expect("the directory");
        std::fs::write(file, content).expect("the file");
    }
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).expect("the lock");
    let target = workspace().join("target/guide-check");
    let output = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the guide's crate does not build or fails its tests:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("test result: ok. 3 passed"),
        "the guide's three tests, the kit's among them, did not all run:\n{stdout}"
    );
}
